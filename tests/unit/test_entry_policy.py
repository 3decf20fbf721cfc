"""The door's rules: who joins, who waits, who is refused."""

from __future__ import annotations

import pytest

from talkplatform_agents.errors import Invalid
from talkplatform_agents.moderation import MeetingSettings
from talkplatform_agents.moderation.policy import Entry, admits_on_host_arrival, decide_entry


def _decide(settings: MeetingSettings, **kw: object) -> Entry:
    args: dict[str, object] = {
        "user_id": "guest",
        "is_moderator": False,
        "decision": None,
        "host_present": True,
    }
    args.update(kw)
    return decide_entry(settings, **args)  # type: ignore[arg-type]


def test_defaults_let_everyone_in() -> None:
    assert _decide(MeetingSettings()) is Entry.JOIN


@pytest.mark.parametrize(
    ("settings", "kw", "expected"),
    [
        ({"waiting_room": True}, {}, Entry.WAIT),
        ({"waiting_room": True}, {"is_moderator": True}, Entry.JOIN),
        ({"waiting_room": True}, {"decision": "admitted"}, Entry.JOIN),
        ({"locked": True}, {}, Entry.LOCKED),
        ({"locked": True}, {"decision": "admitted"}, Entry.JOIN),  # a reconnect
        ({"locked": True}, {"is_moderator": True}, Entry.JOIN),
        ({}, {"decision": "denied"}, Entry.DENIED),
        ({}, {"decision": "removed"}, Entry.REMOVED),
        ({}, {"decision": "waiting"}, Entry.WAIT),  # sent back by a host
        ({}, {"decision": "left"}, Entry.JOIN),
        ({"join_before_host": False}, {"host_present": False}, Entry.WAIT),
        ({"join_before_host": False}, {"host_present": True}, Entry.JOIN),
        ({"waiting_room": True, "auto_admit": ["guest"]}, {}, Entry.JOIN),
        (
            {"waiting_room": True, "auto_admit": ["guest"], "join_before_host": False},
            {"host_present": False},
            Entry.WAIT,
        ),
    ],
)
def test_rules(settings: dict[str, object], kw: dict[str, object], expected: Entry) -> None:
    assert _decide(MeetingSettings.of(settings), **kw) is expected


def test_auto_admit_matches_user_ids_and_email_domains() -> None:
    settings = MeetingSettings(auto_admit=["Bob", "example.com", "@corp.test"])
    assert settings.auto_admits("bob")
    assert settings.auto_admits("ann@Example.com")
    assert settings.auto_admits("x@corp.test")
    assert not settings.auto_admits("ann@example.com.evil")
    assert not settings.auto_admits("mallory@sub.example.org")


def test_host_arrival_admits_only_those_waiting_for_a_host() -> None:
    assert admits_on_host_arrival(MeetingSettings(join_before_host=False), "g")
    with_room = MeetingSettings(waiting_room=True, auto_admit=["vip"])
    assert not admits_on_host_arrival(with_room, "g")
    assert admits_on_host_arrival(with_room, "vip")


def test_bad_settings_are_a_clear_error_and_unknown_keys_are_kept() -> None:
    with pytest.raises(Invalid, match="meeting settings are invalid"):
        MeetingSettings.of({"waiting_room": "perhaps"})
    kept = MeetingSettings.of({"theme": "dark"})
    assert kept.model_dump()["theme"] == "dark"
