"""Recordings of meeting rooms: their state lives here, not in the recorder bot, so that a
recorder that dies and is replaced carries on the same recording in a new part (one set of
files per part).

The lifecycle (statuses, one running per meeting, conditional updates, who calls what) is
every bot run's: ``store/runs.py``. The recorder ``mark_active``s when it joins (which
hands it its part number), ``check_in``s every few seconds and ``finish``es.
"""

from __future__ import annotations

from dataclasses import dataclass

from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import Recording
from talkplatform_agents.store.runs import RunKind, RunRepository, RunStatus, RunView

__all__ = ["RecordingRepository", "RecordingView", "RunStatus"]

_KIND = RunKind(noun="recording", bot="the recorder", id_key="recordingId")


@dataclass(frozen=True)
class RecordingView(RunView):
    """A recording as read from the store."""


class RecordingRepository(RunRepository[Recording, RecordingView]):
    def __init__(self, db: Database) -> None:
        super().__init__(db, Recording, RecordingView, _KIND)
