"""Minting LiveKit access tokens."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from google.protobuf.json_format import MessageToDict
from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from talkplatform_agents.lk.grants import grants_for
from talkplatform_agents.lk.naming import ROLE_ATTRIBUTE, validate_identity
from talkplatform_agents.roles import Role

__all__ = ["Credentials", "MintedToken", "mint_token", "role_metadata"]


@dataclass(frozen=True, repr=False)
class Credentials:
    """An API key and secret of livekit-server. The secret never appears in a repr."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key!r}, api_secret=***)"


@dataclass(frozen=True)
class MintedToken:
    jwt: str
    identity: str
    room: str
    role: Role
    grants: api.VideoGrants
    expires_at: dt.datetime
    metadata: dict[str, str] = field(default_factory=dict)


def mint_token(
    credentials: Credentials,
    *,
    identity: str,
    name: str,
    room: str,
    role: Role,
    ttl: dt.timedelta,
    dispatch_agents: tuple[str, ...] = (),
    grants: api.VideoGrants | None = None,
    now: dt.datetime | None = None,
) -> MintedToken:
    """Mint a join token. ``dispatch_agents`` names bots the server dispatches into the room
    when the participant creates it (explicit dispatch through the token's room config).
    ``grants`` replaces the role's own (a lobby token).

    The claims are LiveKit's access-token claims (``api.AccessToken`` makes the same; the
    unit tests compare the two), built here from what is known up front: AccessToken deep
    copies its claims through ``dataclasses.asdict`` on every call, which cost two thirds of
    a token (and a token is minted on every request to the door)."""
    validate_identity(identity)
    grants = grants or grants_for(role, room)
    metadata = _role_fields(role, name)
    issued = now or dt.datetime.now(dt.UTC)
    expires = issued + ttl
    claims: dict[str, Any] = {
        "name": name,
        "metadata": _encode(metadata),
        "video": _grant_claims(grants),
        "attributes": {ROLE_ATTRIBUTE: role.value},
        "sub": identity,
        "iss": credentials.api_key,
        "nbf": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    if not name:
        del claims["name"]  # as AccessToken leaves out empty claims
    if dispatch_agents:
        claims["roomConfig"] = _room_config(dispatch_agents)
    return MintedToken(
        jwt=jwt.encode(claims, credentials.api_secret, algorithm="HS256"),
        identity=identity,
        room=room,
        role=role,
        grants=grants,
        expires_at=expires,
        metadata=metadata,
    )


def role_metadata(role: Role, name: str) -> str:
    """A participant's metadata, as in their token and after a role change."""
    return _encode(_role_fields(role, name))


def _role_fields(role: Role, name: str) -> dict[str, str]:
    return {"role": role.value, "name": name}


def _encode(metadata: dict[str, str]) -> str:
    return json.dumps(metadata, separators=(",", ":"))


# The video grant claims' names: VideoGrants' fields in lower camel case.
_GRANT_NAMES = {
    f.name: f.name.split("_")[0] + "".join(part.title() for part in f.name.split("_")[1:])
    for f in dataclasses.fields(api.VideoGrants)
}


def _grant_claims(grants: api.VideoGrants) -> dict[str, Any]:
    """The ``video`` claim: the grants that are set (None and "" are left out, as unset)."""
    claims: dict[str, Any] = {}
    for field_name, claim in _GRANT_NAMES.items():
        value = getattr(grants, field_name)
        if value is not None and value != "":
            claims[claim] = value
    return claims


@functools.cache
def _room_config(dispatch_agents: tuple[str, ...]) -> dict[str, Any]:
    """The ``roomConfig`` claim that dispatches these bots (the same for every token)."""
    config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name=a) for a in dispatch_agents])
    claim: dict[str, Any] = MessageToDict(config)
    return claim
