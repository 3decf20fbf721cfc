"""The chat relay bot: durable, moderated meeting chat with history, private messages and
reactions."""

from talkplatform_agents.bots.chat.bot import ChatRelayBot, ChatStore
from talkplatform_agents.bots.chat.entry import chat_session
from talkplatform_agents.bots.chat.options import ChatOptions

__all__ = ["ChatOptions", "ChatRelayBot", "ChatStore", "chat_session"]
