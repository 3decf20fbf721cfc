"""``talkplatform-agents``: the launcher. Settings are read here, once, and passed down."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from talkplatform_agents.cli.calendar import register as register_calendar
from talkplatform_agents.cli.load import register as register_load
from talkplatform_agents.cli.meeting import register as register_meeting
from talkplatform_agents.cli.scheduler import register as register_scheduler
from talkplatform_agents.config import Settings
from talkplatform_agents.logs import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="talkplatform-agents",
    help="TalkPlatform's server side on LiveKit: token service, bots, synthetic participants.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        console.print(f"[red]configuration error:[/red] {problems}")
        # SystemExit, not typer.Exit: agents/*.py load their settings outside any command.
        raise SystemExit(2) from exc


def bot_settings() -> Settings:
    """The settings of a process that serves bots (``worker``, and agents/*.py), which is
    also where its job processes are told their environment: they inherit it."""
    settings = load_settings()
    # Bots need no local end-of-turn model; preloading it costs 244 MB per job process.
    os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")
    return settings


def setup_logging(settings: Settings) -> None:
    """LOG_LEVEL and LOG_FORMAT, for this process (its children are told theirs: ``up``'s
    through the environment, the worker's through its options)."""
    configure_logging(settings.log_level, settings.log_format)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [API_PORT].")] = None,
) -> None:
    """Run the token service (FastAPI)."""
    import uvicorn

    from talkplatform_agents.service import create_app

    settings = load_settings()
    setup_logging(settings)
    if host is not None or port is not None:
        settings = settings.model_copy(
            update={"api_host": host or settings.api_host, "api_port": port or settings.api_port}
        )
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # Its own lines through this process's handler (LOG_FORMAT), not uvicorn's.
        log_config=None,
        access_log=False,
    )


@app.command()
def worker(
    agents: Annotated[str, typer.Option(help="Comma-separated agent names, or 'all'.")] = "all",
    ready_file: Annotated[
        Path | None, typer.Option(help="Touched once every bot has registered.")
    ] = None,
) -> None:
    """Run bots: the chat relay and the moderator in room host processes (many meetings
    each), the green room a process per session."""
    from talkplatform_agents.bots.worker import WorkerError, WorkerOptions, run_workers

    settings = bot_settings()
    setup_logging(settings)
    try:
        options = WorkerOptions.from_settings(settings)
    except ValueError as exc:  # a CHAT_* value the chat bot refuses
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc

    def on_ready(registered: dict[str, str]) -> None:
        names = ", ".join(f"{name} ({wid})" for name, wid in registered.items())
        console.print(f"[green]worker ready[/green]: {names}")
        if ready_file is not None:
            ready_file.write_text(json.dumps(registered))

    try:
        code = run_workers([a.strip() for a in agents.split(",") if a.strip()], options, on_ready)
    except (ValueError, WorkerError) as exc:
        console.print(f"[red]worker failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


@app.command()
def token(
    identity: Annotated[str, typer.Option(help="Participant identity.")],
    room: Annotated[str, typer.Option(help="Room name.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    role: Annotated[str, typer.Option(help="host, cohost or participant.")] = "participant",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
    agent: Annotated[
        list[str] | None, typer.Option(help="Dispatch this bot into the room (repeatable).")
    ] = None,
) -> None:
    """Mint a LiveKit token from the API key and secret."""
    from talkplatform_agents.lk import Credentials, Role, mint_token

    settings = load_settings()
    try:
        minted = mint_token(
            Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()),
            identity=identity,
            name=name or identity,
            room=room,
            role=Role(role),
            ttl=dt.timedelta(seconds=ttl),
            dispatch_agents=tuple(agent or ()),
        )
    except ValueError as exc:
        console.print(f"[red]cannot mint:[/red] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(minted.jwt)


@app.command("user-token")
def user_token(
    user: Annotated[str, typer.Option(help="User id (the JWT's sub).")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Mint an app JWT for local use, as the platform's login would."""
    from talkplatform_agents.lk.naming import validate_identity
    from talkplatform_agents.service import mint_app_token

    settings = load_settings()
    try:
        validate_identity(user)
    except ValueError as exc:
        console.print(f"[red]cannot mint:[/red] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(mint_app_token(settings.app_jwt_secret.get_secret_value(), user, name, ttl))


@app.command()
def check(
    api: Annotated[str | None, typer.Option(help="Token service URL (green-room token).")] = None,
    user: Annotated[
        str | None, typer.Option(help="With --api: mint an app JWT for this user.")
    ] = None,
    app_token: Annotated[str | None, typer.Option(help="With --api: your app JWT.")] = None,
    url: Annotated[str | None, typer.Option(help="LiveKit URL (with --token).")] = None,
    token: Annotated[str | None, typer.Option(help="A LiveKit token for a green room.")] = None,
    turn: Annotated[str | None, typer.Option(help="TURN URL to test, e.g. turn:host:3478.")] = None,
    turn_user: Annotated[str | None, typer.Option(help="TURN username.")] = None,
    turn_password: Annotated[str | None, typer.Option(help="TURN password.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per step.")] = 15.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Green-room preflight: join, ICE, resume, publish, echo, report, TURN relay."""
    from talkplatform_agents.cli.check import CheckTarget, check_sync
    from talkplatform_agents.lk.ice import IceServer
    from talkplatform_agents.service import mint_app_token

    settings = load_settings()
    out = Console()
    if (api is None) == (url is None):
        console.print("[red]check:[/red] give either --api, or --url with --token")
        raise typer.Exit(2)
    if url is not None and token is None:
        console.print("[red]check:[/red] --url needs --token")
        raise typer.Exit(2)
    if api is not None and app_token is None:
        if user is None:
            console.print("[red]check:[/red] --api needs --user or --app-token")
            raise typer.Exit(2)
        secret = settings.app_jwt_secret.get_secret_value()
        app_token = mint_app_token(secret, user, user, 600)
    try:
        turn_server = IceServer((turn,), turn_user, turn_password) if turn else None
    except ValueError as exc:
        console.print(f"[red]check:[/red] --turn: {exc}")
        raise typer.Exit(2) from exc
    target = CheckTarget(
        api_url=api.rstrip("/") if api else None,
        app_token=app_token,
        url=url,
        token=token,
        turn=turn_server,
        step_timeout_s=timeout,
    )
    code = check_sync(target, out, as_json)
    # After a failed join the native SDK can abort while the interpreter tears it down
    # ("panic in a function that cannot unwind"), which would turn a clean exit status 1
    # into SIGABRT. Everything is printed by now: leave without that teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Run the Alembic migrations up to REVISION."""
    from talkplatform_agents.store import upgrade

    settings = load_settings()
    setup_logging(settings)
    upgrade(settings.database_url, revision)
    console.print(f"database at {revision}: {_redact(settings.database_url)}")


@app.command()
def up(
    netns: Annotated[
        bool | None,
        typer.Option(
            "--netns/--no-netns",
            help="Run inside a fresh network namespace (default: when this user can).",
        ),
    ] = None,
    demo: Annotated[bool, typer.Option(help="Run the echo demo once ready.")] = False,
    exit_after_demo: Annotated[
        bool, typer.Option(help="Stop after the demo instead of waiting for Ctrl-C.")
    ] = False,
    run_dir: Annotated[Path, typer.Option(help="Logs and local state.")] = Path("var"),
) -> None:
    """Start livekit-server, the token service and the bots; say ready when all are."""
    from talkplatform_agents.cli.up import run_up

    settings = load_settings()
    if settings.app_env == "development":  # the local stack: its pages' sign-in
        settings = settings.model_copy(update={"dev_sign_in": True})
    setup_logging(settings)
    code = run_up(
        settings,
        root=Path.cwd(),
        run_dir=run_dir.resolve(),
        netns=netns,
        demo=demo,
        exit_after_demo=exit_after_demo,
        console=console,
    )
    raise typer.Exit(code)


register_load(app, load_settings, console)
register_meeting(app, load_settings, console)
register_scheduler(app, load_settings, console)
register_calendar(app, load_settings, console)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def main() -> None:
    app()
