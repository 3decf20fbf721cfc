"""The green-room bot: echo (live or playback), preview with blur, level meter, report."""

from talkplatform_agents.bots.greenroom.bot import (
    GreenRoomBot,
    GreenRoomOptions,
    greenroom_entrypoint,
    greenroom_prewarm,
)

__all__ = ["GreenRoomBot", "GreenRoomOptions", "greenroom_entrypoint", "greenroom_prewarm"]
