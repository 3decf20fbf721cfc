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
        """Parse a received warning; ValueError naming what is wrong."""
        try:
            body = json.loads(payload)
            room, missing = body["room"], body["missing"]
            since, looks = body["since"], body["looks"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a {TOPIC_BOTS_MISSING} payload: {exc!r}") from exc
        if not isinstance(room, str) or not isinstance(missing, list):
            raise ValueError(f"not a {TOPIC_BOTS_MISSING} payload: {body!r}")
        if not all(isinstance(bot, str) for bot in missing):
            raise ValueError(f"bot names must be strings: {missing!r}")
        if not isinstance(since, int) or not isinstance(looks, int):
            raise ValueError(f"since and looks must be integers: {body!r}")
        return cls(room, tuple(missing), since, looks)
