"""Simulated speakers: publishers take turns being loud, on the wall clock, and subscribers
measure how soon the SFU's speaker detection names each turn's speaker.

Turns follow ``time.time()``, so the publishers of a room agree on whose turn it is without
talking to each other, across worker processes of one machine (one clock). Pure: no
LiveKit here, so that the SDK members and the light ones share one schedule and one
judgement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from talkplatform_agents.synthetic.load.report import MAX_SAMPLES, ParticipantResult

__all__ = [
    "LOUD_GAIN",
    "QUIET_GAIN",
    "SpeakerFollow",
    "SpeakerSchedule",
    "record_follow",
    "slot_identities",
]

LOUD_GAIN = 1.0
# About -40 dB: the tone (about -15 dBFS) falls to about -55 dBFS, under the SFU's default
# speaking threshold (-35 dBov), yet the stream keeps flowing as a muted-but-open mic does.
QUIET_GAIN = 0.01


@dataclass(frozen=True)
class SpeakerSchedule:
    """Turns of ``turn_s`` seconds among ``publishers`` slots: turn ``n`` (counted from the
    Unix epoch) belongs to slot ``n % publishers``. ``turn_s == 0`` means no turns: everyone
    is loud all the time."""

    turn_s: float
    publishers: int

    def __post_init__(self) -> None:
        if self.turn_s < 0 or not math.isfinite(self.turn_s):
            raise ValueError(f"speaker turn must be >= 0 s, got {self.turn_s}")
        if self.publishers < 0:
            raise ValueError(f"publishers must be >= 0, got {self.publishers}")

    @property
    def active(self) -> bool:
        return self.turn_s > 0 and self.publishers > 0

    def turn(self, at: float) -> int:
        """The number of the turn running at wall time ``at``."""
        self._need_turns()
        return int(at // self.turn_s)

    def turn_start(self, at: float) -> float:
        """When the turn running at ``at`` began (wall time)."""
        return self.turn(at) * self.turn_s

    def expected(self, at: float) -> int:
        """The slot whose turn it is at ``at``."""
        return self.turn(at) % self.publishers

    def loud(self, slot: int, at: float) -> bool:
        """Whether the publisher in ``slot`` speaks at ``at`` (always, without turns)."""
        return not self.active or self.expected(at) == slot

    def gain(self, slot: int, at: float) -> float:
        return LOUD_GAIN if self.loud(slot, at) else QUIET_GAIN

    def _need_turns(self) -> None:
        if not self.active:
            raise ValueError("no speaker turns: turn_s is 0 or there are no publishers")


def slot_identities(first: str, publishers: int) -> list[str]:
    """The identities of a room's publishers by slot, from slot 0's: the runner names them
    ``<room label>-pub<slot>`` (and a subscriber's plan names slot 0 as its speaker)."""
    if not first.endswith("pub0"):
        raise ValueError(f"{first!r} is not a slot-0 publisher (<label>-pub0)")
    prefix = first.removesuffix("0")
    return [f"{prefix}{slot}" for slot in range(publishers)]


@dataclass
class SpeakerFollow:
    """Judges, turn by turn, whether the SFU's top active speaker followed the schedule.

    Feed it every speaker list the SFU sends (loudest first) with its arrival time
    (``observe``), then ``finish``. For each turn wholly inside the watch (from
    ``started_at`` to ``finish``) it records how long after the turn's start the SFU first
    named that turn's publisher first (``follow_ms``, 0 when it already was), or counts the
    turn as ``missed`` when it never did before the turn ended."""

    schedule: SpeakerSchedule
    identities: Sequence[str]  # by slot
    started_at: float
    follow_ms: list[float] = field(default_factory=list)
    missed: int = 0
    _top: str | None = field(default=None, init=False, repr=False)
    _turn: int = field(default=0, init=False, repr=False)  # the first turn not judged yet
    # When the SFU first named that turn's speaker first (None: not yet).
    _followed_at: float | None = field(default=None, init=False, repr=False)
    _finished: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.schedule.active:
            raise ValueError("nothing to follow: the schedule has no turns")
        if len(self.identities) != self.schedule.publishers:
            n, p = len(self.identities), self.schedule.publishers
            raise ValueError(f"{n} identities for {p} publisher slots")
        first = self.schedule.turn(self.started_at)
        # A turn already under way when the watch began is not judged: its start was missed.
        on_boundary = self._start(first) == self.started_at
        self._turn = first if on_boundary else first + 1

    @property
    def turns(self) -> int:
        """Turns judged so far."""
        return len(self.follow_ms) + self.missed

    def observe(self, speakers: Sequence[str], at: float) -> None:
        """The SFU's speaker list (identities, loudest first) as it arrived at ``at``."""
        if self._finished:
            return
        self._advance(at)
        self._top = speakers[0] if speakers else None
        if (
            self._followed_at is None
            and at >= self._start(self._turn)
            and self._top == self._owner(self._turn)
        ):
            self._followed_at = at

    def finish(self, at: float) -> None:
        """Judge every turn that ended by ``at``; the one still running counts only if it
        was already followed. Idempotent."""
        if self._finished:
            return
        self._advance(at)
        if self._followed_at is not None:
            self._judge(self._turn, self._followed_at)
        self._finished = True

    def _owner(self, turn: int) -> str:
        return self.identities[turn % self.schedule.publishers]

    def _start(self, turn: int) -> float:
        return turn * self.schedule.turn_s

    def _advance(self, at: float) -> None:
        """Judge the turns that ended before ``at``. The speaker list is unchanged since the
        last one arrived, so a turn whose speaker it names without a recorded time was named
        before the turn began: followed at once."""
        now = self.schedule.turn(at)
        while self._turn < now:
            if self._followed_at is None and self._top == self._owner(self._turn):
                self._followed_at = self._start(self._turn)
            self._judge(self._turn, self._followed_at)
            self._turn += 1
            self._followed_at = None
        turn = self._turn
        if self._followed_at is None and at >= self._start(turn) and self._top == self._owner(turn):
            self._followed_at = self._start(turn)

    def _judge(self, turn: int, followed_at: float | None) -> None:
        if followed_at is None:
            self.missed += 1
        else:
            self.follow_ms.append(round(max(followed_at - self._start(turn), 0.0) * 1000, 1))


def record_follow(follow: SpeakerFollow | None, result: ParticipantResult, at: float) -> None:
    """Judge the last turns (``finish`` at ``at``) and put the verdicts in ``result``, the
    follow times sampled as the report keeps them. Nothing without simulated speakers."""
    if follow is None:
        return
    follow.finish(at)
    follows = follow.follow_ms
    result.speaker_follow_ms = follows[:: max(len(follows) // MAX_SAMPLES, 1)]
    result.speaker_turns = follow.turns
    result.speaker_turns_missed = follow.missed
