"""A private CalDAV server for the calendar sync's tests: PyPI's ``radicale``, run from this
interpreter (``python -m radicale``) on a given address, with its storage in a temporary
folder, no authentication (any user name is accepted as given) and rights that let every
authenticated user write every collection, as a service account on Nextcloud would.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from talkplatform_agents.harness.process import HarnessError, ManagedProcess

__all__ = ["RADICALE_PORT", "RadicaleServer", "radicale_available"]

RADICALE_PORT = 5232

_CONFIG = """\
[server]
hosts = {host}:{port}

[auth]
type = none

[rights]
type = authenticated

[storage]
filesystem_folder = {storage}

[logging]
level = warning
mask_passwords = True
"""


def radicale_available() -> str | None:
    """None when Radicale can be started here, else why not."""
    try:
        import radicale  # noqa: F401
    except ImportError:
        return "radicale is not installed (.venv/bin/pip install radicale)"
    return None


@dataclass
class RadicaleServer:
    run_dir: Path
    host: str
    port: int = RADICALE_PORT
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def calendar_url(self, user: str) -> str:
        return f"{self.url}/{user}/calendar/"

    def start(self, timeout: float = 30.0) -> None:
        if (reason := radicale_available()) is not None:
            raise HarnessError("radicale", reason)
        storage = self.run_dir / "collections"
        shutil.rmtree(storage, ignore_errors=True)
        storage.mkdir(parents=True)
        config = self.run_dir / "radicale.conf"
        config.write_text(_CONFIG.format(host=self.host, port=self.port, storage=storage))
        argv = [sys.executable, "-m", "radicale", "--config", str(config)]
        self._process = ManagedProcess("radicale", argv, self.run_dir / "radicale.log")
        self._process.start()
        deadline = time.monotonic() + timeout
        while not self.ping():
            self._process.check_running()
            if time.monotonic() > deadline:
                raise HarnessError("radicale", "did not answer", self._process.log_tail())
            time.sleep(0.1)

    def ping(self) -> bool:
        try:
            return httpx.get(f"{self.url}/.web/", timeout=2.0).status_code < 500
        except httpx.HTTPError:
            return False

    def make_calendar(self, user: str, account: str = "talkplatform") -> str:
        """Create ``user``'s calendar collection (MKCALENDAR, as ``account``); its URL."""
        url = self.calendar_url(user)
        # Radicale wants the parent (the user's principal) to exist first.
        principal = httpx.request("MKCOL", f"{self.url}/{user}/", auth=(account, "x"), timeout=10.0)
        if principal.status_code not in (201, 405):  # 405: it exists already
            raise HarnessError("radicale", f"MKCOL /{user}/: HTTP {principal.status_code}")
        reply = httpx.request("MKCALENDAR", url, auth=(account, "x"), timeout=10.0)
        if reply.status_code != 201:
            raise HarnessError("radicale", f"MKCALENDAR {url}: HTTP {reply.status_code}")
        return url

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __enter__(self) -> RadicaleServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
