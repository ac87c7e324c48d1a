"""Loading the labelled corpus: validation and reviewed codings."""

import json

import numpy as np
import pytest

from pipeline.codebook import load_codebook
from pipeline.errors import ValidationError
from pipeline.labels import load_labels

CODEBOOK = load_codebook()


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_reviewed_codings_override_the_label_but_keep_origin_and_page(tmp_path):
    _write(tmp_path / "real_statements.jsonl", [
        {"id": "r1", "text": "Alerts reach case managers.", "labels": ["care_coordination"], "source_url": "https://a"},
    ])
    _write(tmp_path / "human" / "Ana.jsonl", [
        {"id": "r1", "text": "Alerts reach case managers.", "codes": ["timely_data"], "coder": "Ana", "origin": "reviewed"},
        {"id": "n1", "text": "A new reviewed quote.", "codes": [], "coder": "Ana", "origin": "reviewed"},
    ])
    quotes = {q.id: q for q in load_labels(CODEBOOK, tmp_path).quotes}
    assert quotes["r1"].codes == ("timely_data",)
    assert (quotes["r1"].origin, quotes["r1"].group, quotes["r1"].coder) == ("real", "https://a", "Ana")
    assert quotes["n1"].origin == "reviewed"


def test_every_bad_row_is_reported_at_once_without_quote_text(tmp_path):
    _write(tmp_path / "real_statements.jsonl", [
        {"id": "a", "text": "Secret words one.", "labels": ["no_such_code"]},
        {"id": "a", "text": "Secret words two.", "labels": []},
        {"id": "b", "text": " ", "labels": []},
    ])
    with pytest.raises(ValidationError) as error:
        load_labels(CODEBOOK, tmp_path)
    message = str(error.value)
    assert "no_such_code" in message and "duplicate id 'a'" in message and "empty text" in message
    assert "Secret" not in message


def test_a_reviewed_written_row_counts_in_full_and_reaches_the_outputs(tmp_path):
    import pandas as pd

    from pipeline.jobs import people_codes
    from pipeline.model import ORIGIN_WEIGHTS, quote_weight

    _write(tmp_path / "written_statements.jsonl", [
        {"id": "w1", "text": "We save money on every referral.", "labels": ["cost_savings", "timely_data"]},
        {"id": "w2", "text": "Untouched written row.", "labels": ["cost_savings"]},
    ])
    _write(tmp_path / "human" / "Ana.jsonl", [
        {"id": "w1", "text": "We save money on every referral.", "codes": ["timely_data"], "coder": "Ana", "reviewer_note": "a"},
    ])
    quotes = {q.id: q for q in load_labels(CODEBOOK, tmp_path).quotes}
    assert (quotes["w1"].origin, quotes["w1"].reviewed, quotes["w1"].codes) == ("written", True, ("timely_data",))
    assert quote_weight(quotes["w1"], ORIGIN_WEIGHTS) == 1.0 and quote_weight(quotes["w2"], ORIGIN_WEIGHTS) == 0.3
    people = people_codes(pd.DataFrame({"id": ["w1", "w2"], "codes": ["cost_savings;timely_data", "cost_savings"]}), CODEBOOK, tmp_path)
    assert people.to_dict("records") == [{"id": "w1", "codes": "timely_data", "coder": "Ana"}]


def test_contrast_pairs_are_held_out_by_pair_and_scored_on_their_own_code(tmp_path):
    from pipeline.evaluate import contrast_scores

    _write(tmp_path / "contrast_pairs.jsonl", [
        {"id": "P1-a", "pair": "P1", "side": "affirmed", "code": "cost_savings", "text": "It saved money.", "labels": ["cost_savings"],
         "source_url": "https://page"},
        {"id": "P1-d", "pair": "P1", "side": "denied", "code": "cost_savings", "text": "It saved nothing.", "labels": []},
        {"id": "P2-a", "pair": "P2", "side": "affirmed", "code": "timely_data", "text": "Alerts came fast.", "labels": []},
        {"id": "P2-d", "pair": "P2", "side": "denied", "code": "timely_data", "text": "Alerts never came.", "labels": []},
    ])
    quotes = load_labels(CODEBOOK, tmp_path).quotes
    assert {q.group for q in quotes} == {"P1", "P2"} and {q.origin for q in quotes} == {"contrast"}
    k, t = CODEBOOK.code_ids.index("cost_savings"), CODEBOOK.code_ids.index("timely_data")
    decided = np.zeros((4, len(CODEBOOK.code_ids)), dtype=int)
    decided[0, k] = decided[3, t] = 1  # the affirmed savings coded; the denied alerts wrongly coded
    scores = contrast_scores(quotes, decided, CODEBOOK.code_ids)
    assert (scores["denied_left_uncoded"], scores["affirmed_still_coded"], scores["left_out"]) == (0.5, 1.0, 1)
    assert scores["per_code"]["timely_data"] == {"denied_left_uncoded": 0.0, "affirmed_still_coded": None}


def test_a_contrast_row_without_its_code_or_side_is_refused(tmp_path):
    _write(tmp_path / "contrast_pairs.jsonl", [
        {"id": "P1-a", "pair": "P1", "side": "sideways", "code": "cost_savings", "text": "It saved money.", "labels": []},
    ])
    with pytest.raises(ValidationError, match="row 1.*'affirmed' or 'denied'"):
        load_labels(CODEBOOK, tmp_path)
