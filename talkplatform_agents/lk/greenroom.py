"""The green room's wire protocol: data topics, RPC methods and their payloads.

Everything the frontend needs to drive the green-room bot (agent_name ``greenroom-echo``):

Data topics (JSON, sent by the bot to the user only):
- ``tp.greenroom.level``: ``{"rms_dbfs", "peak_dbfs", "t"}`` at 10 Hz, for a level meter.
  ``-inf`` is sent as ``null``. Lossy: a late meter reading is worthless.
- ``tp.greenroom.state``: ``{"mode": "live"|"playback", "phase": "live"|"recording"|"playing",
  "seconds", "blur"}`` whenever it changes.
- ``tp.greenroom.report``: the device and network report (see ``get_report``) every 2 s.

RPC methods (on the bot; payload and response are JSON):
- ``greenroom.set_audio_mode`` ``{"mode": "live"|"playback", "seconds": 1..30 (default 6)}``
- ``greenroom.set_blur`` ``{"enabled": bool}``
- ``greenroom.get_report`` ``{}`` → the report
The bot calls ``greenroom.ping`` on the user to time the round trip; any answer, even
"unsupported method", counts, so frontends need not implement it.

Malformed payloads get ``RpcError`` 2400 (invalid payload) with a readable message; 2403 is
a caller other than the room's user, 2503 a feature that is unavailable (no blur model).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "FORBIDDEN",
    "INVALID_PAYLOAD",
    "RPC_GET_REPORT",
    "RPC_PING",
    "RPC_SET_AUDIO_MODE",
    "RPC_SET_BLUR",
    "TOPIC_LEVEL",
    "TOPIC_REPORT",
    "TOPIC_STATE",
    "UNAVAILABLE",
    "AudioModeRequest",
    "BadPayload",
    "BlurRequest",
    "EmptyRequest",
    "PayloadT",
    "dumps",
    "parse",
]

TOPIC_LEVEL = "tp.greenroom.level"
TOPIC_STATE = "tp.greenroom.state"
TOPIC_REPORT = "tp.greenroom.report"
RPC_SET_AUDIO_MODE = "greenroom.set_audio_mode"
RPC_SET_BLUR = "greenroom.set_blur"
RPC_GET_REPORT = "greenroom.get_report"
RPC_PING = "greenroom.ping"

# Application error codes (LiveKit reserves 1400-1599 for its own).
INVALID_PAYLOAD = 2400
FORBIDDEN = 2403
UNAVAILABLE = 2503


class BadPayload(ValueError):
    """A payload that is not the JSON its method expects; the message says why."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PayloadT = TypeVar("PayloadT", bound=_Payload)


class AudioModeRequest(_Payload):
    mode: Literal["live", "playback"]
    seconds: float = Field(default=6.0, ge=1.0, le=30.0)


class BlurRequest(_Payload):
    enabled: bool


class EmptyRequest(_Payload):
    pass


def parse(model: type[PayloadT], payload: str) -> PayloadT:
    """Parse an RPC payload; an empty payload means ``{}``."""
    try:
        return model.model_validate_json(payload or "{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BadPayload(problems) from exc


def dumps(message: dict[str, Any]) -> str:
    """JSON with non-finite floats as null (JSON has no -inf)."""
    return json.dumps(_finite(message), separators=(",", ":"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
