"""Deployable entrypoint: the recorder bot (agent_name ``recorder``).

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \\
        RECORDINGS_DIR=... python agents/recorder.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. Both read the same
settings (``talkplatform_agents.config.Settings``), once, at the edge. The logic lives in
``talkplatform_agents.bots.recorder``; copy this file to adapt the deployment, not the bot.
"""

from livekit.agents import cli

from talkplatform_agents.bots.worker import WorkerOptions, agent_server
from talkplatform_agents.cli.main import bot_settings
from talkplatform_agents.lk.naming import RECORDER_AGENT_NAME

# The same server as ``talkplatform-agents worker`` runs for this bot, on a port of its own beside
# the green room's (8081).
options = WorkerOptions.from_settings(bot_settings())
server = agent_server(RECORDER_AGENT_NAME, options, port=8082)

if __name__ == "__main__":
    cli.run_app(server)
