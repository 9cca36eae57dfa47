"""A PyTorch classifier -> an ExecuTorch program (.pte) delegated to XNNPACK, fp32.

What the lowering needs that a plain ``torch.export`` + ``to_edge_transform_and_lower`` does not do:

* buffers registered non-persistent (derived constants such as the emotion front end's DFT basis and
  mel filters) are made persistent on a copy of the module: XNNPACK's partitioner moves the constants
  it consumes into the state dict, and the program's verifier then refuses a non-persistent buffer there
  ("Non-persistent buffer ... in the state dict"); the trained module is left as it is;
* batch is fixed at 1 (what an app runs; XNNPACK's reshape takes one dynamic dimension, and a reshape of
  (batch x frames) has two), the other named axes are ``Dim.DYNAMIC`` with the bounds the caller gives:
  ExecuTorch plans memory for the upper bound;
* the edge lowering runs with oneDNN and NNPACK switched off: torch's fake convolution chooses a CPU
  convolution backend by input size (oneDNN above ~20,480 elements, NNPACK from 16 images) and records
  that choice as a guard, which narrows the dynamic range (samples <= 102,399 instead of the bound asked
  for, frames <= 15), and ExecuTorch then plans memory for the narrowed range;
* int8 (:func:`quantize_static_int8`) is PT2E static quantization with XNNPACK's quantizer, its config
  applied only to the nodes of the ``nn.Linear``/``nn.Conv*`` modules outside those kept in float (one
  annotation pass with a node filter), calibrated on the caller's clips; functional ops (the STFT
  convolution on a fixed basis, the mel matmul) are never quantized, so the log-mel front end stays
  fp32; activations are calibrated with min/max observers (as ONNX Runtime's static int8) unless the
  caller asks for XNNPACK's default histogram observer (at the rtx3050-4gb sizes: max |logit diff|
  0.023 with min/max, 0.027 with the histogram, the same decisive agreement);
* the program returns the probabilities beside the logits (:class:`WithProbabilities`), as the ONNX
  graphs do, so apps need no post-processing.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower


@dataclass(frozen=True)
class AxisBounds:
    """A dynamic axis of one input: position, and the smallest and largest size the program must take."""

    input_index: int
    axis: int
    low: int
    high: int


class WithProbabilities(torch.nn.Module):
    """The classifier with a second output, the softmax over the classes: (logits, probabilities)."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(  # the task's four inputs by name: torch.export matches dynamic shapes to them
        self, waveform: torch.Tensor, frames: torch.Tensor, audio_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.classifier(waveform, frames, audio_mask, video_mask)
        return logits, torch.softmax(logits, dim=-1)


def exportable_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy in eval mode whose buffers are all persistent (see the module doc)."""
    clone = copy.deepcopy(module).eval()
    for submodule in clone.modules():
        for name, buffer in list(submodule.named_buffers(recurse=False)):
            submodule.register_buffer(name, buffer, persistent=True)
    return clone


def dynamic_shapes(example: Sequence[torch.Tensor], bounds: Iterable[AxisBounds]) -> tuple:
    """``torch.export`` dynamic shapes: one dict per input ({axis: Dim.DYNAMIC(min, max)}) or None."""
    spec: list[dict | None] = [None] * len(example)
    for bound in bounds:
        axes = spec[bound.input_index] or {}
        axes[bound.axis] = torch.export.Dim.DYNAMIC(min=bound.low, max=bound.high)
        spec[bound.input_index] = axes
    return tuple(spec)


@contextlib.contextmanager
def size_independent_convolutions() -> Iterator[None]:
    """No CPU convolution backend chosen by input size while lowering (see the module doc)."""
    with torch.backends.mkldnn.flags(enabled=False), torch.backends.nnpack.flags(enabled=False):
        yield


def export_program(
    module: torch.nn.Module, example: Sequence[torch.Tensor], shapes: tuple
) -> torch.export.ExportedProgram:
    with torch.no_grad():
        return torch.export.export(module, tuple(example), dynamic_shapes=shapes)


QUANTIZED_MODULES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)


def quantizable_modules(module: torch.nn.Module, keep_float: Sequence[str]) -> list[str]:
    """The Linear/Conv modules int8 quantizes: every one not under a ``keep_float`` module path."""
    return [
        name
        for name, submodule in module.named_modules()
        if isinstance(submodule, QUANTIZED_MODULES) and not _under(name, keep_float)
    ]


def quantize_static_int8(
    module: torch.nn.Module,
    example: Sequence[torch.Tensor],
    shapes: tuple,
    calibration: Iterable[Sequence[torch.Tensor]],
    quantized: Sequence[str],
    observer: str = "minmax",
) -> torch.nn.Module:
    """PT2E static int8 (per-channel symmetric int8 weights, int8 activations) of the ``quantized`` modules,
    calibrated on ``calibration`` (inputs of the example's batch of 1) with ``observer`` (minmax or
    histogram) on the activations; returns the converted module."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(activation_observer(get_symmetric_quantization_config(is_per_channel=True), observer))
    # One pass restricted to the quantized modules' nodes, not set_module_name() per module: the quantizer
    # runs every pattern annotator (some trace their pattern with torch.export) once per configured name,
    # and 82 names took 135 s at the rtx3050-4gb sizes. The annotations are identical (checked on the cpu
    # profile's model: the same 138 nodes and specs, 197 s per name against 3 s in one pass).
    quantizer.filter_fn = within_modules(quantized)
    prepared = prepare_pt2e(export_program(module, example, shapes).module(), quantizer)
    with torch.no_grad():
        for inputs in calibration:
            prepared(*inputs)
    return convert_pt2e(prepared)


def activation_observer(config: Any, observer: str) -> Any:
    """XNNPACK's symmetric config with its activations' observer swapped: ``histogram`` is the config's
    own; ``minmax`` replaces it by a MinMaxObserver with the same arguments (eps)."""
    if observer == "histogram":
        return config
    if observer != "minmax":
        raise ValueError(f"activation observer {observer!r}: expected minmax or histogram")
    from torchao.quantization.pt2e.observer import MinMaxObserver

    def with_minmax(spec: Any) -> Any:
        if spec is None:
            return None
        constructor = spec.observer_or_fake_quant_ctr  # with_args(): a wrapper around a functools.partial
        arguments = getattr(getattr(constructor, "p", constructor), "keywords", {})
        return dataclasses.replace(spec, observer_or_fake_quant_ctr=MinMaxObserver.with_args(**arguments))

    return dataclasses.replace(
        config, input_activation=with_minmax(config.input_activation),
        output_activation=with_minmax(config.output_activation),
    )


def within_modules(names: Sequence[str]) -> Callable[[torch.fx.Node], bool]:
    """A node filter: True for a node traced inside one of the modules ``names`` (its ``nn_module_stack``),
    as the quantizer's own per-name filter decides it for one name."""
    wanted = set(names)

    def inside(node: torch.fx.Node) -> bool:
        stack = node.meta.get("nn_module_stack", {})
        return any(path.removeprefix("L['self'].") in wanted for path, _ in stack.values())

    return inside


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def lower_to_xnnpack(program: torch.export.ExportedProgram) -> bytes:
    """The .pte bytes of ``program`` with every op XNNPACK takes delegated to it."""
    with size_independent_convolutions():
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        return edge.to_executorch().buffer
