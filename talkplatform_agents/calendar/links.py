"""Where a scheduled meeting is found, in one place for the API (``service/scheduling.py``)
and the CalDAV sync (``calendar/sync.py``), which must agree: the join link
``<public URL>/app/meeting/<id>``, the invitations' UID domain (the public URL's host name),
and the organiser's email (a user id that is an address, or ``noreply@`` that domain)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = [
    "EMAIL",
    "FALLBACK_DOMAIN",
    "join_url",
    "organizer_email",
    "organizer_or_noreply",
    "uid_domain",
]

# An address an invitation can carry (the API's attendees use the same pattern).
EMAIL = re.compile(r"[^@\s<>()\[\]\\,;:\"]{1,64}@[A-Za-z0-9.-]{1,253}")
FALLBACK_DOMAIN = "talkplatform.invalid"
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def join_url(public_url: str, meeting_id: str) -> str:
    """The meeting's join link on the service at ``public_url``."""
    return f"{public_url.rstrip('/')}/app/meeting/{meeting_id}"


def uid_domain(public_url: str) -> str:
    """The invitations' UID domain: the host name of ``public_url``, or
    ``talkplatform.invalid`` when it has none that a UID can carry."""
    host = urlsplit(public_url.rstrip("/")).hostname or ""
    return host if _DOMAIN.fullmatch(host) else FALLBACK_DOMAIN


def organizer_email(user_id: str) -> str | None:
    """The organiser's calendar address: the user id, lower-cased, when it is an email."""
    text = user_id.strip()
    return text.lower() if EMAIL.fullmatch(text) else None


def organizer_or_noreply(email: str | None, domain: str) -> str:
    """The ORGANIZER an invitation names: the stored email, or ``noreply@domain``."""
    return email or f"noreply@{domain}"
