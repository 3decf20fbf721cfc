"""The ``talkplatform-agents`` command: the only place that reads the environment."""
