"""Does a TURN server answer at all? One STUN Binding request (RFC 5389; TURN servers answer
it) over UDP, or a TCP connect for a TCP or TLS URL, within a few seconds.

The relay-only join that proves a TURN server relays takes libwebrtc some 45 s to give up
on a server that is down (its allocation retries). Asking first turns that into a clear
"does not answer" within seconds, and leaves the long test to servers that do answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse

from aioice import stun

__all__ = ["turn_silent"]

_RETRIES = 3


class _Answer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.heard = asyncio.Event()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.heard.set()


def _parse(url: str) -> tuple[str, int, str]:
    """(host, port, transport) of ``turn:host[:port][?transport=udp|tcp]`` or ``turns:``."""
    scheme, _, rest = url.partition(":")
    where, _, query = rest.partition("?")
    secure = scheme == "turns"
    transport = urllib.parse.parse_qs(query).get("transport", ["tcp" if secure else "udp"])[0]
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit():
        host, port = where, "5349" if secure else "3478"
    return host.strip("[]"), int(port), "tcp" if secure else transport.lower()


async def turn_silent(url: str, timeout_s: float = 3.0) -> str | None:
    """None when the TURN server at ``url`` answers; otherwise why it seems not to."""
    try:
        host, port, transport = _parse(url)
    except ValueError as exc:
        return f"cannot read the TURN URL {url!r}: {exc}"
    loop = asyncio.get_running_loop()
    if transport == "tcp":
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            return f"the TURN server {url} takes no TCP connection: {exc!r}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None
    try:
        sock, answer = await loop.create_datagram_endpoint(_Answer, remote_addr=(host, port))
    except OSError as exc:
        return f"cannot send to the TURN server {url}: {exc}"
    try:
        request = bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST))
        for _ in range(_RETRIES):  # a lost datagram is not a dead server
            sock.sendto(request)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s / _RETRIES):
                    await answer.heard.wait()
                    return None
    finally:
        sock.close()
    return f"the TURN server {url} does not answer (UDP, {timeout_s:.0f}s)"
