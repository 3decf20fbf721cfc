"""Deployable entrypoint: the moderator bot (agent_name ``waiting-room``): the waiting room
and host controls, in meeting rooms and their lobbies.

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \\
        python agents/waiting_room.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. Both read the same
settings (``talkplatform_agents.config.Settings``), once, at the edge. The logic lives in
``talkplatform_agents.bots.moderator``.
"""

from livekit.agents import cli

from talkplatform_agents.bots.worker import WorkerOptions, agent_server
from talkplatform_agents.cli.main import bot_settings
from talkplatform_agents.lk.naming import WAITING_ROOM_AGENT_NAME

# The same server as ``talkplatform-agents worker`` runs for this bot, on LiveKit's default
# health-check port.
options = WorkerOptions.from_settings(bot_settings())
server = agent_server(WAITING_ROOM_AGENT_NAME, options, port=8081)

if __name__ == "__main__":
    cli.run_app(server)
