"""QA load injection: rooms of synthetic publishers (simulcast, pre-encoded or screen share)
and subscribers that measure join time, first frame, latency, loss, jitter, freezes and
simulcast layer switches, run across spawned processes, with a JSON report and thresholds.
A pure client: LiveKit and tokens only."""

from talkplatform_agents.synthetic.load.report import LayerSwitch, ParticipantResult, summarize
from talkplatform_agents.synthetic.load.runner import Progress, RunOutcome, preflight, run_load
from talkplatform_agents.synthetic.load.spec import (
    Codec,
    Layout,
    LoadSpec,
    MediaOptions,
    parse_duration,
    parse_ramp,
)
from talkplatform_agents.synthetic.load.thresholds import Condition, evaluate, parse_fail_if

__all__ = [
    "Codec",
    "Condition",
    "LayerSwitch",
    "Layout",
    "LoadSpec",
    "MediaOptions",
    "ParticipantResult",
    "Progress",
    "RunOutcome",
    "evaluate",
    "parse_duration",
    "parse_fail_if",
    "parse_ramp",
    "preflight",
    "run_load",
    "summarize",
]
