"""Invitations by email (UC-04) through a real SMTP server in the test namespace: PyPI's
``aiosmtpd`` delivering into a maildir. A scheduled meeting's attendees get a
``multipart/mixed`` message whose ``text/calendar; method=REQUEST`` part is the invitation;
a cancellation is a CANCEL; a mail server that cannot be reached fails no API call."""

from __future__ import annotations

import email
import email.policy
import logging
import smtplib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from mailbox import Maildir
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.netns import NetNamespace
from talkplatform_agents.harness.process import ManagedProcess
from talkplatform_agents.service import create_app, mint_app_token
from talkplatform_agents.store import upgrade

from .conftest import until

pytestmark = pytest.mark.integration

SECRET = "mail-test-app-secret-0123456789abcdef"
SMTP_PORT = 2525
MEETING = {
    "title": "Planning",
    "start": "2026-10-19T09:00",
    "end": "2026-10-19T10:00",
    "timezone": "Europe/Berlin",
    "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=3",
    "attendees": ["bob@example.org", "carol"],
}


class MailServer:
    def __init__(self, host: str, maildir: Path) -> None:
        self.url = f"smtp://{host}:{SMTP_PORT}"
        self.host, self.maildir = host, maildir

    def messages(self) -> list[EmailMessage]:
        """Every message delivered so far, in no particular order."""
        if not (self.maildir / "new").is_dir():
            return []
        box = Maildir(self.maildir, create=False)
        found: list[EmailMessage] = []
        for key in box.keys():  # noqa: SIM118 - a Maildir is no dict
            parsed = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found


@pytest.fixture(scope="module")
def mail_server(
    netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MailServer]:
    run_dir = tmp_path_factory.mktemp("smtp")
    server = MailServer(netns.address, run_dir / "maildir")
    argv = [
        sys.executable, "-m", "aiosmtpd", "-n",
        "-l", f"{netns.address}:{SMTP_PORT}",
        "-c", "aiosmtpd.handlers.Mailbox", str(server.maildir),
    ]  # fmt: skip
    process = ManagedProcess("aiosmtpd", argv, run_dir / "aiosmtpd.log")
    process.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with smtplib.SMTP(netns.address, SMTP_PORT, timeout=2) as smtp:
                    smtp.noop()
                break
            except OSError:
                process.check_running()
                assert time.monotonic() < deadline, process.log_tail()
                time.sleep(0.1)
        yield server
    finally:
        process.stop()


@asynccontextmanager
async def _service(tmp_path: Path, smtp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}"
    upgrade(url)
    settings = Settings(
        _env_file=None,
        DATABASE_URL=url,
        APP_JWT_SECRET=SECRET,
        LIVEKIT_URL="ws://127.0.0.1:1",
        TOKEN_SERVICE_URL="https://meet.example.org",
        SMTP_URL=smtp_url,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://service.test") as client,
    ):
        yield client


def _auth(user: str = "alice@example.org") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_app_token(SECRET, user, 'Alice', 600)}"}


def _calendar_part(message: EmailMessage) -> tuple[Any, Any]:
    parts = list(message.iter_parts())
    [calendar] = [p for p in parts if p.get_content_type() == "text/calendar"]
    return calendar, Calendar.from_ical(calendar.get_content())


async def test_attendees_get_the_invitation_and_its_cancellation(
    mail_server: MailServer, tmp_path: Path
) -> None:
    async with _service(tmp_path, mail_server.url) as client:
        created = await client.post("/api/v1/meetings", json=MEETING, headers=_auth())
        assert created.status_code == 201, created.text
        mid = created.json()["id"]
        first: list[EmailMessage] = await until(
            lambda: mail_server.messages() or None, timeout_s=20
        )
        [invite] = first
        assert invite.get_content_type() == "multipart/mixed"
        assert invite["To"] == "bob@example.org"  # carol is a user id: no address
        assert invite["From"] == "alice@example.org"
        assert invite["Subject"] == "Invitation: Planning"
        text = next(p for p in invite.iter_parts() if p.get_content_type() == "text/plain")
        assert f"https://meet.example.org/app/meeting/{mid}" in text.get_content()
        part, calendar = _calendar_part(invite)
        assert part.get_param("method") == "REQUEST"
        assert str(calendar["METHOD"]) == "REQUEST"
        [event] = calendar.walk("VEVENT")
        assert str(event["ORGANIZER"]) == "mailto:alice@example.org"
        assert str(event["ATTENDEE"]) == "mailto:bob@example.org"
        assert int(event["SEQUENCE"]) == 0
        assert str(event["URL"]) == f"https://meet.example.org/app/meeting/{mid}"

        # One occurrence cancelled: a CANCEL of that occurrence, with a raised SEQUENCE.
        reply = await client.delete(
            f"/api/v1/meetings/{mid}/occurrences/2026-10-26T09:00", headers=_auth()
        )
        assert reply.status_code == 200, reply.text
        # The whole series: a CANCEL without a RECURRENCE-ID.
        reply = await client.delete(f"/api/v1/meetings/{mid}/schedule", headers=_auth())
        assert reply.status_code == 200, reply.text
        messages = await until(
            lambda: found if len(found := mail_server.messages()) >= 3 else None, timeout_s=20
        )
        assert len(messages) == 3
        cancels = [_calendar_part(m) for m in messages]
        cancels = [(p, c) for p, c in cancels if p.get_param("method") == "CANCEL"]
        assert [str(c["METHOD"]) for _, c in cancels] == ["CANCEL", "CANCEL"]
        events = [c.walk("VEVENT")[0] for _, c in cancels]
        [one] = [e for e in events if "RECURRENCE-ID" in e]
        [whole] = [e for e in events if "RECURRENCE-ID" not in e]
        assert str(one["RECURRENCE-ID"].to_ical().decode()).startswith("20261026T090000")
        assert int(one["SEQUENCE"]) == 1
        assert int(whole["SEQUENCE"]) == 2
        assert str(whole["STATUS"]) == "CANCELLED"


async def test_a_mail_server_that_cannot_be_reached_fails_no_call(
    netns: NetNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with _service(tmp_path, f"smtp://{netns.address}:1") as client:
        created = await client.post("/api/v1/meetings", json=MEETING, headers=_auth())
        assert created.status_code == 201, created.text
    assert any("invitation email" in r.getMessage() for r in caplog.records), caplog.text
