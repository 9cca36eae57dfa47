"""The audio-visual classifier: what every ``av-classification`` runner shares, and the ONNX Runtime one.

:class:`ClassifierRunner` is the task's interface for apps (``predict``, ``predict_file``, ``labels``,
``spec``): it checks and prepares inputs and reads results; a runner of another engine subclasses it
and implements :meth:`~ClassifierRunner.run` (the graph on ready feeds). :class:`Classifier` runs an
exported graph (.onnx or .ort) with ONNX Runtime. On CPU the session runs with plain ``session.run``.
On a GPU provider (CUDA, TensorRT) inputs are copied to the device once and outputs are bound there
through ``session.io_binding()``, so ORT does not allocate and copy per output behind our back; the
probabilities come back to the host at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.devices import (
    GPU_PROVIDERS,
    ProviderSpec,
    check_providers_taken,
    choose_providers,
    session_options,
)
from lexiedge_runtime.errors import ArtifactError, InferenceError, InputValueError
from lexiedge_runtime.extras import require
from lexiedge_runtime.inputs import ClassifierSpec, prepare_inputs
from lexiedge_runtime.io_names import INPUT_NAMES, LOGITS, PROBABILITIES
from lexiedge_runtime.media.spec import MediaSpec
from lexiedge_runtime.tasks.spec import LoadRequest

if TYPE_CHECKING:
    import onnxruntime as ort


@dataclass(frozen=True)
class ClassificationResult:
    """One clip's prediction: the most probable ``label`` and every label's probability."""

    label: str
    probabilities: dict[str, float]
    index: int  # position of ``label`` in the artifact's labels
    logits: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0, np.float32))

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable labels, most probable first."""
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]


class ClassifierRunner:
    """An ``av-classification`` artifact, whatever engine runs it: inputs checked and prepared as the
    manifest says, results read back. Build one with :func:`lexiedge_runtime.load`.

    Attributes: ``labels``, ``spec`` (what the model reads), ``media`` (how training decoded files,
    :class:`~lexiedge_runtime.media.spec.MediaSpec`, or None when the manifest records none),
    ``manifest``, ``artifact_dir``, ``provider`` (what runs the graph). A subclass implements
    :meth:`run`.
    """

    provider: str = ""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact_dir = artifact.directory
        self.manifest = artifact.manifest
        self.spec = ClassifierSpec.from_manifest(artifact.manifest, str(artifact.directory))
        self.labels = list(self.spec.labels)
        self.media = MediaSpec.from_manifest(artifact.manifest, str(artifact.directory))

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on ready feeds (the four inputs): (logits, probabilities), each (batch, classes)."""
        raise NotImplementedError

    def predict(
        self, waveform: Any = None, frames: Any = None, *, sample_rate: int = 16000
    ) -> ClassificationResult | list[ClassificationResult]:
        """Classify one clip or a batch.

        ``waveform``: float mono in [-1, 1], (samples,) for one clip or (batch, samples);
        ``sample_rate``: its rate in Hz (resampled to the model's when different).
        ``frames``: RGB face crops, (T, 3, H, W) or (batch, T, 3, H, W), float in [0, 1] or uint8,
        H = W = the manifest's image_size. Either may be left out (zeros and mask 0 as in training).

        Returns a :class:`ClassificationResult` for one clip, a list of them for a batch; raises a
        :class:`~lexiedge_runtime.errors.RuntimeInputError` for input it cannot run on.
        """
        prepared = prepare_inputs(self.spec, waveform, frames, sample_rate=sample_rate)
        logits, probabilities = self.run(prepared.feeds)
        results = [self._result(logits[row], probabilities[row]) for row in range(prepared.batch_size)]
        return results[0] if prepared.single else results

    def predict_file(self, path: str | Path) -> ClassificationResult:
        """Classify a .wav or .mp4 file, decoded exactly as the model's evaluation data was (needs ``[media]``).

        Raises :class:`~lexiedge_runtime.errors.InputValueError` naming a file that is missing, cannot
        be decoded or holds no stream the model reads, and its subclass
        :class:`~lexiedge_runtime.errors.InputTooLargeError` for one longer than
        ``preprocessing.max_input_seconds`` or of video frames over the decoder's bounds (found from the
        header before decoding, or when decoding passes the bound); the model stays usable.
        """
        result = self.predict(**self.decode_file(path))
        assert isinstance(result, ClassificationResult)  # one clip in, one result out
        return result

    def decode_file(self, path: str | Path) -> dict[str, Any]:
        """``predict``'s keyword arguments for a file: the recorded decoder (``preprocessing.media``) run on it."""
        if self.media is None:
            raise ArtifactError(
                f"{self.artifact_dir}: the manifest records no decoding (preprocessing.media), so files cannot be "
                "decoded as in training: re-export the run with this lexiedge, or decode the file and call predict()"
            )
        require("media", "decoding audio and video files (predict_file)")
        from lexiedge_runtime.media.decode import decode_file

        return decode_file(path, self.media, max_seconds=self.spec.max_input_seconds)

    def file_feeds(self, path: str | Path) -> dict[str, np.ndarray]:
        """The graph's four feeds for a file, batch of one: exactly what ``predict_file`` runs the model on."""
        return prepare_inputs(self.spec, **self.decode_file(path)).feeds

    def _result(self, logits: np.ndarray, probabilities: np.ndarray) -> ClassificationResult:
        index = int(np.argmax(probabilities))
        return ClassificationResult(
            label=self.labels[index],
            probabilities={label: float(p) for label, p in zip(self.labels, probabilities)},
            index=index,
            logits=np.asarray(logits, np.float32),
        )

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}({self.artifact_dir}, provider={self.provider}, labels={len(self.labels)})"


