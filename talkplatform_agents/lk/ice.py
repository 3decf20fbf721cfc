"""ICE servers (STUN and TURN): the one type for what the deployment configures, what
``connection-info`` hands to clients, and what the preflight and synthetic clients use.

The SDKs' own types (``rtc.IceServer``, aiortc's ``RTCIceServer``) are made from it where a
connection is built; this module loads neither, so the service never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only the service reads settings; clients must not load pydantic-settings
    from talkplatform_agents.config import Settings

__all__ = ["ICE_SCHEMES", "IceServer", "configured_ice_servers"]

ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")  # RFC 7064, RFC 7065
_RELAY_SCHEMES = ("turn:", "turns:")


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.urls, str) or not self.urls:
            raise ValueError("an ICE server needs a list of one or more URLs")
        for url in self.urls:
            if not isinstance(url, str) or not url.startswith(ICE_SCHEMES):
                raise ValueError(f"ICE server URL {url!r} must start with {', '.join(ICE_SCHEMES)}")

    @property
    def relay_urls(self) -> tuple[str, ...]:
        """The TURN URLs among ``urls`` (an entry may list a STUN URL of the same host)."""
        return tuple(url for url in self.urls if url.startswith(_RELAY_SCHEMES))

    @property
    def relays(self) -> bool:
        """A TURN server: media can be relayed through it."""
        return bool(self.relay_urls)

    @classmethod
    def from_json(cls, document: Any) -> IceServer:
        """One entry of ``connection-info``'s ``iceServers``; ValueError when malformed."""
        if not isinstance(document, Mapping):
            raise ValueError(f"an ICE server must be an object, not {document!r}")
        urls, username, credential = (document.get(k) for k in ("urls", "username", "credential"))
        if not isinstance(urls, list):
            raise ValueError(f"an ICE server's urls must be a list, not {urls!r}")
        for name, value in (("username", username), ("credential", credential)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"an ICE server's {name} must be a string")
        return cls(tuple(urls), username, credential)


def configured_ice_servers(settings: Settings) -> list[IceServer]:
    """The deployment's STUN and TURN servers (``STUN_URLS``, ``TURN_SERVER_URL`` and its
    credentials); ValueError naming the setting when one is malformed."""
    servers: list[IceServer] = []
    try:
        if settings.stun_urls:
            servers.append(IceServer(tuple(settings.stun_urls)))
    except ValueError as exc:
        raise ValueError(f"STUN_URLS: {exc}") from exc
    if settings.turn_server_url:
        password = settings.turn_password
        try:
            servers.append(
                IceServer(
                    (settings.turn_server_url,),
                    settings.turn_username,
                    password.get_secret_value() if password else None,
                )
            )
        except ValueError as exc:
            raise ValueError(f"TURN_SERVER_URL: {exc}") from exc
    return servers
