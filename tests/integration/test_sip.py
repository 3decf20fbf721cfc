"""Phones in meetings (UC-08) through LiveKit's own SIP service, v1.8.0 (harness/sip.py),
beside a Redis-backed livekit-server, with sipp as the phones (harness/sipp.py).

The tests share one stack on a host address of their own and run in file order: the last
one stops the SIP service.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api, rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace, Stack
from talkplatform_agents.harness.sip import SipService, phone_stack
from talkplatform_agents.harness.sipp import CALLER_MEDIA_PORT, Phone, RtpTap, finished, tone_file
from talkplatform_agents.lk.naming import meeting_room_name
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.sip import DIALED_BY_ATTRIBUTE, PROMPT_RULE
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant

from .conftest import APP_SECRET, ROOT, post_json, until

pytestmark = pytest.mark.integration

HOST = "10.77.0.4"  # beside the session stack's 10.77.0.1 and the cluster's .2 and .3
DIAL_IN = "+15550100000"
CALLEE_PORT = 5070  # the outbound trunk's "carrier": a sipp callee
CALLER = "+15550100999"
PHONE_HZ = 1000.0  # the phones' tone; the room's is the synthetic participants' 440 Hz
ROOM_HZ = 440.0


@dataclass
class Phones:
    stack: Stack
    sip: SipService
    phone: Phone

    @property
    def settings(self) -> Settings:
        return self.stack.child_settings

    def server(self) -> ServerApi:
        s = self.settings
        return ServerApi(
            s.livekit_http_url,
            Credentials(s.livekit_api_key, s.livekit_api_secret.get_secret_value()),
        )


@pytest.fixture(scope="module")
def phones(netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phones]:
    netns.add_address(HOST)
    run_dir = tmp_path_factory.mktemp("sip")
    database_url = f"sqlite+aiosqlite:///{run_dir / 'talkplatform.db'}"
    upgrade(database_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        APP_JWT_SECRET=APP_SECRET,
        SIP_DIAL_IN_NUMBERS=DIAL_IN,
        SIP_INBOUND_ADDRESSES=f"{HOST}/32",
        SIP_OUTBOUND_ADDRESS=f"{HOST}:{CALLEE_PORT}",
        SIP_OUTBOUND_NUMBER=DIAL_IN,
        SIP_RINGING_TIMEOUT_SECONDS=10,
    )
    with phone_stack(settings, ROOT, run_dir, HOST) as (stack, sip):
        audio = tone_file(run_dir / "tone.ulaw", PHONE_HZ)
        yield Phones(stack, sip, Phone(HOST, run_dir / "sipp", audio, CALLER))


@pytest.fixture
async def service(phones: Phones) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=phones.settings.api_url, timeout=30) as client:
        yield client


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_app_token(APP_SECRET, user, user.title(), 600)}"}


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _meeting(service: httpx.AsyncClient, host: str, **settings: Any) -> str:
    body = {"title": "phones", "settings": {"waiting_room": False, **settings}}
    return str((await post_json(service, "/api/v1/meetings", auth(host), body))["id"])


async def _host_in(
    service: httpx.AsyncClient, people: AsyncExitStack, host: str, mid: str
) -> SyntheticParticipant:
    """The host, in the meeting, publishing the marked tone (440 Hz under its markers)."""
    grant = await post_json(service, "/api/v1/livekit/token", auth(host), {"meetingId": mid})
    config = ParticipantConfig(url=grant["wsUrl"], token=grant["token"], publish_audio=True,
                               publish_video=False)  # fmt: skip
    return await people.enter_async_context(SyntheticParticipant(config))


def _near(hz: float | None, want: float) -> bool:
    return hz is not None and abs(hz - want) < 30


def _caller_in(room: rtc.Room) -> rtc.RemoteParticipant | None:
    for participant in room.remote_participants.values():
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            return participant
    return None


async def test_a_caller_types_the_pin_joins_masked_and_the_host_mutes_and_removes_them(
    phones: Phones, service: httpx.AsyncClient, tmp_path: Path
) -> None:
    host = _uid("host")
    mid = await _meeting(service, host)
    dial = (await service.get(f"/api/v1/meetings/{mid}/dial-in", headers=auth(host))).json()
    assert dial["numbers"] == [DIAL_IN] and dial["open"] is True, dial
    pin = dial["pin"]
    assert len(pin) == 8 and pin.isdigit()
    # Anyone the door would let in reads it too; the PIN is the meeting's, the same twice.
    guest = await service.get(f"/api/v1/meetings/{mid}/dial-in", headers=auth(_uid("guest")))
    assert guest.status_code == 200 and guest.json()["pin"] == pin

    async with AsyncExitStack() as people:
        listener = RtpTap(HOST, CALLER_MEDIA_PORT)
        people.callback(listener.close)
        host_p = await _host_in(service, people, host, mid)
        room = host_p.room
        call = await phones.phone.call(
            f"{HOST}:5060", DIAL_IN, pin + "#", let_in=False, hold_ms=60_000
        )
        caller = await until(lambda: _caller_in(room), 45)
        # The number is masked: in the name (last four digits) and in the identity.
        assert caller.name.endswith("0999") and "5550100999" not in caller.name
        assert "5550100999" not in caller.identity
        assert "sip.phoneNumber" not in caller.attributes
        await until(lambda: caller.track_publications, 15)

        # Both ways: the room hears the phone's tone, the phone hears the room's.
        def heard_from_phone() -> bool:
            probes = [p for p in host_p.audio_probes.values() if p.sender == caller.identity]
            return any(_near(p.dominant_hz(), PHONE_HZ) for p in probes)

        await until(heard_from_phone, 20)
        await until(lambda: _near(listener.dominant_hz(), ROOM_HZ), 20)

        base = f"/api/v1/meetings/{mid}/participants/{caller.identity}"
        muted = await service.post(f"{base}/mute", headers=auth(host))
        assert muted.status_code == 200, muted.text
        await until(lambda: all(p.muted for p in caller.track_publications.values()), 15)
        removed = await service.post(f"{base}/remove", headers=auth(host))
        assert removed.status_code == 200, removed.text
        # The SIP service hangs up on the phone: the caller's scenario ends on that BYE.
        assert await finished(call, 30) == 0, phones.sip.log_tail()
        await until(lambda: _caller_in(room) is None, 15)


async def test_a_wrong_pin_a_locked_meeting_and_an_ended_one_refuse_the_caller(
    phones: Phones, service: httpx.AsyncClient
) -> None:
    """Three meetings, each in one of the states, then three phones calling at once (each
    call takes the prompts' 8 s or so)."""
    host = _uid("host")
    ids = [await _meeting(service, host) for _ in range(3)]
    pins = [(await service.get(f"/api/v1/meetings/{mid}/dial-in", headers=auth(host))).json()["pin"]
            for mid in ids]  # fmt: skip
    _, locked_mid, ended_mid = ids  # the first stays open: its caller types a wrong PIN
    # Locked: the line is closed (the rule is gone), and says why; unlocked, open again.
    locked = f"/api/v1/meetings/{locked_mid}"
    assert (await service.post(f"{locked}/lock", headers=auth(host))).status_code == 200
    closed = (await service.get(f"{locked}/dial-in", headers=auth(host))).json()
    assert closed["open"] is False and closed["closedBecause"] == "locked"
    # Ended: no rule is left behind.
    ended = f"/api/v1/meetings/{ended_mid}"
    assert (await service.post(f"{ended}/end", headers=auth(host))).status_code == 200
    assert (await service.get(f"{ended}/dial-in", headers=auth(host))).status_code == 410
    s = phones.settings
    lkapi = api.LiveKitAPI(s.livekit_http_url, s.livekit_api_key,
                           s.livekit_api_secret.get_secret_value())  # fmt: skip
    try:
        rules = await lkapi.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
    finally:
        await lkapi.aclose()
    assert {rule.metadata for rule in rules.items} & {locked_mid, ended_mid} == set()
    # Every caller is asked for a PIN, whether or not any meeting's line is open.
    assert any(rule.name == PROMPT_RULE for rule in rules.items)

    # Each phone hears "wrong PIN" and is hung up on: a wrong PIN for the open meeting,
    # the right ones for the locked and the ended meetings.
    wrong = ("1" if pins[0][0] != "1" else "2") + pins[0][1:]
    calls = []
    for index, digits in enumerate([wrong, pins[1], pins[2]]):
        phone = Phone(HOST, phones.phone.run_dir, phones.phone.audio, f"+1555010200{index}",
                      sip_port=5100 + 2 * index, media_port=16100 + 4 * index)  # fmt: skip
        calls.append(await phone.call(f"{HOST}:5060", DIAL_IN, digits + "#", let_in=False,
                                      hold_ms=30_000))  # fmt: skip
    for call in calls:
        assert await finished(call, 45) == 0, phones.sip.log_tail()
    server = phones.server()
    try:
        for mid in ids:
            present = await server.participants(meeting_room_name(mid))
            assert not [p for p in present if p.kind == api.ParticipantInfo.Kind.SIP]
    finally:
        await server.aclose()
    unlocked = await service.post(f"{locked}/unlock", headers=auth(host))
    assert unlocked.status_code == 200
    assert (await service.get(f"{locked}/dial-in", headers=auth(host))).json()["open"] is True


async def test_a_host_calls_a_phone_in_which_hangs_up_and_a_busy_one_says_so(
    phones: Phones, service: httpx.AsyncClient
) -> None:
    host = _uid("host")
    mid = await _meeting(service, host)
    path = f"/api/v1/meetings/{mid}/dial-out"
    async with AsyncExitStack() as people:
        room = (await _host_in(service, people, host, mid)).room

        callee = await phones.phone.answer(CALLEE_PORT, hold_ms=8_000)
        answered = await service.post(path, json={"number": "+15550100777"}, headers=auth(host))
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"] == "answered"
        phone = await until(lambda: _caller_in(room), 15)
        assert phone.identity == answered.json()["identity"]
        assert phone.attributes.get(DIALED_BY_ATTRIBUTE) == host
        assert phone.name.endswith("0777") and "5550100777" not in phone.name
        # The callee hangs up: the phone leaves the meeting.
        assert await finished(callee, 30) == 0, phones.sip.log_tail()
        await until(lambda: _caller_in(room) is None, 15)

        busy_phone = await phones.phone.answer(CALLEE_PORT, busy=True)
        busy = await service.post(path, json={"number": "+15550100777"}, headers=auth(host))
        assert busy.status_code == 409, busy.text
        error = busy.json()["error"]
        assert error["reason"] == "busy" and error["sipStatus"] == 486, error
        assert await finished(busy_phone, 30) == 0

    # Bad input: never a 500, never a call.
    bad = await service.post(path, json={"number": "5550100777"}, headers=auth(host))
    assert bad.status_code == 422 and "E.164" in bad.json()["error"]["message"]
    not_host = await service.post(path, json={"number": "+15550100777"}, headers=auth("x"))
    assert not_host.status_code == 403
    unknown = await service.post("/api/v1/meetings/nope/dial-out",
                                 json={"number": "+15550100777"}, headers=auth(host))  # fmt: skip
    assert unknown.status_code == 404


async def test_a_scheduled_meetings_invitation_says_how_to_dial_in(
    phones: Phones, service: httpx.AsyncClient
) -> None:
    host = _uid("host")
    body = {"title": "Weekly by phone", "start": "2027-03-01T09:00", "end": "2027-03-01T10:00",
            "timezone": "Europe/Berlin", "recurrence": "FREQ=WEEKLY;COUNT=3"}  # fmt: skip
    mid = str((await post_json(service, "/api/v1/meetings", auth(host), body))["id"])
    invite = await service.get(f"/api/v1/meetings/{mid}/invite.ics", headers=auth(host))
    assert invite.status_code == 200, invite.text
    dial = (await service.get(f"/api/v1/meetings/{mid}/dial-in", headers=auth(host))).json()
    assert dial["open"] is True
    text = invite.text.replace("\r\n ", "")  # unfolded
    assert f"then PIN {dial['pin']}#" in text
    assert (
        f"CONFERENCE;FEATURE=PHONE;LABEL=Dial in;VALUE=URI:tel:{DIAL_IN},,{dial['pin']}%23" in text
    )


async def test_with_the_sip_service_down_a_call_out_is_a_clear_503(
    phones: Phones, service: httpx.AsyncClient
) -> None:
    host = _uid("host")
    mid = await _meeting(service, host)
    phones.sip.stop()
    reply = await service.post(
        f"/api/v1/meetings/{mid}/dial-out", json={"number": "+15550100777"}, headers=auth(host)
    )
    assert reply.status_code == 503, reply.text
    assert "SIP service" in reply.json()["error"]["message"]
