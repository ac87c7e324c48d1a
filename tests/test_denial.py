"""Coding rule 2: a framing the speaker denies, doubts or says failed is not coded."""

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.denial import scan_denials
from pipeline.features import FeatureSpec

# The issue's six sentences (miscoded before) and their affirmed twins.
DENIED_AND_AFFIRMED = [(r["code"], r["denied"], r["affirmed"])
                       for r in json.loads((Path(__file__).parent / "data" / "denied_and_affirmed.json").read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def spec():
    return FeatureSpec.from_cue_file()


def _denied(spec, texts):
    code_ids = list(spec.cues)
    scan = scan_denials(texts, spec, code_ids)
    return [{code for code, d in zip(code_ids, row) if d} for row in scan.denied], scan


@pytest.mark.parametrize(("code", "denied", "affirmed"), DENIED_AND_AFFIRMED)
def test_the_issues_denied_sentences_are_denied_and_their_twins_are_not(spec, code, denied, affirmed):
    blocked, scan = _denied(spec, [denied, affirmed])
    assert code in blocked[0]
    assert code not in blocked[1]
    assert scan.reasons[0][code].words.lower() in denied.lower()


def test_a_denial_in_the_next_sentence_or_after_a_hope_denies_the_framing(spec):
    texts = [
        "We told the county board that linking the data would cut ER visits. It didn't.",
        "We hoped the shared dashboard would win over the council, but it never did.",
        "The savings that the finance team had promised everyone at the start, once legal review was paid for, never materialized.",
    ]
    blocked, scan = _denied(spec, texts)
    assert "cost_savings" in blocked[0] and scan.reasons[0]["cost_savings"].rule == "next sentence"
    assert "show_the_product" in blocked[1] and scan.reasons[1]["show_the_product"].unsure
    assert "cost_savings" in blocked[2] and not scan.reasons[2]["cost_savings"].near


def test_negations_that_deny_nothing_and_problem_statements_are_not_denials(spec):
    texts = [
        "Sharing the data not only saved money, it cut ER visits by a third.",
        "We no longer fax records, which saves staff hours.",
        "Without shared records we could not save money on jail stays.",
        "Case managers cannot get current data, and referrals are not coordinated.",
        "No one disputes the savings anymore: ER visits by our frequent callers dropped by half.",
        "It did not rain. Sharing the data saved money on jail stays.",
    ]
    blocked, _ = _denied(spec, texts)
    assert blocked == [set()] * len(texts)


def test_a_framing_affirmed_anywhere_in_the_quote_is_not_denied(spec):
    blocked, _ = _denied(spec, ["The dashboard did not convince the board. Our map of ER visits did convince the council."])
    assert "show_the_product" not in blocked[0]


def test_denial_check_ignores_letter_case(spec):
    texts = [d for _, d, _ in DENIED_AND_AFFIRMED]
    lower, _ = _denied(spec, texts)
    assert any(lower)
    assert _denied(spec, [t.upper() for t in texts])[0] == lower


def test_candidates_limit_the_scan_to_the_cells_asked_for(spec):
    code_ids = list(spec.cues)
    texts = [d for _, d, _ in DENIED_AND_AFFIRMED]
    full = scan_denials(texts, spec, code_ids).denied
    only = np.zeros_like(full)
    only[:, code_ids.index("cost_savings")] = True
    limited = scan_denials(texts, spec, code_ids, candidates=only).denied
    assert np.array_equal(limited, full & only)
