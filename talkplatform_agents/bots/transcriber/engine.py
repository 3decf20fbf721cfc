"""Which recogniser the transcriber runs: any livekit-agents ``stt.STT``, named in the
configuration as ``module:factory`` (``TRANSCRIBER_STT``), with no code change.

``factory`` is called with no arguments in each transcriber process and returns an
``stt.STT`` (a plugin's class itself works when its constructor needs no arguments: it
reads its API key from the environment, as livekit-agents' plugins do). A streaming
recogniser is used as it is; one that only recognises whole utterances is made to stream
with livekit-agents' ``stt.StreamAdapter`` and Silero's voice-activity detector
(``livekit-plugins-silero``, its model in its wheel).

Examples::

    TRANSCRIBER_STT=talkplatform_agents.bots.transcriber.sphinx:general    # the default
    TRANSCRIBER_STT=talkplatform_agents.bots.transcriber.sphinx:commands   # a command grammar
    TRANSCRIBER_STT=livekit.plugins.deepgram:STT     # pip install livekit-plugins-deepgram,
                                                     # DEEPGRAM_API_KEY in the environment
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

from livekit.agents import stt

from talkplatform_agents.errors import TalkPlatformError

__all__ = ["DEFAULT_STT", "EngineError", "load_stt", "streaming"]

logger = logging.getLogger(__name__)

DEFAULT_STT = "talkplatform_agents.bots.transcriber.sphinx:general"
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class EngineError(TalkPlatformError, ValueError):
    """``TRANSCRIBER_STT`` names nothing usable; the message says what and why."""


def check_spec(spec: str) -> str:
    """``spec`` if it has the ``module:factory`` shape (checked at configuration time)."""
    if not _SPEC.fullmatch(spec):
        raise EngineError(
            f"TRANSCRIBER_STT={spec!r}: expected module:factory, such as {DEFAULT_STT}"
        )
    return spec


def load_stt(spec: str = DEFAULT_STT) -> stt.STT[Any]:
    """The recogniser ``spec`` names, made."""
    module_name, _, name = check_spec(spec).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"TRANSCRIBER_STT={spec!r}: cannot import {module_name}: {exc}") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise EngineError(f"TRANSCRIBER_STT={spec!r}: {module_name} has no callable {name}")
    try:
        engine = factory()
    except Exception as exc:
        raise EngineError(f"TRANSCRIBER_STT={spec!r}: {name}() failed: {exc!r}") from exc
    if not isinstance(engine, stt.STT):
        raise EngineError(
            f"TRANSCRIBER_STT={spec!r}: {name}() gave {type(engine).__name__}, not a "
            "livekit.agents.stt.STT"
        )
    return engine


def streaming(engine: stt.STT[Any]) -> stt.STT[Any]:
    """``engine`` itself if it streams, else it behind a StreamAdapter with Silero VAD."""
    if engine.capabilities.streaming:
        return engine
    try:
        from livekit.plugins import silero

        vad = silero.VAD.load()
    except Exception as exc:  # not installed, or its model does not load
        raise EngineError(
            f"{engine.label} needs a VAD to stream, and Silero's cannot be loaded: {exc!r}"
        ) from exc
    logger.info("%s recognises whole utterances: streaming it with Silero VAD", engine.label)
    return stt.StreamAdapter(stt=engine, vad=vad)
