"""Invitations by email (iMIP, RFC 6047): the iTIP message a calendar client reads, sent
to the attendees through an SMTP server (``SMTP_URL``).

One message per change: ``multipart/mixed`` with a ``text/plain`` part for people and a
``text/calendar; method=REQUEST`` (or ``CANCEL``) part for their calendar client. Sending
is blocking ``smtplib`` in a worker thread; a failure is the caller's to log, never a
reason to refuse the change that prompted it (the invitation can always be fetched again
as ``invite.ics``).
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Literal
from urllib.parse import urlsplit

from talkplatform_agents.errors import Invalid

__all__ = ["SmtpServer", "header_text", "invitation_email", "send_email"]

# C0/C1 control characters, DEL and Unicode line/paragraph separators: never in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Long enough for a slow relay, short enough that a dead one does not pile up threads.
SMTP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """``smtp://host[:port]``; anything else is ``Invalid``."""
        parts = urlsplit(url)
        try:
            port = parts.port or 25
        except ValueError:
            port = -1
        if parts.scheme != "smtp" or not parts.hostname or port < 1:
            raise Invalid(f"not an smtp://host[:port] URL: {url!r}", field="SMTP_URL")
        return cls(parts.hostname, port)


def invitation_email(
    *,
    sender: str,
    sender_name: str | None,
    recipients: Sequence[str],
    subject: str,
    text: str,
    calendar: bytes,
    method: Literal["REQUEST", "CANCEL"],
    domain: str,
) -> EmailMessage:
    """The invitation as a message: the text for people, then the iTIP calendar."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name or "", sender))
    message["To"] = ", ".join(recipients)
    message["Subject"] = header_text(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    message.add_attachment(
        calendar.decode("utf-8"),
        subtype="calendar",
        params={"method": method},
        filename="invite.ics",
    )
    return message


def header_text(text: str) -> str:
    """``text`` fit for one header line: each control character (CR and LF among them)
    a space."""
    return _CONTROL.sub(" ", text)


async def send_email(server: SmtpServer, message: EmailMessage, recipients: Sequence[str]) -> None:
    """Hand ``message`` to ``server`` for ``recipients``: ``OSError`` or
    ``smtplib.SMTPException`` when it cannot."""
    await asyncio.to_thread(_send, server, message, list(recipients))


def _send(server: SmtpServer, message: EmailMessage, recipients: list[str]) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_S) as smtp:
        smtp.send_message(message, to_addrs=recipients)
