"""The `emotion-av` model plugin: a compact audio-visual emotion classifier (raw audio + face frames).

Registered through the ``lexiedge`` entry point ``emotion-av = "lexiedge_emotion_av.plugin"``.
"""

from __future__ import annotations
