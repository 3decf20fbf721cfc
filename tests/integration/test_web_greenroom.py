"""The green room's page in a real browser: the echo of the fake microphone comes back, the
level bar follows its tone bursts, playback records then plays, blur brings the preview of
what others see, the report has a verdict and every preflight check passes; on a phone, a
lost connection offers to reconnect; blocked devices say how to allow them."""

from __future__ import annotations

import re

import pytest
from livekit import api as lkapi
from playwright.async_api import Page, expect

from talkplatform_agents.config import Settings
from tests.integration.web_browser import WebUsers, screenshot, uid

pytestmark = pytest.mark.integration

ALL_PASSED = "All 8 checks passed."
# The fake microphone is 0.5 s of tone (about -9 dBFS), then 0.5 s of silence: its bar
# (0-100 for -60..0 dBFS) is seen both high and low. The page reads the bars every 100 ms.
_SEEN_HIGH_AND_LOW = """([testId, high, low]) => {
  const value = Number(document.querySelector(`[data-testid="${testId}"]`)
    ?.getAttribute('aria-valuenow') ?? 0);
  const seen = (window.__seen ??= {});
  const bar = (seen[testId] ??= { high: false, low: false });
  bar.high ||= value >= high;
  bar.low ||= value <= low;
  return bar.high && bar.low;
}"""


async def _bar_seen_high_and_low(page: Page, test_id: str, high: int, low: int) -> None:
    await page.wait_for_function(
        _SEEN_HIGH_AND_LOW, arg=[test_id, high, low], polling=50, timeout=15_000
    )


async def test_echo_meters_playback_blur_report_and_checks(web_users: WebUsers) -> None:
    # A fresh identity: a green room is deleted shortly after its user leaves.
    person = await web_users(uid("gr"), "Greta Green")
    page = await person.open("/app/greenroom")
    # The last check passes once the page measures its own voice coming back.
    await expect(page.get_by_test_id("preflight-summary")).to_have_text(ALL_PASSED, timeout=40_000)
    await _bar_seen_high_and_low(page, "echo-bar", 35, 10)  # the echo: above -39 dBFS
    await _bar_seen_high_and_low(page, "level-bar", 60, 15)  # the bot's meter of the mic
    verdict = page.get_by_test_id("report-verdict")
    await expect(verdict).to_have_text(re.compile("^(Good|Fair|Poor)$"))
    await page.wait_for_function(  # a tone, for the picture
        "() => Number(document.querySelector('[data-testid=level-bar]').ariaValueNow) >= 60",
        polling=50,
    )
    await screenshot(page, "greenroom")

    await page.get_by_label("Seconds to record").fill("2")
    await page.get_by_label("Record, then play back").check()
    phase = page.get_by_test_id("phase")
    await expect(phase).to_have_attribute("data-phase", "recording")
    await expect(phase).to_contain_text("Recording")
    await expect(phase).to_have_attribute("data-phase", "playing")
    await expect(phase).to_contain_text("Playing back")
    await screenshot(page, "greenroom-playback")

    await page.get_by_label("Blur my background").check()
    preview = page.get_by_test_id("preview")
    await expect(preview).to_have_attribute("data-state", "showing", timeout=20_000)
    await expect(preview.get_by_label(re.compile("^What others will see"))).to_be_visible()
    await expect(page.get_by_label("Show what others will see")).to_be_checked()
    await expect(page.get_by_test_id("video-error")).to_be_empty()
    await screenshot(page, "greenroom-blur")


async def test_phone_keyboard_and_a_lost_connection(
    web_users: WebUsers, live_settings: Settings
) -> None:
    user_id = uid("grp")
    person = await web_users(user_id, "Pat Phone", phone=True)
    page = await person.open("/app/greenroom")
    await expect(page.get_by_test_id("preflight-summary")).to_have_text(ALL_PASSED, timeout=40_000)
    await expect(page.get_by_test_id("report-verdict")).to_be_visible()
    # Keyboard: the echo's mode is reachable and switchable without a pointer.
    await page.get_by_label("Live echo").focus()
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_label("Record, then play back")).to_be_checked()
    await expect(page.get_by_test_id("phase")).to_have_attribute("data-phase", "recording")
    await screenshot(page, "greenroom-phone")

    # The server drops the connection: the page says so and offers to reconnect.
    room_api = lkapi.LiveKitAPI(
        live_settings.livekit_http_url,
        live_settings.livekit_api_key,
        live_settings.livekit_api_secret.get_secret_value(),
    )
    try:
        await room_api.room.remove_participant(
            lkapi.RoomParticipantIdentity(room=f"greenroom-{user_id}", identity=user_id)
        )
    finally:
        await room_api.aclose()
    lost = page.get_by_role("alert").filter(has_text="connection to the green room")
    reconnect = lost.get_by_role("button", name="Reconnect")
    await expect(reconnect).to_be_visible()
    await screenshot(page, "greenroom-lost-phone")
    await reconnect.click()
    await expect(reconnect).to_be_hidden()
    # Back with the bot, which still records and plays back as asked before.
    await expect(page.get_by_test_id("preflight-summary")).to_have_text(ALL_PASSED, timeout=30_000)
    await expect(page.get_by_test_id("phase")).to_have_attribute(
        "data-phase", re.compile("recording|playing")
    )


async def test_blocked_camera_and_microphone_say_how_to_allow(web_users: WebUsers) -> None:
    person = await web_users(uid("grd"), "Dana Denied")
    # As a browser answers when the person (or a policy) has blocked both devices.
    await person.context.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => Promise.reject("
        "new DOMException('Permission denied', 'NotAllowedError'));"
    )
    page = await person.open("/app/greenroom")
    help_ = page.get_by_test_id("device-help")
    await expect(help_).to_contain_text("Camera and microphone are blocked")
    await expect(help_).to_contain_text("Allow")
    await expect(help_.get_by_role("button", name="Try again")).to_be_visible()
    checks = page.get_by_test_id("preflight")
    for step in ("camera", "microphone", "echo"):
        await expect(checks.locator(f"li[data-step={step}]")).to_have_attribute(
            "data-state", "fail"
        )
    await expect(checks.locator("li[data-step=connect]")).to_have_attribute("data-state", "pass")
    await screenshot(page, "greenroom-denied")
