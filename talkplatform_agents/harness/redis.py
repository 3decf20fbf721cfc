"""A private Redis server for multi-node LiveKit: its node registry, its room->node map and
its message bus (psrpc). Debian's ``redis-server``, started with ``config/redis/redis.conf``
and told on the command line where to listen, so the committed file stays the compose
stack's while tests bind a namespace address.
"""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from talkplatform_agents.harness.process import HarnessError, ManagedProcess

__all__ = ["RedisServer", "redis_available"]

REDIS_PORT = 6379


def redis_available() -> str | None:
    """None when a Redis server can be started here, else why not."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (scripts/debian-packages.sh installs it)"
    return None


@dataclass
class RedisServer:
    root: Path  # the checkout: config/redis/redis.conf
    run_dir: Path
    host: str
    port: int = REDIS_PORT
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """As livekit-server's ``redis.address`` wants it."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if (reason := redis_available()) is not None:
            raise HarnessError("redis", reason)
        binary = shutil.which("redis-server")
        assert binary is not None
        config = self.root / "config" / "redis" / "redis.conf"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        argv = [binary, str(config), "--bind", self.host, "--port", str(self.port)]
        argv += ["--dir", str(self.run_dir), "--daemonize", "no", "--logfile", ""]
        self._process = ManagedProcess("redis", argv, self.run_dir / "redis.log")
        self._process.start()
        deadline = time.monotonic() + timeout
        while not self.ping():
            self._process.check_running()
            if time.monotonic() > deadline:
                raise HarnessError("redis", "did not answer PING", self._process.log_tail())
            time.sleep(0.1)

    def ping(self) -> bool:
        """One RESP ``PING``, answered ``+PONG``."""
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def command(self, *args: str) -> str:
        """One command over RESP, its reply's first line (enough for PING, HLEN, EXISTS,
        and a short HGET): the tests read LiveKit's room->node map with it."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection((self.host, self.port), timeout=2.0) as conn:
            conn.sendall(request.encode())
            reply = b""
            while b"\r\n" not in reply:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
            first, _, rest = reply.partition(b"\r\n")
            if first.startswith(b"$") and first != b"$-1":
                size = int(first[1:])
                while len(rest) < size:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    rest += chunk
                return rest[:size].decode(errors="replace")
            return first.decode(errors="replace")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
