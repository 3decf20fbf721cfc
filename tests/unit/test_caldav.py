"""The CalDAV client: replies parsed (multistatus, sync-collection, multiget), hostile XML
refused, and the requests it sends (conditions, the fall back to a full listing)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from talkplatform_agents.calendar.caldav import (
    MAX_OBJECT_BYTES,
    MAX_XML_BYTES,
    CalDavClient,
    CalDavError,
    member_href,
    parse_changes,
    parse_multiget,
    parse_state,
)
from talkplatform_agents.errors import TalkPlatformError

URL = "http://dav.test/alice/calendar/"

STATE = b"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">
 <d:response><d:href>/alice/calendar/</d:href>
  <d:propstat><d:prop><cs:getctag>"c1"</cs:getctag><d:sync-token>tok-1</d:sync-token>
  </d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
</d:multistatus>"""

CHANGES = b"""<?xml version="1.0"?>
<multistatus xmlns="DAV:">
 <response><href>/alice/calendar/</href>
  <propstat><prop><getetag/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
 <response><href>/alice/calendar/a%20b.ics</href>
  <propstat><prop><getetag>"e1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat>
 </response>
 <response><href>http://dav.test/alice/calendar/gone.ics</href>
  <status>HTTP/1.1 404 Not Found</status></response>
 <response><href>/alice/calendar/noetag.ics</href>
  <propstat><prop><getetag/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
 <sync-token>tok-2</sync-token>
</multistatus>"""

MULTIGET = b"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
 <d:response><d:href>/alice/calendar/a.ics</d:href>
  <d:propstat><d:prop><d:getetag>"e1"</d:getetag>
   <c:calendar-data>BEGIN:VCALENDAR&#13;
END:VCALENDAR&#13;
</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
 <d:response><d:href>/alice/calendar/missing.ics</d:href>
  <d:status>HTTP/1.1 404 Not Found</d:status></d:response>
</d:multistatus>"""


def test_state_reads_ctag_and_token() -> None:
    state = parse_state(STATE, URL)
    assert (state.ctag, state.sync_token) == ('"c1"', "tok-1")


def test_changes_reads_changed_and_removed_members() -> None:
    changes = parse_changes(CHANGES, URL, full=False)
    assert changes.sync_token == "tok-2"
    # hrefs are server paths, kept as given; the collection itself is left out.
    assert changes.changed == {
        "/alice/calendar/a%20b.ics": '"e1"',
        "/alice/calendar/noetag.ics": None,
    }
    assert changes.removed == ["/alice/calendar/gone.ics"]


def test_multiget_reads_found_objects_only() -> None:
    found = parse_multiget(MULTIGET, URL)
    assert [(o.href, o.etag) for o in found] == [("/alice/calendar/a.ics", '"e1"')]
    assert found[0].data.startswith(b"BEGIN:VCALENDAR")


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        b"<d:prop xmlns:d='DAV:'/>",  # not a multistatus
        b"<m xmlns='DAV:'>" + b" " * MAX_XML_BYTES + b"</m>",
    ],
)
def test_bad_replies_are_caldav_errors(body: bytes) -> None:
    with pytest.raises(CalDavError) as caught:
        parse_state(body, URL)
    assert isinstance(caught.value, TalkPlatformError)
    assert caught.value.context["url"] == URL


async def test_requests_and_conditions() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "REPORT" and b"tok-old" in request.content:
            return httpx.Response(403, text="valid-sync-token")
        if request.method == "REPORT":
            return httpx.Response(207, content=CHANGES)
        if request.method == "PUT":
            return httpx.Response(201, headers={"ETag": '"new"'})
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = CalDavClient(http, URL)
        changes = await client.changes("tok-old")
        assert changes.full and changes.sync_token == "tok-2"
        assert b"<d:sync-token></d:sync-token>" in seen[-1].content  # the full listing
        assert await client.put("/alice/calendar/x.ics", b"ics") == '"new"'
        assert seen[-1].headers["If-None-Match"] == "*"
        await client.put("/alice/calendar/x.ics", b"ics", etag='"e1"')
        assert seen[-1].headers["If-Match"] == '"e1"'
        assert str(seen[-1].url) == "http://dav.test/alice/calendar/x.ics"
        await client.delete("/alice/calendar/x.ics", etag='"e2"')
        assert (seen[-1].method, seen[-1].headers["If-Match"]) == ("DELETE", '"e2"')


async def test_refusals_and_unreachable_servers_carry_url_and_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(412)
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        client = CalDavClient(http, URL)
        with pytest.raises(CalDavError) as caught:
            await client.put("/alice/calendar/x.ics", b"ics")
        assert caught.value.status == 412
        assert caught.value.url == "http://dav.test/alice/calendar/x.ics"
        with pytest.raises(CalDavError) as caught:
            await client.state()
        assert caught.value.status is None and caught.value.url == URL


def test_utf16_reply_with_a_doctype_is_refused() -> None:
    # A byte search for "<!DOCTYPE" does not see it in UTF-16; the parser does.
    hostile = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<d:multistatus xmlns:d="DAV:"><d:response><d:href>/alice/calendar/</d:href>'
        "<d:propstat><d:prop><d:sync-token>&b;</d:sync-token></d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
    ).encode("utf-16")
    assert b"<!DOCTYPE" not in hostile
    with pytest.raises(CalDavError, match="DOCTYPE"):
        parse_state(hostile, URL)


async def test_over_long_reply_is_refused_without_reading_it_all() -> None:
    chunk = b" " * (1 << 20)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b"<d:multistatus xmlns:d='DAV:'>"
        while sent < 10 * MAX_XML_BYTES:
            sent += len(chunk)
            yield chunk

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(207, content=endless())

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(CalDavError, match="larger than") as caught:
            await CalDavClient(http, URL).state()
    assert caught.value.status == 207
    assert sent <= MAX_XML_BYTES + 2 * len(chunk)


async def test_declared_over_long_reply_is_refused_before_reading() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            207, headers={"Content-Length": str(MAX_XML_BYTES + 1)}, content=b"<x/>"
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(CalDavError, match="larger than"):
            await CalDavClient(http, URL).state()


def test_oversized_calendar_object_is_left_out() -> None:
    big = b"BEGIN:VCALENDAR\r\nX:" + b"a" * MAX_OBJECT_BYTES + b"\r\nEND:VCALENDAR\r\n"
    body = (
        b'<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        b"<d:response><d:href>/alice/calendar/big.ics</d:href><d:propstat><d:prop>"
        b"<c:calendar-data>" + big + b"</c:calendar-data></d:prop>"
        b"<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
    )
    assert parse_multiget(body, URL) == []


@pytest.mark.parametrize(
    ("href", "member"),
    [
        ("/alice/calendar/a%2Fb.ics", "/alice/calendar/a%2Fb.ics"),
        ("/alice/calendar/100%25.ics", "/alice/calendar/100%25.ics"),
        ("http://dav.test/alice/calendar/x.ics", "/alice/calendar/x.ics"),
        ("/%61lice/calendar/x.ics", "/%61lice/calendar/x.ics"),  # same path, encoded
        ("/alice/calendar/../bob/calendar/x.ics", None),
        ("/alice/calendar/%2E%2E", None),
        ("/alice/calendar/..", None),
        ("/alice/calendar/sub/x.ics", None),
        ("/alice/x.ics", None),
        ("/bob/calendar/x.ics", None),
        ("http://evil.test/alice/calendar/x.ics", None),
        ("//evil.test/alice/calendar/x.ics", None),
        ("x.ics", None),
    ],
)
def test_member_hrefs_stay_encoded_and_inside_the_collection(href: str, member: str | None) -> None:
    assert member_href(href, URL) == member


async def test_hrefs_outside_the_collection_are_skipped_and_never_requested() -> None:
    listing = b"""<?xml version="1.0"?>
