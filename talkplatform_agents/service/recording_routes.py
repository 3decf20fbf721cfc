"""Recordings over HTTP, for a meeting's hosts and co-hosts: start, stop, list, read one
with its manifest, and download its files.

Each recording has its directory, ``RECORDINGS_DIR/<recording id>/``, with its
``manifest.json`` and its files. A file is served only by a name its manifest lists
(``file_results[].filename``, relative to that directory or absolute inside it; or that
filename's last part), and only from inside that directory: a name the manifest does not
list, ``..`` or an absolute path included, is a 404 like any unknown file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from talkplatform_agents.config import Settings
from talkplatform_agents.errors import NotFound
from talkplatform_agents.service.openapi import LOGIN, MEETING, STORE, errors
from talkplatform_agents.service.recording import RECORDING
from talkplatform_agents.service.routes import NO_STORE, Context, User
from talkplatform_agents.service.run_routes import RunRoutes, add_run_routes, moderated
from talkplatform_agents.store import RecordingRepository, RecordingView

__all__ = ["recording_router"]

logger = logging.getLogger(__name__)

# The start and stop routes' descriptions, as their OpenAPI has said from the first.
_START_DOC = """\
Start recording the meeting room: the recorder is on its way (``starting``); 409
while a recording runs (its id as ``recordingId``); 410 once the meeting ended."""
_STOP_DOC = """\
Ask the recording to stop: ``stopping`` until its recorder has finalised its
files (then ``complete``); ``aborted`` if no recorder had begun. Stopping an ended
recording changes nothing."""
_RECORDINGS = RunRoutes(
    control=RECORDING,
    repository=RecordingRepository,
    plural="recordings",
    start_doc=_START_DOC,
    stop_doc=_STOP_DOC,
)
_ONE = _RECORDINGS.base + "/{recording_id}"
MANIFEST = "manifest.json"
# Largest manifest read: an hour-long meeting of many tracks is well under this.
_MAX_MANIFEST_BYTES = 8 * 1024 * 1024
_FILE_TYPES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file (Ogg/Opus audio, WebM/VP8 video, ...), as an attachment.",
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    }
}


def recording_router(settings: Settings) -> APIRouter:
    # Every route: a login, the store, the meeting and the recording (404), a host's or
    # co-host's right (403).
    router = APIRouter(responses=errors(LOGIN, STORE, MEETING, 403))
    root = Path(settings.recordings_dir)

    add_run_routes(router, _RECORDINGS)

    @router.get(_ONE)
    async def get_recording(
        meeting_id: str, recording_id: str, user: User, ctx: Context
    ) -> dict[str, Any]:
        """The recording, with its manifest (Egress's ``EgressInfo`` fields) once the
        recorder has written one (``null`` before)."""
        await moderated(ctx, meeting_id, user.user_id)
        recording = await _RECORDINGS.run_of(ctx, meeting_id, recording_id)
        manifest = await asyncio.to_thread(_manifest, root, recording)
        return {**recording.to_json(), "manifest": manifest}

    @router.get(_ONE + "/files/{name:path}", response_model=None, responses=_FILE_TYPES)
    async def download(
        meeting_id: str, recording_id: str, name: str, user: User, ctx: Context
    ) -> FileResponse:
        """A file of the recording, by a name its manifest lists."""
        await moderated(ctx, meeting_id, user.user_id)
        recording = await _RECORDINGS.run_of(ctx, meeting_id, recording_id)
        path = await asyncio.to_thread(_listed_file, root, recording, name)
        if path is None:
            raise NotFound("no such file in this recording", recordingId=recording_id, name=name)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, filename=path.name, headers=NO_STORE)

    return router


def _manifest(root: Path, recording: RecordingView) -> dict[str, Any] | None:
    """The recording's manifest, or None when there is none (yet) or it cannot be read."""
    path = root / recording.id / MANIFEST
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            logger.warning("recording %s: manifest over %d bytes: not read", recording.id,
                           _MAX_MANIFEST_BYTES)  # fmt: skip
            return None
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("recording %s: manifest unreadable: %s", recording.id, exc)
        return None
    return document if isinstance(document, dict) else None


def _listed_file(root: Path, recording: RecordingView, name: str) -> Path | None:
    """The file ``name`` names if the manifest lists it and it lies inside the recording's
    directory (``root/<id>/``; a relative filename is relative to it)."""
    manifest = _manifest(root, recording)
    results = manifest.get("file_results") if manifest else None
    if not isinstance(results, list):
        return None
    base = root / recording.id
    top = base.resolve()
    for result in results:
        filename = result.get("filename") if isinstance(result, dict) else None
        if not isinstance(filename, str) or not filename:
            continue
        if name not in (filename, Path(filename).name):
            continue
        path = Path(filename) if Path(filename).is_absolute() else base / filename
        resolved = path.resolve()
        # A manifest is trusted no further than its recording's directory.
        if resolved.is_relative_to(top) and resolved.is_file():
            return resolved
    return None
