"""OpenVINO as the backend of an ``.onnx`` classifier artifact: ``load(artifact, device="openvino")``.

The artifact stays what ``lexiedge export`` wrote and verified (engine ``onnxruntime``, ``model.onnx``);
OpenVINO's runtime reads that same graph (torch-free, extra ``[openvino]``) and compiles it for the CPU,
in fp32: OpenVINO's CPU plugin would otherwise pick bf16 on processors that have it, which is not the
precision the artifact was verified in. An ``.ort`` graph (ONNX Runtime's own format) is refused: only
ONNX Runtime reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.classifier import ClassifierRunner
from lexiedge_runtime.errors import ArtifactError, InferenceError, InputValueError, first_line
from lexiedge_runtime.extras import require
from lexiedge_runtime.io_names import INPUT_NAMES, LOGITS, PROBABILITIES

DEVICE = "openvino"
PROVIDER = "OpenVINO CPU"
FP32 = {"INFERENCE_PRECISION_HINT": "f32"}  # the verified precision, never bf16 (see the module doc)


class OpenVinoClassifier(ClassifierRunner):
    """Runs an ``av-classification`` artifact's ONNX graph with OpenVINO on the CPU.

    Adds ``compiled`` (the ``openvino.CompiledModel``) to :class:`ClassifierRunner`'s attributes.
    """

    provider = PROVIDER

    def __init__(self, artifact: Artifact, *, threads: int | None = None) -> None:
        require(DEVICE, "running a classifier on OpenVINO (device='openvino')")
        import openvino as ov

        super().__init__(artifact)
        if self.enrollment is not None:
            raise ArtifactError(
                f"{artifact.directory}: OpenVINO runs classifiers without speaker enrollment; this model "
                "normalises by its speaker: load it with device 'cpu'"
            )
        graph = artifact.path(artifact.runtime.get("graph") or "model.onnx")
        if graph.suffix != ".onnx":
            raise ArtifactError(
                f"{graph}: OpenVINO reads ONNX graphs (.onnx); {graph.name} is ONNX Runtime's own format: "
                "load it with device 'cpu'"
            )
        config: dict[str, Any] = dict(FP32)
        if threads is not None:
            if threads < 1:
                raise InputValueError(f"threads must be a positive number of threads, got {threads}")
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = ov.Core().compile_model(str(graph), "CPU", config)
        except Exception as exc:  # OpenVINO's errors span many lines of source locations
            raise ArtifactError(f"{graph}: OpenVINO cannot compile the graph: {_reason(exc)[:300]}") from None
        names = [port.get_any_name() for port in self.compiled.inputs]
        outputs = [port.get_any_name() for port in self.compiled.outputs]
        if set(names) != set(INPUT_NAMES) or PROBABILITIES not in outputs:
            raise ArtifactError(
                f"{graph}: inputs {names} / outputs {outputs}; expected inputs {sorted(INPUT_NAMES)} "
                f"and a {PROBABILITIES!r} output"
            )
        self._request = self.compiled.create_infer_request()

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph on ready feeds (the four inputs): (logits, probabilities), each (batch, classes)."""
        try:
            results = self._request.infer({name: feeds[name] for name in INPUT_NAMES})
        except Exception as exc:  # a shape a node refused: the app's input, not a crash
            first = first_line(exc)
            shapes = ", ".join(f"{name} {tuple(array.shape)}" for name, array in feeds.items())
            raise InferenceError(f"OpenVINO could not run the classifier on {shapes}: {first}") from None
        outputs = {port.get_any_name(): np.array(value, copy=True) for port, value in results.items()}
        probabilities = outputs[PROBABILITIES]
        logits = outputs.get(LOGITS, np.log(np.clip(probabilities, 1e-12, None)))
        return logits, probabilities


def _reason(exc: Exception) -> str:
    """The line of an OpenVINO error that says what failed (the operators it could not convert, when that
    is the cause), not the C++ source locations that come first."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    failed = [line.lstrip("- ") for line in lines if line.startswith("-- Conversion is failed for")]
    if failed:
        return "; ".join(failed)
    told = [line for line in lines if not line.startswith(("Exception from", "Check "))]
    return (told or lines or [type(exc).__name__])[-1]
