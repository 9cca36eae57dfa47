"""The embeddable runtime: run an artifact written by `lexiedge export` with ONNX Runtime.

The ``lexiedge-runtime`` distribution (``runtime/`` in the lexiedge repository), installable alone:

    pip install lexiedge-runtime                 # onnxruntime + numpy: classifiers fed arrays
    pip install "lexiedge-runtime[llm]"          # + onnxruntime-genai, tokenizers, jinja2: text generation
    pip install "lexiedge-runtime[media]"        # + PyAV, soundfile, OpenCV: Classifier.predict_file
    pip install "lexiedge-runtime[serve]"        # + Starlette, uvicorn: the local OpenAI-compatible server

It never imports torch, transformers, pydantic or anything of the ``lexiedge`` toolkit (which
depends on it, and keeps ``import lexiedge.runtime`` working as another name for this package). A
feature whose extra is missing refuses in one line naming it (:mod:`lexiedge_runtime.extras`). To
vendor the runtime, copy ``lexiedge_runtime/``.

    from lexiedge_runtime import load

    classifier = load("artifacts/emotion-av/onnx")              # device="auto": TensorRT, CUDA, CPU
    result = classifier.predict(waveform, frames)               # (samples,), (T, 3, H, W)
    result.label, result.probabilities                          # "happy", {"neutral": 0.01, ...}

    chat = load("artifacts/qwen-lora/onnx-int4", threads=4)
    chat.generate([{"role": "user", "content": "Correct: She go to school."}]).text
    for piece in chat.generate("Once upon a time", max_new_tokens=32, stream=True): print(piece, end="")

Stable API (the benchmarks call it; keep it compatible):

* ``load(artifact_dir, device="auto", *, threads=None, providers=None, allow_unverified=False)
  -> Classifier | TextGenerator``: the runner registered for the manifest's ``runtime.engine`` and
  ``task`` (:mod:`lexiedge_runtime.tasks`; a new export format registers its own). Before opening any
  model file it
  validates the manifest (every path relative and inside the directory, values of the right type:
  :class:`ManifestError`), refuses an artifact whose export verification failed
  (:class:`UnverifiedArtifactError`; ``allow_unverified=True`` loads it with an
  :class:`UnverifiedArtifactWarning`), and checks every file's sha256 against ``manifest.json``,
  refusing a missing, changed or symlinked file (:class:`ArtifactIntegrityError`, naming each file).
  ``device``: "auto" (TensorRT -> CUDA -> CPU among the providers onnxruntime
  reports), "tensorrt", "cuda" or "cpu"; one that is not available raises
  :class:`DeviceNotAvailableError` naming those that are. ``providers`` (ORT provider names or
  ``(name, options)`` pairs) overrides ``device``. ``threads`` sets intra-op threads (None: ORT's
  default). LLM artifacts run on ONNX Runtime GenAI: "cpu", or "cuda" with a CUDA build of it.
* ``Classifier.predict(waveform=None, frames=None, *, sample_rate=16000)`` -> a
  :class:`ClassificationResult` (``label``, ``probabilities`` dict label -> p, ``index``,
  ``top(k)``) for one clip — waveform (samples,), frames (T, 3, H, W) — or a list of them for a batch —
  (B, samples), (B, T, 3, H, W). Either modality may be left out: zeros with mask 0, as in training.
  ``Classifier.session`` is the ``onnxruntime.InferenceSession``, ``.provider`` its provider,
  ``.run(feeds)`` the graph on ready feeds (logits, probabilities). On CUDA/TensorRT it runs through
  ``session.io_binding()``.
* ``Classifier.predict_file(path)`` (``[media]``) -> a :class:`ClassificationResult` for a .wav or
  .mp4 file decoded as the model's evaluation data was: the decoder and options the manifest records
  (``preprocessing.media``: :mod:`lexiedge_runtime.media`, the code training's data loader runs), the
  centre ``clip_samples`` of the audio, face crops scaled by 1/255. ``.decode_file(path)`` gives
  ``predict``'s arguments, ``.file_feeds(path)`` the graph's feeds. An artifact exported before the
  manifest recorded its decoding refuses with an :class:`ArtifactError` (decode and call ``predict``).
* Speaker enrollment, for a model normalised by its speaker (the manifest's ``enrollment``):
  ``Classifier.calibrate(clips, *, sample_rate=16000)`` -> a :class:`SpeakerProfile` (per-feature mean
  and std of the speaker's clips, files or waveforms, at least ``enrollment.min_clips``; statistics only,
  tied to the artifact's graph by its sha256; ``save(path)`` / ``SpeakerProfile.load(path)``), and
  ``predict(..., speaker=profile)`` / ``predict_file(path, speaker=profile)``. Results carry
  ``normalization``: "speaker", or "global" when no profile was given (None for other models). A
  model without enrollment, too few clips or a profile of another artifact raise subclasses of
  :class:`EnrollmentError` (:mod:`lexiedge_runtime.enrollment`).
* ``TextGenerator.generate(messages_or_prompt, max_new_tokens=128, temperature=0.0, top_p=1.0,
  stop=None, stream=False, *, seed=None)`` -> a :class:`Generation` (``text``, ``token_ids``,
  ``prompt_tokens``, ``finish_reason`` "eos" | "stop" | "length", ``reused_tokens`` and
  ``prefilled_tokens``), or with ``stream=True`` a :class:`TextStream`: an iterator of text pieces
  that counts ``completion_tokens`` and ends with a ``finish_reason`` (``close()`` stops it early). Messages go through the
  artifact's chat template; a string is used as is. ``TextGenerator.model`` is the
  ``onnxruntime_genai.Model`` (KV cache kept in ORT), ``.tokenizer`` the
  :class:`~lexiedge_runtime.chat.ChatTokenizer`.
* Prefix reuse (text generation; keyword arguments of ``load``, ignored for a classifier unless
  given): ``prefix_reuse=True`` keeps the last generation's KV cache and prefills only what the next
  prompt does not share with it (greedy output unchanged, token for token); ``cache_tokens`` bounds
  that cache (default: the context length, at most 4096; a call that does not fit runs uncached);
  ``warm_prompt`` (messages or text, e.g. ``[{"role": "system", ...}]``) is prefilled at load so the
  first turn pays only for the user's message. ``TextGenerator.warm(prompt)`` does that later,
  ``.clear_cache()`` frees the cache, ``.prefilled_tokens`` / ``.reused_tokens`` count prompt tokens
  run through the model / taken from the cache since load, and ``.generate_ids(prompt_ids, ...)``
  yields new token ids (no template, no decoding). One TextGenerator may serve several threads: the
  kept cache is leased to one call at a time and a call that finds it leased runs on a generator of
  its own, so two calls never share a GenAI generator (see :class:`TextGenerator`).

* Also relied on by `lexiedge bench` (keep compatible): ``Classifier.run(feeds)``, ``Classifier.spec``
  (:class:`~lexiedge_runtime.inputs.ClassifierSpec`, ``.from_manifest(manifest, where)``: clip_samples,
  frame_count, image_size, channels, sample_rate), :func:`open_artifact` (hash-checked
  :class:`Artifact`), and :class:`~lexiedge_runtime.chat.ChatTokenizer` (``encode``, ``decode``,
  ``render``, ``prompt_ids``).

Input decisions: audio at another ``sample_rate`` is resampled (FFT, numpy); integer PCM is
refused (its scale is not guessed), uint8 frames are scaled by 1/255, float64 is converted, NaN/inf
and out-of-range values are refused, audio longer than ``preprocessing.max_input_seconds`` and more
frames than ``preprocessing.max_frames`` (10x the training clip) are refused (window long recordings),
frames must already be ``image_size`` face crops (``predict_file`` decodes and crops files as
training did). Every bad input raises a subclass of
:class:`RuntimeInputError` and leaves the loaded model usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lexiedge_runtime.artifact import Artifact, open_artifact, read_manifest, sha256_file
from lexiedge_runtime.classifier import ClassificationResult, Classifier, ClassifierRunner
from lexiedge_runtime.devices import ProviderSpec, available_devices
from lexiedge_runtime.enrollment import SpeakerProfile
from lexiedge_runtime.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    DeviceNotAvailableError,
    EnrollmentError,
    InferenceError,
    InputDtypeError,
    InputShapeError,
    InputTooLargeError,
    InputValueError,
    LexiedgeError,
    MissingExtraError,
    NoEnrollmentError,
    RuntimeInputError,
    SpeakerProfileError,
    TooFewClipsError,
    UnverifiedArtifactError,
    UnverifiedArtifactWarning,
)
from lexiedge_runtime.generator import Generation, TextGenerator, TextStream
from lexiedge_runtime.manifest import ManifestError
from lexiedge_runtime.tasks import LoadRequest, runner_for

__version__ = "0.1.0"  # released with the lexiedge toolkit of the same version, which pins it


__all__ = [
    "Artifact",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ClassificationResult",
    "Classifier",
    "ClassifierRunner",
    "DeviceNotAvailableError",
    "EnrollmentError",
    "Generation",
    "InferenceError",
    "InputDtypeError",
    "InputShapeError",
    "InputTooLargeError",
    "InputValueError",
    "LexiedgeError",
    "ManifestError",
    "MissingExtraError",
    "NoEnrollmentError",
    "RuntimeInputError",
    "SpeakerProfile",
    "SpeakerProfileError",
    "TextGenerator",
    "TextStream",
    "TooFewClipsError",
    "UnverifiedArtifactError",
    "UnverifiedArtifactWarning",
    "available_devices",
    "load",
    "open_artifact",
    "read_manifest",
    "sha256_file",
]


def load(
    artifact_dir: str | Path,
    device: str = "auto",
    *,
    threads: int | None = None,
    providers: Sequence[ProviderSpec] | None = None,
    allow_unverified: bool = False,
    prefix_reuse: bool = True,
    cache_tokens: int | None = None,
    warm_prompt: str | Sequence[dict[str, str]] | None = None,
) -> Classifier | TextGenerator:
    """Check an artifact's manifest, verification and files, then open it with the runner of its engine and
    task (see the module doc; :mod:`lexiedge_runtime.tasks.registry` for adding one)."""
    artifact = open_artifact(artifact_dir, allow_unverified=allow_unverified)  # nothing unchecked is ever opened
    runner = runner_for(artifact.manifest, str(artifact.directory))
    request = LoadRequest(device, threads, providers, prefix_reuse, cache_tokens, warm_prompt)
    return runner.open(artifact, request)
