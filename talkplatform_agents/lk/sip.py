"""LiveKit SIP (UC-08) through livekit-server's SIP API: the inbound and outbound trunks
from configuration, one PIN dispatch rule per meeting, and calls out.

livekit-server keeps trunks and rules in its Redis and the SIP service (``livekit-sip``,
v1.8.0) asks it about each call: a caller is answered, hears "enter your PIN", types it as
RFC 2833 digits ending with ``#``, and joins the room of the rule whose PIN it is. A wrong
PIN (or a rule that is gone: an ended or locked meeting) hears "wrong PIN" and is hung up
on. Rules hide the caller's number: the participant is ``sip_<hash>``, named
``Phone <last 4 digits>``, of kind SIP.

Trunks are found by name (``TRUNK_NAMES``) and made to match the configuration; rules by
their ``name`` (``rule_name``), so that what this service made is told apart from anything
else in the same server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from google.protobuf.duration_pb2 import Duration
from livekit import api
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration
from pydantic import SecretStr

from talkplatform_agents.config import E164
from talkplatform_agents.errors import ApiError, BadGateway, Conflict, Unavailable, Unprocessable
from talkplatform_agents.lk.naming import MEETING_AGENTS
from talkplatform_agents.lk.tokens import Credentials

if TYPE_CHECKING:
    from talkplatform_agents.config import Settings

__all__ = [
    "DIALED_BY_ATTRIBUTE",
    "DialResult",
    "SipApi",
    "SipOptions",
    "check_e164",
    "masked_number",
    "rule_name",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

INBOUND_TRUNK = "talkplatform-inbound"
OUTBOUND_TRUNK = "talkplatform-outbound"
TRUNK_NAMES = (INBOUND_TRUNK, OUTBOUND_TRUNK)
PROMPT_RULE = "talkplatform-pin-prompt"
UNTYPABLE_PIN = "0" * 20  # longer than the 16 digits the SIP service reads
# On a phone a host called in: who called it (callers who dialled in have none).
DIALED_BY_ATTRIBUTE = "tp.dialedBy"
_RULE_PREFIX = "talkplatform-meeting-"
# livekit-server gives up on a call with wait_until_answered after 80 s: ring for less.
MAX_RINGING_S = 70.0


def check_e164(number: str, what: str = "number") -> str:
    """``number`` if it is E.164 (``+`` and 7 to 15 digits), else ``Unprocessable`` (422)."""
    if not E164.match(number):
        raise Unprocessable(
            f"the {what} must be in E.164 form, such as +15550100200", number=number
        )
    return number


def masked_number(number: str) -> str:
    """What others see of a phone number: its last four digits."""
    return f"Phone ···{number[-4:]}"


def rule_name(meeting_id: str) -> str:
    return _RULE_PREFIX + meeting_id


@dataclass(frozen=True)
class SipOptions:
    """The trunks, from configuration (``from_settings``). No dial-in numbers: no
    dial-in; no outbound address: no dial-out."""

    dial_in_numbers: tuple[str, ...] = ()
    # Who may call in (CIDRs of the carrier's or PBX's addresses), and optional digest auth.
    inbound_addresses: tuple[str, ...] = ()
    inbound_username: str | None = None
    inbound_password: str | None = field(default=None, repr=False)
    outbound_address: str | None = None  # host:port of the carrier or PBX
    outbound_number: str | None = None  # the caller id calls out show
    outbound_prefixes: tuple[str, ...] = ()  # where calls out may go (empty: anywhere)
    outbound_transport: str = "udp"  # udp or tcp
    outbound_username: str | None = None
    outbound_password: str | None = field(default=None, repr=False)
    ringing_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SipOptions:
        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value else None

        return cls(
            dial_in_numbers=tuple(settings.sip_dial_in_numbers),
            inbound_addresses=tuple(settings.sip_inbound_addresses),
            inbound_username=settings.sip_inbound_username,
            inbound_password=secret(settings.sip_inbound_password),
            outbound_address=settings.sip_outbound_address,
            outbound_number=settings.sip_outbound_number,
            outbound_prefixes=tuple(settings.sip_outbound_allowed_prefixes),
            outbound_transport=settings.sip_outbound_transport,
            outbound_username=settings.sip_outbound_username,
            outbound_password=secret(settings.sip_outbound_password),
            ringing_timeout_s=settings.sip_ringing_timeout_seconds,
        )

    @property
    def dial_in(self) -> bool:
        return bool(self.dial_in_numbers)

    @property
    def dial_out(self) -> bool:
        return self.outbound_address is not None and self.outbound_number is not None


@dataclass(frozen=True)
class DialResult:
    identity: str
    sip_call_id: str


class SipApi:
    """The SIP calls the service makes. Each failure reads as an ``ApiError``: 503 when
    livekit-server or the SIP service cannot be reached, 502 for an error of theirs."""

    def __init__(self, http_url: str, credentials: Credentials, options: SipOptions) -> None:
        self._api = api.LiveKitAPI(http_url, credentials.api_key, credentials.api_secret)
        self.options = options
        self._trunks: dict[str, str] = {}  # name -> id, once made to match the options
        self._ensuring = asyncio.Lock()  # one look at the trunks at a time

    async def aclose(self) -> None:
        await self._api.aclose()

    # -- trunks -----------------------------------------------------------------------

    async def inbound_trunk(self) -> str:
        """The inbound trunk's id, created or brought in line with the options first, with
        the rule that makes every caller hear the PIN prompt (``_ensure_prompt``)."""
        async with self._ensuring:
            if (known := self._trunks.get(INBOUND_TRUNK)) is not None:
                return known
            o = self.options
            info = api.SIPInboundTrunkInfo(
                name=INBOUND_TRUNK,
                numbers=list(o.dial_in_numbers),
                allowed_addresses=list(o.inbound_addresses),
                auth_username=o.inbound_username or "",
                auth_password=o.inbound_password or "",
            )
            sip = self._api.sip
            trunk_id = await self._trunk(
                "inbound",
                sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest()),
                lambda found: sip.update_inbound_trunk(found, info),
                lambda: sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=info)),
            )
            await self._ensure_prompt(trunk_id)
            self._trunks[INBOUND_TRUNK] = trunk_id
            logger.info("SIP inbound trunk %s for %s", trunk_id, ", ".join(o.dial_in_numbers))
            return trunk_id

    async def _ensure_prompt(self, trunk_id: str) -> None:
        # livekit-server answers a call that no rule wants with "drop", and the SIP service
        # then drops it without a word: with no meeting's line open, callers would hear
        # nothing at all. A rule with a PIN no caller can type (the SIP service reads at
        # most 16 digits) makes every call ask for a PIN, and a wrong one hear "wrong PIN".
        if any(r.name == PROMPT_RULE and trunk_id in r.trunk_ids for r in await self._all_rules()):
            return
        info = api.SIPDispatchRuleInfo(
            rule=api.SIPDispatchRule(
                dispatch_rule_direct=api.SIPDispatchRuleDirect(
                    room_name="talkplatform-no-room", pin=UNTYPABLE_PIN
                )
            ),
            trunk_ids=[trunk_id],
            name=PROMPT_RULE,
        )
        request = api.CreateSIPDispatchRuleRequest(dispatch_rule=info)
        await _call("create the PIN prompt rule", self._api.sip.create_dispatch_rule(request))

    async def outbound_trunk(self) -> str:
        async with self._ensuring:
            if (known := self._trunks.get(OUTBOUND_TRUNK)) is not None:
                return known
            o = self.options
            if not o.dial_out or o.outbound_address is None or o.outbound_number is None:
                raise Conflict("dial-out is not set up on this service (SIP_OUTBOUND_ADDRESS "
                               "and SIP_OUTBOUND_NUMBER)")  # fmt: skip
            transport = (
                api.SIPTransport.SIP_TRANSPORT_TCP
                if o.outbound_transport == "tcp"
                else api.SIPTransport.SIP_TRANSPORT_UDP
            )
            info = api.SIPOutboundTrunkInfo(
                name=OUTBOUND_TRUNK,
                address=o.outbound_address,
                transport=transport,
                numbers=[o.outbound_number],
                auth_username=o.outbound_username or "",
                auth_password=o.outbound_password or "",
            )
            sip = self._api.sip
            trunk_id = await self._trunk(
                "outbound",
                sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest()),
                lambda found: sip.update_outbound_trunk(found, info),
                lambda: sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=info)),
            )
            self._trunks[OUTBOUND_TRUNK] = trunk_id
            return trunk_id

    async def _trunk(
        self,
        kind: str,
        listing: Awaitable[Any],
        update: Callable[[str], Awaitable[Any]],
        create: Callable[[], Awaitable[Any]],
    ) -> str:
        """The id of the trunk named ``talkplatform-<kind>``, updated or created to match
        the options."""
        name = f"talkplatform-{kind}"
        found = await _call(f"list the {kind} trunks", listing)
        mine = sorted(str(t.sip_trunk_id) for t in found.items if t.name == name)
        if mine:
            await _call(f"update the {kind} trunk", update(mine[0]))
            trunk_id = mine[0]
        else:
            trunk_id = str((await _call(f"create the {kind} trunk", create())).sip_trunk_id)
        # Two services raced to create it: every one keeps the smallest id, and the rules
        # on the others are remade by their meetings' next sync (``rules_of``'s stale ones).
        for extra in mine[1:]:
            await self._delete_trunk(extra)
        return trunk_id

    async def _delete_trunk(self, trunk_id: str) -> None:
        request = api.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id)
        await _call("delete a trunk", self._api.sip.delete_trunk(request))

    # -- dispatch rules -----------------------------------------------------------------

    async def rules_of(self, meeting_id: str) -> tuple[list[str], list[str]]:
        """The ids of the dispatch rules this service made for the meeting, in one
        listing: those on the current inbound trunk, and the stale ones on another."""
        trunk_id = await self.inbound_trunk()
        mine = [r for r in await self._all_rules() if r.name == rule_name(meeting_id)]
        current = [r.sip_dispatch_rule_id for r in mine if list(r.trunk_ids) == [trunk_id]]
        stale = [r.sip_dispatch_rule_id for r in mine if list(r.trunk_ids) != [trunk_id]]
        return current, stale

    async def meetings_with_rules(self) -> set[str]:
        """The meetings this service has rules for (the sweep closes those refused)."""
        return {r.name.removeprefix(_RULE_PREFIX) for r in await self._all_rules()
                if r.name.startswith(_RULE_PREFIX)}  # fmt: skip

    async def _all_rules(self) -> list[api.SIPDispatchRuleInfo]:
        reply = await _call(
            "list the dispatch rules",
            self._api.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest()),
        )
        return list(reply.items)

    async def open_rule(self, meeting_id: str, room: str, pin: str) -> str:
        """A rule that sends callers who type ``pin`` to ``room``; its id."""
        trunk_id = await self.inbound_trunk()
        info = api.SIPDispatchRuleInfo(
            rule=api.SIPDispatchRule(
                dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name=room, pin=pin)
            ),
            trunk_ids=[trunk_id],
            hide_phone_number=True,
            name=rule_name(meeting_id),
            metadata=meeting_id,
            attributes={"tp.meetingId": meeting_id},
            # A caller who opens the room brings its bots, as a user's token does.
            room_config=RoomConfiguration(
                agents=[RoomAgentDispatch(agent_name=name) for name in MEETING_AGENTS]
            ),
        )
        created = await _call(
            "create the meeting's dispatch rule",
            self._api.sip.create_dispatch_rule(
                api.CreateSIPDispatchRuleRequest(dispatch_rule=info)
            ),
        )
        return str(created.sip_dispatch_rule_id)

    async def delete_rule(self, rule_id: str) -> None:
        """Delete a rule; one already gone is fine."""
        request = api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
        try:
            await self._api.sip.delete_dispatch_rule(request)
        except api.TwirpError as exc:
            if exc.code != api.TwirpErrorCode.NOT_FOUND:
                raise _api_error("delete a dispatch rule", exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable("delete a dispatch rule", exc) from exc

    # -- calls out ----------------------------------------------------------------------

    async def dial(
        self, room: str, number: str, identity: str, attributes: dict[str, str]
    ) -> DialResult:
        """Call ``number`` into ``room`` and wait until it answers. A callee that is busy,
        declines, cannot be reached or does not answer is a ``Conflict`` whose ``reason``
        says which (``busy``, ``declined``, ``unavailable``, ``no-answer``) with the SIP
        status."""
        trunk_id = await self.outbound_trunk()
        ringing = min(self.options.ringing_timeout_s, MAX_RINGING_S)
        request = api.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id,
            sip_call_to=number,
            room_name=room,
            participant_identity=identity,
            participant_name=masked_number(number),
            participant_attributes=attributes,
            hide_phone_number=True,
            wait_until_answered=True,
            ringing_timeout=Duration(seconds=int(ringing)),
        )
        try:
            info = await self._api.sip.create_sip_participant(request, timeout=ringing + 10)
        except api.TwirpError as exc:
            raise dial_error(exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable("call out", exc) from exc
        return DialResult(info.participant_identity, info.sip_call_id)


_SIP_REASONS = {486: "busy", 600: "busy", 603: "declined", 404: "unavailable", 480: "unavailable"}


def dial_error(exc: api.TwirpError) -> ApiError:
    """How a failed call out reads to the host who made it."""
    status = _sip_status(exc)
    if status is not None:
        reason = _SIP_REASONS.get(status, "failed")
        return Conflict(f"the call was not answered: {reason} (SIP {status})",
                        reason=reason, sipStatus=status)  # fmt: skip
    if exc.code in (api.TwirpErrorCode.CANCELED, api.TwirpErrorCode.DEADLINE_EXCEEDED):
        return Conflict("nobody answered the call", reason="no-answer", sipStatus=None)
    return _api_error("call out", exc)


def _sip_status(exc: api.TwirpError) -> int | None:
    code = getattr(exc, "sip_status_code", None)
    if code is None:
        code = (getattr(exc, "metadata", None) or {}).get("sip_status_code")
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _api_error(what: str, exc: api.TwirpError) -> ApiError:
    if exc.code == api.TwirpErrorCode.UNAVAILABLE or "no response from servers" in exc.message:
        return Unavailable(f"the SIP service does not answer; could not {what}",
                           service="livekit-sip")  # fmt: skip
    if "redis required" in exc.message or "sip not connected" in exc.message:
        return Unavailable(f"livekit-server has no SIP (it needs Redis); could not {what}",
                           service="livekit-server")  # fmt: skip
    return BadGateway(f"livekit-server refused to {what}: {exc.message}", service="livekit-server")


def _unreachable(what: str, exc: BaseException) -> ApiError:
    return Unavailable(f"livekit-server is unreachable; could not {what}: {exc!r}",
                       service="livekit-server")  # fmt: skip


async def _call(what: str, work: Awaitable[T]) -> T:
    try:
        return await work
    except api.TwirpError as exc:
        raise _api_error(what, exc) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _unreachable(what, exc) from exc
