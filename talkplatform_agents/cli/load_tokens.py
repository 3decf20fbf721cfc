"""Load-test tokens from a TalkPlatform token service instead of the LiveKit key and secret:
each load room is a meeting the service creates, and each synthetic participant asks for its
token as the platform's frontend does (so the run also loads the service and its bots).

The participants' app JWTs are minted with the platform's APP_JWT_SECRET, which an
operator's shell holds; a load run never needs LiveKit's own secret this way.
"""

from __future__ import annotations

import secrets

import httpx

from talkplatform_agents.config import Settings
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.synthetic.load.runner import TokenIssueError

__all__ = ["ServiceTokens"]


class ServiceTokens:
    """A ``TokenIssuer``: ``(room index, identity) -> (room, token)``. Bounded: every
    request has a timeout, and any failure is a ``TokenIssueError`` that says why."""

    def __init__(self, api_url: str, app_secret: str, timeout_s: float = 10.0) -> None:
        self._api_url = api_url.rstrip("/")
        self._secret = app_secret
        self._http = httpx.Client(base_url=self._api_url, timeout=timeout_s)
        self._host = f"load-host-{secrets.token_hex(3)}"  # creates, and so hosts, each meeting
        self._meetings: dict[int, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, api_url: str) -> ServiceTokens:
        """Tokens from the service at ``api_url``, for app JWTs signed with the platform's
        ``APP_JWT_SECRET``."""
        return cls(api_url, settings.app_jwt_secret.get_secret_value())

    def __call__(self, room_index: int, identity: str) -> tuple[str, str]:
        meeting_id = self._meetings.get(room_index) or self._create_meeting(room_index)
        body = self._post("/api/v1/livekit/token", identity, {"meetingId": meeting_id})
        if body.get("status", "joined") != "joined":
            raise TokenIssueError(
                f"the token service put {identity} in the waiting room of meeting "
                f"{meeting_id}; load meetings must let everyone in"
            )
        return str(body["room"]), str(body["token"])

    def close(self) -> None:
        self._http.close()

    def _create_meeting(self, room_index: int) -> str:
        title = f"load test room {room_index}"
        body = self._post("/api/v1/meetings", self._host, {"title": title, "settings": {}})
        self._meetings[room_index] = str(body["id"])
        return self._meetings[room_index]

    def _post(self, path: str, user: str, body: dict[str, object]) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {mint_app_token(self._secret, user, user, 3600)}"}
        try:
            reply = self._http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TokenIssueError(
                f"the token service at {self._api_url} is unreachable: {exc!r}"
            ) from exc
        if reply.status_code >= 400:
            raise TokenIssueError(
                f"the token service at {self._api_url} refused {path} for {user}: "
                f"HTTP {reply.status_code} {reply.text[:300]}"
            )
        try:
            answer: dict[str, object] = reply.json()
        except ValueError as exc:
            raise TokenIssueError(f"the token service answered {path} with no JSON") from exc
        return answer
