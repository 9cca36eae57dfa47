"""The module LiteRT converts: the classifier with keyword inputs and a dict of outputs, so the .tflite
signature carries the task's names (what the runtime's runner calls it by). Imported only when a LiteRT
target runs (it imports torch)."""

from __future__ import annotations

import torch


class NamedOutputs(torch.nn.Module):
    """``{"logits", "probabilities"}`` (softmax over the classes), as the ONNX graphs return them."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(  # keyword inputs by the task's names
        self, waveform: torch.Tensor, frames: torch.Tensor, audio_mask: torch.Tensor, video_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        logits = self.classifier(waveform, frames, audio_mask, video_mask)
        return {"logits": logits, "probabilities": torch.softmax(logits, dim=-1)}
