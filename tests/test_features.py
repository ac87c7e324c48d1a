"""Feature extraction: sentence splitting and cue patterns."""

import re

import numpy as np
import pytest

from pipeline.features import Embedded, FeatureSpec, cue_matrix, pool_sentences, sentence_spans, split_sentences


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


def test_sentence_spans_locate_each_sentence_in_the_text_without_surrounding_space():
    text = "  We share data daily.\n\nTruly.   It helps every partner.  "
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["We share data daily.\n\nTruly.", "It helps every partner."]


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
