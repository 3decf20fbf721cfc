"""A light WebRTC client over LiveKit signalling, for load injection at the SFU's own cost:
aiortc runs ICE, DTLS and SCTP; the RTP is ours, counted on receipt and never decoded, and
sent pre-encoded (simulcast by RID). A pure client: LiveKit's protocol only."""

from talkplatform_agents.synthetic.wire.client import LightClient, ReceivedTrack
from talkplatform_agents.synthetic.wire.peer import LightPeer, PeerError
from talkplatform_agents.synthetic.wire.rtp import StreamStats
from talkplatform_agents.synthetic.wire.signalling import SignalError, SignalSession, Speaker

__all__ = [
    "LightClient",
    "LightPeer",
    "PeerError",
    "ReceivedTrack",
    "SignalError",
    "SignalSession",
    "Speaker",
    "StreamStats",
]
