"""A small CalDAV client (RFC 4791) with collection synchronisation (RFC 6578).

Nothing is discovered: the caller gives the calendar collection's URL. What it does:
``state`` (PROPFIND Depth 0: ``getctag``, ``sync-token``), ``changes`` (REPORT
sync-collection from the last token; a token the server no longer accepts falls back to a
full listing, flagged ``full``; a server without sync-collection is listed by PROPFIND
Depth 1 ``getetag``, also ``full``), ``fetch`` (``calendar-multiget``), ``put`` (create with
``If-None-Match: *``, update with ``If-Match``) and ``delete`` (with ``If-Match``).

Every failure is a ``CalDavError`` with the URL and the HTTP status (``None``: the server
was not reached). Replies are read streamed and refused past ``MAX_XML_BYTES`` (without
reading the rest), parsed with ``defusedxml`` with DTDs forbidden (whatever the encoding),
and a calendar object over ``MAX_OBJECT_BYTES`` in a multiget is left out with a log line.

Hrefs are kept as the server gave them (percent-encoded, path only) and used as such; one
that does not name a member of the collection (another host, ``..``, a deeper or an outer
path) is left out with a log line, and ``href_url`` refuses it.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]
import httpx
from defusedxml import DefusedXmlException

from talkplatform_agents.errors import TalkPlatformError

__all__ = [
    "MAX_OBJECT_BYTES",
    "MAX_XML_BYTES",
    "CalDavClient",
    "CalDavError",
    "CalendarObject",
    "Changes",
    "CollectionState",
    "parse_changes",
    "parse_multiget",
    "parse_state",
]

logger = logging.getLogger(__name__)

MAX_XML_BYTES = 16 << 20
MAX_OBJECT_BYTES = 1 << 20
_DAV = "DAV:"
_CALDAV = "urn:ietf:params:xml:ns:caldav"
_CS = "http://calendarserver.org/ns/"
_D, _C, _S = f"{{{_DAV}}}", f"{{{_CALDAV}}}", f"{{{_CS}}}"


class CalDavError(TalkPlatformError):
    """A CalDAV request failed: ``url``, ``status`` (None when nothing answered)."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        where = f"{url}: HTTP {status}" if status is not None else url
        super().__init__(f"{message} ({where})")
        self.message = message
        self.url = url
        self.status = status
        self.context: dict[str, Any] = {"url": url, "status": status}


@dataclass(frozen=True)
class CollectionState:
    ctag: str | None
    sync_token: str | None


@dataclass(frozen=True)
class Changes:
    """What changed since a token: ``changed`` maps href to etag (None when the server
    did not say), ``removed`` lists hrefs; ``full`` means a full listing (no token, or the
    old one was refused): hrefs absent from it are gone too."""

    sync_token: str | None
    changed: dict[str, str | None]
    removed: list[str]
    full: bool


@dataclass(frozen=True)
class CalendarObject:
    href: str
    etag: str | None
    data: bytes


def _xml(body: bytes, url: str) -> ET.Element:
    if len(body) > MAX_XML_BYTES:
        raise CalDavError(f"reply is larger than {MAX_XML_BYTES} bytes", url=url)
    try:
        root: ET.Element = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CalDavError(f"reply declares a DOCTYPE or entities: {exc}", url=url) from None
    except (ET.ParseError, ValueError) as exc:
        raise CalDavError(f"reply is not XML: {exc}", url=url) from None
    return root


def _segments(path: str) -> list[str]:
    return [unquote(s) for s in path.split("/")]


def member_href(href: str, collection_url: str) -> str | None:
    """``href`` (from a reply) as a path kept percent-encoded as given, when it names a
    member of the collection at ``collection_url`` (same host, one segment below its
    path, not ``.`` or ``..``); None otherwise."""
    parts = urlsplit(href)
    base = urlsplit(collection_url)
    here = (base.scheme.lower(), base.netloc.lower())
    if (parts.scheme or parts.netloc) and (parts.scheme.lower(), parts.netloc.lower()) != here:
        return None
    if parts.query or parts.fragment or not parts.path.startswith("/"):
        return None
    inside = _segments(base.path.rstrip("/"))
    segments = _segments(parts.path)
    n = len(inside)
    if len(segments) != n + 1 or segments[:n] != inside:
        return None
    if segments[n] in ("", ".", "..") or any(s in (".", "..") for s in segments):
        return None
    return parts.path


def _is_collection(href: str, collection_url: str) -> bool:
    path = urlsplit(href).path
    return _segments(path.rstrip("/")) == _segments(urlsplit(collection_url).path.rstrip("/"))


