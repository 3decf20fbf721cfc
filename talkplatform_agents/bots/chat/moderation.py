"""Moderation rules, in order: mute, size, rate, blocked words. Pure: the bot applies the
verdict."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.chat.wordfilter import WordFilter
from talkplatform_agents.bots.ratelimit import RateLimiter

__all__ = ["Code", "Moderator", "Verdict", "notice_text"]


class Code(enum.StrEnum):
    """Why the bot refused something; the notice's ``tp.code``."""

    MUTED = "muted"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    BLOCKED_WORD = "blocked_word"
    EMPTY = "empty"
    INVALID = "invalid"
    NOT_YOURS = "not_yours"
    DELETED = "deleted"
    UNKNOWN_MESSAGE = "unknown_message"
    UNAVAILABLE = "unavailable"


_NOTICES = {
    Code.MUTED: "A host has muted your chat: your message was not sent.",
    Code.TOO_LARGE: "Your message was not sent: it is longer than {limit} characters.",
    Code.RATE_LIMITED: "Your message was not sent: you are sending too fast. Wait a moment.",
    Code.BLOCKED_WORD: "Your message was not sent: it contains a blocked word ({words}).",
    Code.EMPTY: "Your message was not sent: it is empty.",
    Code.INVALID: "Your message could not be read: {detail}.",
    Code.NOT_YOURS: "You cannot edit someone else's message.",
    Code.DELETED: "That message was deleted by a host and cannot be edited.",
    Code.UNKNOWN_MESSAGE: "Your reaction was not sent: there is no message {detail}.",
    Code.UNAVAILABLE: "Your message could not be stored, so it was not sent. Please resend it.",
}


def notice_text(code: Code, **details: object) -> str:
    return _NOTICES[code].format(**details)


@dataclass(frozen=True)
class Verdict:
    text: str  # what to store and relay (masked when the filter masks)
    refused: Code | None = None
    detail: str = ""  # the notice, when refused

    @property
    def masked(self) -> bool:
        return self.refused is None and bool(self.detail)


class Moderator:
    def __init__(self, options: ChatOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self._options = options
        self._messages = RateLimiter(options.messages_per_second, options.message_burst, clock)
        self._reactions = RateLimiter(options.reactions_per_second, options.reaction_burst, clock)
        self._words = WordFilter(options.blocked_words)

    def message(self, sender: str, text: str, *, muted: bool) -> Verdict:
        if muted:
            return Verdict(text, Code.MUTED, notice_text(Code.MUTED))
        if not text.strip():
            return Verdict(text, Code.EMPTY, notice_text(Code.EMPTY))
        limit = self._options.max_message_chars
        if len(text) > limit:
            return Verdict(text, Code.TOO_LARGE, notice_text(Code.TOO_LARGE, limit=limit))
        if not self._messages.allow(sender):
            return Verdict(text, Code.RATE_LIMITED, notice_text(Code.RATE_LIMITED))
        found = self._words.check(text)
        if not found.found:
            return Verdict(text)
        if self._options.blocked_action == "reject":
            words = ", ".join(found.found)
            return Verdict(text, Code.BLOCKED_WORD, notice_text(Code.BLOCKED_WORD, words=words))
        return Verdict(found.text, None, f"masked: {', '.join(found.found)}")

    def reaction(self, sender: str, *, muted: bool) -> Code | None:
        if muted:
            return Code.MUTED
        if not self._reactions.allow(sender):
            return Code.RATE_LIMITED
        return None
