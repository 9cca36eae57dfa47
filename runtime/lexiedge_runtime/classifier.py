"""The audio-visual classifier: what every ``av-classification`` runner shares, and the ONNX Runtime one.

:class:`ClassifierRunner` is the task's interface for apps (``predict``, ``predict_file``, ``labels``,
``spec``): it checks and prepares inputs and reads results; a runner of another engine subclasses it
and implements :meth:`~ClassifierRunner.run` (the graph on ready feeds). :class:`Classifier` runs an
exported graph (.onnx or .ort) with ONNX Runtime. On CPU the session runs with plain ``session.run``.
On a GPU provider (CUDA, TensorRT) inputs are copied to the device once and outputs are bound there
through ``session.io_binding()``, so ORT does not allocate and copy per output behind our back; the
probabilities come back to the host at the end.

A model normalised by its speaker (the manifest's ``enrollment``) also makes speaker profiles
(:meth:`ClassifierRunner.calibrate`) and takes one in ``predict(..., speaker=profile)``
(:mod:`lexiedge_runtime.enrollment`); its results say which statistics normalised them.
"""

from __future__ import annotations

import dataclasses
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
from lexiedge_runtime.enrollment import NOT_ENROLLABLE, Enrollment, Normalization, SpeakerProfile, clip_list
from lexiedge_runtime.errors import (
    ArtifactError,
    InferenceError,
    InputShapeError,
    InputValueError,
    NoEnrollmentError,
    RuntimeInputError,
    first_line,
)
from lexiedge_runtime.extras import require
from lexiedge_runtime.inputs import ClassifierSpec, prepare_inputs
from lexiedge_runtime.io_names import INPUT_NAMES, LOGITS, PROBABILITIES, WAVEFORM
from lexiedge_runtime.media.spec import MediaSpec
from lexiedge_runtime.tasks.spec import LoadRequest

if TYPE_CHECKING:
    import onnxruntime as ort


