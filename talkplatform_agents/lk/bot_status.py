"""The warning that a room's bots are missing: topic ``tp.bots.missing``.

The service sends it, as a reliable data packet, to the hosts and co-hosts of a meeting
whose bot no worker has taken, again at each look until the bot arrives, then once more
with an empty ``missing`` list (the all-clear). A client shows it as "chat is unavailable",
say, and clears it on the all-clear. A lobby's missing moderator is reported to the hosts
in the meeting room, since nobody in the lobby can act on it.

Payload (JSON)::

    {"room": "meeting-…", "missing": ["chat-relay"], "since": 1764500000123, "looks": 3}

``since`` is when the first of them was found missing (Unix ms); ``looks`` how many times
the service has looked and dispatched since then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from talkplatform_agents.lk.payloads import BadPayload

__all__ = ["TOPIC_BOTS_MISSING", "BotsMissing"]

TOPIC_BOTS_MISSING = "tp.bots.missing"


@dataclass(frozen=True)
class BotsMissing:
    room: str
    missing: tuple[str, ...]
    since_ms: int
    looks: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "room": self.room,
                "missing": list(self.missing),
                "since": self.since_ms,
                "looks": self.looks,
            }
        )

    @classmethod
    def from_json(cls, payload: str | bytes) -> BotsMissing:
        """Parse a received warning; ``BadPayload`` (a ``ValueError``) naming what is wrong,
        whatever the bytes."""
        try:
            body = json.loads(payload)
            room, missing = body["room"], body["missing"]
            since, looks = body["since"], body["looks"]
        # RecursionError: JSON nested deeper than the parser's stack.
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
            raise BadPayload(f"not a {TOPIC_BOTS_MISSING} payload: {_brief(exc)}") from exc
        if not isinstance(room, str) or not isinstance(missing, list):
            raise BadPayload(f"not a {TOPIC_BOTS_MISSING} payload: room or missing is malformed")
        if not all(isinstance(bot, str) for bot in missing):
            raise BadPayload("bot names must be strings")
        if not all(_is_int(n) for n in (since, looks)):
            raise BadPayload("since and looks must be integers")
        return cls(room, tuple(missing), since, looks)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _brief(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 120 else text[:117] + "..."
