"""Authentication of the platform's app JWTs (HS256, ``sub`` = user id)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from talkplatform_agents.errors import Unauthorized
from talkplatform_agents.lk.naming import validate_identity

__all__ = ["MAX_NAME", "AppTokenVerifier", "AppUser", "mint_app_token"]

MAX_NAME = 200  # as stored (meeting_members.display_name)


@dataclass(frozen=True)
class AppUser:
    user_id: str
    name: str


class AppTokenVerifier:
    def __init__(self, secret: str, *, issuer: str | None = None, leeway_s: float = 10) -> None:
        self._secret = secret
        self._issuer = issuer
        self._leeway = leeway_s

    def verify_header(self, authorization: str | None) -> AppUser:
        if not authorization:
            raise Unauthorized("missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> AppUser:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],  # pinned: never let the token choose its algorithm
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        subject = claims["sub"]
        try:
            validate_identity(str(subject))
        except ValueError as exc:
            raise Unauthorized(f"invalid token subject: {exc}") from exc
        name = claims.get("name")
        if name is not None and (not isinstance(name, str) or not 0 < len(name) <= MAX_NAME):
            raise Unauthorized(f"invalid token: 'name' must be a string of 1-{MAX_NAME} characters")
        return AppUser(user_id=str(subject), name=name or str(subject))


def mint_app_token(secret: str, user_id: str, name: str | None, ttl_s: int) -> str:
    """For local use and tests: an app JWT as the platform's login would issue it."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl_s}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")
