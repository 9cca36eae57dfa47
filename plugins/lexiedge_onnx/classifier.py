"""av-classification runs (emotion-av) as ONNX: the trained model's graph, with a probabilities output.

The run's PyTorch model and the inputs every exporter verifies on are the core's
(:mod:`lexiedge.export.classifier`). The model plugin owns the tracing (it knows which axes are free and
which ops export cleanly): :meth:`lexiedge.api.ModelPlugin.export_onnx`. This module adds the
probabilities output and reuses one trace per process.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lexiedge_runtime.errors import first_line
from lexiedge_runtime.tasks.av_classification import LOGITS, PROBABILITIES

from lexiedge.errors import LexiedgeError
from lexiedge.export import ExportError
from lexiedge.export.classifier import ClassifierSource

if TYPE_CHECKING:
    import onnx
    import torch

    from lexiedge.api import ModelPlugin

GraphWriter = Callable[["torch.nn.Module", Path, tuple], Path]


# --- the graph -------------------------------------------------------------------------------------


def model_graph_writer(model_plugin: ModelPlugin) -> GraphWriter:
    """The model plugin's ONNX exporter (:meth:`~lexiedge.api.ModelPlugin.export_onnx`; its default refuses)."""
    return model_plugin.export_onnx


_traces: Path | None = None
# torch.onnx's op registry warns once per process for each torchvision op it skips ("torchvision is
# not installed"); our graphs use none of them, so the warning only confuses the user.
_TORCH_ONNX_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"


@contextlib.contextmanager
def _quiet_torch_onnx_registry() -> Iterator[None]:
    logger = logging.getLogger(_TORCH_ONNX_REGISTRY_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _traces_dir() -> Path:
    """A per-process scratch directory: several targets of one `lexiedge export` reuse one trace."""
    global _traces
    if _traces is None:
        _traces = Path(tempfile.mkdtemp(prefix="lexiedge-onnx-"))
        atexit.register(shutil.rmtree, _traces, True)
    return _traces


def export_graph(source: ClassifierSource, path: Path, *, opset: int, writer: GraphWriter | None = None) -> Path:
    """Trace the model to ``path`` (logits and probabilities out); traces are reused within a process."""
    from lexiedge.export import sha256_file

    assert source.job is not None
    writer = writer or model_graph_writer(source.job.model_plugin)
    key = hashlib.sha256(
        f"{sha256_file(source.checkpoint / 'model.safetensors')}|{source.job.entry.model.settings!r}|{opset}|"
        f"{getattr(writer, '__module__', '')}.{getattr(writer, '__qualname__', writer)!r}".encode()
    ).hexdigest()[:20]
    cached = _traces_dir() / f"{key}.onnx"
    if not cached.is_file():
        traced = _traces_dir() / f"{key}.trace.onnx"
        try:
            with _quiet_torch_onnx_registry():
                writer(source.module, traced, source.example, opset=opset)
        except LexiedgeError:
            raise
        except Exception as exc:  # the tracer's errors are long; the first line says what failed
            first = first_line(exc)
            raise ExportError(f"torch.onnx could not export {source.job.model_key}: {first}") from exc
        add_probabilities(traced, cached)
    shutil.copyfile(cached, path)
    return path


def add_probabilities(path: Path, out: Path) -> Path:
    """Append a Softmax over the class axis as a second output, so apps need no post-processing; and drop
    the tracer's per-node source stack traces (file paths of this machine's checkout: the same weights
    then give the same bytes wherever they are exported, and an artifact names no build folder)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    _drop_source_traces(graph)
    if LOGITS not in [o.name for o in graph.output]:
        raise ExportError(f"the exported graph has no {LOGITS!r} output (outputs: {[o.name for o in graph.output]})")
    if PROBABILITIES not in [o.name for o in graph.output]:
        logits = next(o for o in graph.output if o.name == LOGITS)
        graph.node.append(helper.make_node("Softmax", [LOGITS], [PROBABILITIES], name="probabilities_softmax", axis=-1))
        probabilities = onnx.ValueInfoProto()
        probabilities.CopyFrom(logits)
        probabilities.name = PROBABILITIES
        graph.output.append(probabilities)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


SOURCE_TRACE = "pkg.torch.onnx.stack_trace"  # torch.onnx's per-node metadata: the Python stack that made it


def _drop_source_traces(graph: onnx.GraphProto) -> None:
    """Remove :data:`SOURCE_TRACE` from every node, in subgraphs (If, Loop, Scan) too."""
    for node in graph.node:
        kept = [prop for prop in node.metadata_props if prop.key != SOURCE_TRACE]
        if len(kept) != len(node.metadata_props):
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        for attribute in node.attribute:
            for subgraph in (attribute.g, *attribute.graphs):
                _drop_source_traces(subgraph)
