"""A child process with a log file, its own process group, and a stop that always ends it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from talkplatform_agents.errors import TalkPlatformError

__all__ = ["HarnessError", "ManagedProcess"]

logger = logging.getLogger(__name__)


class HarnessError(TalkPlatformError, RuntimeError):
    """A harness process failed to start or to become healthy; carries its log tail."""

    def __init__(self, name: str, message: str, log_tail: str = "") -> None:
        detail = f"\n--- last lines of {name}'s log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{name}: {message}{detail}")
        self.name = name
        self.log_tail = log_tail


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self._popen is not None:
            raise HarnessError(self.name, "already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # Its own group, so stop() reaches its children too (job processes).
                start_new_session=True,
            )
        logger.info("%s started (pid %d): %s", self.name, self._popen.pid, " ".join(self.argv))

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        code = self.exit_code()
        if code is not None:
            raise HarnessError(self.name, f"exited with code {code}", self.log_tail())

    def stop(self, timeout: float = 10.0, *, again_after: float | None = None) -> None:
        """SIGTERM to the group, SIGKILL after ``timeout``. Idempotent. ``again_after``: a
        second SIGTERM after that many seconds, for a program that takes the second as
        "now" (livekit-server drains its rooms on the first, and stops on the second).
        """
        popen = self._popen
        if popen is None or popen.poll() is not None:
            self._reap_group()
            return
        self._signal_group(signal.SIGTERM)
        if again_after is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(again_after)
            if popen.poll() is None:
                self._signal_group(signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            self._signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(5)
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL to the whole group at once, with no chance to clean up (a crash)."""
        if self._popen is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(5)

    def _reap_group(self) -> None:
        # Children that outlived their parent still carry its process group.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)
