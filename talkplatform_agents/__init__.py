"""TalkPlatform Agents: the token service, meeting bots and synthetic participants."""

__version__ = "0.1.0"
__all__ = ["__version__"]
