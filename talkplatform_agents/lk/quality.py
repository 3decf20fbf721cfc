"""Network quality over time: min/avg/max of periodic samples, and the pre-call throughput
verdict. Pure: numbers in, summaries out; both the green-room bot and the preflight use it.

Throughput thresholds are Jitsi's pre-join test's (per media kind, over the test window):

| kind  | poor                            | non_optimal                      | good      |
| ----- | ------------------------------- | -------------------------------- | --------- |
| audio | loss > 33 % or < 8 kbit/s       | loss > 5 % or < 20 kbit/s        | otherwise |
| video | loss > 33 % or < 60 kbit/s      | loss > 10 % or < 750 kbit/s      | otherwise |

The overall verdict is the worst of the kinds measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "NETWORK_FIGURES",
    "THROUGHPUT_THRESHOLDS",
    "NetworkHistory",
    "Spread",
    "Throughput",
    "ThroughputVerdict",
    "classify_throughput",
    "worst",
]

ThroughputVerdict = Literal["good", "non_optimal", "poor"]
_ORDER: dict[ThroughputVerdict, int] = {"good": 0, "non_optimal": 1, "poor": 2}


@dataclass(frozen=True)
class _Limits:
    poor_loss: float  # fraction of packets
    fair_loss: float
    poor_kbps: float
    fair_kbps: float


THROUGHPUT_THRESHOLDS: dict[str, _Limits] = {
    "audio": _Limits(poor_loss=0.33, fair_loss=0.05, poor_kbps=8.0, fair_kbps=20.0),
    "video": _Limits(poor_loss=0.33, fair_loss=0.10, poor_kbps=60.0, fair_kbps=750.0),
}


@dataclass
class Spread:
    """min/avg/max of one figure over a session; missing readings (None, NaN) are skipped."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def summary(self, digits: int = 1) -> dict[str, Any]:
        """``{"min", "avg", "max", "samples"}``; the three figures are None with no sample."""
        if not self.count:
            return {"min": None, "avg": None, "max": None, "samples": 0}
        return {
            "min": round(self.low, digits),
            "avg": round(self.total / self.count, digits),
            "max": round(self.high, digits),
            "samples": self.count,
        }


NETWORK_FIGURES = ("rtt_ms", "jitter_ms", "loss_pct", "bitrate_kbps")


@dataclass
class NetworkHistory:
    """Periodic network readings of a whole session, per figure (see ``NETWORK_FIGURES``)."""

    spreads: dict[str, Spread] = field(
        default_factory=lambda: {name: Spread() for name in NETWORK_FIGURES}
    )

    def add(self, **readings: float | None) -> None:
        for name, value in readings.items():
            if name not in self.spreads:
                raise ValueError(f"unknown network figure {name!r}; known: {NETWORK_FIGURES}")
            self.spreads[name].add(value)

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: spread.summary() for name, spread in self.spreads.items()}


@dataclass(frozen=True)
class Throughput:
    """What one media kind achieved over the test window."""

    kind: str  # "audio" or "video"
    kbps: float
    loss_fraction: float
    packets_sent: int
    # Why the encoder sent less than asked, as its stats say (video): none, cpu, bandwidth
    limited_by: str = "none"

    def verdict(self) -> tuple[ThroughputVerdict, list[str]]:
        return classify_throughput(self.kind, self.kbps, self.loss_fraction)


def classify_throughput(
    kind: str, kbps: float, loss_fraction: float
) -> tuple[ThroughputVerdict, list[str]]:
    """The verdict for one kind, with the reasons it is not good."""
    limits = THROUGHPUT_THRESHOLDS.get(kind)
    if limits is None:
        raise ValueError(f"no throughput thresholds for {kind!r}; known: audio, video")
    reasons: list[tuple[ThroughputVerdict, str]] = []
    loss_pct = loss_fraction * 100
    if loss_fraction > limits.poor_loss:
        reasons.append(("poor", f"{kind} loss {loss_pct:.1f}% > {limits.poor_loss:.0%}"))
    elif loss_fraction > limits.fair_loss:
        reasons.append(("non_optimal", f"{kind} loss {loss_pct:.1f}% > {limits.fair_loss:.0%}"))
    if kbps < limits.poor_kbps:
        reasons.append(("poor", f"{kind} {kbps:.0f} kbit/s < {limits.poor_kbps:.0f}"))
    elif kbps < limits.fair_kbps:
        reasons.append(("non_optimal", f"{kind} {kbps:.0f} kbit/s < {limits.fair_kbps:.0f}"))
    return worst(v for v, _ in reasons), [text for _, text in reasons]


def worst(verdicts: Iterable[ThroughputVerdict]) -> ThroughputVerdict:
    """The worst of some verdicts; ``good`` for none."""
    found: ThroughputVerdict = "good"
    for verdict in verdicts:
        if _ORDER[verdict] > _ORDER[found]:
            found = verdict
    return found
