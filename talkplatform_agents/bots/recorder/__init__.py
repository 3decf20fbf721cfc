"""The recorder bot's building blocks (issue 13).

- ``container.py``: crash-safe output containers, and ``WriteFailed``;
- ``audio_file.py``: one Ogg/Opus file per audio track (and the mixed file);
- ``video_file.py``: one WebM/VP8 file per camera or screen-share track;
- ``mixer.py``: every participant's audio summed on one timeline;
- ``timeline.py``: arrival times turned into sample positions;
- ``manifest.py``: Egress-shaped results, written atomically, and Egress's name templates;
- ``storage.py``: where recordings live (a local directory by default).

Nothing is imported here: PyAV loads only in the modules that encode.
"""
