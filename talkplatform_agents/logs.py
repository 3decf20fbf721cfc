"""How every process that the CLI starts logs: text for people, or (``LOG_FORMAT=json``) one
JSON object a line for a log pipeline.

A JSON line holds ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` (its %-args
applied), ``room`` when the line is tagged with one (the code's convention: a message that
starts ``[room-name] ``), ``process`` (a worker's child: ``host-0``, a bot's name),
``exc_info`` (the traceback) when there is one, and whatever ``extra`` fields the caller
gave (livekit-agents gives some).

The worker's children and livekit-agents' job processes are spawned: each configures itself
here with the same choice (livekit-agents hands its job processes' records to their server
process, which formats them).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, Literal

from talkplatform_agents.lk.naming import (
    CHAT_AGENT_NAME,
    ECHO_AGENT_NAME,
    RECORDER_AGENT_NAME,
    TRANSCRIBER_AGENT_NAME,
    WAITING_ROOM_AGENT_NAME,
    RoomKind,
    parse_room,
)

__all__ = ["LOG_FORMATS", "JsonFormatter", "LogFormat", "configure_logging", "room_of"]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Some lines are tagged with an agent's name, which reads like a green room's
# ("greenroom-echo"): never a room.
_AGENT_NAMES = frozenset(
    {CHAT_AGENT_NAME, ECHO_AGENT_NAME, RECORDER_AGENT_NAME, TRANSCRIBER_AGENT_NAME,
     WAITING_ROOM_AGENT_NAME}
)  # fmt: skip
_MAX_TAG = 200  # a room name is at most this long here; a longer "[...]" is not a tag

# Attributes every LogRecord has: anything else on a record is a caller's ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's message again, with terminal colours
}


def room_of(message: str) -> str | None:
    """The room a log line is tagged with (``"[meeting-…] …"``), or None: only a tag that
    names a meeting, lobby or green room counts (others tag a task set or an agent)."""
    if not message.startswith("["):
        return None
    end = message.find("] ", 1, _MAX_TAG + 2)
    if end < 0:
        end = len(message) - 1 if message.endswith("]") else -1
    if end < 2:
        return None
    tag = message[1:end]
    if tag in _AGENT_NAMES or parse_room(tag).kind is RoomKind.OTHER:
        return None
    return tag


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if (room := room_of(message)) is not None:
            line["room"] = room
        if self._process is not None:
            line["process"] = self._process
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = value
        # default=str: an extra that JSON cannot hold (a path, an enum) is still shown.
        try:
            return json.dumps(line, default=str, ensure_ascii=False)
        except Exception:
            # Not only TypeError and ValueError (a dict with tuple keys, a cycle): a str()
            # may raise anything, and a deep value RecursionError. The line stays; the
            # fields that JSON refuses go as their repr.
            fields = {key: _json_field(value) for key, value in line.items()}
            return json.dumps(fields, ensure_ascii=False)


def _json_field(value: object) -> object:
    """``value`` as JSON takes it (as ``format`` does: ``str`` of what it cannot hold), as
    plain JSON values, or else its repr."""
    try:
        return json.loads(json.dumps(value, default=str))
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<{type(value).__name__}: not representable>"


def configure_logging(level: str, log_format: LogFormat, process: str | None = None) -> None:
    """This process's root logger, on stderr: ``process`` names a worker's child (text
    lines carry it in brackets, JSON lines in ``process``). As ``logging.basicConfig``: a
    process whose root logger has a handler already (a test runner's) keeps it."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be text or json, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        tag = f" [{process}]" if process else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s{tag} %(name)s: %(message)s")
        )
    logging.basicConfig(level=level.upper(), handlers=[handler])
