"""A meeting through the compose stack, as a browser would: run inside its namespace.

``python compose_client.py API_URL`` (APP_JWT_SECRET in the environment): a host creates a
meeting, takes its token from the service, joins at the URL given, waits for the chat and
waiting-room bots, says something in the chat, and reads it back from the service's history
(the chat bot stored it in MariaDB); then a guest's green room echoes the guest's tone
back through the workers' green-room bot. Prints one JSON line of what it saw; exit 0 when all
happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import httpx
from livekit import rtc

from talkplatform_agents.lk.chat import TOPIC_CHAT
from talkplatform_agents.lk.naming import (
    ACTIVE_ATTRIBUTE,
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    ECHO_AGENT_NAME,
    WAITING_ROOM_AGENT_NAME,
)
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant

_TIMEOUT_S = 120.0  # inside test_compose.py's CLIENT_TIMEOUT_S (150 s), so this one speaks first


def _settled(room: rtc.Room, agent_name: str) -> bool:
    bots = [p for p in room.remote_participants.values()
            if p.attributes.get(AGENT_NAME_ATTRIBUTE) == agent_name]  # fmt: skip
    return len(bots) == 1 and bots[0].attributes.get(ACTIVE_ATTRIBUTE) == "1"


async def _meeting(api_url: str, secret: str) -> dict[str, object]:
    user = f"host-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {mint_app_token(secret, user, 'Host', 600)}"}
    seen: dict[str, object] = {}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=15) as http:
        created = await http.post("/api/v1/meetings", json={"title": "compose"})
        created.raise_for_status()
        meeting = created.json()
        grant = await http.post("/api/v1/livekit/token", json={"meetingId": meeting["id"]})
        grant.raise_for_status()
        seen["wsUrl"] = grant.json()["wsUrl"]
        room = rtc.Room()
        await room.connect(grant.json()["wsUrl"], grant.json()["token"])
        try:
            # Attributes change in SDK callbacks, which offer nothing to await.
            bots = (CHAT_AGENT_NAME, WAITING_ROOM_AGENT_NAME)
            while not all(_settled(room, n) for n in bots):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            seen["bots"] = sorted(
                p.attributes[AGENT_NAME_ATTRIBUTE]
                for p in room.remote_participants.values()
                if AGENT_NAME_ATTRIBUTE in p.attributes
            )
            text = f"hello through compose {uuid.uuid4().hex[:6]}"
            await room.local_participant.send_text(text, topic=TOPIC_CHAT)
            while True:
                history = await http.get(f"/api/v1/meetings/{meeting['id']}/chat")
                messages = [m["message"] for m in history.json().get("messages", [])]
                if text in messages:
                    seen["stored"] = text
                    break
                await asyncio.sleep(0.3)
            # Operations: the bots' one endpoint counts this meeting's jobs (compose wires
            # BOT_METRICS_PORT 9100 on the workers), and the service counts its token.
            bots_metrics = await http.get("http://workers:9100/metrics")
            seen["botJobs"] = _sample(bots_metrics.text, "tp_bot_jobs_accepted_total")
            service_metrics = await http.get("/metrics")
            seen["tokens"] = _sample(service_metrics.text, "tp_token_requests_total")
        finally:
            await room.disconnect()
    return seen


def _sample(text: str, name: str) -> float:
    """The sum of a metric's samples in Prometheus' text format."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


async def _green_room(api_url: str, secret: str) -> dict[str, object]:
    """The device check's core through compose: the workers' green-room bot comes, and the
    user's own tone comes back from it through compose's livekit-server."""
    user = f"guest-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {mint_app_token(secret, user, 'Guest', 600)}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=15) as http:
        grant = await http.post("/api/v1/greenroom/token")
        grant.raise_for_status()
    config = ParticipantConfig(
        url=grant.json()["wsUrl"], token=grant.json()["token"], publish_video=False
    )
    async with SyntheticParticipant(config) as participant:
        while not _settled(participant.room, ECHO_AGENT_NAME):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        bot = next(
            p.identity
            for p in participant.room.remote_participants.values()
            if p.attributes.get(AGENT_NAME_ATTRIBUTE) == ECHO_AGENT_NAME
        )
        await participant.wait_for_audio_marker(sender=bot)
    return {"echoFrom": bot}


async def main() -> int:
    async with asyncio.timeout(_TIMEOUT_S):
        api_url, secret = sys.argv[1], os.environ["APP_JWT_SECRET"]
        seen = await _meeting(api_url, secret) | await _green_room(api_url, secret)
    print(json.dumps(seen), flush=True)
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    # The SDK's native runtime may abort while the interpreter tears it down; all is said.
    os._exit(code)
