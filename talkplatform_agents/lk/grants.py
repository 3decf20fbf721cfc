"""The LiveKit grants of each meeting role, and of a waiting participant.

No client grant ever carries ``room_admin``: admin actions go through the service, which
holds the server-API credentials. Nobody may update their own metadata or attributes,
because the role lives there and a client must not be able to promote itself.

Hosts, co-hosts and participants get the same grants: in a meeting everyone may publish
camera, microphone and screen share, subscribe and send data. What sets hosts apart (mute
others, remove, lock, end) is done by the service on their behalf, never by their token.
The least privileged token is a waiting participant's (``lobby_grants``): no media at all.
"""

from __future__ import annotations

from typing import Any

from livekit import api

from talkplatform_agents.roles import Role

__all__ = ["grants_for", "lobby_grants", "participant_permission", "permissions_document"]

_MEDIA_SOURCES = ["camera", "microphone", "screen_share", "screen_share_audio"]


def grants_for(role: Role, room: str) -> api.VideoGrants:
    # ``role`` is taken so that a role with other grants (a webinar's audience, say) needs
    # no change to the callers; today's three share one set (the module docstring says why).
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


def lobby_grants(room: str) -> api.VideoGrants:
    """A waiting participant: no media to publish (nobody would see it), data only to talk
    to the hosts through the bot. Not hidden: livekit-server hides hidden participants from
    agents too, and the moderator bot must see who knocks."""
    return api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=False,
        can_subscribe=True,
        can_publish_data=True,
        can_publish_sources=[],
        can_update_own_metadata=False,
    )


_SOURCES = {
    "camera": api.TrackSource.CAMERA,
    "microphone": api.TrackSource.MICROPHONE,
    "screen_share": api.TrackSource.SCREEN_SHARE,
    "screen_share_audio": api.TrackSource.SCREEN_SHARE_AUDIO,
}


def participant_permission(role: Role) -> api.ParticipantPermission:
    """The grants of ``role`` as the permission the server API sets on a present
    participant (a role change takes effect without a new token)."""
    grants = grants_for(role, "")
    return api.ParticipantPermission(
        can_subscribe=bool(grants.can_subscribe),
        can_publish=bool(grants.can_publish),
        can_publish_data=bool(grants.can_publish_data),
        can_publish_sources=[_SOURCES[s] for s in grants.can_publish_sources or []],
        can_update_metadata=bool(grants.can_update_own_metadata),
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
