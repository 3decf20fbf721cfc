"""``--fail-if``: conditions on the run's totals that make it fail, e.g.
``join_p95>2s,loss>2%,errors>0``. Pure: parsed and checked without a room."""

from __future__ import annotations

import enum
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "Condition", "Verdict", "evaluate", "parse_fail_if"]


class _Kind(enum.Enum):
    TIME = "time"  # stored in ms; written with s or ms
    PERCENT = "percent"  # stored as a percentage; written with or without %
    COUNT = "count"
    RATE = "rate"  # stored in kbps; written with kbps or mbps
    FPS = "fps"


# Metric name in --fail-if -> (key in the report's summary, kind).
METRICS: dict[str, tuple[str, _Kind]] = {
    "join_p50": ("join_p50_ms", _Kind.TIME),
    "join_p95": ("join_p95_ms", _Kind.TIME),
    "first_frame_p50": ("first_frame_p50_ms", _Kind.TIME),
    "first_frame_p95": ("first_frame_p95_ms", _Kind.TIME),
    "latency_p50": ("latency_p50_ms", _Kind.TIME),
    "latency_p95": ("latency_p95_ms", _Kind.TIME),
    "rtp_latency_p50": ("rtp_latency_p50_ms", _Kind.TIME),
    "rtp_latency_p95": ("rtp_latency_p95_ms", _Kind.TIME),
    "jitter": ("jitter_ms", _Kind.TIME),
    "switch_p95": ("layer_switch_p95_ms", _Kind.TIME),
    "speaker_follow_p50": ("speaker_follow_p50_ms", _Kind.TIME),
    "speaker_follow_p95": ("speaker_follow_p95_ms", _Kind.TIME),
    "loss": ("loss_pct", _Kind.PERCENT),
    "freezes": ("freezes", _Kind.COUNT),
    "errors": ("errors", _Kind.COUNT),
    "switch_failures": ("layer_switch_failures", _Kind.COUNT),
    # tracks its room's publishers sent that a subscriber never received, summed
    "missing_tracks": ("missing_tracks", _Kind.COUNT),
    "speaker_turns_missed": ("speaker_turns_missed", _Kind.COUNT),
    "bitrate": ("bitrate_kbps", _Kind.RATE),
    "fps": ("fps", _Kind.FPS),
}

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z%]*)\s*$")
_UNITS: dict[_Kind, dict[str, float]] = {
    _Kind.TIME: {"ms": 1.0, "s": 1000.0},
    _Kind.PERCENT: {"%": 1.0, "": 1.0},
    _Kind.COUNT: {"": 1.0},
    _Kind.RATE: {"kbps": 1.0, "mbps": 1000.0, "bps": 0.001},
    _Kind.FPS: {"": 1.0, "fps": 1.0},
}


@dataclass(frozen=True)
class Condition:
    """A failure condition: the run fails when ``metric op limit`` holds."""

    text: str
    metric: str
    op: str
    limit: float  # in the summary's unit (ms, %, count, kbps, fps)

    @property
    def key(self) -> str:
        return METRICS[self.metric][0]


@dataclass(frozen=True)
class Verdict:
    condition: Condition
    value: float | None
    failed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition.text,
            "metric": self.condition.key,
            "value": self.value,
            "limit": self.condition.limit,
            "failed": self.failed,
            "reason": self.reason,
        }


def parse_fail_if(text: str) -> list[Condition]:
    """Comma-separated conditions; raises ValueError naming the part that is wrong."""
    conditions = []
    for part in (p for p in text.split(",") if p.strip()):
        match = _CONDITION.match(part.lower())
        if match is None:
            raise ValueError(f"bad --fail-if condition {part.strip()!r}: use e.g. join_p95>2s")
        metric, op, number, unit = match.groups()
        if metric not in METRICS:
            known = ", ".join(sorted(METRICS))
            raise ValueError(f"unknown metric {metric!r} in --fail-if; known: {known}")
        kind = METRICS[metric][1]
        scale = _UNITS[kind].get(unit)
        if scale is None:
            allowed = ", ".join(repr(u) for u in _UNITS[kind]) or "none"
            raise ValueError(f"{metric} takes units {allowed}, not {unit!r} in {part.strip()!r}")
        conditions.append(Condition(part.strip(), metric, op, float(number) * scale))
    if not conditions:
        raise ValueError("--fail-if is empty")
    return conditions


def evaluate(conditions: list[Condition], summary: Mapping[str, Any]) -> list[Verdict]:
    """Check each condition on the run's totals. A metric the run did not measure fails its
    condition: no data proves nothing."""
    verdicts = []
    for cond in conditions:
        value = summary.get(cond.key)
        if value is None:
            verdicts.append(Verdict(cond, None, True, f"{cond.key} was not measured"))
            continue
        failed = _OPS[cond.op](float(value), cond.limit)
        reason = f"{cond.key}={float(value):.4g} {cond.op} {cond.limit:.4g}" if failed else "ok"
        verdicts.append(Verdict(cond, float(value), failed, reason))
    return verdicts
