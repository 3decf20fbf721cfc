"""One recorder's part of a recording: every track of the meeting room into its own file,
all the audio into one mix, and the manifest kept current on disk.

It follows the room: a track subscribed starts a file, a track unsubscribed (unpublished,
or its participant left) ends it, and a track published again starts a new file. The
manifest lists every file from the moment its first frame is written (``ended_at`` 0 while
it grows), so a recorder killed mid-meeting leaves a manifest that names what it wrote;
each write is atomic. A write that fails (disk full, permission denied) ends the part with
the reason: the caller fails the recording, and nothing else in the process is touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livekit import rtc

from talkplatform_agents.bots.recorder.audio_file import OpusFileWriter
from talkplatform_agents.bots.recorder.container import WriteFailed
from talkplatform_agents.bots.recorder.manifest import RecordingManifest, render_name
from talkplatform_agents.bots.recorder.mixer import AudioMixer
from talkplatform_agents.bots.recorder.storage import LocalStorage
from talkplatform_agents.bots.recorder.timeline import ns_to_samples
from talkplatform_agents.bots.recorder.tracks import (
    LAYERS,
    SAMPLE_RATE,
    TrackFile,
    VideoLimits,
    file_result,
    record_audio,
    record_video,
)
from talkplatform_agents.tasks import TaskSet

__all__ = ["MANIFEST_NAME", "RecordingSession", "SessionOptions"]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class SessionOptions:
    # Egress's templates: {room_name}, {track_id}, {publisher_identity}, {time}.
    track_template: str = "{room_name}-{publisher_identity}-{track_id}-{time}"
    mix_template: str = "{room_name}-mixed-{time}"
    video: VideoLimits = field(default_factory=VideoLimits)
    mix_every_s: float = 0.05


class RecordingSession:
    def __init__(
        self,
        room: rtc.Room,
        recording_id: str,
        storage: LocalStorage,
        options: SessionOptions,
        on_failure: Callable[[str], None],
    ) -> None:
        self._room = room
        self._id = recording_id
        self._storage = storage
        self._options = options
        self._on_failure = on_failure
        self._tasks = TaskSet(f"recorder:{room.name}", on_error=self._task_failed)
        self._tracks: dict[str, asyncio.Task[None]] = {}  # track sid -> its recording
        self._mixer = AudioMixer()
        self._mixed: OpusFileWriter | None = None
        self._mixed_entry: TrackFile | None = None
        self._stopped = False
        self.start_ns = time.time_ns()
        self.manifest = self._load_or_new()
        self.part = self.manifest.start_part(self.start_ns)

    @property
    def tag(self) -> str:
        return self._room.name

    def _load_or_new(self) -> RecordingManifest:
        path = self._storage.path_for(self._id, MANIFEST_NAME)
        if path.exists():
            manifest = RecordingManifest.load(path)  # an earlier part's: carry on
            return manifest
        return RecordingManifest(self._id, self._room.name, self.start_ns)

    def start(self) -> None:
        """Record every track subscribed from now on (and those already subscribed)."""
        self._room.on("track_subscribed", self._on_subscribed)
        self._room.on("track_unsubscribed", self._on_unsubscribed)
        for participant in self._room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_subscribed(publication.track, publication, participant)
        self._open_mix()
        self._tasks.spawn(self._mix_loop(), "mix")
        self._save()

    # -- tracks ---------------------------------------------------------------------------

    def _on_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if self._stopped or participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return  # bots are not the meeting
        if publication.sid in self._tracks:
            return
        audio = track.kind == rtc.TrackKind.KIND_AUDIO
        extension = ".ogg" if audio else ".webm"
        name = self._name(self._options.track_template, publication.sid, participant.identity,
                          extension)  # fmt: skip
        path = self._storage.path_for(self._id, name)
        result = file_result(name, path, "audio" if audio else "video", publication,
                             participant, time.time_ns(), self.manifest.started_at,
                             self.part)  # fmt: skip
        entry = TrackFile(result, path)
        work: Coroutine[Any, Any, None]
        if audio:
            work = record_audio(track, entry, self._mixer, self.start_ns, self._file_started)
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            if publication.simulcasted:
                publication.set_video_quality(LAYERS[self._options.video.layer])
            work = record_video(track, entry, self._options.video, self._file_started)
        else:
            return
        task = self._tasks.spawn(self._tracked(work, entry), f"{participant.identity} {name}")
        if task is not None:
            self._tracks[publication.sid] = task
            logger.info("[%s] recording %s's %s into %s", self.tag, participant.identity,
                        "audio" if audio else "video", name)  # fmt: skip

    def _on_unsubscribed(
        self,
        _track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        _participant: rtc.RemoteParticipant,
    ) -> None:
        task = self._tracks.pop(publication.sid, None)
        if task is not None:
            task.cancel()  # its file is closed and its entry completed as it ends

    async def _tracked(self, work: Coroutine[Any, Any, None], entry: TrackFile) -> None:
        try:
            await work
        finally:
            if self.manifest.file(entry.result.filename) is not None:
                self._save()

    def _file_started(self, entry: TrackFile) -> None:
        # Offsets count from the recording's start, not this part's: a later part's files
        # carry on the first part's timeline.
        entry.result.offset_ns = max(entry.result.started_at - self.manifest.started_at, 0)
        self.manifest.add_file(entry.result)
        self._save()

    # -- the mix ----------------------------------------------------------------------------

    def _open_mix(self) -> None:
        name = self._name(self._options.mix_template, "", "", ".ogg")
        path = self._storage.path_for(self._id, name)
        result = file_result(name, path, "mixed", None, None, self.start_ns,
                             self.manifest.started_at, self.part)  # fmt: skip
        self._mixed = OpusFileWriter(path, SAMPLE_RATE, 1)
        self._mixed_entry = TrackFile(result, path)
        self.manifest.add_file(result)

    async def _mix_loop(self) -> None:
        # Silence goes out on the clock where nobody speaks: the mix is the meeting's
        # whole timeline, from the part's start.
        while True:
            await asyncio.sleep(self._options.mix_every_s)
            self._write_mix(self._mixer.pull(self._now_samples()))

    def _write_mix(self, blocks: list[tuple[int, Any]]) -> None:
        assert self._mixed is not None
        for position, block in blocks:
            self._mixed.write(block, position)

    def _now_samples(self) -> int:
        return ns_to_samples(time.time_ns() - self.start_ns, SAMPLE_RATE)

    # -- the end ----------------------------------------------------------------------------

    async def stop(self, error: str = "") -> None:
        """End this part: every file closed and completed in the manifest, which is saved.
        ``error``: the recording failed (its reason); otherwise it is over only if the
        caller says so with ``finish``. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._room.off("track_subscribed", self._on_subscribed)
        self._room.off("track_unsubscribed", self._on_unsubscribed)
        await self._tasks.aclose()
        self._tracks.clear()
        now = time.time_ns()
        if self._mixed is not None and self._mixed_entry is not None:
            try:
                self._write_mix(self._mixer.drain())
            except WriteFailed as exc:
                error = error or exc.reason
            self._mixed.close()
            entry = self._mixed_entry
            entry.result.ended_at = now
            entry.result.duration = self._mixed.duration_ns
            entry.result.size = entry.path.stat().st_size if entry.path.exists() else 0
        self.manifest.end_part(now)
        if error:
            self.manifest.finish(now, error)
        self._save()

    def finish(self) -> None:
        """The recording is over (a host stopped it, or the meeting ended)."""
        self.manifest.finish(time.time_ns())
        self._save()

    def _save(self) -> None:
        try:
            self.manifest.write(self._storage.path_for(self._id, MANIFEST_NAME))
        except OSError as exc:
            self._fail(f"the manifest cannot be written: {exc.strerror or exc}")

    def _task_failed(self, what: str, exc: BaseException) -> None:
        reason = exc.reason if isinstance(exc, WriteFailed) else repr(exc)
        logger.error("[%s] recording %s failed: %s", self.tag, what, reason)
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        if not self._stopped:
            self._on_failure(reason)

    def _name(self, template: str, track_id: str, identity: str, extension: str) -> str:
        name = render_name(template, room_name=self._room.name, track_id=track_id,
                           publisher_identity=identity, time=datetime.now(UTC),
                           extension="")  # fmt: skip
        return f"{name}-p{self.part}{extension}"


def manifest_path(storage: LocalStorage, recording_id: str) -> Path:
    return storage.path_for(recording_id, MANIFEST_NAME)
