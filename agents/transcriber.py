"""Deployable entrypoint: the transcriber bot (agent_name ``transcriber``).

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... DATABASE_URL=... \\
        TRANSCRIBER_STT=... python agents/transcriber.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. Both read the same
settings (``talkplatform_agents.config.Settings``), once, at the edge. The logic lives in
``talkplatform_agents.bots.transcriber``; copy this file to adapt the deployment, not the bot.
"""

from livekit.agents import cli

from talkplatform_agents.bots.worker import WorkerOptions, agent_server
from talkplatform_agents.cli.main import bot_settings
from talkplatform_agents.lk.naming import TRANSCRIBER_AGENT_NAME

# The same server as ``talkplatform-agents worker`` runs for this bot, on a port of its own
# beside the green room's (8081) and the recorder's (8082).
# TRANSCRIBER_STT=module:factory picks the recogniser (bots/transcriber/engine.py).
options = WorkerOptions.from_settings(bot_settings())
server = agent_server(TRANSCRIBER_AGENT_NAME, options, port=8083)

if __name__ == "__main__":
    cli.run_app(server)
