"""Deployable entrypoint: the green-room echo bot (agent_name ``greenroom-echo``).

Run it on its own with LiveKit's CLI conventions::

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... python agents/greenroom_echo.py start

or, with every TalkPlatform bot at once, ``talkplatform-agents worker``. The logic lives in
``talkplatform_agents.bots.echo``; copy this file to adapt the deployment, not the bot.
"""

import os

from livekit.agents import AgentServer, cli

from talkplatform_agents.bots.echo import ECHO_AGENT_NAME, echo_entrypoint

# Bots need no local end-of-turn model; preloading it costs 244 MB per job process.
os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")

server = AgentServer(multiprocessing_context="spawn")
server.rtc_session(echo_entrypoint, agent_name=ECHO_AGENT_NAME)

if __name__ == "__main__":
    cli.run_app(server)
