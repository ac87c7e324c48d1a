"""Features for the coders: whole-text and sentence-level embeddings, cue patterns, word
TF-IDF and zero-shot similarities to the codebook's prototypes."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from .errors import InputError
from .paths import PROJECT_ROOT
from .records import Codebook

DEFAULT_CUES = PROJECT_ROOT / "configs" / "cues.toml"
MIN_SENTENCE_WORDS = 3


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature blocks a coder uses; saved with every model."""

    sentence_pooling: bool = True
    cue_weight: float = 0.5
    zero_shot_weight: float = 0.0
    tfidf_weight: float = 1.0
    cues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    counter_cues: tuple[str, ...] = ()

    @classmethod
    def from_cue_file(cls, path: str | Path = DEFAULT_CUES, **kwargs) -> FeatureSpec:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{path}: cannot read cue patterns ({exc}); fix or restore the file") from None
        cues = {code: tuple(patterns) for code, patterns in data.get("cues", {}).items()}
        counter = tuple(data.get("counter_cues", {}).get("patterns", ()))
        return cls(cues=cues, counter_cues=counter, **kwargs)

    def to_dict(self) -> dict:
        return {
            "sentence_pooling": self.sentence_pooling,
            "cue_weight": self.cue_weight,
            "zero_shot_weight": self.zero_shot_weight,
            "tfidf_weight": self.tfidf_weight,
            "cues": {k: list(v) for k, v in self.cues.items()},
            "counter_cues": list(self.counter_cues),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureSpec:
        return cls(
            sentence_pooling=bool(data["sentence_pooling"]),
            cue_weight=float(data["cue_weight"]),
            zero_shot_weight=float(data.get("zero_shot_weight", 0.0)),
            tfidf_weight=float(data.get("tfidf_weight", 0.0)),
            cues={k: tuple(v) for k, v in data["cues"].items()},
            counter_cues=tuple(data["counter_cues"]),
        )


@cache
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def split_sentences(texts: Sequence[str]) -> list[list[str]]:
    """Sentences of each text (spaCy's rule-based sentencizer); fragments under three
    words are merged into the previous sentence, and a text always has at least one."""
    result = []
    for doc in _sentencizer().pipe(texts, batch_size=256):
        sentences: list[str] = []
        for sent in doc.sents:
            piece = sent.text.strip()
            if not piece:
                continue
            if sentences and len(piece.split()) < MIN_SENTENCE_WORDS:
                sentences[-1] = f"{sentences[-1]} {piece}"
            else:
                sentences.append(piece)
        result.append(sentences or [doc.text])
    return result


def cue_matrix(texts: Sequence[str], spec: FeatureSpec, code_ids: Sequence[str]) -> np.ndarray:
    """One 0/1 column per cue pattern plus a per-code count, then the counter cues."""
    compiled = [[re.compile(p, re.IGNORECASE) for p in spec.cues.get(code, ())] for code in code_ids]
    counter = [re.compile(p, re.IGNORECASE) for p in spec.counter_cues]
    rows = []
    for text in texts:
        row: list[float] = []
        for patterns in compiled:
            hits = [1.0 if p.search(text) else 0.0 for p in patterns]
            row.extend(hits)
            row.append(sum(hits))
        row.extend(1.0 if p.search(text) else 0.0 for p in counter)
        rows.append(row)
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)


def prototype_texts(codebook: Codebook) -> tuple[list[str], np.ndarray]:
    """Texts describing each code (definition, inclusion notes, anchor examples) and the
    index of the code each belongs to."""
    texts, owners = [], []
    for k, code in enumerate(codebook.codes):
        for text in (f"{code.name}. {code.definition}", *code.include, *code.examples):
            texts.append(text)
            owners.append(k)
    return texts, np.asarray(owners)


@dataclass(frozen=True)
class Embedded:
    """Embeddings of texts and of their sentences (``owner[i]`` = text of sentence i)."""

    texts: np.ndarray
    sentences: np.ndarray
    owner: np.ndarray
    sentence_texts: tuple[str, ...]


def embed_with_sentences(texts: Sequence[str], encoder) -> Embedded:
    sentence_lists = split_sentences(texts)
    flat = [s for sentences in sentence_lists for s in sentences]
    owner = np.repeat(np.arange(len(texts)), [len(s) for s in sentence_lists])
    vectors = encoder.encode(list(texts) + flat)
    return Embedded(vectors[: len(texts)], vectors[len(texts) :], owner, tuple(flat))


def pool_sentences(embedded: Embedded) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max of each text's sentence embeddings."""
    n, dim = embedded.texts.shape
    mean = np.zeros((n, dim), dtype=np.float32)
    top = np.full((n, dim), -np.inf, dtype=np.float32)
    np.add.at(mean, embedded.owner, embedded.sentences)
    counts = np.bincount(embedded.owner, minlength=n).astype(np.float32)
    mean /= np.maximum(counts, 1.0)[:, None]
    np.maximum.at(top, embedded.owner, embedded.sentences)
    top[~np.isfinite(top)] = 0.0
    return mean, top


def zero_shot_scores(embedded: Embedded, prototypes: np.ndarray, prototype_owner: np.ndarray, n_codes: int) -> np.ndarray:
    """Per code, the highest cosine between any prototype of the code and the text or any
    of its sentences."""
    n = embedded.texts.shape[0]
    whole = embedded.texts @ prototypes.T
    parts = embedded.sentences @ prototypes.T
    best_part = np.full((n, prototypes.shape[0]), -1.0, dtype=np.float32)
    np.maximum.at(best_part, embedded.owner, parts)
    best = np.maximum(whole, best_part)
    scores = np.full((n, n_codes), -1.0, dtype=np.float32)
    for k in range(n_codes):
        columns = prototype_owner == k
        if columns.any():
            scores[:, k] = best[:, columns].max(axis=1)
    return scores


TFIDF_PARAMS = {"ngram_range": (1, 2), "sublinear_tf": True}


def fit_tfidf(texts: Sequence[str]) -> TfidfVectorizer:
    """Word uni- and bigram TF-IDF (terms in at least two quotes, at most 5,000 terms)."""
    return TfidfVectorizer(min_df=2, max_features=5000, **TFIDF_PARAMS).fit(texts)


def tfidf_from_state(vocabulary: Mapping[str, int], idf: np.ndarray) -> TfidfVectorizer:
    """A fitted TF-IDF vectorizer rebuilt from its saved vocabulary and idf weights."""
    vectorizer = TfidfVectorizer(vocabulary=dict(vocabulary), **TFIDF_PARAMS)
    vectorizer.idf_ = idf
    return vectorizer


def feature_matrix(
    embedded: Embedded,
    texts: Sequence[str],
    spec: FeatureSpec,
    code_ids: Sequence[str],
    zero_shot: np.ndarray | None = None,
    tfidf: TfidfVectorizer | None = None,
) -> np.ndarray:
    """Concatenate the blocks ``spec`` asks for, in a fixed order (TF-IDF last, when a
    fitted vectorizer is given)."""
    blocks = [embedded.texts]
    if spec.sentence_pooling:
        blocks.extend(pool_sentences(embedded))
    if spec.cue_weight:
        blocks.append(spec.cue_weight * cue_matrix(texts, spec, code_ids))
    if spec.zero_shot_weight and zero_shot is not None:
        blocks.append(spec.zero_shot_weight * zero_shot)
    if spec.tfidf_weight and tfidf is not None:
        blocks.append(spec.tfidf_weight * tfidf.transform(texts).toarray())
    return np.hstack(blocks).astype(np.float32)
