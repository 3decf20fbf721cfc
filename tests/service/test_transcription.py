"""The transcription endpoints without a livekit-server: livekit-server's side is an
in-memory fake that takes dispatches and data messages (or refuses them). Who may start,
stop and list, and who may read the transcript and analytics; each error; what a failed
dispatch leaves; empty transcripts; the transcript's times; a meeting that transcribes
itself; and the reconciler asking for a transcriber while one runs. The transcriber itself
runs end to end in tests/integration."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import get_args

import httpx
import pytest
from fastapi import FastAPI
from livekit import api

from talkplatform_agents.config import Settings
from talkplatform_agents.lk.naming import TRANSCRIBER_AGENT_NAME
from talkplatform_agents.lk.transcription import TOPIC_NOTICE
from talkplatform_agents.roles import Role
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.transcription_routes import FormatName
from talkplatform_agents.service.transcripts import FORMATS
from talkplatform_agents.store import (
    AttendanceView,
    Database,
    MeetingRepository,
    RunStatus,
    SegmentView,
    TranscriptionRepository,
    Word,
)

from .conftest import check_settings_section, create_meeting, participant_joined

Auth = Callable[..., dict[str, str]]
TIMEOUT_S = 20.0  # a bound for what the service does in the background, not a wait


@dataclass
class FakeServer:
    """livekit-server as the service's transcription code sees it."""

    dispatches: list[tuple[str, str, str]] = field(default_factory=list)
    data: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)
    refuse: bool = False
    dispatched: asyncio.Event = field(default_factory=asyncio.Event)

    async def dispatch(self, room: str, agent_name: str, metadata: str = "") -> str:
        if self.refuse:
            raise api.TwirpError("internal", "no workers", status=500)
        self.dispatches.append((room, agent_name, metadata))
        self.dispatched.set()
        return f"AD_{len(self.dispatches)}"

    async def send_data(
        self, room: str, topic: str, payload: str, destinations: list[str] | None = None
    ) -> None:
        self.data.append((room, topic, json.loads(payload)))

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        return [api.ParticipantInfo(identity="bob", kind=api.ParticipantInfo.Kind.STANDARD)]

    async def agents_in_flight(self, room: str) -> set[str]:
        return set()


