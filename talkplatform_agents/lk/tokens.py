"""Minting LiveKit access tokens."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from talkplatform_agents.lk.grants import grants_for
from talkplatform_agents.lk.naming import validate_identity
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
    ``grants`` replaces the role's own (a lobby token)."""
    validate_identity(identity)
    grants = grants or grants_for(role, room)
    metadata = _role_fields(role, name)
    token = (
        api.AccessToken(credentials.api_key, credentials.api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_ttl(ttl)
        .with_grants(grants)
        .with_metadata(_encode(metadata))
        .with_attributes({"role": role.value})
    )
    if dispatch_agents:
        token = token.with_room_config(
            RoomConfiguration(
                agents=[RoomAgentDispatch(agent_name=agent) for agent in dispatch_agents]
            )
        )
    issued = now or dt.datetime.now(dt.UTC)
    return MintedToken(
        jwt=token.to_jwt(),
        identity=identity,
        room=room,
        role=role,
        grants=grants,
        expires_at=issued + ttl,
        metadata=metadata,
    )


def role_metadata(role: Role, name: str) -> str:
    """A participant's metadata, as in their token and after a role change."""
    return _encode(_role_fields(role, name))


def _role_fields(role: Role, name: str) -> dict[str, str]:
    return {"role": role.value, "name": name}


def _encode(metadata: dict[str, str]) -> str:
    return json.dumps(metadata, separators=(",", ":"))
