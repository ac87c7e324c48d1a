"""Feature extraction: sentence splitting and cue patterns."""

import re

import numpy as np
import pytest

from pipeline.features import Embedded, FeatureSpec, cue_matrix, denied_framings, pool_sentences, split_sentences


def test_sentences_split_at_end_punctuation_but_not_after_abbreviations_or_initials():
    text = ('Dr. Brenner met the U.S. team and J. Smith at 9 a.m. on Monday. "It worked," he said. '
            '"We saved time!" Next steps? More data.')
    assert split_sentences([text]) == [[
        "Dr. Brenner met the U.S. team and J. Smith at 9 a.m. on Monday.",
        '"It worked," he said.',
        '"We saved time!" Next steps? More data.',
    ]]


def test_short_fragments_join_the_previous_sentence_and_every_text_has_one():
    assert split_sentences(["We share data daily. Truly. It helps every partner.", "   "]) == [
        ["We share data daily. Truly.", "It helps every partner."],
        ["   "],
    ]


def test_sentence_pooling_is_each_texts_mean_and_max_whatever_the_order():
    rng = np.random.default_rng(0)
    sentences = rng.normal(size=(6, 4)).astype(np.float32)
    owner = np.array([2, 0, 2, 0, 2, 3])  # text 1 has no sentence
    mean, top = pool_sentences(Embedded(np.zeros((4, 4), np.float32), sentences, owner, ("",) * 6))
    for text in (0, 2, 3):
        np.testing.assert_allclose(mean[text], sentences[owner == text].mean(axis=0), rtol=1e-6)
        np.testing.assert_array_equal(top[text], sentences[owner == text].max(axis=0))
    assert not mean[1].any() and not top[1].any()


@pytest.fixture(scope="module")
def spec():
    return FeatureSpec.from_cue_file()


def _plain_regex_features(texts, spec, code_ids):
    rows = []
    for text in texts:
        row = []
        for code in code_ids:
            hits = [1.0 if re.search(p, text, re.IGNORECASE) else 0.0 for p in spec.cues[code]]
            row += hits + [sum(hits)]
        row += [1.0 if re.search(p, text, re.IGNORECASE) else 0.0 for p in spec.counter_cues]
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def test_cue_features_equal_a_plain_case_insensitive_search(spec):
    texts = [
        "Real-time ADT alerts replaced FAXED paper records and saved $2 million in ER visits.",
        "THE SHARED GOALS OF EACH PARTNER ALIGNED; NOT A BURDEN.",
        "Our peers in other states replicated the model; we did not see it fail.",
        "Un résumé en français: the dashboard showed the council the ımmediate lag.",
        "",
    ]
    code_ids = list(spec.cues)
    assert np.array_equal(cue_matrix(texts, spec, code_ids), _plain_regex_features(texts, spec, code_ids))


def test_denied_or_failed_framings_are_blocked_but_counterfactuals_are_not(spec):
    code_ids = list(spec.cues)
    texts = [
        "Honestly, sharing the data did not save money, and the return-on-investment case fell flat.",
        "The dashboard we showed the council did not convince anyone.",
        "Sharing the data saved money on jail stays.",
        "Without shared records we could not save money.",
        "We no longer fax records, which saves staff hours.",
        "It did not save money. It did cut ER visits by a third.",
    ]
    denied = denied_framings(texts, spec, code_ids)
    blocked = [{code for code, d in zip(code_ids, row) if d} for row in denied]
    assert "cost_savings" in blocked[0] and blocked[1] == {"show_the_product"}
    assert blocked[2:] == [set(), set(), set(), set()]


def test_problem_statements_of_exempt_codes_are_never_denied(spec):
    texts = ["Case managers cannot get current data, and referrals are not coordinated."]
    denied = denied_framings(texts, spec, list(spec.cues))
    assert spec.denial_exempt == ("care_coordination", "timely_data")
    assert not denied.any()


def test_denial_check_ignores_letter_case(spec):
    texts = ["Sharing the data did not save money.", "The map we showed the board did not convince anyone."]
    code_ids = list(spec.cues)
    lower = denied_framings(texts, spec, code_ids)
    assert lower.any()
    assert np.array_equal(denied_framings([t.upper() for t in texts], spec, code_ids), lower)
