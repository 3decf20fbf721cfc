"""Deployable entrypoint: the green-room bot (agent_name ``greenroom-echo``).

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... python agents/greenroom_echo.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. Both read the same
settings (``talkplatform_agents.config.Settings``), once, at the edge. The logic lives in
``talkplatform_agents.bots.greenroom``; copy this file to adapt the deployment, not the bot.
"""

import functools

from livekit.agents import AgentServer, cli

from talkplatform_agents.bots import BotOptions
from talkplatform_agents.bots.greenroom import greenroom_entrypoint, greenroom_prewarm
from talkplatform_agents.cli.main import bot_settings
from talkplatform_agents.lk.naming import ECHO_AGENT_NAME

settings = bot_settings()
options = BotOptions.from_settings(settings)

server = AgentServer(
    ws_url=settings.livekit_url,
    api_key=settings.livekit_api_key,
    api_secret=settings.livekit_api_secret.get_secret_value(),
    multiprocessing_context="spawn",
    setup_fnc=functools.partial(greenroom_prewarm, options=options.greenroom),
)
server.rtc_session(greenroom_entrypoint, agent_name=ECHO_AGENT_NAME)

if __name__ == "__main__":
    cli.run_app(server)
