"""The HTTP face: app-JWT authentication, token minting routes and the webhook receiver."""

from talkplatform_agents.service.app import create_app
from talkplatform_agents.service.auth import AppTokenVerifier, AppUser, mint_app_token

__all__ = ["AppTokenVerifier", "AppUser", "create_app", "mint_app_token"]
