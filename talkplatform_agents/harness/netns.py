"""A network namespace for tests and demos that carry media.

libwebrtc ignores loopback interfaces, so media needs a real interface: a veth pair with
both ends inside the namespace, a 10.x test address on one end and a default route via
the other. Without the default route libwebrtc gathers no host candidate; with it, it
gathers the veth address. Nothing answers on that route, so no packet leaves.

Everything the media path talks to runs inside, so the namespace is the whole world of a
test run. Teardown kills every process in it and deletes it, even after a failure; a run
that was killed outright is swept up by the next one (names carry the owner's pid).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from talkplatform_agents.errors import TalkPlatformError

__all__ = ["NetNamespace", "NetnsError", "netns_available"]

logger = logging.getLogger(__name__)

_CLONE_NEWNET = 0x40000000
PREFIX = "tpa-"


class NetnsError(TalkPlatformError, RuntimeError):
    """The namespace could not be made or entered; says which namespace and why."""


def netns_available() -> str | None:
    """None when this process can create namespaces, else the reason it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's 'ip' is not installed"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path, "rb") as handle:
        if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path}): {os.strerror(err)}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class NetNamespace:
    """``with NetNamespace.create() as ns:`` makes it; leaving the block removes it."""

    name: str
    address: str = "10.77.0.1"
    prefix_len: int = 24
    _entered_from: int | None = None  # fd of the namespace we left, while inside

    @classmethod
    def create(cls, address: str = "10.77.0.1", suffix: str = "") -> NetNamespace:
        """``suffix``: a second namespace of the same process (``tpa-<pid>-<suffix>``)."""
        if (reason := netns_available()) is not None:
            raise NetnsError(reason)
        sweep_stale()
        name = f"{PREFIX}{os.getpid()}" + (f"-{suffix}" if suffix else "")
        ns = cls(name=name, address=address)
        ns._build()
        return ns

    def _build(self) -> None:
        _ip("netns", "add", self.name)  # fails if it exists: then it is not ours to undo
        try:
            n = ("-n", self.name)
            _ip(*n, "link", "set", "lo", "up")
            _ip(*n, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
            _ip(*n, "addr", "add", f"{self.address}/{self.prefix_len}", "dev", "veth0")
            _ip(*n, "link", "set", "veth0", "up")
            _ip(*n, "link", "set", "veth1", "up")
            _ip(*n, "route", "add", "default", "dev", "veth1")
        except NetnsError:
            self.destroy()
            raise
        logger.info("netns %s: %s on veth0, default route via veth1", self.name, self.address)

    def exec_prefix(self) -> list[str]:
        """Prefix for a command that must run inside (from outside the namespace)."""
        return ["ip", "netns", "exec", self.name]

    def add_address(self, address: str) -> None:
        """One more test host on veth0 (a second livekit-server node, say). Idempotent."""
        result = _ip("-n", self.name, "addr", "add", f"{address}/{self.prefix_len}",
                     "dev", "veth0", check=False)  # fmt: skip
        if result.returncode != 0 and "File exists" not in result.stderr:
            raise NetnsError(f"{self.name}: cannot add {address}: {result.stderr.strip()}")

    def enter(self) -> None:
        """Move this process's calling thread into the namespace. Do it before any thread
        starts (threads and children inherit the namespace of the thread that made them)."""
        if self._entered_from is not None:
            return
        self._entered_from = os.open("/proc/self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{self.name}")

    def leave(self) -> None:
        if self._entered_from is None:
            return
        try:
            _setns(f"/proc/self/fd/{self._entered_from}")
        finally:
            os.close(self._entered_from)
            self._entered_from = None

    def pids(self) -> list[int]:
        result = _ip("netns", "pids", self.name, check=False)
        return [int(p) for p in result.stdout.split() if p.strip().isdigit()]

    def destroy(self) -> None:
        """Kill every process inside (but this one) and delete the namespace. Idempotent."""
        self.leave()
        _kill_all(self.pids())
        _ip("netns", "del", self.name, check=False)
        # Files that `ip netns exec` mounts inside (a hosts file); `ip netns del` leaves them.
        shutil.rmtree(f"/etc/netns/{self.name}", ignore_errors=True)

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(self, *_: object) -> None:
        self.destroy()


def _kill_all(pids: list[int]) -> None:
    own = os.getpid()
    for pid in pids:
        if pid != own:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _namespaces() -> Iterator[str]:
    result = _ip("netns", "list", check=False)
    for line in result.stdout.splitlines():
        if line.strip():
            yield line.split()[0]


def sweep_stale() -> None:
    """Remove namespaces left by runs whose owner process is gone."""
    for name in _namespaces():
        if not name.startswith(PREFIX):
            continue
        owner = name.removeprefix(PREFIX).partition("-")[0]
        if owner.isdigit() and not _pid_alive(int(owner)):
            logger.warning("removing stale namespace %s", name)
            NetNamespace(name=name).destroy()
