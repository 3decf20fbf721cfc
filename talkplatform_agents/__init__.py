"""TalkPlatform Agents: the token service, meeting bots and synthetic participants."""

from talkplatform_agents.errors import TalkPlatformError

__version__ = "0.1.0"
__all__ = ["TalkPlatformError", "__version__"]
