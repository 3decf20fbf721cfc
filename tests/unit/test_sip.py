"""Phones (UC-08): numbers, the settings, and how a failed call out reads to its host."""

from __future__ import annotations

import datetime as dt

import pytest
from livekit import api
from pydantic import ValidationError

from talkplatform_agents.config import RateLimit, Settings
from talkplatform_agents.errors import (
    BadGateway,
    Conflict,
    TooManyRequests,
    Unavailable,
    Unprocessable,
)
from talkplatform_agents.lk.sip import SipOptions, check_e164, dial_error, masked_number
from talkplatform_agents.moderation.dial_in import refuses_caller
from talkplatform_agents.service.limits import LimitOptions, ServiceLimits
from talkplatform_agents.store import MeetingView


@pytest.mark.parametrize("number", ["+15550100200", "+4930123456", "+861012345678901"])
def test_e164_numbers_pass(number: str) -> None:
    assert check_e164(number) == number


@pytest.mark.parametrize(
    "number", ["15550100200", "+0123456789", "+1555", "+1 555 0100", "+1555010020012345", ""]
)
def test_other_numbers_are_a_422_that_says_why(number: str) -> None:
    with pytest.raises(Unprocessable, match=r"E\.164"):
        check_e164(number)


def test_others_see_only_the_last_four_digits() -> None:
    assert masked_number("+15550100999") == "Phone ···0999"


def test_the_settings_check_the_numbers_and_make_the_options() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SIP_DIAL_IN_NUMBERS="+15550100000, +4930123456",
        SIP_INBOUND_ADDRESSES="10.0.0.0/24",
        SIP_OUTBOUND_ADDRESS="carrier.example:5060",
        SIP_OUTBOUND_NUMBER="+15550100000",
        SIP_OUTBOUND_PASSWORD="secret",
    )
    options = SipOptions.from_settings(settings)
    assert options.dial_in_numbers == ("+15550100000", "+4930123456")
    assert options.dial_in and options.dial_out
    assert options.outbound_password == "secret" and "secret" not in repr(options)
    assert not SipOptions.from_settings(Settings(_env_file=None)).dial_in  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"E\.164"):
        Settings(_env_file=None, SIP_DIAL_IN_NUMBERS="555-0100")  # type: ignore[call-arg]


def _twirp(code: str, message: str, status: int, **meta: str) -> api.TwirpError:
    return api.TwirpError(code, message, status=status, metadata=meta)


@pytest.mark.parametrize(
    ("sip_status", "reason"), [(486, "busy"), (603, "declined"), (480, "unavailable")]
)
def test_a_callee_that_does_not_answer_is_a_409_that_says_why(sip_status: int, reason: str) -> None:
    error = dial_error(
        _twirp("resource_exhausted", "INVITE failed", 429, sip_status_code=str(sip_status))
    )
    assert isinstance(error, Conflict)
    assert error.context["reason"] == reason and error.context["sipStatus"] == sip_status


def test_ringing_out_and_a_missing_sip_service_read_clearly() -> None:
    no_answer = dial_error(_twirp("canceled", "sip request timed out", 499))
    assert isinstance(no_answer, Conflict) and no_answer.context["reason"] == "no-answer"
    down = dial_error(_twirp("unavailable", "no response from servers", 503))
    assert isinstance(down, Unavailable) and "SIP service" in str(down)
    other = dial_error(_twirp("invalid_argument", "bad trunk", 400))
    assert isinstance(other, BadGateway)


@pytest.mark.parametrize(
    ("settings", "ended", "refused"),
    [({}, False, None), ({"locked": True}, False, "locked"),
     ({"waiting_room": True}, False, "waiting-room"), ({}, True, "ended")],
)  # fmt: skip
def test_the_door_for_callers(settings: dict[str, bool], ended: bool, refused: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    meeting = MeetingView(
        id="m", title="t", settings=settings, created_by="h", created_at=now,
        ended_at=now if ended else None,
    )  # fmt: skip
    assert refuses_caller(meeting) == refused
    assert refuses_caller(None) == "ended"


def test_bad_phone_settings_are_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="not a network"):
        Settings(_env_file=None, SIP_INBOUND_ADDRESSES="carrier.example")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"not \+digits"):
        Settings(_env_file=None, SIP_OUTBOUND_ALLOWED_PREFIXES="1,+44")  # type: ignore[call-arg]
    settings = Settings(_env_file=None, SIP_OUTBOUND_ALLOWED_PREFIXES="+1, +44")  # type: ignore[call-arg]
    assert SipOptions.from_settings(settings).outbound_prefixes == ("+1", "+44")


def test_calls_out_are_limited_per_host() -> None:
    clock = [0.0]
    limits = ServiceLimits(LimitOptions(dial_outs_per_user=RateLimit(2, 3600)), lambda: clock[0])
    limits.dial_out("h")
    limits.dial_out("h")
    with pytest.raises(TooManyRequests):
        limits.dial_out("h")
    limits.dial_out("other")  # a host's own bucket
    clock[0] += 1800  # half the period: one more
    limits.dial_out("h")
