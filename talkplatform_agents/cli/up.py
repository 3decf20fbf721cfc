"""``talkplatform-agents up``: the local stack, optionally inside its own network namespace."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import signal
import time
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from talkplatform_agents.cli.demo import EchoDemoResult, run_echo_demo
from talkplatform_agents.config import Settings
from talkplatform_agents.harness import (
    HarnessError,
    NetNamespace,
    NetnsError,
    Stack,
    StackOptions,
    ensure_livekit_server,
    netns_available,
)
from talkplatform_agents.lk import (
    ECHO_AGENT_NAME,
    Credentials,
    Role,
    greenroom_room_name,
    mint_token,
)
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade

__all__ = ["APP_JWT_FILE", "PARTICIPANT_TOKEN_FILE", "run_up"]

# In the run directory, named in the "ready" table.
PARTICIPANT_TOKEN_FILE = "participant.token"
APP_JWT_FILE = "app.jwt"


def run_up(
    settings: Settings,
    *,
    root: Path,
    run_dir: Path,
    netns: bool | None,
    demo: bool,
    exit_after_demo: bool,
    console: Console,
) -> int:
    reason = netns_available()
    use_netns = (reason is None) if netns is None else netns
    if use_netns and reason is not None:
        console.print(f"[red]--netns is not possible here:[/red] {reason}")
        return 2
    previous = signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C is how `up` stops, even when it was started with SIGINT ignored (bash ignores it
    # in a non-interactive shell's background jobs, and children inherit that).
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    namespace: NetNamespace | None = None
    stack: Stack | None = None
    try:
        # Build the server first: inside the namespace nothing reaches the Go proxy.
        ensure_livekit_server(settings, root)
        if use_netns:
            namespace = NetNamespace.create()
            # Before any thread exists: threads and children inherit the namespace.
            namespace.enter()
        host = namespace.address if namespace else "127.0.0.1"
        upgrade(settings.database_url)
        turn = shutil.which("turnserver") is not None  # so `check` can test the relay too
        stack = Stack(settings, StackOptions(root=root, run_dir=run_dir, host=host, turn=turn))
        console.print(f"starting the stack on {host} (logs in {run_dir})")
        stack.start()
        _print_ready(console, stack.child_settings, namespace, run_dir)
        if demo:
            ok = _demo(console, stack.child_settings)
            if exit_after_demo:
                return 0 if ok else 1
        console.print("running; Ctrl-C stops everything")
        return _watch(stack, console)
    except KeyboardInterrupt:
        console.print("stopping")
        return 0
    except (HarnessError, NetnsError) as exc:
        console.print(f"[red]the stack failed:[/red] {exc}")
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if stack is not None:
                stack.stop()
            if namespace is not None:
                namespace.destroy()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _watch(stack: Stack, console: Console) -> int:
    while True:
        for process in stack.processes:
            try:
                process.check_running()
            except HarnessError as exc:
                console.print(f"[red]{exc}[/red]")
                return 1
        time.sleep(1)


def _print_ready(
    console: Console, settings: Settings, namespace: NetNamespace | None, run_dir: Path
) -> None:
    """The addresses, and two tokens to try them with. A table cell would cut a token to
    the terminal's width: each is printed whole on a line of its own, and written to a
    file in the run directory."""
    secret = settings.livekit_api_secret.get_secret_value()
    guest = mint_token(
        Credentials(settings.livekit_api_key, secret),
        identity="guest",
        name="Guest",
        room=greenroom_room_name("guest"),
        role=Role.PARTICIPANT,
        ttl=dt.timedelta(hours=1),
        dispatch_agents=(ECHO_AGENT_NAME,),
    )
    app_jwt = mint_app_token(settings.app_jwt_secret.get_secret_value(), "guest", "Guest", 3600)
    tokens = [
        (
            f"participant token ({guest.room}, echo bot)",
            run_dir / PARTICIPANT_TOKEN_FILE,
            guest.jwt,
        ),
        ("app JWT for the API (user 'guest')", run_dir / APP_JWT_FILE, app_jwt),
    ]
    for _, path, value in tokens:
        _write_secret(path, value)
    # Not titled "ready": that word, alone on its line, says that everything is up.
    table = Table(title="the local stack", show_header=False)
    table.add_column()
    table.add_column(overflow="fold")  # an address or a path is folded, never cut
    table.add_row("LiveKit (ws)", settings.livekit_url)
    table.add_row("token service", settings.api_url)
    table.add_row("web pages", f"{settings.api_url}/app/ (development sign-in at /app/signin)")
    for label, path, _ in tokens:
        table.add_row(label, _shown(path))
    if namespace is not None:
        table.add_row("reach it with", f"ip netns exec {namespace.name} <command>")
    console.print(table)
    for label, path, value in tokens:
        # soft_wrap: neither cut nor broken at the terminal's width, so it copies whole.
        console.print(f"{label}, in {_shown(path)}:", soft_wrap=True, markup=False)
        console.print(value, soft_wrap=True, highlight=False, markup=False)
    console.print("[green]ready[/green]")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (var/app.jwt)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_secret(path: Path, value: str) -> None:
    """``value`` and a newline in ``path``, readable by this user only (it is a credential)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # a file left by an earlier run keeps its old mode otherwise
    path.write_text(value + "\n")


def _demo(console: Console, settings: Settings) -> bool:
    console.print("demo: a synthetic participant joins its green room and listens for its echo")
    try:
        result = asyncio.run(
            run_echo_demo(settings.api_url, settings.app_jwt_secret.get_secret_value())
        )
    except Exception as exc:
        console.print(f"[red]demo failed:[/red] {type(exc).__name__}: {exc}")
        return False
    console.print(_demo_table(result))
    return result.markers_echoed > 0


def _demo_table(result: EchoDemoResult) -> Table:
    table = Table(title="echo demo")
    table.add_column("measure")
    table.add_column("value", justify="right")

    def ms(value: float | None) -> str:
        return f"{value:.1f} ms" if value is not None else "-"

    table.add_row("participant", f"{result.identity} in {result.room}")
    table.add_row("echoed by", result.echo_from)
    table.add_row("join time", f"{result.join_s * 1000:.0f} ms")
    table.add_row("markers sent / echoed", f"{result.markers_sent} / {result.markers_echoed}")
    table.add_row("echo round trip p50", ms(result.rtt_p50_ms))
    table.add_row("echo round trip p95", ms(result.rtt_p95_ms))
    table.add_row("echo level", f"{result.echo_level_dbfs:.1f} dBFS")
    return table
