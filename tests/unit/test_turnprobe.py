"""The TURN probe: a server that answers, one that does not, and URLs of every form."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from talkplatform_agents.synthetic.turnprobe import _parse, turn_silent


def test_urls_of_every_form() -> None:
    assert _parse("turn:10.0.0.1:3478?transport=udp") == ("10.0.0.1", 3478, "udp")
    assert _parse("turn:example.org") == ("example.org", 3478, "udp")
    assert _parse("turn:example.org:80?transport=tcp") == ("example.org", 80, "tcp")
    assert _parse("turns:example.org") == ("example.org", 5349, "tcp")
    assert _parse("turn:[::1]:3478") == ("::1", 3478, "udp")


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # any answer counts as alive


async def test_an_answering_server_and_a_silent_one() -> None:
    loop = asyncio.get_running_loop()
    server, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    port = server.get_extra_info("sockname")[1]
    try:
        assert await turn_silent(f"turn:127.0.0.1:{port}", timeout_s=3) is None
    finally:
        server.close()
    # A bound socket that never reads: nothing answers there.
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))
    try:
        why = await turn_silent(f"turn:127.0.0.1:{quiet.getsockname()[1]}", timeout_s=0.6)
    finally:
        quiet.close()
    assert why is not None and "does not answer" in why
    refused = await turn_silent("turn:127.0.0.1:1?transport=tcp", timeout_s=1)
    assert refused is not None and "TCP" in refused
