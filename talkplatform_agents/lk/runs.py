"""What the protocols of a bot's run over a meeting room (``lk/recording.py``,
``lk/transcription.py``) have in common: how a payload carries the run's id, and how long a
notice's reason may be."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

__all__ = ["MAX_ERROR", "RunId", "clip_error"]

MAX_ERROR = 1000  # characters of a failure's reason, in a notice as in the store
# The store's run ids (hex uuids), with room to spare for another id scheme.
RunId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def clip_error(error: str | None) -> str | None:
    """``error`` cut to ``MAX_ERROR`` characters (marked ``...``) so that a notice carries
    a long reason rather than failing on it."""
    if error is None or len(error) <= MAX_ERROR:
        return error
    return error[: MAX_ERROR - 3] + "..."
