"""JSON payloads of data messages and RPCs: strict parsing with readable errors, and
encoding that never emits what JSON cannot carry."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from talkplatform_agents.errors import TalkPlatformError

__all__ = ["BadPayload", "Payload", "PayloadT", "dumps", "parse"]


class BadPayload(TalkPlatformError, ValueError):
    """A payload that is not the JSON its method expects; the message says why."""


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PayloadT = TypeVar("PayloadT", bound=Payload)


# A reason goes back to whoever sent the payload (an RPC error, a chat notice): it names a
# few problems, briefly, however many unknown keys (of whatever length) the payload holds.
_MAX_PROBLEMS = 5
_MAX_PART = 80


def parse(model: type[PayloadT], payload: str) -> PayloadT:
    """Parse an RPC payload; an empty payload means ``{}``. Anything else that is not the
    model's JSON (any text, any JSON, nested however deep) is ``BadPayload``."""
    try:
        return model.model_validate_json(payload or "{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        problems = [
            f"{_clip('.'.join(str(p) for p in err['loc']) or 'payload')}: {_clip(err['msg'])}"
            for err in errors[:_MAX_PROBLEMS]
        ]
        if len(errors) > _MAX_PROBLEMS:
            problems.append(f"and {len(errors) - _MAX_PROBLEMS} more")
        raise BadPayload("; ".join(problems)) from exc


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_PART else text[: _MAX_PART - 3] + "..."


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
