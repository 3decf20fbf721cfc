"""Deployable entrypoint: the moderator bot (agent_name ``waiting-room``): the waiting room
and host controls, in meeting rooms and their lobbies.

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \\
        python agents/waiting_room.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. Both read the same
settings (``talkplatform_agents.config.Settings``), once, at the edge. The logic lives in
``talkplatform_agents.bots.moderator``.
"""

import functools

from livekit.agents import AgentServer, cli

from talkplatform_agents.bots import BotOptions
from talkplatform_agents.bots.moderator import moderator_entrypoint, moderator_prewarm
from talkplatform_agents.cli.main import bot_settings
from talkplatform_agents.lk.naming import WAITING_ROOM_AGENT_NAME

settings = bot_settings()
options = BotOptions.from_settings(settings)

server = AgentServer(
    ws_url=settings.livekit_url,
    api_key=settings.livekit_api_key,
    api_secret=settings.livekit_api_secret.get_secret_value(),
    multiprocessing_context="spawn",
    setup_fnc=functools.partial(moderator_prewarm, options=options.moderator),
)
server.rtc_session(moderator_entrypoint, agent_name=WAITING_ROOM_AGENT_NAME)

if __name__ == "__main__":
    cli.run_app(server)
