"""Deployable entrypoint: the moderator bot (agent_name ``waiting-room``): the waiting room
and host controls, in meeting rooms and their lobbies.

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \\
        python agents/waiting_room.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. It reads the same
settings as the rest of the platform (``talkplatform_agents.config.Settings``), once, here.
The logic lives in ``talkplatform_agents.bots.moderator``.
"""

import functools
import os

from livekit.agents import AgentServer, cli

from talkplatform_agents.bots.moderator import (
    ModeratorOptions,
    moderator_entrypoint,
    moderator_prewarm,
)
from talkplatform_agents.config import Settings
from talkplatform_agents.lk.naming import WAITING_ROOM_AGENT_NAME

# Bots need no local end-of-turn model; preloading it costs 244 MB per job process.
os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")
settings = Settings()
options = ModeratorOptions.from_settings(settings)

server = AgentServer(
    multiprocessing_context="spawn",
    setup_fnc=functools.partial(moderator_prewarm, options=options),
)
server.rtc_session(moderator_entrypoint, agent_name=WAITING_ROOM_AGENT_NAME)

if __name__ == "__main__":
    cli.run_app(server)