@dataclass(frozen=True)
class ClassificationResult:
    """One clip's prediction: the most probable ``label`` and every label's probability.

    ``normalization``, for a model normalised by its speaker: "speaker" when a speaker profile was fed,
    "global" when the global training statistics stood in for one; None for other models.
    """

    label: str
    probabilities: dict[str, float]
    index: int  # position of ``label`` in the artifact's labels
    logits: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.zeros(0, np.float32))
    normalization: Normalization | None = None

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
    ``enrollment`` (:class:`~lexiedge_runtime.enrollment.Enrollment`, None for a model not normalised
    by its speaker), ``manifest``, ``artifact_dir``, ``provider`` (what runs the graph). A subclass
    implements :meth:`run` (and :meth:`run_statistics` to enroll speakers).
    """

    provider: str = ""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact_dir = artifact.directory
        self.manifest = artifact.manifest
        self.spec = ClassifierSpec.from_manifest(artifact.manifest, str(artifact.directory))
        self.labels = list(self.spec.labels)
        self.media = MediaSpec.from_manifest(artifact.manifest, str(artifact.directory))
        self.enrollment = Enrollment.of(artifact.manifest)

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on ready feeds (the four inputs, and a speaker profile's two for a model that takes one):
        (logits, probabilities), each (batch, classes)."""
        raise NotImplementedError

    def run_statistics(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's statistics output on ready feeds, (batch, 2, features): what :meth:`calibrate`
        averages."""
        raise ArtifactError(
            f"{self.artifact_dir}: the {type(self).__name__} runner cannot read the graph's "
            "statistics output; enroll speakers with the onnxruntime runner"
        )

    def predict(
        self, waveform: Any = None, frames: Any = None, *, sample_rate: int = 16000, speaker: Any = None
    ) -> ClassificationResult | list[ClassificationResult]:
        """Classify one clip or a batch.

        ``waveform``: float mono in [-1, 1], (samples,) for one clip or (batch, samples);
        ``sample_rate``: its rate in Hz (resampled to the model's when different).
        ``frames``: RGB face crops, (T, 3, H, W) or (batch, T, 3, H, W), float in [0, 1] or uint8,
        H = W = the manifest's image_size. Either may be left out (zeros and mask 0 as in training).
        ``speaker``: a :class:`~lexiedge_runtime.enrollment.SpeakerProfile` of this model (from
        :meth:`calibrate`), for every clip of the call; None: the global training statistics (a model
        normalised by its speaker; the results' ``normalization`` says which).

        Returns a :class:`ClassificationResult` for one clip, a list of them for a batch; raises a
        :class:`~lexiedge_runtime.errors.RuntimeInputError` for input it cannot run on.
        """
        profile_feeds, normalization = self._profile_feeds(speaker)
        prepared = prepare_inputs(self.spec, waveform, frames, sample_rate=sample_rate)
        logits, probabilities = self.run({**prepared.feeds, **profile_feeds})
        results = [
            self._result(logits[row], probabilities[row], normalization) for row in range(prepared.batch_size)
        ]
        return results[0] if prepared.single else results

    def calibrate(self, clips: Any, *, sample_rate: int = 16000) -> SpeakerProfile:
        """A speaker's profile from a few of their clips: file paths (decoded as :meth:`predict_file` decodes
        them, audio only) or mono waveforms at ``sample_rate`` (checked as :meth:`predict` checks them), or a
        (clips, samples) array. At least the manifest's ``enrollment.min_clips``; each weighs the same.

        Returns a :class:`~lexiedge_runtime.enrollment.SpeakerProfile` (statistics only; nothing of the
        audio is kept) for ``predict(..., speaker=profile)``. Raises
        :class:`~lexiedge_runtime.errors.NoEnrollmentError` for a model not normalised by its speaker,
        :class:`~lexiedge_runtime.errors.TooFewClipsError`, and the errors of ``predict`` /
        ``predict_file`` for a clip they would refuse (a waveform's message names it: ``clips[2]: ...``).
        """
        if self.enrollment is None:
            raise NoEnrollmentError(NOT_ENROLLABLE)
        items = clip_list(clips)
        self.enrollment.check_count(len(items))  # before any decoding
        waveforms = [
            self._enrollment_waveform(item, position, sample_rate) for position, item in enumerate(items)
        ]
        statistics = []
        for start in range(0, len(waveforms), ENROLLMENT_BATCH):
            for batch in _same_length_runs(waveforms[start : start + ENROLLMENT_BATCH]):
                feeds = prepare_inputs(self.spec, np.stack(batch), sample_rate=self.spec.sample_rate).feeds
                statistics.append(self.run_statistics(feeds))
        return self.enrollment.profile(np.concatenate(statistics))

    def _enrollment_waveform(self, clip: Any, position: int, sample_rate: int) -> np.ndarray:
        """One enrollment clip as the model's waveform (samples,) at its rate: a file decoded, an array
        checked."""
        if isinstance(clip, (str, Path)):
            if self.media is None:
                self.decode_file(clip)  # refuses in predict_file's words
            require("media", "decoding audio files (calibrate)")
            from lexiedge_runtime.media.decode import decode_file

            assert self.media is not None
            audio_only = (
                dataclasses.replace(  # statistics are of the voice: no frames decoded, no faces found
                    self.media, options=dataclasses.replace(self.media.options, video=False, face_crop=False)
                )
            )
            return np.asarray(
                decode_file(clip, audio_only, max_seconds=self.spec.max_input_seconds)["waveform"]
            )
        try:
            array = np.asarray(clip) if not isinstance(clip, np.ndarray) else clip
            if array.ndim != 1:
                raise InputShapeError(
                    f"has shape {array.shape}; expected one mono waveform (samples,) or a file path"
                )
            if not self.spec.uses_audio:
                raise InputValueError(
                    "this model was trained without audio; enrollment reads the speaker's voice"
                )
            return prepare_inputs(self.spec, array, sample_rate=sample_rate).feeds[WAVEFORM][0]
        except RuntimeInputError as exc:
            raise type(exc)(f"clips[{position}]: {exc}") from None
        except (TypeError, ValueError) as exc:  # np.asarray of something that is not numbers
            raise InputValueError(f"clips[{position}] is not a file path or a waveform ({exc})") from None

    def _profile_feeds(self, speaker: Any) -> tuple[dict[str, np.ndarray], Normalization | None]:
        """The profile's feeds and what normalises the clips: "speaker", "global" (no profile) or None."""
        if self.enrollment is None:
            if speaker is not None:
                raise NoEnrollmentError(NOT_ENROLLABLE)
            return {}, None
        if speaker is None:
            return {}, "global"
        return self.enrollment.feeds(speaker), "speaker"

    def predict_file(self, path: str | Path, *, speaker: Any = None) -> ClassificationResult:
        """Classify a .wav or .mp4 file, decoded exactly as the model's evaluation data was (needs ``[media]``).

        Raises :class:`~lexiedge_runtime.errors.InputValueError` naming a file that is missing, cannot
        be decoded or holds no stream the model reads, and its subclass
        :class:`~lexiedge_runtime.errors.InputTooLargeError` for one longer than
        ``preprocessing.max_input_seconds`` or of video frames over the decoder's bounds (found from the
        header before decoding, or when decoding passes the bound); the model stays usable. ``speaker``:
        as for :meth:`predict`.
        """
        result = self.predict(**self.decode_file(path), speaker=speaker)
        assert isinstance(result, ClassificationResult)  # one clip in, one result out
        return result

    def decode_file(self, path: str | Path) -> dict[str, Any]:
        """``predict``'s keyword arguments for a file: the recorded decoder (``preprocessing.media``) run on it."""
        if self.media is None:
            raise ArtifactError(
                f"{self.artifact_dir}: the manifest records no decoding (preprocessing.media), so files "
                "cannot be "
                "decoded as in training: re-export the run with this lexiedge, or decode the file and call "
                "predict()"
            )
        require("media", "decoding audio and video files (predict_file)")
        from lexiedge_runtime.media.decode import decode_file

        return decode_file(path, self.media, max_seconds=self.spec.max_input_seconds)

    def file_feeds(self, path: str | Path) -> dict[str, np.ndarray]:
        """The graph's four feeds for a file, batch of one: exactly what ``predict_file`` runs the model on."""
        return prepare_inputs(self.spec, **self.decode_file(path)).feeds

    def _result(
        self, logits: np.ndarray, probabilities: np.ndarray, normalization: Normalization | None = None
    ) -> ClassificationResult:
        index = int(np.argmax(probabilities))
        return ClassificationResult(
            label=self.labels[index],
            probabilities={label: float(p) for label, p in zip(self.labels, probabilities)},
            index=index,
            logits=np.asarray(logits, np.float32),
            normalization=normalization,
        )

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}({self.artifact_dir}, provider={self.provider}, labels={len(self.labels)})"


class Classifier(ClassifierRunner):
    """Runs an ``av-classification`` artifact with ONNX Runtime (engine ``onnxruntime``).

    Adds ``session`` (the ``onnxruntime.InferenceSession``) and ``provider`` (the execution provider
    running it) to :class:`ClassifierRunner`'s attributes.
    """

    def __init__(
        self, artifact: Artifact, providers: list[ProviderSpec], *, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        super().__init__(artifact)
        graph = artifact.path(artifact.runtime.get("graph") or "model.onnx")
        options = session_options(threads)
        if self.enrollment is not None:  # ORT warns, at every load, that the profile inputs' defaults can be
            options.log_severity_level = 3  # overridden (so not constant-folded): that is their purpose
        try:
            self.session: ort.InferenceSession = ort.InferenceSession(
                str(graph), options, providers=providers
            )
        except Exception as exc:  # ORT raises its own exception types; one line says which file failed
            first = first_line(exc)
            raise ArtifactError(f"{graph}: ONNX Runtime cannot load the graph: {first}") from None
        check_providers_taken(self.session, providers)
        self.provider = self.session.get_providers()[0]
        self._inputs = [value.name for value in self.session.get_inputs()]
        self._outputs = [value.name for value in self.session.get_outputs()]
        expected = set(INPUT_NAMES)
        if set(self._inputs) != expected or PROBABILITIES not in self._outputs:
            raise ArtifactError(
                f"{graph}: inputs {self._inputs} / outputs {self._outputs}; expected inputs "
                f"{sorted(expected)} "
                f"and a {PROBABILITIES!r} output"
            )
        classes = self._class_count()
        if classes is not None and classes != len(self.labels):
            raise ArtifactError(
                f"{graph}: the graph has {classes} classes but the manifest {len(self.labels)} labels"
            )
        if self.enrollment is not None:
            self._check_enrollment(graph)
        self._use_io_binding = self.provider in GPU_PROVIDERS

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on ready feeds (the four inputs, and a speaker profile's two for a model that takes one):
        (logits, probabilities), each (batch, classes)."""
        outputs = self._run_graph(feeds)
        probabilities = outputs[PROBABILITIES]
        logits = outputs.get(LOGITS, np.log(np.clip(probabilities, 1e-12, None)))
        return logits, probabilities

    def run_statistics(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's statistics output on ready feeds, (batch, 2, features): what :meth:`calibrate`
        averages."""
        if self.enrollment is None:
            raise NoEnrollmentError(NOT_ENROLLABLE)
        return self._run_graph(feeds)[self.enrollment.statistics_output]

    def _run_graph(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            if self._use_io_binding:
                return self._run_bound(feeds, _device_of(self.provider))
            return dict(zip(self._outputs, self.session.run(None, feeds)))
        except Exception as exc:  # shapes the checks allowed but a node refused: the app's input, not a crash
            first = first_line(exc)
            shapes = ", ".join(f"{name} {tuple(array.shape)}" for name, array in feeds.items())
            raise InferenceError(f"ONNX Runtime could not run the classifier on {shapes}: {first}") from None

    def _check_enrollment(self, graph: Path) -> None:
        """The graph has what the manifest's enrollment section names: the statistics output, and the profile
        inputs as initializers a feed may override, one value per feature."""
        assert self.enrollment is not None
        section = self.enrollment.section
        shapes = {value.name: value.shape for value in self.session.get_overridable_initializers()}
        names = (section.profile_inputs.mean, section.profile_inputs.std)
        if section.statistics_output not in self._outputs or not all(name in shapes for name in names):
            raise ArtifactError(
                f"{graph}: the manifest's enrollment section names the output {section.statistics_output!r} "
                "and "
                f"the overridable inputs {names[0]!r}, {names[1]!r}; the graph has outputs {self._outputs} "
                "and "
                f"overridable inputs {sorted(shapes)}"
            )
        for name in names:
            features = shapes[name][-1] if shapes[name] else None
            if isinstance(features, int) and features != section.features:
                raise ArtifactError(
                    f"{graph}: {name} holds {features} features but the manifest's "
                    f"enrollment.features says {section.features}"
                )

    def _run_bound(self, feeds: dict[str, np.ndarray], device: str) -> dict[str, np.ndarray]:
        """Inputs copied to ``device`` once, outputs left there by ORT, then copied back together."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, device, 0))
        for name in self._outputs:
            binding.bind_output(name, device, 0)
        self.session.run_with_iobinding(binding)
        return dict(zip(self._outputs, binding.copy_outputs_to_cpu()))

    def _class_count(self) -> int | None:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == PROBABILITIES)
        return shape[-1] if shape and isinstance(shape[-1], int) else None


ENROLLMENT_BATCH = 16  # clips run through the graph at once while calibrating


def _same_length_runs(waveforms: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Consecutive waveforms of one length grouped (one graph call each), in order."""
    runs: list[list[np.ndarray]] = []
    for waveform in waveforms:
        if runs and runs[-1][0].shape == waveform.shape:
            runs[-1].append(waveform)
        else:
            runs.append([waveform])
    return runs


def open_classifier(artifact: Artifact, request: LoadRequest) -> Classifier:
    """The ``onnxruntime`` runner of ``av-classification`` artifacts (see ``tasks.registry``)."""
    request.refuse_generation_options(artifact.directory)
    return Classifier(artifact, choose_providers(request.device, request.providers), threads=request.threads)


def _device_of(provider: str) -> str:
    """The OrtValue device type of a provider's memory ("cuda" for CUDA and TensorRT)."""
    return "cuda" if provider in GPU_PROVIDERS else "cpu"
