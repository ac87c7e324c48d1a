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

from .embedding_cache import normalize_text
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
    tfidf_weight: float = 2.0
    cues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    counter_cues: tuple[str, ...] = ()
    denial_exempt: tuple[str, ...] = ()
    sentence_vectors: str = "in-context"
    """``in-context``: sentence vectors pooled from the whole quote's encoder pass; ``alone``:
    each sentence encoded on its own (models saved before the one-pass encoder)."""

    @classmethod
    def from_cue_file(cls, path: str | Path = DEFAULT_CUES, **kwargs) -> FeatureSpec:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{path}: cannot read cue patterns ({exc}); fix or restore the file") from None
        cues = {code: tuple(patterns) for code, patterns in data.get("cues", {}).items()}
        counter = tuple(data.get("counter_cues", {}).get("patterns", ()))
        exempt = tuple(data.get("denial", {}).get("exempt", ()))
        return cls(cues=cues, counter_cues=counter, denial_exempt=exempt, **kwargs)

    def to_dict(self) -> dict:
        return {
            "sentence_pooling": self.sentence_pooling,
            "cue_weight": self.cue_weight,
            "zero_shot_weight": self.zero_shot_weight,
            "tfidf_weight": self.tfidf_weight,
            "cues": {k: list(v) for k, v in self.cues.items()},
            "counter_cues": list(self.counter_cues),
            "denial_exempt": list(self.denial_exempt),
            "sentence_vectors": self.sentence_vectors,
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
            denial_exempt=tuple(data.get("denial_exempt", ())),
            sentence_vectors=str(data.get("sentence_vectors", "alone")),
        )


# A sentence ends at . ! or ? (with any closing quotes or brackets) before white space and
# a capital, a digit or an opening quote; a period after an abbreviation or an initial does not end one.
_SENTENCE_END = re.compile(r"""[.!?]+["'\u201d\u2019)\]]*(?=\s+["'\u201c\u2018(\[]?[A-Z0-9])""")
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr no vs e.g i.e etc inc co corp dept gov sen rep u.s u.k".split()
)


def sentence_spans(text: str, min_words: int = MIN_SENTENCE_WORDS) -> list[tuple[int, int]]:
    """Character spans of ``text``'s sentences (a rule-based splitter: end punctuation before
    a capital, abbreviations and initials excepted), surrounding white space left out; a
    fragment under ``min_words`` words joins the previous sentence, and a text always has one span."""
    spans: list[tuple[int, int]] = []
    start = 0
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if not _after_abbreviation(text, m)]
    for stop in [*ends, len(text)]:
        piece = text[start:stop]
        if piece.strip():
            last = start + len(piece.rstrip())
            if spans and len(piece.split()) < min_words:
                spans[-1] = (spans[-1][0], last)
            else:
                spans.append((start + len(piece) - len(piece.lstrip()), last))
        start = stop
    return spans or [(0, len(text))]


def _after_abbreviation(text: str, end: re.Match) -> bool:
    """Whether the period of ``end`` follows an abbreviation or an initial."""
    if text[end.start()] != ".":
        return False
    word = text[max(0, end.start() - 20) : end.start()].split()[-1:] or [""]  # abbreviations are short
    word = word[0].lstrip("\"'(\u201c\u2018").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(texts: Sequence[str]) -> list[list[str]]:
    """Sentences of each text, as :func:`sentence_spans` finds them."""
    return [[text[start:end] for start, end in sentence_spans(text)] for text in texts]


@dataclass(frozen=True)
class Cue:
    """A compiled cue pattern and the lower-cased strings of which any match contains one
    (empty when none can be derived): a cheap substring test skips most regex searches."""

    regex: re.Pattern
    required: tuple[str, ...]

    @classmethod
    def compile(cls, pattern: str) -> Cue:
        regex = re.compile(pattern, re.IGNORECASE)
        required = _required_strings(re._parser.parse(pattern, re.IGNORECASE)) or ()
        return cls(regex, tuple(sorted(required)))


def _required_strings(items) -> frozenset[str] | None:
    """Of the parsed pattern's mandatory parts, the set of literal strings with the longest
    shortest member (any match contains one of them), or None."""
    from re import _constants as sre

    candidates: list[frozenset[str]] = []
    run = ""
    for op, av in items:
        if op is sre.LITERAL:
            run += chr(av).casefold()
            continue
        if run:
            candidates.append(frozenset({run}))
            run = ""
        found = None
        if op is sre.SUBPATTERN:
            found = _required_strings(av[-1])
        elif op is sre.BRANCH:
            branches = [_required_strings(branch) for branch in av[1]]
            found = None if any(b is None for b in branches) else frozenset().union(*branches)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] >= 1:
            found = _required_strings(av[2])
        if found:
            candidates.append(found)
    if run:
        candidates.append(frozenset({run}))
    return max(candidates, key=lambda c: min(map(len, c)), default=None)


