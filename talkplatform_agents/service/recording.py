"""Starting and stopping recordings on the service's side, the same for a host's REST call
and for a meeting that records itself (``settings.recording.auto``): a bot run
(``service/runs.py``) of the recorder, which the meeting room hears of on
``tp.recording.notice``."""

from __future__ import annotations

from livekit import api

from talkplatform_agents.lk import recording as proto
from talkplatform_agents.lk.naming import RECORDER_AGENT_NAME
from talkplatform_agents.service.runs import RunControl, RunDispatch
from talkplatform_agents.service.schemas import RecordingSettings
from talkplatform_agents.store import MeetingRepository, RecordingRepository, RecordingView

__all__ = ["AUTO_REQUESTER", "RECORDING", "auto_record"]

RECORDING = RunControl(
    noun="recording",
    bot="recorder",
    id_key="recordingId",
    agent_name=RECORDER_AGENT_NAME,
    job_metadata=proto.job_metadata,
    notice_topic=proto.TOPIC_NOTICE,
    notice_payload=proto.notice_payload,
    settings_key="recording",
    settings_model=RecordingSettings,
)
# Who asked, for a recording the meeting's settings started.
AUTO_REQUESTER = RECORDING.auto_requester


async def auto_record(
    meetings: MeetingRepository,
    recordings: RecordingRepository,
    server: RunDispatch,
    event: api.WebhookEvent,
) -> RecordingView | None:
    """The webhook's part: ``RunControl.auto_start`` of a recording."""
    return await RECORDING.auto_start(meetings, recordings, server, event)
