"""Least-privilege LiveKit grants for each meeting role.

No client grant ever carries ``room_admin``: admin actions go through the service, which
holds the server-API credentials. Nobody may update their own metadata or attributes,
because the role lives there and a client must not be able to promote itself.
"""

from __future__ import annotations

import enum
from typing import Any

from livekit import api

__all__ = ["Role", "grants_for", "permissions_document"]

_MEDIA_SOURCES = ["camera", "microphone", "screen_share", "screen_share_audio"]


class Role(enum.StrEnum):
    HOST = "host"
    COHOST = "cohost"
    PARTICIPANT = "participant"


def grants_for(role: Role, room: str) -> api.VideoGrants:
    # Hosts and participants publish the same media today; what sets hosts apart (mute
    # others, remove, end) is done by the service on their behalf, never by their token.
    return api.VideoGrants(
        room_join=True,
        room=room,
        room_admin=False,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_publish_sources=list(_MEDIA_SOURCES),
        can_update_own_metadata=False,
        hidden=False,
        recorder=False,
        agent=False,
    )


def permissions_document(grants: api.VideoGrants) -> dict[str, Any]:
    """The grants as the frontend sees them in the token response (camelCase)."""
    return {
        "canPublish": bool(grants.can_publish),
        "canSubscribe": bool(grants.can_subscribe),
        "canPublishData": bool(grants.can_publish_data),
        "canPublishSources": list(grants.can_publish_sources or []),
        "canUpdateOwnMetadata": bool(grants.can_update_own_metadata),
        "roomAdmin": bool(grants.room_admin),
        "hidden": bool(grants.hidden),
    }
