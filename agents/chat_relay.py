"""Deployable entrypoint: the chat relay bot (agent_name ``chat-relay``).

Run it on its own::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \\
        python agents/chat_relay.py start

It is one room host (``talkplatform_agents.bots.room_host``): a process that serves up to
``WORKER_ROOMS_PER_HOST`` rooms on one event loop, registering with livekit-server as an
agent worker the way livekit-agents' workers do. Run as many as the meetings need. Or run
every TalkPlatform bot at once with ``talkplatform-agents worker``. Both read the same
settings (``talkplatform_agents.config.Settings``), once, at the edge. The logic lives in
``talkplatform_agents.bots.chat``.
"""

import sys

from talkplatform_agents.bots.worker import WorkerOptions, run_room_host
from talkplatform_agents.cli.main import bot_settings
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME

if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["start"]):
        sys.exit(f"usage: python {sys.argv[0]} [start]")
    sys.exit(run_room_host((CHAT_AGENT_NAME,), WorkerOptions.from_settings(bot_settings())))
