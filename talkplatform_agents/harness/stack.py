"""The local stack: livekit-server, the token service and the bot worker, as processes.

Used by ``talkplatform-agents up`` and by the integration tests. Production code never
imports it. Every ``start`` step ends with a health check, so ``start`` returning means the
stack is ready; ``stop`` ends every process, whatever state ``start`` reached.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.process import HarnessError, ManagedProcess

__all__ = ["LIVEKIT_PORT", "Stack", "StackOptions", "ensure_livekit_server"]

logger = logging.getLogger(__name__)

LIVEKIT_PORT = 7880  # as in livekit.yaml
TURN_PORT = 3478  # as in config/coturn/turnserver.conf
_WORKER_STOP_S = 40.0  # the worker's own stop budget, 2 x drain_timeout_s + 10, and some


@dataclass(frozen=True)
class StackOptions:
    root: Path  # the checkout: bin/, scripts/, livekit.yaml
    run_dir: Path  # logs and the rendered server config
    host: str  # where everything binds and what livekit-server advertises
    api_port: int = 8000
    # livekit-server's ports: a second stack in the same namespace needs its own
    # (livekit.yaml's are 7880, 7881 and 7882).
    livekit_port: int = LIVEKIT_PORT
    rtc_tcp_port: int = LIVEKIT_PORT + 1
    rtc_udp_port: int = LIVEKIT_PORT + 2
    agents: tuple[str, ...] = ("all",)  # agent names for the worker; "all": every bot
    turn: bool = False  # run coturn (config/coturn/turnserver.conf) beside the server
    # "host:port" of the Redis that this node shares with others (harness/cluster.py);
    # None: a single node, as livekit.yaml has it.
    redis_address: str | None = None
    # More webhook targets beside this stack's own service (the other services of a
    # cluster: LiveKit posts each event to every URL, and the services must agree).
    extra_webhook_urls: tuple[str, ...] = ()
    # The worker's Prometheus endpoint (BOT_METRICS_PORT): None, the port after api_port's
    # (a second stack on the same address has its own api_port); 0, none.
    bot_metrics_port: int | None = None
    start_timeout_s: float = 120.0  # a bound, not a wait: a busy 2-core box is slow to spawn


def ensure_livekit_server(settings: Settings, root: Path) -> Path:
    """The server binary, built by the project's install script if it is missing."""
    binary = _resolve(root, settings.livekit_server_bin)
    if binary.exists():
        return binary
    script = root / "scripts" / "install-livekit.sh"
    if not script.exists():
        raise HarnessError("livekit-server", f"{binary} is missing and {script} is not here")
    logger.info("livekit-server missing; building it with %s", script)
    result = subprocess.run([str(script)], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError("livekit-server", f"{script} failed", result.stderr[-2000:])
    if not binary.exists():
        raise HarnessError("livekit-server", f"{script} ran but {binary} is still missing")
    return binary


@dataclass
class Stack:
    settings: Settings
    options: StackOptions
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def child_settings(self) -> Settings:
        """The settings as the stack's own processes see them: everything on ``host``.

        Bots count their load in jobs, never CPU: a local stack shares a small machine with
        its clients, and a worker reporting full CPU gets no job from livekit-server.
        """
        host = self.options.host
        return self.settings.model_copy(
            update={
                "livekit_url": f"ws://{host}:{self.options.livekit_port}",
                # Clients of a local stack reach it where its processes do, whatever the
                # shell that started it says (a compose user's LIVEKIT_PUBLIC_URL, say).
                "livekit_public_url": None,
                "api_host": host,
                "api_port": self.options.api_port,
                "public_api_url": f"http://{host}:{self.options.api_port}",
                "worker_load_mode": "jobs",
                "worker_load_threshold": float("inf"),
                "bot_metrics_host": host,
                "bot_metrics_port": self.options.api_port + 1
                if self.options.bot_metrics_port is None
                else self.options.bot_metrics_port,
                **self._turn_settings(),
            }
        )

    def _turn_settings(self) -> dict[str, object]:
        if not self.options.turn:
            return {}
        return {
            "turn_server_url": f"turn:{self.options.host}:{TURN_PORT}",
            "turn_username": self.settings.turn_username or "livekit",
            "turn_password": self.settings.turn_password or SecretStr("turnpassword"),
        }

    def start(self) -> None:
        try:
            if self.options.turn:
                self.start_turn()
            self._start_livekit()
            self._start_service()
            self._start_worker()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Reverse order: bots leave rooms before the server goes away. The worker gets
        # longer than its own drain budget, so a live job can finish cleanly.
        for process in reversed(self.processes):
            if process.name == "livekit-server":
                # Its rooms have had their bots leave by now; a room waiting on a peer
                # node that died would hold the drain for 10 s more.
                process.stop(timeout=10.0, again_after=2.0)
            else:
                process.stop(timeout=_WORKER_STOP_S if process.name == "worker" else 10.0)
        self.processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the three services -------------------------------------------------------------

    def _start_livekit(self) -> None:
        settings = self.child_settings
        binary = ensure_livekit_server(settings, self.options.root)
        config = self._render_livekit_config(settings)
        env = {
            "LIVEKIT_KEYS": f"{settings.livekit_api_key}: "
            f"{settings.livekit_api_secret.get_secret_value()}",
            "PATH": "/usr/bin:/bin",
        }
        argv = [str(binary), "--config", str(config), "--bind", self.options.host]
        argv += ["--node-ip", self.options.host]
        process = self._spawn("livekit-server", argv, env)
        self._wait_http(process, settings.livekit_http_url + "/")

    def start_turn(self) -> None:
        """coturn on ``host``, relaying from that same address. Also restarts it."""
        self.stop_process("coturn")
        settings = self.child_settings
        binary = shutil.which("turnserver")
        if binary is None:
            raise HarnessError("coturn", "turnserver is not installed (scripts/debian-packages.sh)")
        password = settings.turn_password.get_secret_value() if settings.turn_password else ""
        host = self.options.host
        argv = [binary, "-c", str(self.options.root / "config" / "coturn" / "turnserver.conf")]
        argv += ["--listening-ip", host, "--relay-ip", host, "--listening-port", str(TURN_PORT)]
        argv += ["--user", f"{settings.turn_username}:{password}", "--no-tls", "--no-dtls"]
        argv += ["--pidfile", str(self.options.run_dir / "turnserver.pid"), "--simple-log"]
        process = self._spawn("coturn", argv, {"PATH": "/usr/bin:/bin"})
        self._wait(process, lambda: _accepts(host, TURN_PORT), f"listen on {host}:{TURN_PORT}")

    def stop_process(self, name: str, timeout: float = 10.0) -> None:
        for process in [p for p in self.processes if p.name == name]:
            process.stop(timeout)
            self.processes.remove(process)

    def process(self, name: str) -> ManagedProcess:
        for process in self.processes:
            if process.name == name:
                return process
        raise HarnessError(name, "is not running in this stack")

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and every process it started (a crash, for fault tests)."""
        process = self.process(name)
        process.kill()
        self.processes.remove(process)

    def restart(self, name: str) -> None:
        """Start ``name`` again (after ``kill`` or ``stop_process``), ready when this
        returns: "livekit-server", "token-service" or "worker"."""
        self.stop_process(name, _WORKER_STOP_S if name == "worker" else 10.0)
        starts = {
            "livekit-server": self._start_livekit,
            "token-service": self._start_service,
            "worker": self._start_worker,
        }
        if name not in starts:
            raise HarnessError(name, f"cannot be restarted; known: {', '.join(starts)}")
        starts[name]()

    def _start_service(self) -> None:
        settings = self.child_settings
        argv = [sys.executable, "-m", "talkplatform_agents", "serve"]
        process = self._spawn("token-service", argv, self._python_env(settings))
        self._wait_http(process, settings.api_url + "/healthz")

    def _start_worker(self) -> None:
        if not self.options.agents:
            return
        settings = self.child_settings
        ready_file = self.options.run_dir / "worker.ready"
        ready_file.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "talkplatform_agents", "worker"]
        argv += ["--agents", ",".join(self.options.agents), "--ready-file", str(ready_file)]
        process = self._spawn("worker", argv, self._python_env(settings))
        self._wait(process, ready_file.exists, "register its bots")

    # -- helpers ------------------------------------------------------------------------

    def _render_livekit_config(self, settings: Settings) -> Path:
        source = _resolve(self.options.root, settings.livekit_config)
        try:
            rendered = string.Template(source.read_text()).substitute(
                LIVEKIT_API_KEY=settings.livekit_api_key, TOKEN_SERVICE_URL=settings.api_url
            )
        except (OSError, KeyError, ValueError) as exc:
            raise HarnessError("livekit-server", f"cannot render {source}: {exc!r}") from exc
        rendered = _with_ports(rendered, self.options)
        if self.options.redis_address is not None:
            rendered += f"redis:\n  address: {self.options.redis_address}\n"
        rendered = _with_webhooks(rendered, self.options.extra_webhook_urls)
        path = self.options.run_dir / "livekit.rendered.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
        return path

    def _python_env(self, settings: Settings) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "API_"))}
        env.update(settings.child_env())
        # Bots need no local inference model; preloading one costs 244 MB per job process.
        env["LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE"] = "0"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(
            name, argv, self.options.run_dir / f"{name}.log", env=env, cwd=self.options.root
        )
        self.processes.append(process)
        process.start()
        return process

    def _wait_http(self, process: ManagedProcess, url: str) -> None:
        def healthy() -> bool:
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(process, healthy, f"answer 200 on {url}")

    def _wait(self, process: ManagedProcess, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.options.start_timeout_s
        while time.monotonic() < deadline:
            process.check_running()
            if ready():
                logger.info("%s is ready", process.name)
                return
            time.sleep(0.2)
        raise HarnessError(
            process.name,
            f"did not {what} within {self.options.start_timeout_s:.0f}s",
            process.log_tail(),
        )


def _with_ports(config: str, options: StackOptions) -> str:
    """livekit.yaml's three ports (top-level ``port``, ``rtc.tcp_port``, ``rtc.udp_port``)
    as ``options`` say."""
    for key, port in (
        ("port", options.livekit_port),
        ("tcp_port", options.rtc_tcp_port),
        ("udp_port", options.rtc_udp_port),
    ):
        config, found = re.subn(rf"(?m)^(\s*{key}:\s*)\d+\s*$", rf"\g<1>{port}", config, count=1)
        if not found:
            raise HarnessError("livekit-server", f"the config has no {key} line to set")
    return config


def _with_webhooks(config: str, urls: tuple[str, ...]) -> str:
    """``urls`` as more items of the ``webhook.urls`` list, after its first one."""
    if not urls:
        return config
    found = re.search(r"(?m)^(\s*)- \S+/api/v1/livekit/webhook\s*$", config)
    if found is None:
        raise HarnessError("livekit-server", "the config has no webhook URL to add to")
    indent = found.group(1)
    extra = "".join(f"\n{indent}- {url}/api/v1/livekit/webhook" for url in urls)
    return config[: found.end()] + extra + config[found.end() :]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _resolve(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate
