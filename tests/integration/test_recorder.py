"""The recorder against the real server: a host starts a recording, everyone sees that it
is on, two synthetic participants' tracks land in their own files and in the mix, a stop
ends it ``complete`` with an Egress-shaped manifest, and the files decode.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from livekit import rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import recording as proto
from talkplatform_agents.lk.naming import (
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    RECORDER_AGENT_NAME,
)
from talkplatform_agents.synthetic import SyntheticParticipant

from .conftest import Media, cli, holder_pid, join, post_json, settled_bot, until

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]
# Everyone publishes a small picture and a tone, to be recorded.
_MEDIA = Media(width=320, height=180, fps=10)


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _hosted(
    api: httpx.AsyncClient, auth: Auth, stack: AsyncExitStack, host: str, title: str
) -> tuple[str, SyntheticParticipant]:
    """A new meeting of ``host``'s, and ``host`` in its room."""
    created = await post_json(api, "/api/v1/meetings", auth(host, "Host"),
                              {"title": title, "settings": {}})  # fmt: skip
    meeting_id = str(created["id"])
    return meeting_id, await join(api, auth, stack, host, meeting_id, **_MEDIA)


async def _start(api: httpx.AsyncClient, auth: dict[str, str], base: str) -> str:
    """Start recording (REST, as a host); the recording's id."""
    started = await api.post(base, headers=auth)
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


def recording_on(participant: SyntheticParticipant) -> bool | None:
    return (
        any(
            p.attributes.get(proto.ATTR_RECORDING) == proto.ATTR_RECORDING_ON
            for p in participant.room.remote_participants.values()
        )
        or None
    )


def _recorder(participant: SyntheticParticipant, besides: str = "") -> str:
    return next(
        (p.identity for p in participant.room.remote_participants.values()
         if p.attributes.get(AGENT_NAME_ATTRIBUTE) == RECORDER_AGENT_NAME
         and p.identity != besides),
        "",
    )  # fmt: skip


def _decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams[0]
        last = 0.0
        for frame in container.decode(stream):
            if frame.time is not None:
                last = max(last, float(frame.time))
        return last


