"""The transcriber bot (issue 14): live captions, a stored transcript, any STT plugin.

- ``bot.py``: the bot (agent name ``transcriber``): follows the room, one recogniser stream
  per speaking participant, under the control it shares with the recorder (``run_bot.py``);
- ``speaker.py``: one audio track through the recogniser, times on the wall clock;
- ``captions.py``: captions to the room (``lk.transcription``) and finals to the store;
- ``engine.py``: which recogniser: ``TRANSCRIBER_STT=module:factory``, any livekit-agents
  ``stt.STT``, made to stream with Silero VAD if it does not;
- ``sphinx.py``: the default, offline recogniser (CMU PocketSphinx), and a command grammar.

Nothing is imported here: the recogniser loads only in the modules that use it.
"""
