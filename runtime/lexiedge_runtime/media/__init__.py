"""Reading audio and video files for a classifier, as training read them (the ``[media]`` extra).

The project's one decoder: the ravdess data plugin's training and evaluation data and the runtime's
``Classifier.predict_file`` both call it, with the options an artifact records.

* :mod:`~lexiedge_runtime.media.spec` — :class:`DecodeOptions`, :class:`MediaSpec` (the manifest's
  ``preprocessing.media``); plain Python, imported when an artifact loads.
* :mod:`~lexiedge_runtime.media.decode` — wav (soundfile) and mp4 (PyAV) to mono audio at the model's
  rate (one downmix, FFmpeg's resampler), uniformly sampled frames, the face crop; ``decode_file``.
* :mod:`~lexiedge_runtime.media.faces` — one OpenCV Haar face box per clip and the square crop.

Importing this package imports nothing heavy; PyAV, soundfile and OpenCV load with ``decode``.
"""