class Classifier(ClassifierRunner):
    """Runs an ``av-classification`` artifact with ONNX Runtime (engine ``onnxruntime``).

    Adds ``session`` (the ``onnxruntime.InferenceSession``) and ``provider`` (the execution provider
    running it) to :class:`ClassifierRunner`'s attributes.
    """

    def __init__(self, artifact: Artifact, providers: list[ProviderSpec], *, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(artifact)
        graph = artifact.path(artifact.runtime.get("graph") or "model.onnx")
        options = session_options(threads)
        try:
            self.session: ort.InferenceSession = ort.InferenceSession(str(graph), options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types; one line says which file failed
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArtifactError(f"{graph}: ONNX Runtime cannot load the graph: {first}") from None
        check_providers_taken(self.session, providers)
        self.provider = self.session.get_providers()[0]
        self._inputs = [value.name for value in self.session.get_inputs()]
        self._outputs = [value.name for value in self.session.get_outputs()]
        expected = set(INPUT_NAMES)
        if set(self._inputs) != expected or PROBABILITIES not in self._outputs:
            raise ArtifactError(
                f"{graph}: inputs {self._inputs} / outputs {self._outputs}; expected inputs {sorted(expected)} "
                f"and a {PROBABILITIES!r} output"
            )
        classes = self._class_count()
        if classes is not None and classes != len(self.labels):
            raise ArtifactError(f"{graph}: the graph has {classes} classes but the manifest {len(self.labels)} labels")
        self._use_io_binding = self.provider in GPU_PROVIDERS

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on ready feeds (the four inputs): (logits, probabilities), each (batch, classes)."""
        try:
            if self._use_io_binding:
                outputs = self._run_bound(feeds, _device_of(self.provider))
            else:
                outputs = dict(zip(self._outputs, self.session.run(None, feeds)))
        except Exception as exc:  # shapes the checks allowed but a node refused: the app's input, not a crash
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            shapes = ", ".join(f"{name} {tuple(array.shape)}" for name, array in feeds.items())
            raise InferenceError(f"ONNX Runtime could not run the classifier on {shapes}: {first}") from None
        probabilities = outputs[PROBABILITIES]
        logits = outputs.get(LOGITS, np.log(np.clip(probabilities, 1e-12, None)))
        return logits, probabilities

    def _run_bound(self, feeds: dict[str, np.ndarray], device: str) -> dict[str, np.ndarray]:
        """Inputs copied to ``device`` once, outputs left there by ORT, then copied back together."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name in self._inputs:
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(feeds[name], device, 0))
        for name in self._outputs:
            binding.bind_output(name, device, 0)
        self.session.run_with_iobinding(binding)
        return dict(zip(self._outputs, binding.copy_outputs_to_cpu()))

    def _class_count(self) -> int | None:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == PROBABILITIES)
        return shape[-1] if shape and isinstance(shape[-1], int) else None


def open_classifier(artifact: Artifact, request: LoadRequest) -> Classifier:
    """The ``onnxruntime`` runner of ``av-classification`` artifacts (see ``tasks.registry``)."""
    if request.cache_tokens is not None or request.warm_prompt is not None:
        raise InputValueError(
            f"{artifact.directory} is a classifier: cache_tokens and warm_prompt apply to text generation"
        )
    return Classifier(artifact, choose_providers(request.device, request.providers), threads=request.threads)


def _device_of(provider: str) -> str:
    """The OrtValue device type of a provider's memory ("cuda" for CUDA and TensorRT)."""
    return "cuda" if provider in GPU_PROVIDERS else "cpu"