def _text(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _status_code(text: str | None) -> int | None:
    # "HTTP/1.1 404 Not Found"
    parts = (text or "").split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def _responses(root: ET.Element, url: str) -> list[tuple[str, int | None, dict[str, ET.Element]]]:
    """Each ``response`` of a multistatus: its href (as the server wrote it), its own
    status (if it has one), and the properties found with status 200."""
    if root.tag != f"{_D}multistatus":
        raise CalDavError(f"reply is not a multistatus but {root.tag}", url=url)
    found = []
    for response in root.findall(f"{_D}response"):
        href = _text(response.find(f"{_D}href"))
        if href is None:
            continue
        props: dict[str, ET.Element] = {}
        for propstat in response.findall(f"{_D}propstat"):
            code = _status_code(_text(propstat.find(f"{_D}status")))
            prop = propstat.find(f"{_D}prop")
            if code == 200 and prop is not None:
                for child in prop:
                    props[child.tag] = child
        own = _status_code(_text(response.find(f"{_D}status")))
        found.append((href, own, props))
    return found


def parse_state(body: bytes, url: str) -> CollectionState:
    """A PROPFIND Depth 0 reply: the collection's ctag and sync token."""
    for _, _, props in _responses(_xml(body, url), url):
        return CollectionState(
            ctag=_text(props.get(f"{_S}getctag")),
            sync_token=_text(props.get(f"{_D}sync-token")),
        )
    raise CalDavError("PROPFIND reply has no response", url=url)


def parse_changes(body: bytes, url: str, *, full: bool) -> Changes:
    """A sync-collection REPORT reply. The collection itself (listed by some servers) is
    left out, and so are members that are not calendar objects (no etag, no 404) and hrefs
    that are not members of the collection (logged). ``url`` is the collection's URL."""
    root = _xml(body, url)
    changed: dict[str, str | None] = {}
    removed: list[str] = []
    for given, own, props in _responses(root, url):
        if _is_collection(given, url) or urlsplit(given).path.endswith("/"):
            continue
        href = _member(given, url)
        if href is None:
            continue
        if own == 404:
            removed.append(href)
        elif own is None or 200 <= own < 300:
            changed[href] = _text(props.get(f"{_D}getetag"))
    return Changes(_text(root.find(f"{_D}sync-token")), changed, removed, full)


def _member(given: str, url: str) -> str | None:
    """``member_href``, with a log line for an href it refuses (the reply goes on)."""
    href = member_href(given, url)
    if href is None:
        logger.warning("calendar %s: skipped href %r: not a member of the collection",
                       url, given[:200])  # fmt: skip
    return href


def parse_multiget(body: bytes, url: str) -> list[CalendarObject]:
    """A calendar-multiget reply: the objects that were found (others are left out, and so
    are hrefs outside the collection at ``url`` and objects over ``MAX_OBJECT_BYTES``,
    with a log line)."""
    found = []
    for given, _, props in _responses(_xml(body, url), url):
        data = props.get(f"{_C}calendar-data")
        if data is None or data.text is None:
            continue
        href = _member(given, url)
        if href is None:
            continue
        encoded = data.text.encode("utf-8")
        if len(encoded) > MAX_OBJECT_BYTES:
            logger.warning("calendar %s: skipped %s: larger than %d bytes",
                           url, href[:200], MAX_OBJECT_BYTES)  # fmt: skip
            continue
        etag = _text(props.get(f"{_D}getetag"))
        found.append(CalendarObject(href, etag, encoded))
    return found


_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<d:propfind xmlns:d="{_DAV}" xmlns:cs="{_CS}">'
    "<d:prop><cs:getctag/><d:sync-token/></d:prop></d:propfind>"
)


_LIST_ETAGS = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<d:propfind xmlns:d="{_DAV}"><d:prop><d:getetag/></d:prop></d:propfind>'
)


