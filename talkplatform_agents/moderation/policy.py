"""Meeting settings and the door's decision: pure rules, no I/O."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from talkplatform_agents.errors import Invalid

__all__ = ["Entry", "MeetingSettings", "admits_on_host_arrival", "decide_entry"]


class MeetingSettings(BaseModel):
    """The settings the door obeys. Other keys a frontend stores are kept as they are."""

    model_config = ConfigDict(extra="allow")

    waiting_room: bool = False
    locked: bool = False
    join_before_host: bool = True
    # User ids, or email domains ("example.com" or "@example.com") of email user ids.
    auto_admit: list[str] = Field(default_factory=list, max_length=500)
    # auto_admit as sets, built once: the door asks on every token request, and a parsed
    # settings object lives as long as the meeting's cached snapshot.
    _admit_users: frozenset[str] = PrivateAttr(default=frozenset())
    _admit_domains: frozenset[str] = PrivateAttr(default=frozenset())

    def model_post_init(self, context: Any, /) -> None:
        items = [item for item in (i.strip().lower() for i in self.auto_admit) if item]
        self._admit_users = frozenset(items)
        self._admit_domains = frozenset(item.lstrip("@") for item in items)

    @classmethod
    def of(cls, stored: dict[str, Any]) -> MeetingSettings:
        try:
            return cls.model_validate(stored)
        except ValidationError as exc:
            raise Invalid(f"meeting settings are invalid: {exc.errors()[0]['msg']}") from exc

    def auto_admits(self, user_id: str) -> bool:
        """On the list by user id, or by the domain of an email-shaped user id."""
        user = user_id.lower()
        if user in self._admit_users:
            return True
        _, at, domain = user.rpartition("@")
        return bool(at) and domain in self._admit_domains


class Entry(enum.Enum):
    JOIN = "join"
    WAIT = "wait"
    DENIED = "denied"
    REMOVED = "removed"
    LOCKED = "locked"


def decide_entry(
    settings: MeetingSettings,
    *,
    user_id: str,
    is_moderator: bool,
    decision: str | None,
    host_present: bool,
) -> Entry:
    """Where a token request leads. ``decision`` is the user's standing waiting-room status
    (``admitted``, ``denied``, ``removed``, ...), if any."""
    if is_moderator:
        return Entry.JOIN
    if decision == "removed":
        return Entry.REMOVED
    if decision == "denied":
        return Entry.DENIED
    if decision == "admitted":
        return Entry.JOIN  # let in before: a reconnect, even into a locked meeting
    if settings.locked:
        return Entry.LOCKED
    if decision == "waiting":
        return Entry.WAIT  # queued (or sent back by a host): only a host lets them in
    if not settings.join_before_host and not host_present:
        return Entry.WAIT
    if settings.waiting_room and not settings.auto_admits(user_id):
        return Entry.WAIT
    return Entry.JOIN


def admits_on_host_arrival(settings: MeetingSettings, user_id: str) -> bool:
    """Who waited only for a host (no waiting room, or on the auto-admit list)."""
    return not settings.waiting_room or settings.auto_admits(user_id)
