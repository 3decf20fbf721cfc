"""``talkplatform-agents meeting ...``: host controls from a terminal, through the token
service's REST API (the same checks as the bot's RPCs and the frontend's calls).

The caller is a platform user: ``--as`` mints their app token with APP_JWT_SECRET (an
operator's shell holds it), or ``--app-token`` passes one the app issued.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import httpx
import typer
from rich.console import Console

from talkplatform_agents.config import Settings
from talkplatform_agents.errors import TalkPlatformError

__all__ = ["register"]

_TIMEOUT_S = 15.0
_T = TypeVar("_T")


class _Caller:
    def __init__(self, settings: Settings, as_user: str | None, app_token: str | None) -> None:
        from talkplatform_agents.service import mint_app_token

        if app_token is None and as_user is None:
            raise typer.BadParameter("give --as USER or --app-token TOKEN")
        token = app_token or mint_app_token(
            settings.app_jwt_secret.get_secret_value(), str(as_user), None, 600
        )
        self.base = settings.api_url
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = self.send(method, path, body)
        try:
            return reply.json()
        except ValueError as exc:
            raise _Failed(f"not JSON from {reply.url}: {reply.text[:200]}", 1) from exc

    def send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The reply, if it is a success; else ``_Failed`` with the service's error."""
        url = f"{self.base}/api/v1{path}"
        try:
            reply = httpx.request(
                method, url, json=body, params=params, headers=self.headers, timeout=_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            raise _Failed(f"token service unreachable at {self.base}: {exc}", 2) from exc
        if reply.status_code >= 400:
            try:
                document = reply.json()
            except ValueError:
                document = {"error": {"message": reply.text[:500]}}
            error = document.get("error", {}) if isinstance(document, dict) else {}
            raise _Failed(f"HTTP {reply.status_code} {error.get('code', '')}: "
                          f"{error.get('message', reply.text[:500])}", 1)  # fmt: skip
        return reply


class _Failed(TalkPlatformError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Env:
    load_settings: Callable[[], Settings] | None = None
    console: Console = field(default_factory=Console)


_env = _Env()
meeting = typer.Typer(help="Waiting room and host controls for one meeting (as a host).")

As = Annotated[str | None, typer.Option("--as", help="Act as this user id (mints a token).")]
Token = Annotated[str | None, typer.Option(help="An app JWT to act with instead.")]
Meeting = Annotated[str, typer.Argument(help="Meeting id.")]
Who = Annotated[str, typer.Argument(help="Participant identity (user id).")]


def register(app: typer.Typer, load_settings: Callable[[], Settings], console: Console) -> None:
    _env.load_settings, _env.console = load_settings, console
    app.add_typer(meeting, name="meeting")


def run(
    as_user: str | None,
    app_token: str | None,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> None:
    result = _caller(as_user, app_token, lambda c: c.call(method, path, body))
    # The answer on stdout, as JSON, for scripts; messages go to the console (stderr).
    typer.echo(json.dumps(result, indent=2))


def _caller(as_user: str | None, app_token: str | None, act: Callable[[_Caller], _T]) -> _T:
    """What ``act`` gets from the service as this user; a failure said, and the exit."""
    assert _env.load_settings is not None, "register() first"
    try:
        return act(_Caller(_env.load_settings(), as_user, app_token))
    except _Failed as exc:
        _env.console.print(f"[red]failed:[/red] {exc}")
        raise typer.Exit(exc.code) from exc


def _save(content: bytes, out: Path | None) -> None:
    """To ``out``, or to stdout when there is none."""
    if out is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(content)
    except OSError as exc:
        _env.console.print(f"[red]failed:[/red] cannot write {out}: {exc}")
        raise typer.Exit(1) from exc
    _env.console.print(f"written to {out} ({len(content)} bytes)")


@meeting.command("waiting")
def waiting(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Who is waiting, first come first."""
    run(as_, app_token, "GET", f"/meetings/{meeting_id}/waiting-room")


@meeting.command("stats")
def stats(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Waiting-room counts and waits."""
    run(as_, app_token, "GET", f"/meetings/{meeting_id}/waiting-room/stats")


@meeting.command("admit")
def admit(
    meeting_id: Meeting,
    identities: Annotated[list[str], typer.Argument(help="One or more waiting identities.")],
    as_: As = None,
    app_token: Token = None,
) -> None:
    """Let one or more waiting participants in."""
    if len(identities) == 1:
        run(as_, app_token, "POST", f"/meetings/{meeting_id}/waiting-room/{identities[0]}/admit")
    else:
        body = {"identities": identities}
        run(as_, app_token, "POST", f"/meetings/{meeting_id}/waiting-room/admit", body)


@meeting.command("admit-all")
def admit_all(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Let everyone waiting in."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/waiting-room/admit-all")


@meeting.command("deny")
def deny(
    meeting_id: Meeting,
    identity: Who,
    reason: Annotated[str | None, typer.Option(help="Shown to the guest.")] = None,
    as_: As = None,
    app_token: Token = None,
) -> None:
    """Turn a waiting participant away (they may not knock again)."""
    path = f"/meetings/{meeting_id}/waiting-room/{identity}/deny"
    run(as_, app_token, "POST", path, {"reason": reason} if reason else None)


@meeting.command("message")
def message(
    meeting_id: Meeting,
    text: Annotated[str, typer.Argument(help="The message.")],
    to: Annotated[str | None, typer.Option(help="One waiting identity (default all).")] = None,
    as_: As = None,
    app_token: Token = None,
) -> None:
    """Send a message to the waiting room."""
    body = {"text": text, **({"identity": to} if to else {})}
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/waiting-room/message", body)


@meeting.command("return")
def back(meeting_id: Meeting, identity: Who, as_: As = None, app_token: Token = None) -> None:
    """Send a participant back to the waiting room."""
    path = f"/meetings/{meeting_id}/participants/{identity}/return-to-waiting"
    run(as_, app_token, "POST", path)


@meeting.command("mute")
def mute(
    meeting_id: Meeting,
    identity: Who,
    source: Annotated[str, typer.Option(help="microphone, camera, ...")] = "microphone",
    track: Annotated[str | None, typer.Option(help="A track sid instead.")] = None,
    as_: As = None,
    app_token: Token = None,
) -> None:
    """Mute a participant's track."""
    body: dict[str, Any] = {"source": source, **({"trackSid": track} if track else {})}
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/participants/{identity}/mute", body)


@meeting.command("mute-all")
def mute_all(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Mute every microphone but the hosts' and co-hosts'."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/mute-all")


@meeting.command("remove")
def remove(meeting_id: Meeting, identity: Who, as_: As = None, app_token: Token = None) -> None:
    """Remove a participant (they may not come back)."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/participants/{identity}/remove")


@meeting.command("pass-host")
def pass_host(meeting_id: Meeting, identity: Who, as_: As = None, app_token: Token = None) -> None:
    """Make another participant the host (you become a co-host)."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/host", {"identity": identity})


@meeting.command("add-cohost")
def add_cohost(meeting_id: Meeting, identity: Who, as_: As = None, app_token: Token = None) -> None:
    """Make a participant a co-host."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/cohosts", {"identity": identity})


@meeting.command("lock")
def lock(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Let no new participant in."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/lock")


@meeting.command("unlock")
def unlock(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Let new participants in again."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/unlock")


@meeting.command("end")
def end(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """End the meeting for everyone."""
    run(as_, app_token, "POST", f"/meetings/{meeting_id}/end")


@meeting.command("settings")
def settings(
    meeting_id: Meeting,
    values: Annotated[str, typer.Argument(help="JSON, e.g. '{\"waiting_room\": true}'")],
    as_: As = None,
    app_token: Token = None,
) -> None:
    """Change meeting settings (host only): waiting_room, locked, join_before_host, auto_admit."""
    try:
        changes = json.loads(values)
    except ValueError as exc:
        raise typer.BadParameter(f"settings must be JSON: {exc}") from exc
    run(as_, app_token, "PATCH", f"/public-meetings/{meeting_id}", {"settings": changes})


@meeting.command("attendance")
def attendance(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
    """Who attended, from when to when (webhooks)."""
    run(as_, app_token, "GET", f"/meetings/{meeting_id}/attendance")


RunId = Annotated[str, typer.Argument(help="The recording's or transcription's id.")]


def _run_commands(name: str, collection: str, noun: str, started: str, stopped: str) -> None:
    """``meeting NAME start|stop|list``: a run of a bot on the meeting room (a recording, a
    transcription), at ``/meetings/{id}/COLLECTION``; the same three for each kind."""
    app = typer.Typer(help=f"{noun.capitalize()}s of the meeting room (hosts and co-hosts).")
    meeting.add_typer(app, name=name)

    @app.command("start", help=started)
    def start(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
        run(as_, app_token, "POST", f"/meetings/{meeting_id}/{collection}", {})

    @app.command("stop", help=stopped)
    def stop(meeting_id: Meeting, run_id: RunId, as_: As = None, app_token: Token = None) -> None:
        run(as_, app_token, "POST", f"/meetings/{meeting_id}/{collection}/{run_id}/stop")

    @app.command("list", help=f"The meeting's {noun}s, oldest first.")
    def list_runs(meeting_id: Meeting, as_: As = None, app_token: Token = None) -> None:
        run(as_, app_token, "GET", f"/meetings/{meeting_id}/{collection}")


_run_commands("record", "recordings", "recording",
              "Start recording the meeting room (the recorder bot joins it).",
              "Stop a recording (its recorder finalises its files).")  # fmt: skip
_run_commands("transcribe", "transcriptions", "transcription",
              "Start transcribing the meeting room (the transcriber bot joins it).",
              "Stop a transcription (its transcriber stores its last captions).")  # fmt: skip
Out = Annotated[Path | None, typer.Option("--out", help="Write to this file, not stdout.")]


@meeting.command("transcript")
def transcript(
    meeting_id: Meeting,
    format: Annotated[
        Literal["json", "vtt", "srt", "text"],
        typer.Option("--format", help="json, vtt (WebVTT), srt (SubRip) or text."),
    ] = "json",
    out: Out = None,
    as_: As = None,
    app_token: Token = None,
) -> None:
    """The meeting's transcript, with the speakers' names (hosts; participants if allowed)."""
    path = f"/meetings/{meeting_id}/transcript"
    reply = _caller(as_, app_token, lambda c: c.send("GET", path, params={"format": format}))
    _save(reply.content, out)


@meeting.command("analytics")
def analytics(
    meeting_id: Meeting,
    out: Out = None,
    timeline: Annotated[
        Path | None,
        typer.Option("--timeline", help="Also save the speaker timeline chart (PNG) here."),
    ] = None,
    as_: As = None,
    app_token: Token = None,
) -> None:
    """Who spoke how much (JSON): talk time, turns, monologues, interruptions, silence."""
    base = f"/meetings/{meeting_id}/analytics"
    figures = _caller(as_, app_token, lambda c: c.call("GET", base))
    _save((json.dumps(figures, indent=2) + "\n").encode(), out)
    if timeline is not None:
        chart = _caller(as_, app_token, lambda c: c.send("GET", base + "/timeline.png"))
        _save(chart.content, timeline)
