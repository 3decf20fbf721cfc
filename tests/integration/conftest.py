"""The real stack in the test namespace: livekit-server, the token service and the bots."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar, Unpack

import httpx
import pytest
from livekit import rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace, Stack, StackOptions
from talkplatform_agents.lk.naming import ACTIVE_ATTRIBUTE, AGENT_NAME_ATTRIBUTE
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import Database, upgrade
from talkplatform_agents.store.leases import BotLeaseRepository
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from tests.integration.web_browser import browser, web_users  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = "integration-app-secret-0123456789"

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture(scope="session")
def stack(netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("stack")
    database_url = f"sqlite+aiosqlite:///{run_dir / 'talkplatform.db'}"
    upgrade(database_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        APP_JWT_SECRET=APP_SECRET,
        DEV_SIGN_IN=True,  # the pages' sign-in (tests/integration/test_web_pages.py)
        RECORDINGS_DIR=str(run_dir / "recordings"),
    )
    options = StackOptions(root=ROOT, run_dir=run_dir, host=netns.address, turn=True)
    with Stack(settings, options) as running:
        yield running


@pytest.fixture(scope="session")
def live_settings(stack: Stack) -> Settings:
    return stack.child_settings


@pytest.fixture
async def api(live_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_settings.api_url, timeout=10) as client:
        yield client


@pytest.fixture
def user_auth() -> Callable[..., dict[str, str]]:
    def headers(user: str, name: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_app_token(APP_SECRET, user, name, 600)}"}

    return headers


@pytest.fixture
async def people() -> AsyncIterator[AsyncExitStack]:
    """Where a test's participants (and their tracks) are entered, to leave at its end."""
    async with AsyncExitStack() as stack:
        yield stack


class Media(TypedDict, total=False):
    """What a synthetic participant publishes (``ParticipantConfig``'s fields)."""

    publish_audio: bool
    publish_video: bool
    width: int
    height: int
    fps: int


async def join(
    api: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    stack: AsyncExitStack,
    user: str,
    meeting_id: str,
    **media: Unpack[Media],
) -> SyntheticParticipant:
    """``user`` (named after itself) in the meeting's room with a token from the service,
    publishing ``media`` (``ParticipantConfig``'s defaults otherwise); it leaves with
    ``stack``."""
    grant = await post_json(api, "/api/v1/livekit/token", auth(user, user.title()),
                            {"meetingId": meeting_id})  # fmt: skip
    participant = SyntheticParticipant(
        ParticipantConfig(url=grant["wsUrl"], token=grant["token"], **media)
    )
    await stack.enter_async_context(participant)
    return participant


async def post_json(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any = None
) -> dict[str, Any]:
    reply = await client.post(path, json=body, headers=headers)
    assert reply.status_code in (200, 201), reply.text
    result: dict[str, Any] = reply.json()
    return result


async def until(predicate: Callable[[], T | None], timeout_s: float, every: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; return that. It watches state
    that SDK callbacks change, which offers nothing to await."""
    async with asyncio.timeout(timeout_s):
        while not (value := predicate()):  # noqa: ASYNC110
            await asyncio.sleep(every)
    return value


class Participant(Protocol):
    """What a room's participant list says of one, whether the SDK's (``rtc``) or the
    server API's (``api.ParticipantInfo``)."""

    @property
    def identity(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, str]: ...


def settled_bot(participants: Iterable[Participant], agent_name: str) -> str | None:
    """The bot of ``agent_name`` that stays, once there is one: exactly one such bot, and it
    marked active. Before that, a bot seen may still yield to a duplicate and leave
    (bots/election.py); a duplicate dispatched after it finds it active and leaves."""
    bots = [p for p in participants if p.attributes.get(AGENT_NAME_ATTRIBUTE) == agent_name]
    if len(bots) == 1 and bots[0].attributes.get(ACTIVE_ATTRIBUTE) == "1":
        return bots[0].identity
    return None


async def bot_in(room: rtc.Room, agent_name: str, timeout_s: float = 60) -> str:
    """The identity of ``settled_bot`` as ``room``'s participant sees the room, waiting for it.
    A bot's job process may still be starting on a busy machine: be patient."""
    return await until(
        lambda: settled_bot(room.remote_participants.values(), agent_name), timeout_s
    )


async def holder_pid(database_url: str, room: str, agent_name: str) -> int | None:
    """The pid of the process whose bot ``agent_name`` holds its lease on ``room``."""
    db = Database(database_url)
    try:
        leases = await BotLeaseRepository(db).of_room(room)
    finally:
        await db.aclose()
    held = [x.holder for x in leases if x.agent_name == agent_name and x.identity]
    return int(held[0].split("/")[1]) if held else None


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``talkplatform-agents ARGS`` against the live stack, as a person runs it."""
    env = {**os.environ, **settings.child_env()}
    return subprocess.run(
        [sys.executable, "-m", "talkplatform_agents", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def load_argv(settings: Settings, report: Path, *args: str) -> list[str]:
    """``talkplatform-agents load`` against the live server with its keys, writing ``report``
    and plain progress lines; ``args`` are the run's own options."""
    return [
        sys.executable,
        "-m",
        "talkplatform_agents",
        "load",
        "--url",
        settings.livekit_url,
        "--api-key",
        settings.livekit_api_key,
        "--api-secret",
        settings.livekit_api_secret.get_secret_value(),
        "--report",
        str(report),
        "--no-progress",
        *args,
    ]


def load_env() -> dict[str, str]:
    """The environment without the platform's settings: a load run gets its server from its
    options, as QA's would against any deployment."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "DATABASE_"))}


def run_load_cli(argv: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=load_env(), capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip
