"""Debian's chromium, driven by playwright, for the web pages' tests (``test_web_*.py``).

One browser for the whole session (its start is the costly part); each person in a test is a
browser context of their own (their own storage, so their own sign-in). Fake media devices:
the camera is chromium's test pattern, the microphone a WAV of tone bursts, so a level meter
rises and falls with it. The pytest process already lives in the test namespace, so the
browser does too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.browser import CHROMIUM, chromium_args, tone_bursts
from talkplatform_agents.service import mint_app_token

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
PAGE_ERROR = "pageerror:"  # the console's lines of uncaught exceptions
# Playwright's default of 5 s per ``expect`` is short for a step that crosses processes
# (page, token service, livekit-server, a bot) on a loaded 2-core machine.
expect.set_options(timeout=15_000)


def uid(prefix: str) -> str:
    """A user id or message id of its own for each test: ``<prefix>-<8 hex>``."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
async def browser(
    tmp_path_factory: pytest.TempPathFactory, live_settings: Settings
) -> AsyncIterator[Browser]:
    wav = tone_bursts(tmp_path_factory.mktemp("media") / "microphone.wav")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(live_settings.api_url, wav)
        )
        try:
            yield launched
        finally:
            await launched.close()


class WebUser:
    """A person with a browser context of their own, signed in as ``user_id``."""

    def __init__(self, context: BrowserContext, base_url: str, token: str, user_id: str) -> None:
        self.context = context
        self.base_url = base_url
        self.token = token
        self.user_id = user_id
        self.console: list[str] = []

    async def open(self, path: str) -> Page:
        """``path`` in a new tab, signed in: the token goes in the fragment, as the
        platform's own login hands it over (the page keeps it and drops the fragment)."""
        page = await self.context.new_page()
        page.on("console", self._log)
        page.on("pageerror", lambda exc: self.console.append(f"{PAGE_ERROR} {exc}"))
        await page.goto(f"{self.base_url}{path}#token={self.token}")
        return page

    def _log(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")


class WebUsers:
    """``await web_users("alice", "Alice")``: a signed-in person in a browser context of
    their own; every context closes at the test's end."""

    def __init__(self, browser: Browser, settings: Settings) -> None:
        self._browser = browser
        self._settings = settings
        self.made: list[WebUser] = []

    async def __call__(self, user_id: str, name: str | None = None, *, phone: bool = False,
                       ttl_s: int = 900) -> WebUser:  # fmt: skip
        context = await self._browser.new_context(
            viewport=PHONE if phone else DESKTOP, permissions=["camera", "microphone"]
        )
        secret = self._settings.app_jwt_secret.get_secret_value()
        token = mint_app_token(secret, user_id, name, ttl_s)
        user = WebUser(context, self._settings.api_url, token, user_id)
        self.made.append(user)
        return user


@pytest.fixture
async def web_users(
    browser: Browser, live_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[WebUsers]:
    users = WebUsers(browser, live_settings)
    yield users
    uncaught: list[str] = []
    for user in users.made:
        if user.console:  # what the page said, for a failure's report
            print(f"[{request.node.name}] {user.user_id}'s console:", *user.console[-30:],
                  sep="\n  ")  # fmt: skip
        uncaught += [f"{user.user_id}: {line}" for line in user.console
                     if line.startswith(PAGE_ERROR)]  # fmt: skip
        await user.context.close()
    if uncaught:  # a page that threw is a bug, even when the test's steps went through
        pytest.fail("uncaught exception in a page:\n  " + "\n  ".join(uncaught), pytrace=False)


async def screenshot(page: Page, name: str) -> Path:
    """``var/screenshots/<name>.png``: the page as a person sees it, kept as a test artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