def _sync_body(token: str | None) -> str:
    escaped = (token or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:sync-collection xmlns:d="{_DAV}">'
        f"<d:sync-token>{escaped}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def _multiget_body(hrefs: list[str]) -> str:
    listed = "".join(
        f"<d:href>{h.replace('&', '&amp;').replace('<', '&lt;')}</d:href>" for h in hrefs
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:calendar-multiget xmlns:d="{_DAV}" xmlns:c="{_CALDAV}">'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{listed}</c:calendar-multiget>"
    )


@dataclass(frozen=True)
class _Reply:
    status_code: int
    headers: httpx.Headers
    content: bytes


class CalDavClient:
    """One calendar collection on a CalDAV server, through ``client`` (which carries the
    credentials and timeouts). Hrefs are server paths, as the server lists them."""

    def __init__(self, client: httpx.AsyncClient, collection_url: str) -> None:
        self._client = client
        self.url = collection_url if collection_url.endswith("/") else collection_url + "/"
        self.path = urlsplit(self.url).path

    def href_url(self, href: str) -> str:
        """The URL of the member ``href`` (a path as the server gave it); a ``CalDavError``
        when it is not a member of the collection."""
        member = member_href(href, self.url)
        if member is None:
            raise CalDavError(f"href {href[:200]!r} is not in the collection", url=self.url)
        return urljoin(self.url, member)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 207),
    ) -> _Reply:
        content = body.encode("utf-8") if isinstance(body, str) else body
        request = self._client.build_request(method, url, content=content, headers=headers)
        try:
            reply = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise CalDavError(f"{method} failed: {exc or type(exc).__name__}", url=url) from exc
        try:
            if reply.status_code not in ok:
                raise CalDavError(f"{method} refused", url=url, status=reply.status_code)
            declared = reply.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_XML_BYTES:
                raise CalDavError(
                    f"reply is larger than {MAX_XML_BYTES} bytes", url=url,
                    status=reply.status_code,
                )  # fmt: skip
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > MAX_XML_BYTES:
                    raise CalDavError(
                        f"reply is larger than {MAX_XML_BYTES} bytes", url=url,
                        status=reply.status_code,
                    )  # fmt: skip
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise CalDavError(f"{method} failed: {exc or type(exc).__name__}", url=url) from exc
        finally:
            await reply.aclose()
        return _Reply(reply.status_code, reply.headers, b"".join(chunks))

    async def state(self) -> CollectionState:
        reply = await self._send("PROPFIND", self.url, body=_PROPFIND, headers=_xml_headers("0"))
        return parse_state(reply.content, self.url)

    async def changes(self, sync_token: str | None) -> Changes:
        """The members changed since ``sync_token`` (everything without one). A token the
        server refuses (RFC 6578 §3.2: 403 or 409 valid-sync-token; some say 400 or 412)
        gives a full listing instead; a server that refuses sync-collection itself (405,
        501; 403 without a token) is listed by PROPFIND Depth 1 (etags, no token)."""
        try:
            reply = await self._send(
                "REPORT", self.url, body=_sync_body(sync_token), headers=_xml_headers("1")
            )
        except CalDavError as exc:
            if sync_token and exc.status in (400, 403, 409, 412):
                return await self.changes(None)
            if exc.status in (405, 501) or (not sync_token and exc.status == 403):
                return await self.listing()
            raise
        return parse_changes(reply.content, self.url,
                             full=not sync_token)  # fmt: skip

    async def listing(self) -> Changes:
        """Every member with its etag (PROPFIND Depth 1): a full listing, no token."""
        reply = await self._send("PROPFIND", self.url, body=_LIST_ETAGS, headers=_xml_headers("1"))
        found = parse_changes(reply.content, self.url, full=True)
        return Changes(None, found.changed, [], True)

    async def fetch(self, hrefs: list[str]) -> list[CalendarObject]:
        """The objects at ``hrefs`` (one calendar-multiget per 100)."""
        found: list[CalendarObject] = []
        for i in range(0, len(hrefs), 100):
            reply = await self._send(
                "REPORT", self.url, body=_multiget_body(hrefs[i : i + 100]),
                headers=_xml_headers("1"),
            )  # fmt: skip
            found += parse_multiget(reply.content, self.url)
        return found

    async def put(self, href: str, data: bytes, *, etag: str | None = None) -> str | None:
        """Create (``etag`` None: ``If-None-Match: *``) or replace (``If-Match``) the
        object; its new etag when the server says it. 412: it exists already, or changed
        meanwhile."""
        condition = {"If-Match": etag} if etag else {"If-None-Match": "*"}
        headers = {"Content-Type": "text/calendar; charset=utf-8", **condition}
        url = self.href_url(href)
        reply = await self._send("PUT", url, body=data, headers=headers, ok=(200, 201, 204))
        new_etag: str | None = reply.headers.get("ETag")
        return new_etag

    async def delete(self, href: str, *, etag: str | None) -> None:
        """Delete the object; one already gone counts as deleted."""
        headers = {"If-Match": etag} if etag else {}
        await self._send("DELETE", self.href_url(href), headers=headers, ok=(200, 204, 404))

    async def make_calendar(self) -> None:
        """MKCALENDAR the collection itself (the test harness creates users' calendars)."""
        await self._send("MKCALENDAR", self.url, ok=(201,))


def _xml_headers(depth: str) -> dict[str, str]:
    return {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
