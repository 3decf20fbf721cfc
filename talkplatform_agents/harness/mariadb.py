"""A private MariaDB server for tests: its own data directory and Unix socket, no TCP.

A socket needs no network, so the server is reachable from inside the test namespace,
and a private instance leaves the machine's own database (if any) untouched.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from talkplatform_agents.harness.process import HarnessError, ManagedProcess

__all__ = ["MariaDB", "mariadb_available"]


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if found:
            return found
    return None


def mariadb_available() -> str | None:
    """None when a MariaDB server can be started here, else why not."""
    if (
        _binary("mariadbd", "mysqld") is None
        or _binary("mariadb-install-db", "mysql_install_db") is None
    ):
        return "mariadb-server is not installed (scripts/debian-packages.sh installs it)"
    return None


@dataclass
class MariaDB:
    base: Path
    database: str = "talkplatform_test"
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    @property
    def url(self) -> str:
        return f"mysql+aiomysql://root@localhost/{self.database}?unix_socket={self.socket}&charset=utf8mb4"

    def start(self, timeout: float = 60.0, *, fresh: bool = True) -> None:
        """Start the server; ``fresh``: a new data directory and an empty database, else
        the data as the last ``stop`` left it (a restart, for fault tests)."""
        if (reason := mariadb_available()) is not None:
            raise HarnessError("mariadb", reason)
        data = self.base / "data"
        data.mkdir(parents=True, exist_ok=True)
        install = _binary("mariadb-install-db", "mysql_install_db")
        server = _binary("mariadbd", "mysqld")
        assert install and server
        if fresh:
            self._install(install, data)
        self._process = ManagedProcess(
            "mariadb",
            [server, "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
             "--skip-networking", "--user=root", f"--pid-file={self.base / 'mysqld.pid'}",
             "--innodb-buffer-pool-size=64M"],
            self.base / "mariadb.log",
        )  # fmt: skip
        self._process.start()
        deadline = time.monotonic() + timeout
        while not (self._try_reset() if fresh else self._accepts()):
            self._process.check_running()
            if time.monotonic() > deadline:
                raise HarnessError(
                    "mariadb", "did not accept connections", self._process.log_tail()
                )
            time.sleep(0.2)

    def _accepts(self) -> bool:
        import pymysql

        try:
            pymysql.connect(user="root", unix_socket=str(self.socket)).close()
        except pymysql.err.OperationalError:
            return False
        return True

    def _install(self, install: str, data: Path) -> None:
        result = subprocess.run(
            [install, "--no-defaults", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise HarnessError("mariadb", "mariadb-install-db failed", result.stderr[-2000:])

    def reset(self) -> None:
        """Drop and recreate the test database: each test starts from an empty schema."""
        if not self._try_reset():
            raise HarnessError("mariadb", "cannot connect to reset the database")

    def _try_reset(self) -> bool:
        import pymysql

        try:
            conn = pymysql.connect(user="root", unix_socket=str(self.socket))
        except pymysql.err.OperationalError:
            return False
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
                cursor.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
            conn.commit()
        finally:
            conn.close()
        return True

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
