"""The chat relay bot's configuration (``CHAT_*`` settings)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from talkplatform_agents.bots.ratelimit import RpcLimits

__all__ = ["BlockedAction", "ChatOptions"]

BlockedAction = Literal["reject", "mask"]


@dataclass(frozen=True)
class ChatOptions:
    history_size: int = 50  # messages a late joiner receives
    max_message_chars: int = 2000
    # Per sender: a steady rate and the burst above it (a token bucket).
    messages_per_second: float = 2.0
    message_burst: int = 10
    reactions_per_second: float = 5.0
    reaction_burst: int = 20
    blocked_words: tuple[str, ...] = ()
    blocked_action: BlockedAction = "reject"
    # Whether hosts and co-hosts see private messages; a meeting's settings
    # (``{"chat": {"hostsSeePrivate": bool}}``) override it.
    hosts_see_private: bool = False
    # Per sender, ahead of the rules above, so that a flood costs no parsing or task each:
    # chat packets and text streams opened (well above the messages' and reactions' rates
    # together, so only a flood meets it), streams open at once, and the time to finish one.
    inbound_per_second: float = 20.0
    inbound_burst: int = 60
    max_open_streams: int = 4
    stream_timeout_s: float = 30.0
    rpc: RpcLimits = field(default_factory=RpcLimits)  # per caller

    def __post_init__(self) -> None:
        if not 0 <= self.history_size <= 500:
            raise ValueError(f"chat history size must be 0..500, got {self.history_size}")
        if not 1 <= self.max_message_chars <= 65_536:
            raise ValueError(
                f"chat max message size must be 1..65536, got {self.max_message_chars}"
            )
        for name in ("messages_per_second", "reactions_per_second"):
            if not getattr(self, name) > 0:
                raise ValueError(f"chat {name} must be positive")
        if self.message_burst < 1 or self.reaction_burst < 1:
            raise ValueError("chat bursts must be at least 1")
        if not self.inbound_per_second > 0 or self.inbound_burst < 1:
            raise ValueError("chat inbound limits must be positive")
        if self.max_open_streams < 1 or not self.stream_timeout_s > 0:
            raise ValueError("chat stream limits must be positive")
        if self.blocked_action not in ("reject", "mask"):
            raise ValueError(
                f"chat blocked action must be reject or mask, not {self.blocked_action!r}"
            )
        if any(not word.strip() for word in self.blocked_words):
            raise ValueError("chat blocked words must not be blank")

    @property
    def max_stream_bytes(self) -> int:
        """Bytes read from one incoming message before it counts as oversized (UTF-8 takes
        up to 4 bytes a character)."""
        return self.max_message_chars * 4 + 1024

    def for_meeting(self, meeting_settings: dict[str, Any]) -> ChatOptions:
        """These options with the meeting's own chat policy applied: its settings'
        ``chat`` object may set ``hostsSeePrivate``, ``blockedWords``, ``blockedAction``
        and ``historySize``. A malformed policy is a ``ValueError`` saying what is wrong."""
        chat = meeting_settings.get("chat")
        if chat is None:
            return self
        if not isinstance(chat, dict):
            raise ValueError("meeting settings: chat must be an object")
        changes: dict[str, Any] = {}
        for key, field_name, kinds in _MEETING_POLICY:
            if key not in chat:
                continue
            value = chat[key]
            if not isinstance(value, kinds) or isinstance(value, bool) is not (kinds is bool):
                raise ValueError(f"meeting settings: chat.{key} has the wrong type")
            changes[field_name] = value
        if "blocked_words" in changes:
            words = changes["blocked_words"]
            if not all(isinstance(w, str) for w in words) or len(words) > 1000:
                raise ValueError("meeting settings: chat.blockedWords must be up to 1000 strings")
            changes["blocked_words"] = tuple(words)
        return replace(self, **changes)  # __post_init__ checks the values


_MEETING_POLICY: tuple[tuple[str, str, type], ...] = (
    ("hostsSeePrivate", "hosts_see_private", bool),
    ("blockedWords", "blocked_words", list),
    ("blockedAction", "blocked_action", str),
    ("historySize", "history_size", int),
)
