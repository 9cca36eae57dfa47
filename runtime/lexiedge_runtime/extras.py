"""The runtime's optional dependencies, by extra, and the one-line refusal when one is missing.

``pip install lexiedge-runtime`` brings onnxruntime and numpy: enough for a classifier fed arrays.
Each extra adds what one feature imports; a feature checks its extra before doing anything else
(text generation at ``load()``, file decoding at the first ``predict_file``, the server at start), so
a missing package is a :class:`~lexiedge_runtime.errors.MissingExtraError` naming the extra, never a
``ModuleNotFoundError`` from deep inside a call. ``runtime/pyproject.toml`` declares the same lists
(a test reads it to keep the two equal).
"""

from __future__ import annotations

import importlib.util

from lexiedge_runtime.errors import MissingExtraError

DISTRIBUTION = "lexiedge-runtime"
# extra -> (import name, distribution name) of every package the feature imports
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "llm": (("onnxruntime_genai", "onnxruntime-genai"), ("tokenizers", "tokenizers"), ("jinja2", "jinja2")),
    "media": (("av", "av"), ("soundfile", "soundfile"), ("cv2", "opencv-python-headless")),
    "serve": (("starlette", "starlette"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart"),
              ("prometheus_client", "prometheus-client")),
    # ExecuTorch's runtime takes torch tensors, and its wheel does not declare torch: this extra brings it
    # (only executorch_runner imports it)
    "executorch": (("executorch", "executorch"), ("torch", "torch")),
    "openvino": (("openvino", "openvino"),),
    # LiteRT's interpreter alone (torch-free); the converter runs in a venv of the exporter's own
    "litert": (("ai_edge_litert", "ai-edge-litert"),),
}


def missing(extra: str) -> list[str]:
    """Distribution names of the extra's packages that cannot be imported here."""
    return [dist for module, dist in EXTRAS[extra] if importlib.util.find_spec(module) is None]


def require(extra: str, purpose: str) -> None:
    """Refuse in one line, naming ``pip install 'lexiedge-runtime[extra]'``, when the extra is not installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{purpose} needs {', '.join(absent)} (not installed): pip install '{DISTRIBUTION}[{extra}]'"
        )


def extra_for_modules(modules: tuple[str, ...] | list[str]) -> str | None:
    """The extra that brings these modules (a runner's ``libraries``: "executorch.runtime"), else None (the
    base install has them, or no extra names them)."""
    tops = {module.partition(".")[0] for module in modules}
    for extra, packages in EXTRAS.items():
        if any(module in tops for module, _ in packages):
            return extra
    return None
