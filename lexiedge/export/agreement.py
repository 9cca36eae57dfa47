"""Top-1 agreement that measures fidelity, not noise: decisive samples and near-ties, kept apart.

A quantized (or merely re-ordered) graph moves every logit by a little. Where PyTorch's two best
classes (or tokens) are closer than that movement, the artifact's argmax is a coin toss, and how
often such near-ties flip says nothing about the export: it depends on how many near-ties the
model happens to have, which depends on its training state and on the CPU that trained it. So:

* the **noise** of the export is the 99th percentile of |artifact logit - PyTorch logit| over every
  sample and class compared (a high quantile, not the maximum: the maximum would make every flip
  a near-tie by construction, and the check could never fail);
* the **tie margin** is twice the noise: for the top-1 to flip, the two best logits must move
  towards each other by the fp32 margin, i.e. each by half of it;
* a sample is **decisive** when PyTorch's top-1 minus top-2 exceeds the tie margin. Agreement is
  enforced there, strictly; near-ties and their flips are counted and reported apart;
* a broken export cannot hide behind its own noise: when the noise is as large as the model's
  decisions, few samples are decisive, and the verifiers require a minimum decisive share.

Both numbers go into the manifest, so a reader sees what "decisive" meant for this artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NOISE_QUANTILE = 0.99
TIE_FACTOR = 2.0  # a flip needs both of the two best logits to move by half the margin
MIN_TIE_MARGIN = 1e-6  # fp32 graphs can agree to the last bit: a zero margin would make exact ties "decisive"


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """(N, C) logits -> (N,) top-1 minus top-2 (0 for a single class)."""
    if logits.shape[-1] < 2:
        return np.zeros(logits.shape[:-1], dtype=np.float64)
    best_two = np.partition(logits, -2, axis=-1)[..., -2:].astype(np.float64)  # O(C): LLM vocabularies are large
    return best_two[..., 1] - best_two[..., 0]


def export_noise(differences: np.ndarray) -> float:
    """The export's logit noise: the NOISE_QUANTILE of |differences| (any shape)."""
    flat = np.abs(np.asarray(differences)).ravel()
    return float(np.quantile(flat, NOISE_QUANTILE)) if flat.size else 0.0


def tie_margin_for(noise: float) -> float:
    return max(TIE_FACTOR * noise, MIN_TIE_MARGIN)


@dataclass(frozen=True)
class Agreement:
    """Top-1 agreement of an artifact with its reference, decisive samples and near-ties apart."""

    samples: int
    agree: int
    decisive: int
    decisive_agree: int
    noise: float
    tie_margin: float

    @property
    def near_ties(self) -> int:
        return self.samples - self.decisive

    @property
    def near_tie_flips(self) -> int:
        return (self.samples - self.agree) - (self.decisive - self.decisive_agree)

    @property
    def overall(self) -> float | None:
        return self.agree / self.samples if self.samples else None

    @property
    def on_decisive(self) -> float | None:
        return self.decisive_agree / self.decisive if self.decisive else None

    @property
    def decisive_share(self) -> float:
        return self.decisive / self.samples if self.samples else 0.0

    def report(self) -> dict[str, Any]:
        return {
            "noise_logit_p99": self.noise,
            "tie_margin": self.tie_margin,
            "tie_margin_rule": f"{TIE_FACTOR:g} x the {NOISE_QUANTILE:.0%} quantile of |logit difference|",
            "decisive": {"samples": self.decisive, "share": self.decisive_share, "agreement": self.on_decisive},
            "near_ties": {"samples": self.near_ties, "flips": self.near_tie_flips},
        }


def measure_agreement(
    reference: np.ndarray, artifact: np.ndarray, *, noise: float | None = None, expected: np.ndarray | None = None
) -> Agreement:
    """Agreement of ``artifact`` (N, C) logits with ``reference`` (N, C).

    ``noise`` defaults to the export noise measured on these very logits; ``expected`` (N,) are the
    reference's choices when they are not its argmax (teacher-forced tokens).
    """
    # float32 is enough for margins of a few 1e-6 and keeps (steps x vocabulary) LLM logits small
    reference = np.asarray(reference, dtype=np.float32)
    artifact = np.asarray(artifact, dtype=np.float32)
    if noise is None:
        noise = export_noise(artifact - reference)
    margin = tie_margin_for(noise)
    wanted = reference.argmax(-1) if expected is None else np.asarray(expected)
    agree = artifact.argmax(-1) == wanted
    decisive = top2_margin(reference) > margin
    return Agreement(
        samples=int(agree.size),
        agree=int(agree.sum()),
        decisive=int(decisive.sum()),
        decisive_agree=int((agree & decisive).sum()),
        noise=float(noise),
        tie_margin=float(margin),
    )
