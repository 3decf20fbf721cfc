"""The network namespace and the local stack's processes, for tests and ``up``.
Production code never imports this package."""

from talkplatform_agents.harness.netns import NetNamespace, NetnsError, netns_available
from talkplatform_agents.harness.process import HarnessError, ManagedProcess
from talkplatform_agents.harness.stack import Stack, StackOptions, ensure_livekit_server

__all__ = [
    "HarnessError",
    "ManagedProcess",
    "NetNamespace",
    "NetnsError",
    "Stack",
    "StackOptions",
    "ensure_livekit_server",
    "netns_available",
]
