from __future__ import annotations

import datetime as dt
import json

import pytest
from livekit import api

from talkplatform_agents.lk import Credentials, grants_for, mint_token, permissions_document
from talkplatform_agents.lk.grants import lobby_grants
from talkplatform_agents.lk.naming import greenroom_room_name, validate_identity
from talkplatform_agents.lk.tokens import role_metadata
from talkplatform_agents.roles import Role

CREDS = Credentials("key", "s" * 40)


@pytest.mark.parametrize("role", list(Role))
def test_no_role_gets_admin_or_self_promotion(role: Role) -> None:
    grants = grants_for(role, "meeting-x")
    assert grants.room_admin is False
    assert grants.can_update_own_metadata is False
    assert grants.room == "meeting-x" and grants.room_join is True
    assert not grants.room_create and not grants.room_list and not grants.room_record


def test_meeting_roles_share_their_grants_and_the_lobby_publishes_nothing() -> None:
    """What the README's "grants per role" says: the same media for every meeting role (a
    host's powers are the service's, not the token's); a waiting participant gets none."""
    documents = {role: permissions_document(grants_for(role, "meeting-x")) for role in Role}
    assert documents[Role.HOST] == documents[Role.COHOST] == documents[Role.PARTICIPANT]
    assert documents[Role.PARTICIPANT]["canPublishSources"] == [
        "camera",
        "microphone",
        "screen_share",
        "screen_share_audio",
    ]
    lobby = permissions_document(lobby_grants("meeting-x-lobby"))
    assert lobby["canPublish"] is False and lobby["canPublishSources"] == []
    assert lobby["canSubscribe"] and lobby["canPublishData"]  # to hear from the hosts' bot
    assert not lobby["roomAdmin"] and not lobby["canUpdateOwnMetadata"]


def test_minted_token_verifies_with_role_name_and_ttl() -> None:
    now = dt.datetime.now(dt.UTC)
    minted = mint_token(
        CREDS,
        identity="u-1",
        name="Ada",
        room="meeting-1",
        role=Role.HOST,
        ttl=dt.timedelta(minutes=10),
        now=now,
    )
    claims = api.TokenVerifier(CREDS.api_key, CREDS.api_secret).verify(minted.jwt)
    assert claims.identity == "u-1" and claims.name == "Ada"
    assert claims.attributes == {"role": "host"}
    assert '"role":"host"' in claims.metadata
    # One metadata: what the token carries, what the service reads back, what a role change sets.
    assert json.loads(claims.metadata) == minted.metadata == {"role": "host", "name": "Ada"}
    assert claims.metadata == role_metadata(Role.HOST, "Ada")
    assert claims.video.room == "meeting-1"
    assert minted.expires_at == now + dt.timedelta(minutes=10)
    assert not claims.room_config or not claims.room_config.agents


def test_dispatch_agents_land_in_room_config() -> None:
    minted = mint_token(
        CREDS,
        identity="u-1",
        name="u",
        room=greenroom_room_name("u-1"),
        role=Role.PARTICIPANT,
        ttl=dt.timedelta(minutes=1),
        dispatch_agents=("greenroom-echo",),
    )
    claims = api.TokenVerifier(CREDS.api_key, CREDS.api_secret).verify(minted.jwt)
    assert [a.agent_name for a in claims.room_config.agents] == ["greenroom-echo"]
    assert claims.video.room == "greenroom-u-1"


@pytest.mark.parametrize("identity", ["", "a b", "x" * 129, "semi;colon", "slash/y"])
def test_bad_identities_are_refused(identity: str) -> None:
    with pytest.raises(ValueError, match="identity"):
        validate_identity(identity)


def test_credentials_repr_hides_the_secret() -> None:
    assert "s" * 40 not in repr(CREDS)


@pytest.mark.parametrize(
    ("role", "agents", "lobby"),
    [
        (Role.HOST, ("waiting-room", "chat"), False),
        (Role.PARTICIPANT, (), False),
        (Role.PARTICIPANT, ("waiting-room",), True),
    ],
)
def test_claims_are_what_livekits_access_token_makes(
    role: Role, agents: tuple[str, ...], lobby: bool
) -> None:
    """mint_token builds the claims itself (for speed); they must be LiveKit's own."""
    import jwt as pyjwt
    from livekit.protocol.agent_dispatch import RoomAgentDispatch
    from livekit.protocol.room import RoomConfiguration

    room = "meeting-1-lobby" if lobby else "meeting-1"
    grants = lobby_grants(room) if lobby else None
    ttl = dt.timedelta(minutes=5)
    minted = mint_token(
        CREDS, identity="u-1", name="Ada", room=room, role=role, ttl=ttl,
        dispatch_agents=agents, grants=grants,
    )  # fmt: skip
    reference = (
        api.AccessToken(CREDS.api_key, CREDS.api_secret)
        .with_identity("u-1")
        .with_name("Ada")
        .with_ttl(ttl)
        .with_grants(grants or grants_for(role, room))
        .with_metadata(role_metadata(role, "Ada"))
        .with_attributes({"role": role.value})
    )
    if agents:
        dispatch = [RoomAgentDispatch(agent_name=agent) for agent in agents]
        reference = reference.with_room_config(RoomConfiguration(agents=dispatch))

    ours = pyjwt.decode(minted.jwt, options={"verify_signature": False})
    theirs = pyjwt.decode(reference.to_jwt(), options={"verify_signature": False})
    for timed in ("nbf", "exp"):  # minted a moment apart
        assert abs(ours.pop(timed) - theirs.pop(timed)) <= 1
    assert ours == theirs
    verified = api.TokenVerifier(CREDS.api_key, CREDS.api_secret).verify(minted.jwt)
    assert verified.identity == "u-1" and verified.video == (grants or grants_for(role, room))
