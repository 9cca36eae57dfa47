"""The backends of an ``.onnx`` classifier artifact (engine ``onnxruntime``), chosen by ``load()``'s device.

``auto``, ``tensorrt``, ``cuda``, ``cpu``: ONNX Runtime with that device's execution providers
(:mod:`lexiedge_runtime.devices`); ``openvino``: OpenVINO's runtime on the same graph
(:mod:`lexiedge_runtime.openvino_runner`, extra ``[openvino]``). Either way the artifact is the one
``lexiedge export`` verified; only what runs it differs.
"""

from __future__ import annotations

from lexiedge_runtime.artifact import Artifact
from lexiedge_runtime.classifier import ClassifierRunner, open_classifier
from lexiedge_runtime.errors import InputValueError
from lexiedge_runtime.tasks.spec import LoadRequest

OPENVINO = "openvino"


def open_onnx_classifier(artifact: Artifact, request: LoadRequest) -> ClassifierRunner:
    """The ``onnxruntime`` engine's runner of ``av-classification`` artifacts (see ``tasks.registry``)."""
    if request.device.lower() != OPENVINO:
        return open_classifier(artifact, request)
    request.refuse_generation_options(artifact.directory)
    if request.providers:
        raise InputValueError(
            "providers name ONNX Runtime's execution providers; device 'openvino' takes none"
        )
    from lexiedge_runtime.openvino_runner import OpenVinoClassifier

    return OpenVinoClassifier(artifact, threads=request.threads)
