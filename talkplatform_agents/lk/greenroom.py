"""The green room's wire protocol: data topics, RPC methods and their payloads.

Everything the frontend needs to drive the green-room bot (agent_name ``greenroom-echo``):

Data topics (JSON, sent by the bot to the user only):
- ``tp.greenroom.level``: ``{"rms_dbfs", "peak_dbfs", "t"}`` at 10 Hz, for a level meter.
  ``-inf`` is sent as ``null``. Lossy: a late meter reading is worthless.
- ``tp.greenroom.state``: ``{"mode": "live"|"playback", "phase": "live"|"recording"|"playing",
  "seconds", "preview", "blur"}`` whenever it changes.
- ``tp.greenroom.report``: the device and network report (see ``get_report``) every 2 s.

RPC methods (on the bot; payload and response are JSON):
- ``greenroom.set_audio_mode`` ``{"mode": "live"|"playback", "seconds": 1..30 (default 6)}``
- ``greenroom.set_preview`` ``{"enabled": bool}``: the camera back as a ``preview`` video
  track. Off until asked for: without it the bot only checks the camera (a few thumbnails a
  second of its smallest simulcast layer) and encodes no video. Off also turns blur off.
- ``greenroom.set_blur`` ``{"enabled": bool}``: blur the preview's background; on turns the
  preview on.
- ``greenroom.get_report`` ``{}`` → the report: ``{"verdict": "good"|"fair"|"poor",
  "reasons", "microphone", "camera", "network": {"rtt_ms", "jitter_ms", "loss_pct",
  "bitrate_kbps"}, "network_summary", "audio_mode", "preview", "blur"}``. ``camera`` is
  ``{"status", "width", "height", "fps", "analysed_fps"}``: ``fps`` as the bot decodes the
  camera, ``analysed_fps`` the thumbnails the check read a second. ``network`` is the latest
  2 s window; ``network_summary`` has, for each of those four figures, ``{"min", "avg",
  "max", "samples"}`` over every 2 s sample since the bot joined (``null``s and 0 samples
  for a figure not yet measured). See ``bots.greenroom.analysis.build_report``.
The bot answers these once it has published its audio track (``echo``); a call before then
may get "unsupported method". The bot calls ``greenroom.ping`` on the user to time the round
trip; any answer, even "unsupported method", counts, so frontends need not implement it.

Malformed payloads get ``RpcError`` 2400 (invalid payload) with a readable message; 2403 is
a caller other than the room's user, 2429 too many calls at once or too fast (wait and call
again), 2503 a feature that is unavailable (no blur model).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from talkplatform_agents.lk.payloads import BadPayload, Payload, PayloadT, dumps, parse

__all__ = [
    "FORBIDDEN",
    "INVALID_PAYLOAD",
    "RPC_GET_REPORT",
    "RPC_PING",
    "RPC_SET_AUDIO_MODE",
    "RPC_SET_BLUR",
    "RPC_SET_PREVIEW",
    "TOO_MANY_REQUESTS",
    "TOPIC_LEVEL",
    "TOPIC_REPORT",
    "TOPIC_STATE",
    "UNAVAILABLE",
    "AudioModeRequest",
    "BadPayload",
    "BlurRequest",
    "EmptyRequest",
    "PayloadT",
    "PreviewRequest",
    "dumps",
    "parse",
]

TOPIC_LEVEL = "tp.greenroom.level"
TOPIC_STATE = "tp.greenroom.state"
TOPIC_REPORT = "tp.greenroom.report"
RPC_SET_AUDIO_MODE = "greenroom.set_audio_mode"
RPC_SET_BLUR = "greenroom.set_blur"
RPC_SET_PREVIEW = "greenroom.set_preview"
RPC_GET_REPORT = "greenroom.get_report"
RPC_PING = "greenroom.ping"

# Application error codes (LiveKit reserves 1400-1599 for its own).
INVALID_PAYLOAD = 2400
FORBIDDEN = 2403
TOO_MANY_REQUESTS = 2429
UNAVAILABLE = 2503


class AudioModeRequest(Payload):
    mode: Literal["live", "playback"]
    seconds: float = Field(default=6.0, ge=1.0, le=30.0)


class BlurRequest(Payload):
    enabled: bool


class PreviewRequest(Payload):
    enabled: bool


class EmptyRequest(Payload):
    pass
