"""The meeting chat on the guest page, in real browsers, against the real chat bot: a Python
participant (a stock client, in both of LiveKit's wire forms, and a TalkPlatform client
through the bot) and two browsers chat both ways; a late browser gets the history; edits,
reactions, private messages and a refusal's notice; captions from the real transcriber."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from talkplatform_agents.config import Settings
from talkplatform_agents.harness.speech import speak
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from talkplatform_agents.synthetic.participant import TextMessage
from talkplatform_agents.synthetic.speech import SpeechTrack
from tests.integration.web_browser import WebUser, WebUsers, screenshot, uid

from .conftest import bot_in, post_json, until

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]
WAIT_MS = 20_000
CAPTION_WAIT_MS = 60_000


class Pete:
    """The Python participant: what reaches it on lk.chat and the chat's data topics."""

    def __init__(self, participant: SyntheticParticipant) -> None:
        self.participant = participant
        self.texts = participant.listen_text(proto.TOPIC_CHAT)
        self.seen: list[TextMessage] = []
        self.packets: list[tuple[str | None, dict[str, Any]]] = []

    def _drain(self) -> None:
        while not self.texts.empty():
            self.seen.append(self.texts.get_nowait())
        queue = self.participant.data
        while not queue.empty():
            packet = queue.get_nowait()
            self.packets.append((packet.topic, json.loads(packet.payload)))

    async def text(self, predicate: Callable[[TextMessage], bool]) -> TextMessage:
        def found() -> TextMessage | None:
            self._drain()
            return next((t for t in self.seen if predicate(t)), None)

        return await until(found, WAIT_MS / 1000)

    async def packet(
        self, topic: str, predicate: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            self._drain()
            return next((b for t, b in self.packets if t == topic and predicate(b)), None)

        return await until(found, WAIT_MS / 1000)


def _message(page: Page, text: str) -> Locator:
    """The chat messages whose text (not what they quote) has ``text``."""
    messages = page.get_by_role("log", name="Chat").get_by_test_id("chat-message")
    return messages.filter(has=page.locator(".chat-text", has_text=text))


async def _open_chat(page: Page) -> None:
    """The meeting page, its chat ready: the composer there and the bot found."""
    await expect(page.get_by_label("Message", exact=True)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("chat-status")).to_be_hidden(timeout=WAIT_MS)


async def _write(page: Page, text: str, to: str | None = None) -> None:
    if to is not None:
        await page.get_by_label("To", exact=True).select_option(label=to)
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send").click()


@dataclass
class Scene:
    """One meeting: its host (who never joins), Python's Pete, and Alice in a browser."""

    mid: str
    host: str
    bot: str
    pete: Pete
    alice_user: WebUser
    alice: Page

    @property
    def synthetic(self) -> SyntheticParticipant:
        return self.pete.participant

    async def say(self, text: str, **attributes: str) -> str:
        """Pete's message through the bot (TalkPlatform's form): a room message unless
        ``attributes`` say otherwise."""
        attrs = attributes or {proto.ATTR_RELAY: "1"}
        return await self.synthetic.send_text(
            text, topic=proto.TOPIC_CHAT, to=[self.bot], attributes=attrs
        )


async def test_chat_both_ways_history_edits_reactions_private_notices_and_captions(
    web_users: WebUsers,
    api: httpx.AsyncClient,
    user_auth: Auth,
    people: AsyncExitStack,
    live_settings: Settings,
) -> None:
    host, alice_id, pete_id = (uid(n) for n in ("host", "alice", "pete"))
    created = await post_json(api, "/api/v1/meetings", user_auth(host, "Hana Host"),
                              {"title": "Team sync", "settings": {}})  # fmt: skip
    mid = str(created["id"])
    grant = await post_json(api, "/api/v1/livekit/token", user_auth(pete_id, "Pete Python"),
                            {"meetingId": mid})  # fmt: skip
    config = ParticipantConfig(url=grant["wsUrl"], token=grant["token"], publish_audio=False,
                               publish_video=False)  # fmt: skip
    synthetic = SyntheticParticipant(config)
    pete = Pete(synthetic)
    await people.enter_async_context(synthetic)
    # The transcriber's start (a job process, its recogniser) overlaps the chat's phases.
    started = await api.post(f"/api/v1/meetings/{mid}/transcriptions",
                             headers=user_auth(host, "Hana Host"))  # fmt: skip
    assert started.status_code == 202, started.text
    alice_user = await web_users(alice_id, "Alice Browser")
    alice = await alice_user.open(f"/app/meeting/{mid}")
    await _open_chat(alice)
    await expect(alice.get_by_text("No messages yet")).to_be_visible()
    bot = await bot_in(synthetic.room, CHAT_AGENT_NAME)
    scene = Scene(mid, host, bot, pete, alice_user, alice)

    relayed = await _python_to_browser(scene)
    await _forged_door_messages(scene, str(grant["wsUrl"]))
    alice_message = await _browser_to_python_with_an_edit(scene)
    await _reactions(scene, alice_message, relayed)
    await _private_messages(scene)
    await _a_refusal_in_words(scene, live_settings.chat_max_message_chars)
    bob_user, bob = await _late_browser(scene, web_users)
    await _captions(scene, bob, people)

    # Every message shown once, whatever form it came in.
    for page, text in ((alice, "Hello from Python"), (alice, "A stock broadcast"),
                       (alice, "Legacy hi"), (alice, "Hi Pete"), (bob, "Legacy hi")):  # fmt: skip
        await expect(_message(page, text)).to_have_count(1)
    for user in (alice_user, bob_user):
        assert not [line for line in user.console if line.startswith("pageerror")], user.console


async def _python_to_browser(scene: Scene) -> str:
    """Every form: through the bot (a text stream), a stock client's broadcast text stream,
    a stock legacy packet broadcast. The relayed message's id."""
    relayed = await scene.say("Hello from Python")
    await scene.synthetic.send_text("A stock broadcast", topic=proto.TOPIC_CHAT)
    legacy = {"id": uid("legacy"), "timestamp": int(time.time() * 1000), "message": "Legacy hi"}
    await scene.synthetic.send_data(json.dumps(legacy).encode(), topic=proto.TOPIC_LEGACY_CHAT)
    for text in ("Hello from Python", "A stock broadcast", "Legacy hi"):
        await expect(_message(scene.alice, text)).to_contain_text("Pete Python", timeout=WAIT_MS)
    return relayed


async def _forged_door_messages(scene: Scene, ws_url: str) -> None:
    """A participant forges the door's word (any participant may publish data): a "returned"
    to this meeting's own lobby on the right server, the most plausible there is. The page
    believes the door only from the service (no participant), so Alice stays; the chat line
    Pete sends after it (reliable, in order) shows that the forgery was read and ignored."""
    forged = {"status": "returned", "token": "forged", "wsUrl": ws_url,
              "room": f"meeting-{scene.mid}-lobby"}  # fmt: skip
    await scene.synthetic.send_data(json.dumps(forged).encode(), topic="tp.waiting.status")
    after = {"id": uid("legacy"), "timestamp": int(time.time() * 1000), "message": "Still here?"}
    await scene.synthetic.send_data(json.dumps(after).encode(), topic=proto.TOPIC_LEGACY_CHAT)
    await expect(_message(scene.alice, "Still here?")).to_be_visible(timeout=WAIT_MS)
    await expect(scene.alice.get_by_test_id("waiting")).to_have_count(0)
    await expect(scene.alice.get_by_role("button", name="Leave")).to_be_visible()


async def _browser_to_python_with_an_edit(scene: Scene) -> str:
    """Through the bot: pending, then sent on the bot's receipt; then edited (the same id
    again). The message's id."""
    alice = scene.alice
    await _write(alice, "Hi Pete, from the browser")
    mine = _message(alice, "Hi Pete, from the browser")
    await expect(mine.get_by_test_id("chat-state")).to_have_text("Sent", timeout=WAIT_MS)
    got = await scene.pete.text(lambda t: t.text == "Hi Pete, from the browser")
    assert got.sender == scene.bot, got
    assert got.attributes[proto.ATTR_SENDER] == scene.alice_user.user_id
    assert got.attributes[proto.ATTR_SENDER_NAME] == "Alice Browser"
    assert got.attributes[proto.ATTR_KIND] == "message"

    await mine.get_by_role("button", name="Edit").click()
    await expect(alice.get_by_text("Editing your message")).to_be_visible()
    await alice.get_by_label("Message", exact=True).fill("Hi Pete, edited in the browser")
    await alice.get_by_role("button", name="Save").click()
    edited = await scene.pete.text(lambda t: t.text == "Hi Pete, edited in the browser")
    assert edited.stream_id == got.stream_id and proto.ATTR_EDITED in edited.attributes
    mine = _message(alice, "Hi Pete, edited in the browser")
    await expect(mine).to_contain_text("(edited)")
    await expect(mine.get_by_test_id("chat-state")).to_have_text("Sent", timeout=WAIT_MS)
    return got.stream_id


async def _reactions(scene: Scene, alice_message: str, relayed: str) -> None:
    """Counted by the bot: Python's shows in the browser, the browser's reaches Python."""
    reaction = {"id": uid("r"), "emoji": "👍", "messageId": alice_message}
    await scene.synthetic.send_data(json.dumps(reaction).encode(), topic=proto.TOPIC_REACTION,
                                    to=[scene.bot])  # fmt: skip
    mine = _message(scene.alice, "Hi Pete, edited")
    await expect(mine.get_by_role("button", name="React 👍, 1 so far")).to_be_visible(
        timeout=WAIT_MS
    )
    await _message(scene.alice, "Hello from Python").get_by_role("button", name="React 🎉").click()
    relayed_back = await scene.pete.packet(
        proto.TOPIC_REACTION, lambda b: b.get("messageId") == relayed
    )
    assert relayed_back["sender"] == scene.alice_user.user_id, relayed_back
    assert relayed_back["counts"] == {"🎉": 1}, relayed_back


async def _private_messages(scene: Scene) -> None:
    """Both ways, marked as private in the browser."""
    alice = scene.alice
    await _write(alice, "Just between us, Pete", to="Pete Python")
    private = await scene.pete.text(lambda t: t.text == "Just between us, Pete")
    assert private.attributes[proto.ATTR_PRIVATE] == "1"
    tag = _message(alice, "Just between us").get_by_test_id("chat-private")
    await expect(tag).to_have_text("Private to Pete Python")
    await scene.say("Psst, Alice", **{proto.ATTR_TO: scene.alice_user.user_id})
    tag = _message(alice, "Psst, Alice").get_by_test_id("chat-private")
    await expect(tag).to_have_text("Private message", timeout=WAIT_MS)
    await alice.get_by_label("To", exact=True).select_option(label="Everyone")


async def _a_refusal_in_words(scene: Scene, limit: int) -> None:
    """A message over the bot's limit: refused, said in words, the message marked not sent."""
    alice = scene.alice
    await _write(alice, "x" * (limit + 1))
    notice = alice.get_by_test_id("chat-notice").filter(has_text="not sent")
    await expect(notice).to_contain_text(f"longer than {limit} characters", timeout=WAIT_MS)
    refused = _message(alice, "xxxx")
    await expect(refused.get_by_test_id("chat-state")).to_have_text("Not sent: it is too long")
    await expect(refused.get_by_role("button", name="Try again")).to_be_visible()
    await screenshot(alice, "meeting-chat")


async def _late_browser(scene: Scene, web_users: WebUsers) -> tuple[WebUser, Page]:
    """A late browser on a phone: the history, marked as earlier, with the reaction totals
    and nobody's private messages; then live, a private message that is not theirs does
    not reach them. They reply from the keyboard."""
    bob_user = await web_users(uid("bob"), "Bob Late", phone=True)
    bob = await bob_user.open(f"/app/meeting/{scene.mid}")
    await _open_chat(bob)
    log = bob.get_by_role("log", name="Chat")
    await expect(log.get_by_text("Earlier messages")).to_be_visible(timeout=WAIT_MS)
    history = log.get_by_test_id("chat-message")
    await expect(history).to_have_count(5, timeout=WAIT_MS)
    # Oldest first (Python's four raced each other to the bot; the browser's came later).
    texts = await history.locator(".chat-text").all_inner_texts()
    assert texts[-1] == "Hi Pete, edited in the browser", texts
    assert set(texts) == {"Hello from Python", "A stock broadcast", "Legacy hi", "Still here?",
                          "Hi Pete, edited in the browser"}  # fmt: skip
    edited = _message(bob, "Hi Pete, edited")
    await expect(edited).to_contain_text("(edited)")
    await expect(edited.get_by_role("button", name="React 👍, 1 so far")).to_be_visible()

    await scene.say("Only for Alice", **{proto.ATTR_TO: scene.alice_user.user_id})
    await scene.say("For everyone again")
    await expect(_message(bob, "For everyone again")).to_be_visible(timeout=WAIT_MS)
    await expect(_message(scene.alice, "For everyone again")).to_be_visible(timeout=WAIT_MS)
    await expect(_message(scene.alice, "Only for Alice")).to_be_visible()
    for text in ("Only for Alice", "Just between us", "Psst"):
        await expect(_message(bob, text)).to_have_count(0)

    await _message(bob, "Legacy hi").get_by_role("button", name="Reply").click()
    await expect(bob.get_by_text("Replying to Pete Python")).to_be_visible()
    await bob.get_by_label("Message", exact=True).fill("Answering from my phone")
    await bob.get_by_label("Message", exact=True).press("Enter")
    reply = _message(scene.alice, "Answering from my phone")
    await expect(reply).to_contain_text("Replying to Pete Python: “Legacy hi”", timeout=WAIT_MS)
    await screenshot(bob, "meeting-chat-phone")
    return bob_user, bob


async def _captions(scene: Scene, bob: Page, people: AsyncExitStack) -> None:
    """The real transcriber (the host started it at the start): Pete says a sentence, Alice
    reads it under his name; the switch hides the captions."""
    alice = scene.alice
    microphone = SpeechTrack(scene.synthetic.room)
    await microphone.start()
    people.push_async_callback(microphone.aclose)
    clip = speak("good morning everyone")
    await expect(alice.get_by_test_id("transcribing-indicator")).to_be_visible(timeout=60_000)
    # The browsers' fake microphones play tone bursts, captioned too: quiet them first.
    for page in (alice, bob):
        await page.get_by_role("button", name="Mute microphone").click()
        await expect(page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    await microphone.say(clip.samples)
    captions = alice.get_by_test_id("captions")
    final = captions.locator(".caption:not(.interim)").filter(has_text="Pete Python:")
    # The offline recogniser runs at about 0.6x real time on a busy core, and
    # its job process may still be warming up: a final can take a while on a loaded box.
    await expect(final.first).to_be_visible(timeout=CAPTION_WAIT_MS)
    await screenshot(alice, "meeting-captions")
    switch = alice.get_by_role("switch", name="Show captions")
    await expect(switch).to_have_attribute("aria-checked", "true")
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "false")
    await expect(captions).to_be_hidden()
    await expect(alice.get_by_text("Captions are off.")).to_be_visible()
    await switch.click()
    await expect(final.first).to_be_visible()
