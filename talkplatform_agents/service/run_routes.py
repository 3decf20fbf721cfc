"""What the HTTP routes of a bot's runs (recordings, transcriptions) share: who may act (a
meeting's hosts and co-hosts), a run looked up within its meeting, and the start, stop and
list routes of a kind of run (``RunRoutes``).

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
runtime, and the stop route's path parameter is named by the kind (``recording_id``, ...),
which a string annotation could not see.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Path, status
from pydantic import ConfigDict

from talkplatform_agents.errors import Forbidden, Gone, NotFound
from talkplatform_agents.roles import MODERATOR_ROLES, Role
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.openapi import BODY, LIVEKIT, errors
from talkplatform_agents.service.routes import Context, User
from talkplatform_agents.service.runs import RunControl
from talkplatform_agents.service.schemas import Wire
from talkplatform_agents.store import Database, MeetingView
from talkplatform_agents.store.runs import RunRepository, RunView

__all__ = ["RunRoutes", "StartBody", "add_run_routes", "moderated", "with_role"]

ViewT = TypeVar("ViewT", bound=RunView)


class StartBody(Wire):
    """Nothing to say yet; anything else is a 422."""

    model_config = ConfigDict(extra="forbid")


async def with_role(
    ctx: ServiceContext, meeting_id: str, user_id: str
) -> tuple[MeetingView, Role | None]:
    """The meeting and the user's role in it, if any (``NotFound`` for no meeting)."""
    found = await ctx.meetings.with_role(meeting_id, user_id)
    if found is None:
        raise NotFound("meeting not found", meetingId=meeting_id)
    return found


async def moderated(ctx: ServiceContext, meeting_id: str, user_id: str) -> MeetingView:
    """The meeting, if the user is one of its hosts or co-hosts (else ``Forbidden``)."""
    meeting, role = await with_role(ctx, meeting_id, user_id)
    if role not in MODERATOR_ROLES:
        raise Forbidden("only a host or co-host may do this", meetingId=meeting_id, caller=user_id)
    return meeting


@dataclass(frozen=True)
class RunRoutes(Generic[ViewT]):
    """A kind of run over HTTP: under ``/api/v1/meetings/{meeting_id}/<plural>``."""

    control: RunControl[Any]
    repository: Callable[[Database], RunRepository[Any, ViewT]]
    plural: str  # "recordings": the path's last part, and the list's key
    start_doc: str  # the start route's description
    stop_doc: str  # the stop route's

    @property
    def base(self) -> str:
        return "/api/v1/meetings/{meeting_id}/" + self.plural

    @property
    def id_param(self) -> str:
        """The path parameter of one run's id: ``recording_id``, ..."""
        return f"{self.control.noun}_id"

    async def run_of(self, ctx: ServiceContext, meeting_id: str, run_id: str) -> ViewT:
        """The meeting's run ``run_id`` (``NotFound`` for none, or another meeting's)."""
        run = await self.repository(ctx.db).get(run_id)
        if run is None or run.meeting_id != meeting_id:
            raise NotFound(
                f"no such {self.control.noun}",
                meetingId=meeting_id,
                **{self.control.id_key: run_id},
            )
        return run


def add_run_routes(router: APIRouter, kind: RunRoutes[Any]) -> None:
    """The start, stop and list routes of ``kind``, for a meeting's hosts and co-hosts. The
    router declares the errors every route may have (a login, the store, the meeting, 403).
    """
    control = kind.control
    run_id_param = kind.id_param
    # Named by the kind, as its OpenAPI parameter has always been.
    run_id_path = Path(alias=run_id_param, title=run_id_param.replace("_", " ").title())

    @router.post(
        kind.base,
        status_code=status.HTTP_202_ACCEPTED,
        responses=errors(BODY, LIVEKIT, 409, 410),
        description=inspect.cleandoc(kind.start_doc),
    )
    async def start(
        meeting_id: str, user: User, ctx: Context, body: StartBody | None = None
    ) -> dict[str, Any]:
        meeting = await moderated(ctx, meeting_id, user.user_id)
        if meeting.ended_at is not None:
            raise Gone("the meeting has ended", meetingId=meeting_id)
        started = await control.start(kind.repository(ctx.db), ctx.server, meeting_id, user.user_id)
        result: dict[str, Any] = started.to_json()
        return result

    @router.post(
        kind.base + "/{" + run_id_param + "}/stop",
        status_code=status.HTTP_202_ACCEPTED,
        responses=errors(409),
        description=inspect.cleandoc(kind.stop_doc),
    )
    async def stop(
        meeting_id: str, run_id: Annotated[str, run_id_path], user: User, ctx: Context
    ) -> dict[str, Any]:
        await moderated(ctx, meeting_id, user.user_id)
        run = await kind.run_of(ctx, meeting_id, run_id)
        stopped = await control.stop(kind.repository(ctx.db), ctx.server, run)
        result: dict[str, Any] = stopped.to_json()
        return result

    @router.get(
        kind.base,
        name=f"list_{kind.plural}",
        description=f"The meeting's {kind.plural}, oldest first (also after the meeting ended).",
    )
    async def list_runs(meeting_id: str, user: User, ctx: Context) -> dict[str, Any]:
        await moderated(ctx, meeting_id, user.user_id)
        made = await kind.repository(ctx.db).of_meeting(meeting_id)
        return {kind.plural: [run.to_json() for run in made]}
