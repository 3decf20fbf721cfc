"""What a bot server tells livekit-server about its load, between 0 (idle) and 1 (full).

livekit-server sends a job only to a worker whose load is under its threshold. The
livekit-agents default is the whole machine's CPU use: on a machine busy with other work
(a test run, a build, a neighbour's container) every worker reports itself full and every
dispatch is answered with "no servers available", although the bots themselves are idle.
So ours reports its own work instead: its running jobs against its capacity, and the CPU
that its own process tree uses, whichever is fuller.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import psutil

if TYPE_CHECKING:
    from livekit.agents import AgentServer

__all__ = ["LoadMode", "OwnLoad", "jobs_load", "machine_cpu"]

# "own": this server's jobs and its own processes' CPU. "jobs": running jobs only. "cpu": the
# machine's CPU use (livekit-agents' own default; kept for deployments that want it).
LoadMode = Literal["own", "jobs", "cpu"]


def jobs_load(max_jobs: int, server: AgentServer) -> float:
    """Running jobs over ``max_jobs``."""
    return min(len(server.active_jobs) / max_jobs, 1.0)


def machine_cpu() -> float:
    """The whole machine's CPU use since the previous call (livekit-agents' measure)."""
    return float(psutil.cpu_percent(interval=None)) / 100


@dataclass
class _Sample:
    at: float
    cpu_s: float


class OwnLoad:
    """``max(jobs / max_jobs, own CPU / cores)``, the CPU measured over the last interval
    across this process and its children (the job processes of a process executor).

    livekit-agents calls it from a thread pool every few seconds, hence the lock.
    """

    def __init__(self, max_jobs: int, cores: int | None = None) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs must be >= 1, not {max_jobs}")
        self._max_jobs = max_jobs
        self._cores = cores or os.cpu_count() or 1
        self._me = psutil.Process()
        self._children: dict[int, psutil.Process] = {}
        self._last: _Sample | None = None
        self._lock = threading.Lock()

    def __call__(self, server: AgentServer) -> float:
        return max(jobs_load(self._max_jobs, server), self.cpu())

    def cpu(self) -> float:
        """Cores used by this process tree since the previous call, over the cores there are
        (0 on the first call)."""
        with self._lock:
            now = _Sample(time.monotonic(), self._tree_cpu_s())
            last, self._last = self._last, now
        if last is None or now.at <= last.at:
            return 0.0
        # A child that exited takes its CPU time with it: the total can fall. Never below 0.
        used = max(now.cpu_s - last.cpu_s, 0.0)
        return min(used / (now.at - last.at) / self._cores, 1.0)

    def _tree_cpu_s(self) -> float:
        total = _cpu_s(self._me)
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            children = []
        alive: dict[int, psutil.Process] = {}
        for child in children:
            # The same Process object across calls: psutil checks it is the same process
            # (pid reuse), and its cpu_times are cumulative.
            known = self._children.get(child.pid, child)
            alive[child.pid] = known
            total += _cpu_s(known)
        self._children = alive
        return total


def _cpu_s(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0  # gone between the listing and the read
    return float(times.user + times.system)
