"""``talkplatform-agents load``: QA load injection with synthetic participants, live
progress, tables per room and in total, a JSON report and ``--fail-if`` thresholds."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from talkplatform_agents.config import Settings

if TYPE_CHECKING:
    from talkplatform_agents.lk.tokens import Credentials
    from talkplatform_agents.synthetic.load import LoadSpec

__all__ = [
    "DEFAULT_CLIP_CACHE",
    "LoadAccess",
    "clip_cache_path",
    "load_spec_from_settings",
    "register",
    "render_summary",
    "render_tracks",
]

DEFAULT_CLIP_CACHE = "~/.cache/talkplatform-agents/clips"

E = TypeVar("E", bound=enum.Enum)

_COLUMNS: list[tuple[str, str, str]] = [
    # header, summary key, format
    ("joined", "joined", "{}"),
    ("join p50", "join_p50_ms", "{:.0f}ms"),
    ("join p95", "join_p95_ms", "{:.0f}ms"),
    ("1st frame p50", "first_frame_p50_ms", "{:.0f}ms"),
    ("1st frame p95", "first_frame_p95_ms", "{:.0f}ms"),
    ("kbps/sub", "bitrate_kbps", "{:.0f}"),
    ("loss", "loss_pct", "{:.2f}%"),
    ("jitter", "jitter_ms", "{:.1f}ms"),
    ("latency p50", "latency_p50_ms", "{:.0f}ms"),
    ("latency p95", "latency_p95_ms", "{:.0f}ms"),
    ("rtp lat p50", "rtp_latency_p50_ms", "{:.1f}ms"),
    ("rtp lat p95", "rtp_latency_p95_ms", "{:.1f}ms"),
    ("fps", "fps", "{:.1f}"),
    ("freezes", "freezes", "{}"),
    ("switches ok/fail", "switches", ""),
    ("tracks got/exp", "tracks", ""),
    ("errors", "errors", "{}"),
]
_TRACK_COLUMNS: list[tuple[str, str, str]] = [
    # header, by_track key, format
    ("kind", "kind", "{}"),
    ("source", "source", "{}"),
    ("track", "track_sid", "{}"),
    ("received", "", ""),
    ("kbps/sub", "bitrate_kbps", "{:.0f}"),
    ("packets", "packets_received", "{}"),
    ("loss", "loss_pct", "{:.2f}%"),
    ("jitter", "jitter_ms", "{:.1f}ms"),
    ("frames", "frames", "{}"),
    ("freezes", "freezes", "{}"),
    ("sizes", "sizes", ""),
]
_MAX_TRACK_ROWS = 100  # the report has them all


def _cell(summary: dict[str, Any], key: str, fmt: str) -> str:
    if key == "switches":
        return f"{summary['layer_switches']}/{summary['layer_switch_failures']}"
    if key == "tracks":
        got, expected = summary.get("tracks_received"), summary.get("tracks_expected")
        return "-" if got is None or expected is None else f"{got}/{expected}"
    value = summary.get(key)
    return "-" if value is None else fmt.format(value)


def _track_cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if not key:
        return f"{row['received']}/{row['expected']}"
    value = row.get(key)
    if row.get("kind") != "video" and key in ("frames", "freezes", "sizes"):
        return ""
    if key == "sizes":
        return " ".join(value or []) or "-"
    return "-" if value is None else fmt.format(value)


def render_tracks(report: dict[str, Any], console: Console) -> None:
    """One row per published track: who received it of those who should have, and how."""
    rows = report.get("tracks") or []
    if not rows:
        return
    table = Table(title="tracks")
    table.add_column("sender")
    for header, _, _ in _TRACK_COLUMNS:
        table.add_column(header, justify="left" if header in ("kind", "source") else "right")
    for row in rows[:_MAX_TRACK_ROWS]:
        table.add_row(
            row["sender"], *(_track_cell(row, key, fmt) for _, key, fmt in _TRACK_COLUMNS)
        )
    console.print(table)
    if len(rows) > _MAX_TRACK_ROWS:
        console.print(f"... and {len(rows) - _MAX_TRACK_ROWS} more tracks in the report")


def _speaker_line(total: dict[str, Any]) -> str | None:
    turns = total.get("speaker_turns")
    if not turns:
        return None
    p50, p95 = total.get("speaker_follow_p50_ms"), total.get("speaker_follow_p95_ms")
    follow = "never" if p50 is None else f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"
    missed = total.get("speaker_turns_missed")
    return f"speaker turns followed by the SFU: {follow}; missed {missed} of {turns} turns"


def render_summary(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"load run {report['run_id']}")
    table.add_column("room")
    for header, _, _ in _COLUMNS:
        table.add_column(header, justify="right")
    rows = [*report.get("rooms", {}).items(), ("total", report["total"])]
    for name, summary in rows:
        table.add_row(
            name,
            *(_cell(summary, key, fmt) for _, key, fmt in _COLUMNS),
            end_section=name != "total" and name == rows[-2][0],
        )
    console.print(table)
    render_tracks(report, console)
    speakers = _speaker_line(report["total"])
    if speakers is not None:
        console.print(speakers)
    for screen in (p["screen"] for p in report.get("participants", []) if p.get("screen")):
        size = f"{screen['width']}x{screen['height']}"
        console.print(f"screen share from {screen['sender']}: {size}, PSNR {screen['psnr_db']} dB")
    for error in report.get("errors", []):
        console.print(f"[red]error:[/red] {error}")
    for verdict in report.get("thresholds", []):
        mark = "[red]FAIL[/red]" if verdict["failed"] else "[green]pass[/green]"
        console.print(f"{mark} {verdict['condition']}: {verdict['reason']}")
    if report.get("interrupted"):
        console.print("[yellow]interrupted: partial results[/yellow]")


@dataclass(frozen=True)
class LoadAccess:
    """How a load run gets into the server (its key and secret: the flags', else the
    platform's), and how much its worker processes log."""

    credentials: Credentials
    worker_log_level: str = "WARNING"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, api_key: str | None = None, api_secret: str | None = None
    ) -> LoadAccess:
        from talkplatform_agents.lk.tokens import Credentials  # the CLI starts light

        return cls(
            Credentials(
                api_key or settings.livekit_api_key,
                api_secret or settings.livekit_api_secret.get_secret_value(),
            ),
            # The SDK logs every join at INFO: across hundreds of participants, noise.
            "DEBUG" if settings.log_level.upper() == "DEBUG" else "WARNING",
        )


