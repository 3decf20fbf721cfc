"""Synthetic participants: generated media with embedded markers, and a plain ``rtc.Room``
client that publishes it and measures what it receives. A pure client: it imports neither
the service, the store nor the bots."""

from talkplatform_agents.synthetic.audio import (
    MarkerDecoder,
    MarkerDetection,
    ToneConfig,
    ToneGenerator,
    level_dbfs,
)
from talkplatform_agents.synthetic.participant import (
    DataMessage,
    ParticipantConfig,
    SyntheticError,
    SyntheticParticipant,
)
from talkplatform_agents.synthetic.probes import AudioProbe, MarkerLog, VideoProbe, percentile
from talkplatform_agents.synthetic.video import FrameMarker, PatternGenerator, decode_marker

__all__ = [
    "AudioProbe",
    "DataMessage",
    "FrameMarker",
    "MarkerDecoder",
    "MarkerDetection",
    "MarkerLog",
    "ParticipantConfig",
    "PatternGenerator",
    "SyntheticError",
    "SyntheticParticipant",
    "ToneConfig",
    "ToneGenerator",
    "VideoProbe",
    "decode_marker",
    "level_dbfs",
    "percentile",
]
