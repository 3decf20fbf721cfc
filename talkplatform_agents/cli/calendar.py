"""``talkplatform-agents calendar sync --user U``: one CalDAV sync pass for a user
(``calendar/sync.py``), against ``CALDAV_URL`` with the service account ``CALDAV_USERNAME``
and ``CALDAV_PASSWORD``, on the database of ``DATABASE_URL``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from talkplatform_agents.config import Settings
from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.logs import configure_logging

__all__ = ["register"]

calendar = typer.Typer(help="Calendars (UC-04): CalDAV sync.", no_args_is_help=True)
_settings: list[Callable[[], Settings]] = []
_consoles: list[Console] = []


def register(app: typer.Typer, load_settings: Callable[[], Settings], console: Console) -> None:
    _settings.append(load_settings)
    _consoles.append(console)
    app.add_typer(calendar, name="calendar")


@calendar.command("sync")
def sync(user: Annotated[str, typer.Option(help="The user whose calendar is synced.")]) -> None:
    """Publish the user's scheduled meetings into their calendar and import its tagged
    events; print what changed. Exit 1 when the calendar cannot be reached."""
    from talkplatform_agents.calendar.caldav import CalDavError
    from talkplatform_agents.calendar.sync import sync_user
    from talkplatform_agents.store import Database

    settings, console = _settings[-1](), _consoles[-1]
    configure_logging(settings.log_level, settings.log_format)  # skips are logged
    if not settings.caldav_url:
        console.print("[red]calendar sync:[/red] CALDAV_URL is not set")
        raise typer.Exit(2)

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            report = await sync_user(user, settings, db)
        finally:
            await db.aclose()
        for label, ids in (
            ("published", report.published),
            ("updated", report.updated),
            ("deleted", report.deleted),
            ("imported", report.imported),
            ("linked", report.linked),
            ("skipped", report.skipped),
        ):
            typer.echo(f"{label}: {len(ids)}")
            for entry in ids:
                typer.echo(f"  {entry}")

    try:
        asyncio.run(run())
    except CalDavError as exc:
        why = "the CalDAV server refused" if exc.status else "cannot reach the CalDAV server"
        console.print(f"[red]calendar sync failed:[/red] {why}: {exc}")
        raise typer.Exit(1) from None
    except (TalkPlatformError, SQLAlchemyError) as exc:
        console.print(f"[red]calendar sync failed:[/red] the database cannot be used: {exc}")
        raise typer.Exit(1) from None
