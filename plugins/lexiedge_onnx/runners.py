"""Running an exported graph: the callable verification talks to, and the graph's signature.

Verification only needs ``runner(feeds) -> outputs`` (numpy in, numpy out, by name:
:data:`lexiedge.export.verify_classifier.Runner`), so another backend plugs into the same checks with its
own runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OrtRunner:
    """An ONNX Runtime CPU session (.onnx or .ort) called with a dict of numpy arrays."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # the runtime's warnings about unused initializers are noise here
        if threads:
            options.intra_op_num_threads = threads
        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a graph the runtime refuses: say which file, in one line
            from lexiedge.export import ExportError

            said = " ".join(str(exc).split()) or type(exc).__name__
            raise ExportError(f"ONNX Runtime cannot load {path.name}: {said[:300]}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {name: feeds[name] for name in self.input_names})
        return dict(zip(self.output_names, outputs))

    def signature(self) -> dict[str, list[dict[str, Any]]]:
        """Names, dtypes and shapes (symbolic names for dynamic axes) of the inputs and outputs."""

        def describe(values) -> list[dict[str, Any]]:
            return [
                {
                    "name": value.name,
                    "dtype": _ORT_TYPES.get(value.type, value.type),
                    "shape": [dim if isinstance(dim, (int, str)) else None for dim in value.shape],
                }
                for value in values
            ]

        return {"inputs": describe(self.session.get_inputs()), "outputs": describe(self.session.get_outputs())}
