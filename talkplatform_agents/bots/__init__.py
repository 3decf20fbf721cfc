"""Meeting bots: one package per bot, and the runtimes that run them.

- ``worker.py``: starts every bot's runtime, the way ``talkplatform-agents worker`` runs them;
- ``room_host.py``: many meetings per process, on one event loop (chat relay, moderator);
- ``agents_job.py``: a process per job, livekit-agents' way (the green room);
- ``registry.py``: which bot runs how.

Nothing is imported here: a room host process loads only the bots it runs.
"""
