"""The ``ravdess`` dataset plugin: RAVDESS speech+face clips for audio-visual emotion classification.

Modules: ``labels`` (EMOTIONS, file names), ``settings`` (RavdessSettings), ``splits`` (by actor),
``preprocessing`` (the options of the runtime's decoder, :mod:`lexiedge_runtime.media`, which decodes
for training and apps alike), ``cache`` (on-disk features), ``dataset`` (torch datasets, collate),
``loading`` (folder -> DataSplits), ``synth`` (a synthetic RAVDESS-layout set), ``plugin`` (hooks).
Importing the package imports nothing heavy; torch loads with ``dataset``.
"""

from __future__ import annotations

from lexiedge_ravdess.labels import EMOTIONS

__all__ = ["EMOTIONS"]
