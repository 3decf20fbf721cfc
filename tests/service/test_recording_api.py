"""The recording endpoints without a livekit-server: who may act, each error, the manifest
and file downloads (written here as the recorder would), and what a failed dispatch leaves
(a failed recording that says why, and no block on the next start). The recorder itself
runs end to end in tests/integration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from livekit import api

from talkplatform_agents.config import Settings
from talkplatform_agents.roles import Role
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    RecordingRepository,
    RunStatus,
)

from .conftest import check_settings_section, create_meeting, participant_joined

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"recordings_dir": str(tmp_path / "recordings")})


def _base(mid: str) -> str:
    return f"/api/v1/meetings/{mid}/recordings"


async def test_a_failed_dispatch_leaves_a_failed_recording_and_no_block(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await create_meeting(client, auth)
    reply = await client.post(_base(mid), headers=auth())  # nothing listens for livekit
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "unavailable" and "dispatched" in error["message"]
    rid = error["recordingId"]
    listed = (await client.get(_base(mid), headers=auth())).json()["recordings"]
    assert [(r["id"], r["status"], r["requestedBy"]) for r in listed] == [(rid, "failed", "alice")]
    assert "could not be dispatched" in listed[0]["error"]
    again = await client.post(_base(mid), json={}, headers=auth())
    assert again.status_code == 503  # not 409: the failed one does not run


async def test_a_second_start_while_one_runs_is_409(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    mid = await create_meeting(client, auth)
    running = await RecordingRepository(store).start(mid, "alice")
    reply = await client.post(_base(mid), headers=auth())
    assert reply.status_code == 409
    assert reply.json()["error"]["recordingId"] == running.id


async def test_stop_aborts_one_not_begun_and_stops_an_active_one(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    mid = await create_meeting(client, auth)
    recordings = RecordingRepository(store)
    first = await recordings.start(mid, "alice")
    aborted = await client.post(f"{_base(mid)}/{first.id}/stop", headers=auth())
    assert aborted.status_code == 202 and aborted.json()["status"] == "aborted"
    second = await recordings.start(mid, "alice")
    await recordings.mark_active(second.id)
    stopping = await client.post(f"{_base(mid)}/{second.id}/stop", headers=auth())
    assert stopping.status_code == 202
    assert stopping.json() | {"id": second.id, "status": "stopping"} == stopping.json()
    checked = await recordings.check_in(second.id)
    assert checked is not None and checked.status is RunStatus.STOPPING


async def test_only_hosts_and_cohosts_act(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    mid = await create_meeting(client, auth)
    rid = (await RecordingRepository(store).start(mid, "alice")).id
    calls = [
        ("POST", _base(mid)),
        ("GET", _base(mid)),
        ("GET", f"{_base(mid)}/{rid}"),
        ("POST", f"{_base(mid)}/{rid}/stop"),
        ("GET", f"{_base(mid)}/{rid}/files/a.ogg"),
    ]
    for method, path in calls:
        reply = await client.request(method, path, headers=auth("mallory"))
        assert reply.status_code == 403, (method, path)
        assert reply.json()["error"]["code"] == "forbidden"
    await MeetingRepository(store).set_role(mid, "carol", Role.COHOST)
    assert (await client.get(_base(mid), headers=auth("carol"))).status_code == 200


async def test_unknown_meetings_and_recordings_are_404(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    assert (await client.post(_base("nope"), headers=auth())).status_code == 404
    assert (await client.get(_base("nope"), headers=auth())).status_code == 404
    mid = await create_meeting(client, auth)
    other = await create_meeting(client, auth)
    rid = (await RecordingRepository(store).start(other, "alice")).id
    for path in (f"{_base(mid)}/nope", f"{_base(mid)}/{rid}"):  # another meeting's: unknown
        reply = await client.get(path, headers=auth())
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "not_found"
    assert (await client.post(f"{_base(mid)}/{rid}/stop", headers=auth())).status_code == 404


async def test_malformed_start_bodies_are_422(client: httpx.AsyncClient, auth: Auth) -> None:
    mid = await create_meeting(client, auth)
    for body in ({"layer": "high"}, [], "start", 1):
        reply = await client.post(_base(mid), json=body, headers=auth())
        assert reply.status_code == 422, body
    assert (await client.get(_base(mid), headers=auth())).json()["recordings"] == []


async def test_an_ended_meeting_is_410_to_start_but_still_listed(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    mid = await create_meeting(client, auth)
    await MeetingRepository(store).end(mid)
    reply = await client.post(_base(mid), headers=auth())
    assert reply.status_code == 410
    assert (await client.get(_base(mid), headers=auth())).status_code == 200


def _write_manifest(root: Path, rid: str, files: list[str]) -> Path:
    directory = root / rid
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "egress_id": rid,
        "room_name": "meeting-x",
        "status": "EGRESS_COMPLETE",
        "file_results": [{"filename": name, "size": 4} for name in files],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


async def test_a_recording_reads_with_its_manifest_and_its_listed_files_download(
    client: httpx.AsyncClient, auth: Auth, store: Database, settings: Settings
) -> None:
    mid = await create_meeting(client, auth)
    rid = (await RecordingRepository(store).start(mid, "alice")).id
    root = Path(settings.recordings_dir)
    before = await client.get(f"{_base(mid)}/{rid}", headers=auth())
    assert before.status_code == 200 and before.json()["manifest"] is None
    directory = _write_manifest(root, rid, ["TR_a.ogg", "tracks/TR_v.webm", "../outside.txt"])
    (directory / "TR_a.ogg").write_bytes(b"OggS")
    (directory / "tracks").mkdir()
    (directory / "tracks" / "TR_v.webm").write_bytes(b"\x1aE\xdf\xa3")
    (directory / "unlisted.txt").write_text("secret")
    (root / "outside.txt").write_text("secret")  # listed, but outside this recording
    (root.parent / "outside.txt").write_text("secret")  # and outside the directory

    one = (await client.get(f"{_base(mid)}/{rid}", headers=auth())).json()
    assert one["id"] == rid and one["manifest"]["egress_id"] == rid
    audio = await client.get(f"{_base(mid)}/{rid}/files/TR_a.ogg", headers=auth())
    assert audio.status_code == 200 and audio.content == b"OggS"
    assert audio.headers["content-type"] == "audio/ogg"
    assert "attachment" in audio.headers["content-disposition"]
    for name in ("tracks/TR_v.webm", "TR_v.webm"):  # as listed, or by its last part
        video = await client.get(f"{_base(mid)}/{rid}/files/{name}", headers=auth())
        assert video.status_code == 200 and video.content == b"\x1aE\xdf\xa3", name


@pytest.mark.parametrize(
    "name",
    [
        "unlisted.txt",
        "manifest.json",
        "..%2Foutside.txt",
        "..%2F..%2Foutside.txt",
        "%2Fetc%2Fpasswd",
        "outside.txt",
        "%2e%2e/%2e%2e/outside.txt",
    ],
)
async def test_names_the_manifest_does_not_list_are_404(
    client: httpx.AsyncClient, auth: Auth, store: Database, settings: Settings, name: str
) -> None:
    mid = await create_meeting(client, auth)
    rid = (await RecordingRepository(store).start(mid, "alice")).id
    root = Path(settings.recordings_dir)
    directory = _write_manifest(root, rid, ["TR_a.ogg", "../outside.txt"])
    (directory / "unlisted.txt").write_text("secret")
    (root / "outside.txt").write_text("secret")
    reply = await client.get(f"{_base(mid)}/{rid}/files/{name}", headers=auth())
    assert reply.status_code == 404, name
    assert "secret" not in reply.text


async def test_recording_settings_are_checked_when_written(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    await check_settings_section(
        client,
        auth,
        "recording",
        refused=[{"auto": "yes"}, {"autoStart": True}, "on"],
        refused_change=({"auto": 1}, "settings.recording.auto"),
        fine={"auto": False},
    )


async def test_a_meeting_that_records_itself_starts_on_the_first_join(
    client: httpx.AsyncClient, auth: Auth, settings: Settings
) -> None:
    auto = await create_meeting(client, auth, recording={"auto": True})
    manual = await create_meeting(client, auth)
    lobby = f"meeting-{auto}-lobby"
    agent = int(api.ParticipantInfo.Kind.AGENT)
    for room, who, kind in [(lobby, "guest", 0), (f"meeting-{auto}", "bot", agent),
                            (f"meeting-{manual}", "bob", 0)]:  # fmt: skip
        body, headers = participant_joined(settings, room, who, kind)
        assert (
            await client.post("/api/v1/livekit/webhook", content=body, headers=headers)
        ).is_success
        mid = auto if room != f"meeting-{manual}" else manual
        assert (await client.get(_base(mid), headers=auth())).json()["recordings"] == [], room
    for who in ("bob", "carol"):  # the second join finds the first's recording
        body, headers = participant_joined(settings, f"meeting-{auto}", who)
        reply = await client.post("/api/v1/livekit/webhook", content=body, headers=headers)
        assert reply.status_code == 200  # a failed dispatch never fails the webhook
    [made] = (await client.get(_base(auto), headers=auth())).json()["recordings"]
    # No livekit-server here: the dispatch failed, and the recording says so.
    assert made["requestedBy"] == "settings.recording.auto" and made["status"] == "failed"
