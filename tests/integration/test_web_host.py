"""The host console in real browsers: guests knock, the host admits one (who then sees the
host's video), denies another, and removes the first, who is told so and cannot come back.
Someone who is not a host is sent from the console to the guest page. The console's other
controls, each seen from the guest's page: mute, back to the waiting room and in again,
co-host, lock, recording, and the meeting's end."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect

from tests.integration.web_browser import DESKTOP, PHONE, WebUsers, screenshot, uid

from .conftest import post_json

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]
WAIT_MS = 30_000  # a bot's job process may still be starting on a busy machine


async def _video_playing(page: Page, identity: str) -> None:
    """The tile of ``identity`` shows a video with frames."""
    await page.wait_for_function(
        """(identity) => {
            const video = document.querySelector(`.tile[data-identity="${identity}"] video`);
            return video !== null && video.videoWidth > 0 && video.readyState >= 2;
        }""",
        arg=identity,
        timeout=WAIT_MS,
    )


async def _deny(queue: Locator, guest: Page) -> None:
    """Deny Dora from the queue, with a reason: she is told, in words."""
    await queue.get_by_role("button", name="Deny Dora Denied").click()
    await queue.get_by_label("Reason for denying Dora Denied (optional)").fill("Wrong meeting")
    await queue.get_by_role("button", name="Confirm: deny Dora Denied").click()
    await expect(guest.get_by_role("heading", name="You were not let in")).to_be_visible()
    await expect(guest.get_by_text("Wrong meeting")).to_be_visible()
    await screenshot(guest, "meeting-denied-phone")


async def _remove(people: Locator, guest: Page) -> None:
    """Remove Gus: he is told, and the door stays shut for him."""
    await people.get_by_role("button", name="Remove Gus Guest").click()
    await expect(people.get_by_role("button", name="Remove Gus Guest", exact=True)).to_be_hidden()
    await screenshot(people.page, "host-console-remove-confirm")
    await people.get_by_role("button", name="Confirm: remove Gus Guest").click()
    problem = guest.get_by_test_id("problem")
    await expect(problem).to_have_attribute("data-left", "removed", timeout=WAIT_MS)
    await expect(problem.get_by_role("heading")).to_have_text("You were removed from the meeting")
    await expect(problem.get_by_role("button", name="Rejoin")).to_have_count(0)
    await screenshot(guest, "meeting-removed")
    await expect(people.get_by_text("Only you so far.")).to_be_visible()
    await guest.reload()  # the token request is refused, and says why
    await expect(problem.get_by_role("heading")).to_have_text("You were removed from this meeting")
    await expect(problem).to_contain_text("you cannot join it again")


async def _console(
    web_users: WebUsers, api: httpx.AsyncClient, user_auth: Auth, title: str, *, waiting: bool
) -> tuple[str, str, Page, Locator]:
    """A new meeting, and its host (Hana) in the console: its id, hers, her page, the panel."""
    host_id = uid("hana")
    body = {"title": title, "settings": {"waiting_room": waiting}}
    made = await post_json(api, "/api/v1/meetings", user_auth(host_id, "Hana Host"), body)
    mid = str(made["id"])
    host = await (await web_users(host_id, "Hana Host")).open(f"/app/host/{mid}")
    panel = host.get_by_test_id("host-panel")
    await expect(panel.get_by_text("You are the host.")).to_be_visible(timeout=WAIT_MS)
    return mid, host_id, host, panel


async def test_host_admits_denies_and_removes(
    web_users: WebUsers, api: httpx.AsyncClient, user_auth: Auth
) -> None:
    guest_id, other_id = uid("gus"), uid("dora")
    mid, host_id, host, panel = await _console(
        web_users, api, user_auth, "Design review", waiting=True
    )

    # Not a host: the console says so, before any knock, and leads to the guest page.
    other = await (await web_users(other_id, "Dora Denied", phone=True)).open(f"/app/host/{mid}")
    await expect(other.get_by_role("heading", name="This console is for hosts")).to_be_visible()
    await screenshot(other, "host-not-host-phone")
    await other.get_by_role("link", name="Join as a guest").click()
    await expect(other.get_by_role("heading", name="Waiting to be let in")).to_be_visible()

    guest = await (await web_users(guest_id, "Gus Guest")).open(f"/app/meeting/{mid}")
    await expect(guest.get_by_role("heading", name="Waiting to be let in")).to_be_visible()

    # The queue, live (the lobby's bot reports each knock): then Gus's note, next to him.
    queue = panel.get_by_test_id("waiting-queue")
    gus = queue.locator("li[data-identity]", has_text="Gus Guest")
    await expect(gus.get_by_role("button", name="Admit Gus Guest")).to_be_visible(timeout=WAIT_MS)
    await expect(queue.get_by_role("button", name="Admit Dora Denied")).to_be_visible()
    await guest.get_by_label("A note to the host (optional)").fill("Gus from the design team")
    await guest.get_by_role("button", name="Send to the host").click()
    # The page said it went (to the lobby's bot), before the host's side is looked at.
    # The page sends it once the lobby's bot has settled (a duplicate about to leave would
    # take it along), which on a busy machine can take a while.
    await expect(guest.locator(".status-line")).to_have_text(
        "Your message was sent to the host.", timeout=WAIT_MS
    )
    await expect(gus.get_by_text("Gus from the design team")).to_be_visible(timeout=WAIT_MS)
    await screenshot(guest, "meeting-waiting")
    await screenshot(host, "host-console")
    await host.set_viewport_size(ViewportSize(width=PHONE["width"], height=PHONE["height"]))
    await screenshot(host, "host-console-phone")
    await host.set_viewport_size(ViewportSize(width=DESKTOP["width"], height=DESKTOP["height"]))

    await _deny(queue, other)

    # Admit: Gus is in the meeting and sees Hana's camera; Hana sees his.
    await gus.get_by_role("button", name="Admit Gus Guest").click()
    await _video_playing(guest, host_id)
    await expect(queue.locator("li[data-identity]")).to_have_count(0)
    people = panel.get_by_test_id("participants")
    await expect(people.get_by_role("button", name="Remove Gus Guest")).to_be_visible()
    await _video_playing(host, guest_id)
    await screenshot(guest, "meeting-in")
    await screenshot(host, "host-console-in")

    await _remove(people, guest)


async def test_host_console_controls(
    web_users: WebUsers, api: httpx.AsyncClient, user_auth: Auth
) -> None:
    guest_id, late_id = uid("gus"), uid("lena")
    mid, _, host, panel = await _console(web_users, api, user_auth, "Controls", waiting=False)
    guest = await (await web_users(guest_id, "Gus Guest")).open(f"/app/meeting/{mid}")
    people = panel.get_by_test_id("participants")
    gus = people.locator(f'li[data-identity="{guest_id}"]')

    # Mute: the guest's own page says that their microphone is off.
    await gus.get_by_role("button", name="Mute Gus Guest").click()
    await expect(guest.get_by_role("button", name="Unmute microphone")).to_be_visible()
    await expect(guest.get_by_role("figure", name="Gus Guest (you) · muted")).to_be_visible()
    await expect(gus).to_contain_text("microphone off")

    # Back to the waiting room, then in again: the meeting → lobby → meeting move.
    to_waiting = gus.get_by_role("button", name="Return Gus Guest to the waiting room")
    await to_waiting.click()
    await expect(guest.get_by_role("heading", name="Waiting to be let in")).to_be_visible()
    queue = panel.get_by_test_id("waiting-queue")
    await queue.get_by_role("button", name="Admit Gus Guest").click()
    await expect(guest.get_by_role("button", name="Mute microphone")).to_be_visible()
    await expect(gus).to_contain_text("microphone on")

    # Co-host: the host's list says so (and offers no return to the waiting room any more).
    await gus.get_by_role("button", name="Make Gus Guest a co-host").click()
    await expect(gus).to_contain_text("co-host")
    await expect(to_waiting).to_have_count(0)

    # Lock: the console says so, and someone new is told at the door.
    await panel.get_by_role("button", name="Lock the meeting").click()
    await expect(panel.get_by_test_id("lock-state")).to_have_text("Locked: nobody new can join")
    await expect(panel.get_by_role("button", name="Unlock the meeting")).to_be_visible()
    late = await (await web_users(late_id, "Lena Late", phone=True)).open(f"/app/meeting/{mid}")
    await expect(late.get_by_role("heading", name="The meeting is locked")).to_be_visible()
    await screenshot(host, "host-console-controls")

    # Recording: everyone sees it on while the recorder writes, and off once stopped.
    await panel.get_by_role("button", name="Start a recording").click()
    recording = guest.get_by_test_id("recording-indicator")
    await expect(recording).to_be_visible(timeout=WAIT_MS)
    await expect(panel.get_by_test_id("recording-state")).to_have_text("Recording: on")
    await screenshot(guest, "meeting-recording")
    await panel.get_by_role("button", name="Stop the recording").click()
    await expect(recording).to_be_hidden(timeout=WAIT_MS)

    # End, after its confirm step: the guest is told.
    await panel.get_by_role("button", name="End meeting").click()
    await panel.get_by_role("button", name="Confirm: end the meeting for everyone").click()
    ended = re.compile("^(The|This) meeting has ended$")
    await expect(guest.get_by_role("heading", name=ended)).to_be_visible()
    await expect(host.get_by_role("heading", name=ended)).to_be_visible()
    await screenshot(guest, "meeting-ended")