async def recording(api: httpx.AsyncClient, auth: dict[str, str], url: str) -> dict[str, Any]:
    """A recording as the REST API shows it, with its manifest."""
    reply = await api.get(url, headers=auth)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def eventually(probe: Callable[[], Any], timeout_s: float) -> Any:
    """Poll an async ``probe`` until it returns something truthy (HTTP state: nothing to
    await)."""
    async with asyncio.timeout(timeout_s):
        while not (value := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    return value


async def _files_decode(
    api: httpx.AsyncClient, auth: Auth, base: str, directory: Path, manifest: dict[str, Any]
) -> None:
    for f in manifest["file_results"]:
        assert f["ended_at"] >= f["started_at"] > 0 and f["size"] > 0, f
        assert f["offset_ns"] == max(f["started_at"] - manifest["started_at"], 0), f
        seconds = await asyncio.to_thread(_decoded_seconds, directory / f["filename"])
        assert seconds > 0.5, (f["filename"], seconds)
        download = await api.get(f"{base}/files/{f['filename']}", headers=auth)
        assert download.status_code == 200 and len(download.content) == f["size"]


async def test_a_host_records_a_meeting_and_gets_egress_shaped_files(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings, people: AsyncExitStack
) -> None:
    host, guest = _uid("host"), _uid("guest")
    meeting_id, host_p = await _hosted(api, user_auth, people, host, "recorded")
    guest_p = await join(api, user_auth, people, guest, meeting_id, **_MEDIA)
    base = f"/api/v1/meetings/{meeting_id}/recordings"

    assert (await api.post(base, headers=user_auth(guest))).status_code == 403
    rid = await _start(api, user_auth(host), base)
    assert (await api.post(base, headers=user_auth(host))).status_code == 409

    # Consent: everyone in the room sees the recorder's attribute.
    await until(lambda: recording_on(guest_p), 90)
    await until(lambda: recording_on(host_p), 30)

    async def status() -> dict[str, Any]:
        return await recording(api, user_auth(host), f"{base}/{rid}")

    async def media_written() -> bool:
        kinds = [f["kind"] for f in ((await status()).get("manifest") or {}).get(
            "file_results", [])]  # fmt: skip
        return kinds.count("audio") >= 2 and kinds.count("video") >= 2

    await eventually(media_written, 60)
    directory = Path(live_settings.recordings_dir) / rid

    def enough() -> bool | None:  # a few seconds of audio in each participant's file
        oggs = [p for p in directory.glob("*.ogg") if "mixed" not in p.name]
        return (len(oggs) >= 2 and all(p.stat().st_size > 4000 for p in oggs)) or None

    await until(enough, 60)
    recorder = _recorder(guest_p)
    with pytest.raises(rtc.RpcError) as refused_rpc:  # a guest may not even ask
        await guest_p.rpc(recorder, proto.RPC_RECORDING_STATUS, "{}")
    assert refused_rpc.value.code == 2403
    said = json.loads(await host_p.rpc(recorder, proto.RPC_RECORDING_STATUS, "{}"))
    assert said["id"] == rid and said["status"] == "active" and said["parts"] == 1
    stopped = await api.post(f"{base}/{rid}/stop", headers=user_auth(host))
    assert stopped.status_code == 202, stopped.text

    async def complete() -> dict[str, Any] | None:
        body = await status()
        return body if body["status"] == "complete" else None

    final = await eventually(complete, 60)
    await until(lambda: not recording_on(guest_p) or None, 30)

    manifest = final["manifest"]
    assert manifest["egress_id"] == rid and manifest["room_name"] == f"meeting-{meeting_id}"
    assert manifest["status"] == "EGRESS_COMPLETE" and manifest["ended_at"] > 0
    files = manifest["file_results"]
    assert {f["identity"] for f in files if f["kind"] != "mixed"} == {host, guest}
    assert sum(f["kind"] == "mixed" for f in files) == 1
    await _files_decode(api, user_auth(host), f"{base}/{rid}", directory, manifest)
    traversal = await api.get(f"{base}/{rid}/files/..%2F..%2Fetc%2Fpasswd",
                              headers=user_auth(host))  # fmt: skip
    assert traversal.status_code == 404


async def test_a_killed_recorder_leaves_playable_files_and_the_recording_carries_on(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings, people: AsyncExitStack
) -> None:
    host = _uid("host")
    meeting_id, guest_p = await _hosted(api, user_auth, people, host, "killed")
    base = f"/api/v1/meetings/{meeting_id}/recordings"
    rid = await _start(api, user_auth(host), base)
    directory = Path(live_settings.recordings_dir) / rid

    async def status() -> dict[str, Any]:
        return await recording(api, user_auth(host), f"{base}/{rid}")

    def some_audio() -> bool | None:  # a few seconds of it, in every file (the mix too)
        oggs = list(directory.glob("*-p1.ogg"))
        tracks = [p for p in oggs if "mixed" not in p.name]
        return (bool(tracks) and all(p.stat().st_size > 4000 for p in oggs)) or None

    await until(lambda: recording_on(guest_p), 90)
    await until(some_audio, 60)
    pid = await eventually(lambda: holder_pid(live_settings.database_url,
                                               f"meeting-{meeting_id}", RECORDER_AGENT_NAME),
                           30)  # fmt: skip
    killed = _recorder(guest_p)
    os.kill(pid, signal.SIGKILL)

    # The files it was writing still open and play (to within a page of the kill).
    for path in directory.glob("*-p1.*"):
        assert await asyncio.to_thread(_decoded_seconds, path) > 0.5, path

    # The service's sweep replaces the recorder, which carries on in part 2.
    async def second_part() -> dict[str, Any] | None:
        body = await status()
        return body if body["parts"] >= 2 and body["status"] == "active" else None

    await eventually(second_part, 90)
    await until(lambda: any(directory.glob("*-p2.ogg")) or None, 60)
    # A host stops it through the recorder itself this time.
    recorder = await until(lambda: _recorder(guest_p, besides=killed) or None, 30)
    answer = json.loads(await guest_p.rpc(recorder, proto.RPC_RECORDING_STOP, "{}"))
    assert answer == {"id": rid, "status": "stopping"}

    async def complete() -> dict[str, Any] | None:
        body = await status()
        return body if body["status"] == "complete" else None

    manifest = (await eventually(complete, 60))["manifest"]
    # Nobody is left showing "recording": not the new recorder, nor the killed one.
    await until(lambda: not recording_on(guest_p) or None, 30)
    assert [p["part"] for p in manifest["parts"]] == [1, 2]
    for f in manifest["file_results"]:  # both parts on the recording's one timeline
        assert f["offset_ns"] == max(f["started_at"] - manifest["started_at"], 0), f
    assert {f["part"] for f in manifest["file_results"]} == {1, 2}


async def test_a_write_error_fails_the_recording_with_its_reason_and_says_so(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings, people: AsyncExitStack
) -> None:
    """The recording's directory refuses every write (immutable: even root cannot write
    there): the recording ends ``failed`` with the reason, everyone hears it, and the other
    bots of the meeting carry on."""
    host = _uid("host")
    meeting_id, host_p = await _hosted(api, user_auth, people, host, "full")
    base = f"/api/v1/meetings/{meeting_id}/recordings"
    rid = await _start(api, user_auth(host), base)
    directory = Path(live_settings.recordings_dir) / rid
    directory.mkdir(parents=True)
    immutable = await asyncio.create_subprocess_exec("chattr", "+i", str(directory))
    assert await immutable.wait() == 0
    try:

        async def failed() -> dict[str, Any] | None:
            reply = await api.get(f"{base}/{rid}", headers=user_auth(host))
            body: dict[str, Any] = reply.json()
            return body if body["status"] == "failed" else None

        body = await eventually(failed, 90)
        assert "not permitted" in (body["error"] or ""), body
        async with asyncio.timeout(30):  # every data packet is queued from the join on
            while (notice := json.loads((await host_p.next_data(proto.TOPIC_NOTICE)).payload))[
                "status"
            ] != "failed":
                pass
        assert notice["recordingId"] == rid and notice["error"]
    finally:
        mutable = await asyncio.create_subprocess_exec("chattr", "-i", str(directory))
        await mutable.wait()
    # The chat bot in the same meeting still serves it.
    chat = await until(lambda: settled_bot(host_p.room.remote_participants.values(),
                                           CHAT_AGENT_NAME), 30)  # fmt: skip
    assert chat


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(settings, "meeting", "record", *args)


async def test_the_cli_starts_lists_and_stops_a_recording(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings, people: AsyncExitStack
) -> None:
    host, guest = _uid("host"), _uid("guest")
    meeting_id, host_p = await _hosted(api, user_auth, people, host, "cli")
    refused = await asyncio.to_thread(_cli, live_settings, "start", meeting_id, "--as", guest)
    assert refused.returncode == 1 and "403" in refused.stderr
    started = await asyncio.to_thread(_cli, live_settings, "start", meeting_id, "--as", host)
    assert started.returncode == 0, started.stderr
    rid = json.loads(started.stdout)["id"]
    await until(lambda: recording_on(host_p), 90)
    listed = await asyncio.to_thread(_cli, live_settings, "list", meeting_id, "--as", host)
    assert [r["id"] for r in json.loads(listed.stdout)["recordings"]] == [rid]
    stopped = await asyncio.to_thread(_cli, live_settings, "stop", meeting_id, rid, "--as", host)
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["status"] == "stopping"
    await until(lambda: not recording_on(host_p) or None, 60)
