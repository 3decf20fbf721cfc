"""A member's role in a meeting: one vocabulary for the store (which keeps it), lk/ (the
grants and the ``role`` attribute of each role) and moderation (who may do what).

This module imports nothing from the package: the store, at the bottom, uses it too.
"""

from __future__ import annotations

import enum

__all__ = ["MODERATOR_ROLES", "Role"]


class Role(enum.StrEnum):
    HOST = "host"
    COHOST = "cohost"
    PARTICIPANT = "participant"

    @classmethod
    def stored(cls, value: str) -> Role:
        """A role as the store keeps it. One this version does not know (written by a newer
        one) gets the least privilege rather than an error on every request."""
        try:
            return cls(value)
        except ValueError:
            return cls.PARTICIPANT


# Those who may run the meeting: admit, mute, remove, lock. Only the host passes host,
# names co-hosts, changes settings and ends the meeting.
MODERATOR_ROLES: frozenset[Role] = frozenset({Role.HOST, Role.COHOST})
