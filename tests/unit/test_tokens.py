from __future__ import annotations

import datetime as dt

import pytest
from livekit import api

from talkplatform_agents.lk import Credentials, Role, grants_for, mint_token
from talkplatform_agents.lk.naming import greenroom_room_name, validate_identity

CREDS = Credentials("key", "s" * 40)


@pytest.mark.parametrize("role", list(Role))
def test_no_role_gets_admin_or_self_promotion(role: Role) -> None:
    grants = grants_for(role, "meeting-x")
    assert grants.room_admin is False
    assert grants.can_update_own_metadata is False
    assert grants.room == "meeting-x" and grants.room_join is True
    assert not grants.room_create and not grants.room_list and not grants.room_record


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
