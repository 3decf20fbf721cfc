"""The web pages' frame in a real browser: sign-in, the start page, and bad input (an
unknown meeting, an expired login) answered with a message and a way forward."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from talkplatform_agents.config import Settings
from talkplatform_agents.service import mint_app_token
from tests.integration.web_browser import WebUsers, screenshot

pytestmark = pytest.mark.integration


async def test_development_sign_in_then_start_page(web_users: WebUsers) -> None:
    person = await web_users("web-signin")
    page = await person.context.new_page()
    await page.goto(f"{person.base_url}/app/meeting/later-meeting")
    await expect(page.get_by_role("heading", name="Please sign in")).to_be_visible()
    await page.get_by_role("link", name="Sign in").first.click()
    await page.get_by_label("User id").fill("not valid!")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#user-id:invalid")).to_have_count(1)  # the form says so
    await page.get_by_label("User id").fill("web-signin")
    await page.get_by_label("Display name (optional)").fill("Wendy Web")
    await screenshot(page, "signin")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/app/meeting/later-meeting")
    await expect(page.get_by_role("heading", name="No such meeting")).to_be_visible()
    await page.goto(f"{person.base_url}/app/")
    await expect(page.get_by_text("Signed in as Wendy Web")).to_be_visible()
    await screenshot(page, "start")


async def test_unknown_meeting_and_expired_login(
    web_users: WebUsers, api: httpx.AsyncClient
) -> None:
    person = await web_users("web-lost", phone=True)
    page = await person.open("/app/meeting/no-such-meeting")
    await expect(page.get_by_role("heading", name="No such meeting")).to_be_visible()
    await screenshot(page, "meeting-unknown-phone")
    expired = await web_users("web-expired", ttl_s=-60)
    page = await expired.open("/app/meeting/no-such-meeting")
    await expect(page.get_by_role("heading", name="Please sign in")).to_be_visible()
    reply = await api.get("/app/meeting/bad%20id")
    assert reply.status_code == 404 and "Start again" in reply.text


async def test_a_link_for_someone_else_asks_before_switching(
    web_users: WebUsers, live_settings: Settings
) -> None:
    """A link that carries another person's login (anyone can craft one) does not silently
    swap whose account this browser uses: the page asks, and "Stay" keeps the first."""
    person = await web_users("web-first", "Fay First")
    page = await person.open("/app/")
    await expect(page.get_by_text("Signed in as Fay First")).to_be_visible()
    secret = live_settings.app_jwt_secret.get_secret_value()
    other = mint_app_token(secret, "web-other", "Oscar Other", 600)
    await page.goto(f"{person.base_url}/app/#token={other}")
    await expect(page.get_by_test_id("which-account")).to_be_visible()
    await screenshot(page, "which-account")
    await page.get_by_role("button", name="Stay Fay First").click()
    await expect(page.get_by_text("Signed in as Fay First")).to_be_visible()
    assert "#token" not in page.url
    await page.goto(f"{person.base_url}/app/#token={other}")
    await page.get_by_role("button", name="Continue as Oscar Other").click()
    await expect(page.get_by_text("Signed in as Oscar Other")).to_be_visible()
