"""The JFLEG scorer: a reference scores 100, a corrupted sentence less; edits and exact matches count words."""

from __future__ import annotations

from pathlib import Path

import pytest
from lexiedge_chat_jsonl.evaluate import corrected_text, read_jfleg
from lexiedge_chat_jsonl.gec_scores import nearest_edit_distance, score_corrections

JFLEG = Path(__file__).resolve().parents[3] / "shared" / "data" / "jfleg"


def test_a_reference_scores_100_and_a_corrupted_one_less() -> None:
    references = [["She goes to school every day.", "She went to school every day.", "She goes to school daily.",
                   "She goes to the school every day."],
                  ["I have lived here for two years.", "I've lived here for two years.", "I have been living here "
                   "for two years.", "I have lived here two years."]]
    perfect = score_corrections([refs[1] for refs in references], references)
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    assert perfect["exact_match"] == 1.0 and perfect["edit_distance"] == 0.0
    corrupted = score_corrections(["She go to school every days.", "I living here since two year."], references)
    assert corrupted["bleu"] < 60 and corrupted["chrf"] < perfect["chrf"]
    assert corrupted["exact_match"] == 0.0 and corrupted["edit_distance"] >= 2
    assert corrupted["signatures"]["bleu"].startswith("nrefs:4")


def test_the_edit_distance_is_in_words_to_the_nearest_reference() -> None:
    assert nearest_edit_distance("she go to school", ["she goes to school", "he went to a school"]) == 1
    assert nearest_edit_distance("", ["two words"]) == 2


def test_misaligned_references_are_refused() -> None:
    with pytest.raises(ValueError, match="same number"):
        score_corrections(["a", "b"], [["a", "x"], ["b"]])


def test_the_tutor_answer_gives_its_corrected_field_even_when_cut_off() -> None:
    assert corrected_text('{"task":"grammar","corrected":"He goes home.","errors":[],"score":100}') == (
        "He goes home.", True)
    assert corrected_text('{"task":"grammar","corrected":"He \\"goes\\" home.","errors":[{"orig') == (
        'He "goes" home.', False)
    assert corrected_text("  He goes home. ") == ("He goes home.", False)


@pytest.mark.shared_data
def test_jfleg_reads_as_plain_text_with_four_references() -> None:
    if not JFLEG.is_dir():
        pytest.skip(f"{JFLEG} is absent (the shared test data)")
    sentences = read_jfleg(JFLEG, "test")
    assert len(sentences) == 747 and all(len(s.references) == 4 for s in sentences)
    assert " ." not in sentences[0].source and " n't" not in " ".join(s.source for s in sentences[:50])
    scores = score_corrections([s.references[0] for s in sentences], [s.references for s in sentences])
    assert scores["bleu"] == pytest.approx(100.0) and scores["exact_match"] == 1.0
    sources = score_corrections([s.source for s in sentences], [s.references for s in sentences])
    assert 0 < sources["bleu"] < 100 and sources["edit_distance"] > 0, "learner sentences differ from corrections"