<multistatus xmlns="DAV:">
 <response><href>/alice/calendar/a%2Fb.ics</href>
  <propstat><prop><getetag>"e1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat>
 </response>
 <response><href>/alice/calendar/100%25.ics</href>
  <propstat><prop><getetag>"e2"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat>
 </response>
 <response><href>/alice/calendar/../../bob/calendar/x.ics</href>
  <propstat><prop><getetag>"e3"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat>
 </response>
 <response><href>/alice/calendar/%2E%2E/secret.ics</href>
  <status>HTTP/1.1 404 Not Found</status></response>
 <sync-token>tok-2</sync-token>
</multistatus>"""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "REPORT":
            return httpx.Response(207, content=listing)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = CalDavClient(http, URL)
        changes = await client.changes(None)
        assert changes.changed == {
            "/alice/calendar/a%2Fb.ics": '"e1"',
            "/alice/calendar/100%25.ics": '"e2"',
        }
        assert changes.removed == []
        for href in changes.changed:
            await client.put(href, b"ics", etag='"e"')
            assert seen[-1].url.raw_path.decode() == href  # the same resource, not decoded
        with pytest.raises(CalDavError, match="not in the collection"):
            await client.put("/alice/calendar/../../bob/calendar/x.ics", b"ics")
        with pytest.raises(CalDavError, match="not in the collection"):
            await client.delete("/alice/calendar/%2E%2E/secret.ics", etag=None)
    assert [r.method for r in seen] == ["REPORT", "PUT", "PUT"]


async def test_a_server_without_sync_collection_is_listed_by_etags() -> None:
    listing = b"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:">
 <d:response><d:href>/alice/calendar/</d:href>
  <d:propstat><d:prop><d:getetag/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status>
  </d:propstat></d:response>
 <d:response><d:href>/alice/calendar/a.ics</d:href>
  <d:propstat><d:prop><d:getetag>"e1"</d:getetag></d:prop>
  <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>"""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "REPORT":
            return httpx.Response(405)
        return httpx.Response(207, content=listing)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        changes = await CalDavClient(http, URL).changes("tok-old")
    assert changes.full and changes.sync_token is None
    assert changes.changed == {"/alice/calendar/a.ics": '"e1"'} and changes.removed == []
    assert [(r.method, r.headers.get("Depth")) for r in seen] == [
        ("REPORT", "1"),
        ("PROPFIND", "1"),
    ]
    assert b"getetag" in seen[-1].content


async def test_a_403_without_a_token_is_listed_by_etags_too() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "REPORT":
            return httpx.Response(403)
        return httpx.Response(207, content=CHANGES)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        changes = await CalDavClient(http, URL).changes("tok-old")
    assert changes.full and changes.sync_token is None
    assert "/alice/calendar/a%20b.ics" in changes.changed
