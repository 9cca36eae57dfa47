"""Reference-based scores of grammar corrections against several human references (JFLEG has four).

* BLEU and chrF from sacrebleu (corpus-level, every reference used, sacrebleu's own tokenisation),
  so the numbers are comparable with published ones and reproducible from their signatures;
* exact match: the correction equals one of the references (whitespace-normalised);
* edit distance: word-level Levenshtein distance to the nearest reference (rapidfuzz), averaged over
  sentences: how many word edits away from an acceptable correction the output is.

GLEU, JFLEG's own metric, has no maintained implementation on PyPI (the authors' script is
Python 2; NLTK's ``gleu_score`` is Google's MT GLEU, a different metric), so it is not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _normalised(text: str) -> str:
    return " ".join(text.split())


def nearest_edit_distance(hypothesis: str, references: Sequence[str]) -> int:
    """Word edits (insert, delete, substitute) from ``hypothesis`` to its nearest reference."""
    from rapidfuzz.distance import Levenshtein

    words = hypothesis.split()
    return min(Levenshtein.distance(words, reference.split()) for reference in references)


def score_corrections(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Scores of ``hypotheses[i]`` against ``references[i]`` (each a list of acceptable corrections).

    Returns ``bleu`` and ``chrf`` (0-100), ``exact_match`` (share, 0-1), ``edit_distance`` (mean word
    edits to the nearest reference), ``sentences``, and sacrebleu's signatures.
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        raise ValueError("no sentences to score")
    counts = {len(refs) for refs in references}
    if len(counts) != 1 or 0 in counts:
        raise ValueError("every sentence needs the same number (>= 1) of references")
    streams = [list(stream) for stream in zip(*references)]  # sacrebleu wants one list per reference index
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), streams)
    chrf_score = chrf.corpus_score(list(hypotheses), streams)
    exact = sum(_normalised(hyp) in {_normalised(ref) for ref in refs} for hyp, refs in zip(hypotheses, references))
    distances = [nearest_edit_distance(hyp, refs) for hyp, refs in zip(hypotheses, references)]
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "exact_match": exact / len(hypotheses),
        "edit_distance": sum(distances) / len(distances),
        "sentences": len(hypotheses),
        "signatures": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
    }
