"""LiveKit's SIP service (``livekit-sip``, built by ``scripts/install-sip.sh``) beside a
Redis-backed livekit-server: SIP signalling and RTP on one namespace address.

livekit-sip talks to livekit-server through their shared Redis (psrpc) and joins rooms
over WebRTC like any client. It advertises ``nat_1_to_1_ip`` in its Contact and SDP: left
to itself it picks the first non-loopback interface address, which in a test namespace is
not always the one the phones reach.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.process import HarnessError, ManagedProcess
from talkplatform_agents.harness.redis import RedisServer
from talkplatform_agents.harness.stack import Stack, StackOptions
from talkplatform_agents.lk.naming import MEETING_AGENTS

__all__ = ["SipService", "ensure_livekit_sip", "phone_stack"]

SIP_PORT = 5060


def ensure_livekit_sip(root: Path) -> Path:
    """The SIP service's binary, built by the project's install script if it is missing."""
    binary = root / "bin" / "livekit-sip"
    stamp = root / "bin" / ".livekit-sip.version"
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == _pinned(root):
        return binary
    script = root / "scripts" / "install-sip.sh"
    result = subprocess.run([str(script)], check=False, capture_output=True, text=True)
    if result.returncode != 0 or not binary.exists():
        raise HarnessError("livekit-sip", f"{script} did not build it", result.stderr[-2000:])
    return binary


def _pinned(root: Path) -> str:
    for line in (root / "scripts" / "versions.env").read_text().splitlines():
        if line.startswith("LIVEKIT_SIP_VERSION="):
            return line.partition("=")[2].strip()
    raise HarnessError("livekit-sip", "scripts/versions.env pins no LIVEKIT_SIP_VERSION")


@dataclass
class SipService:
    root: Path  # the checkout: bin/, scripts/
    run_dir: Path
    host: str  # where it listens and what it advertises
    ws_url: str  # livekit-server, as livekit-sip joins rooms
    redis_address: str  # livekit-server's Redis
    api_key: str
    api_secret: str = field(repr=False)
    sip_port: int = SIP_PORT
    rtp_ports: tuple[int, int] = (10000, 10199)
    health_port: int = 8099
    _process: ManagedProcess | None = field(default=None, repr=False)

    def config(self) -> dict[str, object]:
        """livekit-sip's configuration (its ``--config-body``), as JSON, which is YAML."""
        return {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "ws_url": self.ws_url,
            "redis": {"address": self.redis_address},
            "sip_port": self.sip_port,
            "listen_ip": self.host,
            "nat_1_to_1_ip": self.host,
            "rtp_port": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "health_port": self.health_port,
            "logging": {"level": "debug"},
            # Calls out are refused past this CPU share: a 2-core test box runs busy.
            "max_cpu_utilization": 1.0,
            # A finished call's RTP port is free at once (tests call back to back).
            "rtp_draining_idle_timeout": "-1s",
            "rtp_draining_duration": "-1s",
        }

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.health_port}/"

    def start(self, timeout: float = 60.0) -> None:
        binary = ensure_livekit_sip(self.root)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(binary), "--config-body", json.dumps(self.config())]
        self._process = ManagedProcess("livekit-sip", argv, self.run_dir / "livekit-sip.log",
                                       env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        self._process.start()
        deadline = time.monotonic() + timeout
        try:
            while not self.healthy():
                self._process.check_running()
                if time.monotonic() > deadline:
                    raise HarnessError("livekit-sip", "never healthy", self._process.log_tail())
                time.sleep(0.2)
        except BaseException:
            self.stop()  # never left running by a start that failed
            raise

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def log_tail(self, lines: int = 60) -> str:
        return self._process.log_tail(lines) if self._process else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=10.0)
            self._process = None

    def __enter__(self) -> SipService:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextmanager
def phone_stack(
    settings: Settings, root: Path, run_dir: Path, host: str, livekit_port: int = 11880
) -> Iterator[tuple[Stack, SipService]]:
    """Everything phones need, on ``host``: a Redis, a livekit-server on it beside the
    service and the meeting bots, and livekit-sip. livekit-server binds its RTC ports on
    every address, whatever ``--bind`` says, so this one has ports of its own
    (``livekit_port`` and the two after it) beside a session stack's 7880."""
    redis = RedisServer(root, run_dir / "redis", host)
    redis.start()
    try:
        options = StackOptions(
            root=root, run_dir=run_dir, host=host, agents=MEETING_AGENTS,
            redis_address=redis.address, livekit_port=livekit_port,
            rtc_tcp_port=livekit_port + 1, rtc_udp_port=livekit_port + 2,
        )  # fmt: skip
        with Stack(settings, options) as stack:
            child = stack.child_settings
            sip = SipService(
                root, run_dir / "livekit-sip", host, child.livekit_url, redis.address,
                child.livekit_api_key, child.livekit_api_secret.get_secret_value(),
            )  # fmt: skip
            with sip:
                yield stack, sip
    finally:
        redis.stop()