@cache
def _compiled_cues(per_code: tuple[tuple[str, ...], ...], counter: tuple[str, ...]) -> tuple[tuple[tuple[Cue, ...], ...], tuple[Cue, ...]]:
    return tuple(tuple(map(Cue.compile, patterns)) for patterns in per_code), tuple(map(Cue.compile, counter))


def compiled_cues(spec: FeatureSpec, code_ids: Sequence[str]) -> tuple[tuple[Cue, ...], ...]:
    """The compiled cue patterns of each code, in ``code_ids`` order."""
    return _compiled_cues(tuple(tuple(spec.cues.get(code, ())) for code in code_ids), spec.counter_cues)[0]


def cue_matrix(texts: Sequence[str], spec: FeatureSpec, code_ids: Sequence[str]) -> np.ndarray:
    """One 0/1 column per cue pattern plus a per-code count, then the counter cues."""
    compiled, counter = _compiled_cues(tuple(tuple(spec.cues.get(code, ())) for code in code_ids), spec.counter_cues)
    cues = [cue for group in compiled for cue in group] + list(counter)
    hits = np.zeros((len(texts), len(cues)), dtype=np.float32)
    candidates = cue_candidates(texts, cues)
    for i, j in zip(*np.nonzero(candidates)):
        if cues[j].regex.search(texts[i]):
            hits[i, j] = 1.0
    blocks, start = [], 0
    for group in compiled:
        block = hits[:, start : start + len(group)]
        blocks += [block, block.sum(axis=1, keepdims=True)]
        start += len(group)
    blocks.append(hits[:, start:])
    return np.hstack(blocks)


def cue_candidates(texts: Sequence[str], cues: Sequence[Cue]) -> np.ndarray:
    """Boolean (texts x cues): where a cue's regex must run. False only where an ASCII text
    contains none of the cue's required strings; one substring scan per required string over
    the whole batch."""
    candidates = np.ones((len(texts), len(cues)), dtype=bool)
    ascii_rows = np.array([text.isascii() for text in texts], dtype=bool)
    folded = "\n".join(text.casefold() if ok else "" for text, ok in zip(texts, ascii_rows))
    ends = np.cumsum([len(text) + 1 if ok else 1 for text, ok in zip(texts, ascii_rows)])
    present: dict[str, np.ndarray] = {}
    for piece in {piece for cue in cues for piece in cue.required}:
        rows = np.zeros(len(texts), dtype=bool)
        at = folded.find(piece)
        while at != -1:
            row = int(np.searchsorted(ends, at, side="right"))
            rows[row] = True
            at = folded.find(piece, int(ends[row]))  # next text
        present[piece] = rows
    for j, cue in enumerate(cues):
        if cue.required:
            candidates[:, j] = ~ascii_rows | np.logical_or.reduce([present[piece] for piece in cue.required])
    return candidates


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


def embed_with_sentences(texts: Sequence[str], encoder, *, in_context: bool = True) -> Embedded:
    """Embeddings of ``texts`` and of their sentences. ``in_context``: each sentence's vector
    pools the tokens of its span in the same encoder pass as the whole text (one pass per
    text; see ``Encoder.encode_in_context``); otherwise each sentence is encoded alone. An
    encoder without ``encode_in_context`` always encodes sentences alone."""
    normalized = [normalize_text(text) for text in texts]
    spans = [sentence_spans(text) for text in normalized]
    flat = tuple(text[start:end] for text, text_spans in zip(normalized, spans) for start, end in text_spans)
    owner = np.repeat(np.arange(len(texts)), [len(s) for s in spans])
    if in_context and hasattr(encoder, "encode_in_context"):
        whole, parts = encoder.encode_in_context(normalized, spans)
        return Embedded(whole, parts, owner, flat)
    vectors = encoder.encode(normalized + list(flat))
    return Embedded(vectors[: len(texts)], vectors[len(texts) :], owner, flat)


def pool_sentences(embedded: Embedded) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max of each text's sentence embeddings (zeros for a text without sentences)."""
    n, dim = embedded.texts.shape
    mean = np.zeros((n, dim), dtype=np.float32)
    top = np.zeros((n, dim), dtype=np.float32)
    counts = np.bincount(embedded.owner, minlength=n)
    has = counts > 0
    if has.any():
        vectors = embedded.sentences[np.argsort(embedded.owner, kind="stable")]
        starts = (np.cumsum(counts) - counts)[has]
        mean[has] = np.add.reduceat(vectors, starts, axis=0) / counts[has, None].astype(np.float32)
        top[has] = np.maximum.reduceat(vectors, starts, axis=0)
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
    terms = tfidf.transform(texts).tocoo() if spec.tfidf_weight and tfidf is not None else None
    dense = sum(block.shape[1] for block in blocks)
    out = np.zeros((len(texts), dense + (terms.shape[1] if terms is not None else 0)), dtype=np.float32)
    start = 0
    for block in blocks:
        out[:, start : start + block.shape[1]] = block
        start += block.shape[1]
    if terms is not None:  # nonzero terms written in place: no dense temporary of the wide block
        out[terms.row, dense + terms.col] = spec.tfidf_weight * terms.data
    return out