def load_spec_from_settings(
    settings: Settings, *, url: str | None = None, **fields: Any
) -> LoadSpec:
    """A run against ``url``, else against the platform's own server (``LIVEKIT_URL``);
    ``fields`` are the rest of the spec, as the command line gives them. Here, not in
    synthetic/, which knows LiveKit and tokens but not the platform's settings."""
    from talkplatform_agents.synthetic.load import LoadSpec  # the CLI starts light

    return LoadSpec(url=url or settings.livekit_url, **fields)


def _progress_view(progress: Any) -> Group:
    table = Table(title=f"load: {progress.phase}")
    for column in ("room", "planned", "joined", "failed", "first frame", "done"):
        table.add_column(column, justify="right")
    for room, counts in sorted(progress.rooms.items()):
        table.add_row(
            room,
            str(counts.planned),
            str(counts.joined),
            str(counts.failed),
            str(counts.first_frames),
            str(counts.done),
        )
    left = ""
    if progress.ends_at is not None:
        left = f"{max(progress.ends_at - time.time(), 0):.0f}s left"
    return Group(table, left)


def _progress_lines(console: Console) -> Callable[[Any], None]:
    """Progress without the live view (a CI log, a pipe): a line whenever a count changes."""
    last = ""

    def show(progress: Any) -> None:
        nonlocal last
        rooms = list(progress.rooms.values())
        line = (
            f"load {progress.phase}: joined {sum(r.joined for r in rooms)}"
            f"/{sum(r.planned for r in rooms)}, failed {sum(r.failed for r in rooms)}, "
            f"first frames {sum(r.first_frames for r in rooms)}, done {sum(r.done for r in rooms)}"
        )
        if line != last:
            last = line
            console.print(line, highlight=False, markup=False)

    return show


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"bad size {text!r}: use WIDTHxHEIGHT, e.g. 1280x720") from exc
    return width, height


