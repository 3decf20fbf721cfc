"""Deployable entrypoint: the chat relay bot (agent_name ``chat-relay``).

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \
        python agents/chat_relay.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker`` (which also applies
the ``CHAT_*`` settings). The logic lives in ``talkplatform_agents.bots.chat``.
"""

import functools
import os

from livekit.agents import AgentServer, cli

from talkplatform_agents.bots.chat import ChatOptions, chat_entrypoint, chat_prewarm
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME

# Bots need no local end-of-turn model; preloading it costs 244 MB per job process.
os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")
DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./var/talkplatform.db")

server = AgentServer(
    multiprocessing_context="spawn",
    setup_fnc=functools.partial(chat_prewarm, options=ChatOptions(), database_url=DATABASE_URL),
)
server.rtc_session(chat_entrypoint, agent_name=CHAT_AGENT_NAME)

if __name__ == "__main__":
    cli.run_app(server)