@pytest.fixture
def fake(service: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    server = FakeServer()
    context: ServiceContext = service[0].state.context
    for name in ("dispatch", "send_data", "participants", "agents_in_flight"):
        monkeypatch.setattr(context.server, name, getattr(server, name))
    return server


def _base(mid: str) -> str:
    return f"/api/v1/meetings/{mid}/transcriptions"


def _transcript(mid: str, fmt: str | None = None) -> str:
    query = f"?format={fmt}" if fmt else ""
    return f"/api/v1/meetings/{mid}/transcript{query}"


async def test_a_start_dispatches_the_transcriber_and_a_second_is_409(
    client: httpx.AsyncClient, auth: Auth, fake: FakeServer
) -> None:
    mid = await create_meeting(client, auth)
    reply = await client.post(_base(mid), json={}, headers=auth())
    assert reply.status_code == 202, reply.text
    started = reply.json()
    assert started["status"] == "starting" and started["requestedBy"] == "alice"
    metadata = json.dumps({"transcriptionId": started["id"]}, separators=(",", ":"))
    assert [(r, a, json.loads(m)) for r, a, m in fake.dispatches] == [
        (f"meeting-{mid}", TRANSCRIBER_AGENT_NAME, json.loads(metadata))
    ]
    again = await client.post(_base(mid), headers=auth())
    assert again.status_code == 409
    assert again.json()["error"]["transcriptionId"] == started["id"]
    listed = (await client.get(_base(mid), headers=auth())).json()["transcriptions"]
    assert [t["id"] for t in listed] == [started["id"]]
    stopped = await client.post(f"{_base(mid)}/{started['id']}/stop", headers=auth())
    assert stopped.status_code == 202 and stopped.json()["status"] == "aborted"
    assert len(fake.dispatches) == 1


async def test_a_refused_dispatch_fails_the_transcription_and_says_so(
    client: httpx.AsyncClient, auth: Auth, fake: FakeServer
) -> None:
    mid = await create_meeting(client, auth)
    fake.refuse = True
    reply = await client.post(_base(mid), headers=auth())
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error["code"] == "bad_gateway" and "could not be dispatched" in error["message"]
    tid = error["transcriptionId"]
    [made] = (await client.get(_base(mid), headers=auth())).json()["transcriptions"]
    assert (made["id"], made["status"]) == (tid, "failed")
    assert "could not be dispatched" in made["error"]
    [(room, topic, notice)] = fake.data
    assert (room, topic) == (f"meeting-{mid}", TOPIC_NOTICE)
    assert notice["transcriptionId"] == tid and notice["status"] == "failed"
    fake.refuse = False
    assert (await client.post(_base(mid), headers=auth())).status_code == 202  # no block


async def test_an_unreachable_livekit_server_is_503_and_no_block(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await create_meeting(client, auth)  # nothing listens for livekit-server
    reply = await client.post(_base(mid), headers=auth())
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "unavailable"
    assert (await client.post(_base(mid), headers=auth())).status_code == 503  # not 409


async def test_only_hosts_and_cohosts_start_stop_and_list(
    client: httpx.AsyncClient, auth: Auth, store: Database, fake: FakeServer
) -> None:
    mid = await create_meeting(client, auth, transcription={"participants_may_read": True})
    tid = (await TranscriptionRepository(store).start(mid, "alice")).id
    for method, path in [
        ("POST", _base(mid)),
        ("GET", _base(mid)),
        ("POST", f"{_base(mid)}/{tid}/stop"),
    ]:
        reply = await client.request(method, path, headers=auth("mallory"))
        assert reply.status_code == 403, (method, path)
        assert reply.json()["error"]["code"] == "forbidden"
    await MeetingRepository(store).set_role(mid, "carol", Role.COHOST)
    assert (await client.get(_base(mid), headers=auth("carol"))).status_code == 200
    stopped = await client.post(f"{_base(mid)}/{tid}/stop", headers=auth("carol"))
    assert stopped.status_code == 202 and stopped.json()["status"] == "aborted"
    assert fake.dispatches == []


async def test_unknown_meetings_and_transcriptions_are_404_and_ended_ones_410(
    client: httpx.AsyncClient, auth: Auth, store: Database, fake: FakeServer
) -> None:
    for method, path in [
        ("POST", _base("nope")),
        ("GET", _base("nope")),
        ("GET", _transcript("nope")),
        ("GET", "/api/v1/meetings/nope/analytics"),
        ("GET", "/api/v1/meetings/nope/analytics/timeline.png"),
    ]:
        reply = await client.request(method, path, headers=auth())
        assert reply.status_code == 404, path
        assert reply.json()["error"]["code"] == "not_found"
    mid = await create_meeting(client, auth)
    other = await create_meeting(client, auth)
    elsewhere = (await TranscriptionRepository(store).start(other, "alice")).id
    for tid in ("nope", elsewhere):  # another meeting's is unknown here
        assert (await client.post(f"{_base(mid)}/{tid}/stop", headers=auth())).status_code == 404
    bodies: list[object] = [{"language": "en"}, [], "start", 1]
    for body in bodies:
        assert (await client.post(_base(mid), json=body, headers=auth())).status_code == 422
    await MeetingRepository(store).end(mid)
    ended = await client.post(_base(mid), headers=auth())
    assert ended.status_code == 410 and ended.json()["error"]["code"] == "gone"
    assert (await client.get(_base(mid), headers=auth())).status_code == 200
    assert fake.dispatches == []


async def test_a_meeting_without_a_transcript_reads_empty(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await create_meeting(client, auth)
    as_json = await client.get(_transcript(mid), headers=auth())
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["segments"] == []
    vtt = await client.get(_transcript(mid, "vtt"), headers=auth())
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    assert vtt.headers["content-type"].startswith("text/vtt")
    for fmt in ("srt", "text"):
        reply = await client.get(_transcript(mid, fmt), headers=auth())
        assert reply.status_code == 200 and reply.text.strip() == "", fmt
    figures = await client.get(f"/api/v1/meetings/{mid}/analytics", headers=auth())
    assert figures.status_code == 200, figures.text
    assert figures.json()["participants"] == []
    assert figures.json()["meeting"]["durationMs"] == 0
    png = await client.get(f"/api/v1/meetings/{mid}/analytics/timeline.png", headers=auth())
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_an_unknown_format_is_422_saying_which_are_known(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    mid = await create_meeting(client, auth)
    reply = await client.get(_transcript(mid, "docx"), headers=auth())
    assert reply.status_code == 422
    [issue] = reply.json()["error"]["details"]
    assert issue["loc"] == ["query", "format"]
    assert all(name in issue["msg"] for name in ("json", "vtt", "srt", "text"))
    assert set(get_args(FormatName)) == set(FORMATS)  # the route knows every format


async def _spoken(store: Database, mid: str) -> tuple[str, int]:
    """A transcription of bob then carol speaking, bob interrupted; its id and start (ms)."""
    transcriptions = TranscriptionRepository(store)
    tid = (await transcriptions.start(mid, "alice")).id
    active = await transcriptions.mark_active(tid)
    assert active is not None and active.started_at is not None
    t0 = round(active.started_at.timestamp() * 1000)
    for sid, who, start, end, text in [
        ("SG_1", "bob", 1000, 4000, "shall we begin"),
        ("SG_2", "carol", 3000, 5000, "yes please"),
    ]:
        words = text.split()
        step = (end - start) // len(words)
        await transcriptions.add_segment(
            SegmentView(
                id=sid,
                meeting_id=mid,
                transcription_id=tid,
                speaker_identity=who,
                speaker_name=who.title(),
                track_sid=f"TR_{who}",
                start_ms=t0 + start,
                end_ms=t0 + end,
                text=text,
                words=tuple(
                    Word(w, t0 + start + i * step, t0 + start + (i + 1) * step)
                    for i, w in enumerate(words)
                ),
                confidence=0.9,
            )
        )
    await transcriptions.finish(tid, RunStatus.COMPLETE)
    return tid, t0


async def test_the_transcript_counts_from_the_first_transcriptions_start(
    client: httpx.AsyncClient, auth: Auth, store: Database
) -> None:
    mid = await create_meeting(client, auth)
    await _spoken(store, mid)
    document = (await client.get(_transcript(mid), headers=auth())).json()
    assert [(s["speakerIdentity"], s["startMs"], s["endMs"]) for s in document["segments"]] == [
        ("bob", 1000, 4000),
        ("carol", 3000, 5000),
    ]
    vtt = (await client.get(_transcript(mid, "vtt"), headers=auth())).text
    assert "00:00:01.000 --> 00:00:04.000" in vtt and "<v Bob>shall we begin" in vtt
    srt = (await client.get(_transcript(mid, "srt"), headers=auth())).text
    assert "00:00:03,000 --> 00:00:05,000" in srt and "Carol: yes please" in srt
    figures = (await client.get(f"/api/v1/meetings/{mid}/analytics", headers=auth())).json()
    talk = {p["identity"]: p["talkTimeMs"] for p in figures["participants"]}
    assert talk == {"bob": 3000, "carol": 2000}
    assert figures["meeting"]["interruptions"] == 1


async def test_participants_read_only_when_the_meeting_allows_and_they_took_part(
    client: httpx.AsyncClient, auth: Auth, store: Database, service: tuple[FastAPI, object]
) -> None:
    mid = await create_meeting(client, auth)
    await _spoken(store, mid)
    paths = [
        _transcript(mid),
        f"/api/v1/meetings/{mid}/analytics",
        f"/api/v1/meetings/{mid}/analytics/timeline.png",
    ]
    for path in paths:  # not allowed by the meeting: not even a speaker
        reply = await client.get(path, headers=auth("bob"))
        assert reply.status_code == 403, path
        assert "participants_may_read" in reply.json()["error"]["message"]
    patch = await client.patch(
        f"/api/v1/public-meetings/{mid}",
        json={"settings": {"transcription": {"participants_may_read": True}}},
        headers=auth(),
    )
    assert patch.status_code == 200, patch.text
    context: ServiceContext = service[0].state.context
    await context.attendance.joined(
        AttendanceView("PA_dave", mid, "meeting", "dave", "Dave", dt.datetime.now(dt.UTC), None)
    )
    await context.attendance.joined(  # waiting at the door is not taking part
        AttendanceView("PA_erin", mid, "lobby", "erin", "Erin", dt.datetime.now(dt.UTC), None)
    )
    for who in ("bob", "dave"):  # a speaker, and a listener who attended
        for path in paths:
            assert (await client.get(path, headers=auth(who))).status_code == 200, (who, path)
    for who in ("erin", "mallory"):
        reply = await client.get(_transcript(mid), headers=auth(who))
        assert reply.status_code == 403, who
        assert "participants may read" in reply.json()["error"]["message"]


async def test_transcription_settings_are_checked_when_written(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    await check_settings_section(
        client,
        auth,
        "transcription",
        refused=[{"auto": "yes"}, {"participantsMayRead": True}, {"auto": 1}, "on"],
        refused_change=(
            {"participants_may_read": "yes"},
            "settings.transcription.participants_may_read",
        ),
        fine={"auto": False, "participants_may_read": True},
    )


async def test_a_meeting_that_transcribes_itself_starts_on_the_first_join(
    client: httpx.AsyncClient, auth: Auth, settings: Settings, fake: FakeServer
) -> None:
    auto = await create_meeting(client, auth, transcription={"auto": True})
    manual = await create_meeting(client, auth)
    agent = int(api.ParticipantInfo.Kind.AGENT)
    for room, who, kind in [(f"meeting-{auto}-lobby", "guest", 0),
                            (f"meeting-{auto}", "bot", agent),
                            (f"meeting-{manual}", "bob", 0)]:  # fmt: skip
        body, headers = participant_joined(settings, room, who, kind)
        reply = await client.post("/api/v1/livekit/webhook", content=body, headers=headers)
        assert reply.status_code == 200, reply.text
    for mid in (auto, manual):
        assert (await client.get(_base(mid), headers=auth())).json()["transcriptions"] == []
    for who in ("bob", "carol"):  # the second join finds the first's transcription
        body, headers = participant_joined(settings, f"meeting-{auto}", who)
        reply = await client.post("/api/v1/livekit/webhook", content=body, headers=headers)
        assert reply.status_code == 200
    [made] = (await client.get(_base(auto), headers=auth())).json()["transcriptions"]
    assert made["requestedBy"] == "settings.transcription.auto" and made["status"] == "starting"
    transcriber = [d for d in fake.dispatches if d[1] == TRANSCRIBER_AGENT_NAME]
    assert [json.loads(m)["transcriptionId"] for _, _, m in transcriber] == [made["id"]]


async def test_a_room_being_transcribed_wants_a_transcriber(
    service: tuple[FastAPI, httpx.AsyncClient], auth: Auth, store: Database, fake: FakeServer
) -> None:
    app, client = service
    context: ServiceContext = app.state.context
    mid = await create_meeting(client, auth)
    room = f"meeting-{mid}"
    await TranscriptionRepository(store).start(mid, "alice")
    task = context.reconciler.check(room, first_look_s=0)
    assert task is not None
    while not any(agent == TRANSCRIBER_AGENT_NAME for _, agent, _ in fake.dispatches):
        fake.dispatched.clear()
        await asyncio.wait_for(fake.dispatched.wait(), TIMEOUT_S)
    # A redispatch carries no job: the transcriber finds the running one in the store.
    assert (room, TRANSCRIBER_AGENT_NAME, "") in fake.dispatches
