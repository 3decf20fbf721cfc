"""Deployable entrypoint: the green-room bot (agent_name ``greenroom-echo``).

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... python agents/greenroom_echo.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. The logic lives in
``talkplatform_agents.bots.greenroom``; copy this file to adapt the deployment, not the bot.
"""

import os

from livekit.agents import AgentServer, cli

from talkplatform_agents.bots.greenroom import greenroom_entrypoint
from talkplatform_agents.lk.naming import ECHO_AGENT_NAME

# Bots need no local end-of-turn model; preloading it costs 244 MB per job process.
os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")

server = AgentServer(multiprocessing_context="spawn")
server.rtc_session(greenroom_entrypoint, agent_name=ECHO_AGENT_NAME)

if __name__ == "__main__":
    cli.run_app(server)
