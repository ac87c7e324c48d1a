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
    tfidf_weight: float = 2.0
    cues: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    counter_cues: tuple[str, ...] = ()
    denial_exempt: tuple[str, ...] = ()

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
        )


# A sentence ends at . ! or ? (with any closing quotes or brackets) before white space and
# a capital, a digit or an opening quote; a period after an abbreviation or an initial does not end one.
_SENTENCE_END = re.compile(r"""[.!?]+["'\u201d\u2019)\]]*(?=\s+["'\u201c\u2018(\[]?[A-Z0-9])""")
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st jr sr no vs e.g i.e etc inc co corp dept gov sen rep u.s u.k".split()
)


def _sentences_of(text: str) -> list[str]:
    pieces, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if text[end.start()] == ".":
            word_start = max(start, text.rfind(" ", start, end.start()) + 1)
            word = text[word_start : end.start()].lstrip("\"'(\u201c\u2018").lower()
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        pieces.append(text[start : end.end()])
        start = end.end()
    pieces.append(text[start:])
    return pieces


def split_sentences(texts: Sequence[str]) -> list[list[str]]:
    """Sentences of each text (a rule-based splitter: end punctuation before a capital,
    abbreviations and initials excepted); fragments under three words are merged into the
    previous sentence, and a text always has at least one."""
    result = []
    for text in texts:
        sentences: list[str] = []
        for sentence in _sentences_of(text):
            piece = sentence.strip()
            if not piece:
                continue
            if sentences and len(piece.split()) < MIN_SENTENCE_WORDS:
                sentences[-1] = f"{sentences[-1]} {piece}"
            else:
                sentences.append(piece)
        result.append(sentences or [text])
    return result


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


def cue_matrix(texts: Sequence[str], spec: FeatureSpec, code_ids: Sequence[str]) -> np.ndarray:
    """One 0/1 column per cue pattern plus a per-code count, then the counter cues."""
    compiled, counter = _compiled_cues(tuple(tuple(spec.cues.get(code, ())) for code in code_ids), spec.counter_cues)
    cues = [cue for group in compiled for cue in group] + list(counter)
    hits = np.zeros((len(texts), len(cues)), dtype=np.float32)
    candidates = _cue_candidates(texts, cues)
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


def _cue_candidates(texts: Sequence[str], cues: Sequence[Cue]) -> np.ndarray:
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


# Coding rule 2: a framing the speaker denies or says failed is not coded.
_NEGATION = re.compile(r"\b(?:not|never|no|nothing|neither|nor|hardly|cannot|fail(?:ed|s)? to)\b|n't\b", re.IGNORECASE)
_NOT_A_DENIAL = re.compile(r"\b(?:not only|not just|no longer|no more|never again|not least)\b", re.IGNORECASE)
_FAILED_AFTER = re.compile(
    r"^\W*(?:\w+\W+){0,5}?(?:fell flat|failed|flopped|never materiali[sz]ed"
    r"|(?:did not|didn't|never|failed to) (?:convince|persuade|pay off|work|materiali[sz]e))\b",
    re.IGNORECASE,
)
# A counterfactual or problem statement ("without it we could not...") names a value (rule 3).
_COUNTERFACTUAL = re.compile(r"\b(?:without|unless|until|if|would|could|instead|otherwise|lack\w*|before|absence)\b", re.IGNORECASE)
# A text matching neither can deny anything: the check skips it.
_DENIAL_WORD = re.compile(r"\b(?:not|never|no|nothing|neither|nor|hardly|cannot|fail\w*|fell flat|flopped)\b|n't\b", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"[,;:()]|\b(?:but|yet|while|whereas)\b", re.IGNORECASE)
DENIAL_WINDOW_WORDS = 5


def _sentence_denies(sentence: str, cues: Sequence[Cue]) -> bool | None:
    """None when no cue matches; True when every cue match is denied (a negation in the five
    words before it, or "fell flat", "failed", "did not convince"... in the six words after
    it, in the same clause)."""
    matches = [m for cue in cues for m in cue.regex.finditer(sentence)]
    if not matches:
        return None
    if _COUNTERFACTUAL.search(sentence):
        return False
    for match in matches:
        before = " ".join(_CLAUSE_BREAK.split(sentence[: match.start()])[-1].split()[-DENIAL_WINDOW_WORDS:])
        after = _CLAUSE_BREAK.split(sentence[match.end() :])[0]
        if not (_NEGATION.search(_NOT_A_DENIAL.sub(" ", before)) or _FAILED_AFTER.search(after)):
            return False
    return True


def denied_framings(
    texts: Sequence[str], spec: FeatureSpec, code_ids: Sequence[str], candidates: np.ndarray | None = None
) -> np.ndarray:
    """Boolean (texts x codes): the quote names the code's cues only in sentences that deny
    them ("sharing the data did not save money"), so the code is not applied whatever its
    probability (coding rule 2). Codes in ``spec.denial_exempt`` are never denied: a problem
    statement is coded by the value it implies (rule 3). ``candidates`` (texts x codes)
    limits the check to those cells, e.g. the codes above their thresholds."""
    compiled, _ = _compiled_cues(tuple(tuple(spec.cues.get(code, ())) for code in code_ids), spec.counter_cues)
    checked = np.array([code not in spec.denial_exempt and bool(compiled[k]) for k, code in enumerate(code_ids)])
    wanted = np.broadcast_to(checked, (len(texts), len(code_ids)))
    if candidates is not None:
        wanted = wanted & candidates
    wanted = wanted & np.array([bool(_DENIAL_WORD.search(text)) for text in texts], dtype=bool)[:, None]
    denied = np.zeros((len(texts), len(code_ids)), dtype=bool)
    rows = np.flatnonzero(wanted.any(axis=1))
    per_row = split_sentences([texts[i] for i in rows])
    sentences = [s for row in per_row for s in row]
    cues = [cue for group in compiled for cue in group]
    candidates = _cue_candidates(sentences, cues)
    first = np.cumsum([0] + [len(group) for group in compiled])
    at = 0
    for i, row in zip(rows, per_row):
        for k in np.flatnonzero(wanted[i]):
            verdicts = [
                _sentence_denies(s, [cues[j] for j in range(first[k], first[k + 1]) if candidates[at + n, j]])
                for n, s in enumerate(row)
            ]
            denied[i, k] = True in verdicts and False not in verdicts
        at += len(row)
    return denied


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