def clip_cache_path(text: str) -> Path | None:
    """The clip cache's directory, with ``~`` expanded; empty or ``none``: no cache."""
    if not text.strip() or text.strip().lower() == "none":
        return None
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--clip-cache {text!r} is not a directory")
    return path.resolve()


def _choice(kind: type[E], value: str, option: str) -> E:
    try:
        return kind(value.lower())
    except ValueError:
        allowed = " or ".join(str(member.value) for member in kind)
        raise ValueError(f"{option} must be {allowed}, not {value!r}") from None


def register(app: typer.Typer, load_settings: Callable[[], Settings], console: Console) -> None:
    @app.command()
    def load(
        url: Annotated[str | None, typer.Option(help="LiveKit URL [LIVEKIT_URL].")] = None,
        api_key: Annotated[str | None, typer.Option(help="API key [LIVEKIT_API_KEY].")] = None,
        api_secret: Annotated[
            str | None, typer.Option(help="API secret [LIVEKIT_API_SECRET].")
        ] = None,
        rooms: Annotated[int, typer.Option(help="Rooms.")] = 1,
        publishers: Annotated[int, typer.Option(help="Publishers per room.")] = 1,
        subscribers: Annotated[int, typer.Option(help="Subscribers per room.")] = 1,
        duration: Annotated[
            str, typer.Option(help="Run time after the last join, e.g. 60s.")
        ] = "60s",
        ramp: Annotated[
            str, typer.Option(help="Joins per second, e.g. 5/s (0: all at once).")
        ] = "5/s",
        codec: Annotated[str, typer.Option(help="vp8 or h264.")] = "vp8",
        simulcast: Annotated[
            bool, typer.Option("--simulcast/--no-simulcast", help="Simulcast layers.")
        ] = True,
        pre_encoded: Annotated[
            bool,
            typer.Option(
                help="Publish clips encoded once (PyAV) from light clients, three pre-encoded "
                "layers with --simulcast (one without), and pre-encoded Opus."
            ),
        ] = False,
        clip_cache: Annotated[
            str,
            typer.Option(
                help="Where pre-encoded clips are kept between runs ('none': encode every run)."
            ),
        ] = DEFAULT_CLIP_CACHE,
        layout: Annotated[
            str, typer.Option(help="speaker or grid: which layers subscribers request.")
        ] = "speaker",
        size: Annotated[
            str, typer.Option(help="Camera size (720p gives 3 simulcast layers).")
        ] = "1280x720",
        fps: Annotated[int, typer.Option(help="Camera frame rate.")] = 30,
        max_bitrate: Annotated[
            int, typer.Option(help="Camera bitrate cap (bps, top layer).")
        ] = 1_700_000,
        screen_share: Annotated[
            bool, typer.Option(help="The first publisher of each room also shares a screen.")
        ] = False,
        screen_size: Annotated[str, typer.Option(help="Screen-share size.")] = "1920x1080",
        video: Annotated[
            bool,
            typer.Option(
                "--video/--no-video", help="Publishers send a camera (--no-video: audio only)."
            ),
        ] = True,
        audio: Annotated[
            bool, typer.Option("--audio/--no-audio", help="Publishers send a marked tone.")
        ] = True,
        speaker_turns: Annotated[
            str,
            typer.Option(
                help="Publishers take turns being loud for this long each, e.g. 3s, and "
                "subscribers time the SFU's active-speaker change (0: off)."
            ),
        ] = "0",
        decode: Annotated[
            str,
            typer.Option(
                help="Which subscribers decode (barcode latency, pictures, the screen share's "
                "readability): none (the default), sample (the first of each room) or all. "
                "The others count RTP without decoding."
            ),
        ] = "none",
        audio_markers: Annotated[
            bool, typer.Option(help="Subscribers decode the tone's markers (CPU-heavy).")
        ] = False,
        switch_layers: Annotated[
            bool,
            typer.Option(
                "--switch-layers/--no-switch-layers", help="Subscribers verify LOW/MEDIUM/HIGH."
            ),
        ] = True,
        processes: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
        connect_timeout: Annotated[float, typer.Option(help="Seconds allowed per join.")] = 10.0,
        room_prefix: Annotated[str, typer.Option(help="Room names start with this.")] = "load",
        report: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path(
            "load-report.json"
        ),
        fail_if: Annotated[
            str | None,
            typer.Option(help="Fail (exit 1) when any holds, e.g. 'join_p95>2s,loss>2%'."),
        ] = None,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="Live progress view.")
        ] = True,
        token_service: Annotated[
            str | None,
            typer.Option(
                help="Get tokens from this TalkPlatform token service (one meeting per room; "
                "app JWTs signed with APP_JWT_SECRET) instead of minting them."
            ),
        ] = None,
    ) -> None:
        """Load rooms with synthetic participants and measure what subscribers receive."""
        from talkplatform_agents.cli.load_tokens import ServiceTokens
        from talkplatform_agents.synthetic.load import (
            Codec,
            Layout,
            MediaOptions,
            parse_duration,
            parse_fail_if,
            parse_ramp,
            run_load,
        )
        from talkplatform_agents.synthetic.load.spec import Decode

        settings = load_settings()
        try:
            width, height = _parse_size(size)
            screen_w, screen_h = _parse_size(screen_size)
            spec = load_spec_from_settings(
                settings,
                url=url,
                rooms=rooms,
                publishers=publishers,
                subscribers=subscribers,
                duration_s=parse_duration(duration),
                ramp_per_s=parse_ramp(ramp),
                processes=processes,
                room_prefix=room_prefix,
                connect_timeout_s=connect_timeout,
                media=MediaOptions(
                    codec=_choice(Codec, codec, "--codec"),
                    simulcast=simulcast,
                    pre_encoded=pre_encoded,
                    width=width,
                    height=height,
                    fps=fps,
                    max_bitrate=max_bitrate,
                    video=video,
                    audio=audio,
                    audio_markers=audio_markers,
                    screen_share=screen_share,
                    screen_width=screen_w,
                    screen_height=screen_h,
                    layout=_choice(Layout, layout, "--layout"),
                    switch_layers=switch_layers,
                    decode=_choice(Decode, decode, "--decode"),
                    speaker_turn_s=parse_duration(speaker_turns),
                    clip_cache=clip_cache_path(clip_cache),
                ),
            )
            conditions = parse_fail_if(fail_if) if fail_if else []
        except ValueError as exc:
            console.print(f"[red]load:[/red] {exc}")
            raise typer.Exit(2) from exc
        access = LoadAccess.from_settings(settings, api_key=api_key, api_secret=api_secret)
        issuer = ServiceTokens.from_settings(settings, token_service) if token_service else None
        creds, level = access.credentials, access.worker_log_level
        try:
            if progress:
                with Live(console=console, refresh_per_second=2, transient=True) as live:
                    outcome = run_load(
                        spec,
                        creds,
                        report,
                        conditions,
                        lambda p: live.update(_progress_view(p)),
                        level,
                        issuer,
                    )
            else:
                lines = _progress_lines(console)
                outcome = run_load(spec, creds, report, conditions, lines, level, issuer)
        finally:
            if issuer is not None:
                issuer.close()
        # Sixteen columns: wider than most terminals, but wrapped lines beat truncated cells.
        out = Console(width=max(Console().width, 180))
        render_summary(outcome.report, out)
        console.print(f"report written to {report}")
        raise typer.Exit(outcome.exit_code)
