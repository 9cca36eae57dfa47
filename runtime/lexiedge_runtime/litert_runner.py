"""The LiteRT runner of ``av-classification`` artifacts (engine ``litert``: ``model.tflite``).

Runs the flatbuffer with ``ai-edge-litert``'s interpreter (extra ``[litert]``; torch-free, like the rest
of the runtime), through the graph's signature: inputs and outputs by the task's names.

The graph has static shapes (LiteRT's converter takes no dynamic audio axis): one clip of the training
length, ``runtime.samples`` samples and ``runtime.frames`` frames in the manifest. A clip of another length
is fitted to it the way training fitted its clips: the centre ``samples`` of longer audio, shorter audio
zero-padded at the end (:func:`~lexiedge_runtime.inputs.centre_fit`), and ``frames`` frames picked evenly
over the clip's (:func:`~lexiedge_runtime.inputs.uniform_indices`). A batch runs clip by clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.classifier import ClassifierRunner
from lexiedge_runtime.errors import (
    ArtifactError,
    InferenceError,
    InputValueError,
    first_line,
)
from lexiedge_runtime.extras import require
from lexiedge_runtime.inputs import centre_fit, uniform_indices
from lexiedge_runtime.io_names import (
    AUDIO_MASK,
    FRAMES,
    INPUT_NAMES,
    LOGITS,
    PROBABILITIES,
    VIDEO_MASK,
    WAVEFORM,
)
from lexiedge_runtime.tasks.spec import LoadRequest

ENGINE = "litert"
GRAPH = "model.tflite"
OUTPUT_NAMES = (LOGITS, PROBABILITIES)


def fit_clip(feeds: dict[str, np.ndarray], row: int, samples: int, frames: int) -> dict[str, np.ndarray]:
    """One clip of a batch of feeds as the fixed-shape graph takes it (batch 1, ``samples``, ``frames``)."""
    waveform = centre_fit(feeds[WAVEFORM][row], samples)
    clip_frames = feeds[FRAMES][row]
    if len(clip_frames) != frames:
        clip_frames = clip_frames[uniform_indices(len(clip_frames), frames)]
    return {
        WAVEFORM: np.ascontiguousarray(waveform[np.newaxis], np.float32),
        FRAMES: np.ascontiguousarray(clip_frames[np.newaxis], np.float32),
        AUDIO_MASK: np.ascontiguousarray(feeds[AUDIO_MASK][row : row + 1], np.float32),
        VIDEO_MASK: np.ascontiguousarray(feeds[VIDEO_MASK][row : row + 1], np.float32),
    }


class TfliteProgram:
    """A classifier's ``.tflite`` called like any verification runner: feeds by name (numpy, any batch, any
    length) in, ``{"logits", "probabilities"}`` (numpy, one row per clip) out, each clip fitted to the
    graph's fixed length (see the module doc). The exporter verifies the artifact through this class, so
    what was verified is what apps run."""

    def __init__(self, path: Path, *, samples: int, frames: int, threads: int | None = None) -> None:
        require("litert", "running a LiteRT (.tflite) artifact")
        from ai_edge_litert.interpreter import Interpreter

        if threads is not None and threads < 1:
            raise InputValueError(f"threads must be a positive number of threads, got {threads}")
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._run = interpreter.get_signature_runner()
        except Exception as exc:  # the interpreter's errors are ValueErrors with the flatbuffer's reason
            raise ArtifactError(f"{path}: LiteRT cannot load the model: {first_line(exc)}") from None
        details = self._run.get_input_details()
        missing = sorted(set(INPUT_NAMES) - set(details))
        if missing:
            raise ArtifactError(f"{path}: the graph's signature lacks the inputs {', '.join(missing)}")
        expected = {WAVEFORM: [1, samples], FRAMES: [1, frames]}
        for name, shape in expected.items():
            graph_shape = [int(size) for size in details[name]["shape"][:2]]
            if graph_shape != shape:
                raise ArtifactError(
                    f"{path}: the graph's {name} is {graph_shape}, the manifest says {shape}; re-export it"
                )
        self.path, self.samples, self.frames = Path(path), samples, frames

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(feeds[WAVEFORM])
        results = [self._run(**fit_clip(feeds, row, self.samples, self.frames)) for row in range(rows)]
        return {
            name: np.concatenate([np.asarray(result[name], np.float32) for result in results])
            for name in OUTPUT_NAMES
        }


def fixed_shape(artifact: Artifact) -> tuple[int, int]:
    """The graph's clip length from the manifest's ``runtime``: (samples, frames)."""
    runtime: dict[str, Any] = artifact.runtime
    values = [runtime.get(key) for key in ("samples", "frames")]
    if not all(isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in values):
        raise ArtifactError(
            f"{artifact.directory}: the manifest's runtime lacks the graph's fixed samples and frames "
            f"(got {values}); re-export it with this lexiedge version"
        )
    return values[0], values[1]


class LiteRtClassifier(ClassifierRunner):
    """Runs an ``av-classification`` artifact's ``model.tflite`` with LiteRT on the CPU."""

    provider = "LiteRT (CPU)"

    def __init__(self, artifact: Artifact, *, threads: int | None = None) -> None:
        super().__init__(artifact)
        samples, frames = fixed_shape(artifact)
        graph = artifact.path(artifact.runtime.get("graph") or GRAPH)
        self.program = TfliteProgram(graph, samples=samples, frames=frames, threads=threads)

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on ready feeds, clip by clip, each fitted: (logits, probabilities), (batch, classes)."""
        try:
            outputs = self.program(feeds)
        except Exception as exc:
            shapes = ", ".join(f"{name} {tuple(array.shape)}" for name, array in feeds.items())
            raise InferenceError(
                f"LiteRT could not run the classifier on {shapes}: {first_line(exc)}"
            ) from None
        return outputs[LOGITS], outputs[PROBABILITIES]


def open_litert_classifier(artifact: Artifact, request: LoadRequest) -> LiteRtClassifier:
    """The ``litert`` runner of ``av-classification`` artifacts (see ``tasks.registry``): CPU only."""
    request.refuse_generation_options(artifact.directory)
    request.require_cpu(artifact.directory, "LiteRT")
    return LiteRtClassifier(artifact, threads=request.threads)
