"""Coding stage: the default coder (retrained when its codebook or labels changed), coding
quotes into the codings layout, and tagging one testimonial with its evidence."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from .errors import InputError
from .columns import ReadOptions
from .exports import ExportFormat, export_format, file_time, write_codings
from .files import exclusive_output
from .ingest import read_quotes
from .labels import load_labels
from .model import TrainedCoder, load_coder, model_is_stale, save_coder, train_coder
from .paths import DEFAULT_MODEL_DIR, model_dir_for
from .progress import task
from .records import Codebook, Quote, quote_id
from .review import PERSON_COLUMNS, PersonCoding, apply_decisions

log = logging.getLogger(__name__)

CHUNK_SIZE = 512


def coding_columns(code_ids: Sequence[str]) -> list[str]:
    """Columns of the codings layout (SPEC.md's `code` contract plus evidence, coder and why a quote needs review)."""
    return ["id", "text", "organization", "program", "sector", "codes", "needs_review",
            *(f"p_{c}" for c in code_ids), "evidence", "coder", "review_reason"]


def train_default(codebook: Codebook, *, labels_dir=None, model_dir=None, encoder=None) -> TrainedCoder:
    """Train on every labelled file and save the model folder."""
    from .embed import load_encoder

    labels = load_labels(codebook, labels_dir)
    encoder = encoder or load_encoder()
    coder = train_coder(codebook, labels, encoder)
    save_coder(coder, model_dir or DEFAULT_MODEL_DIR)
    return coder


def default_coder(codebook: Codebook, *, labels_dir=None, model_dir=None, encoder=None, kind: str | None = None) -> TrainedCoder:
    """The shipped model for the ``kind`` of encoder (``models/default``, or ``models/fast``
    for ``fast``), retrained first (with a notice) when it is missing or when the codebook or
    the labels changed since it was trained; refused when it was trained with another kind."""
    from .embed import load_encoder

    folder = Path(model_dir) if model_dir is not None else model_dir_for(kind or "default")
    reason = model_is_stale(folder, codebook, load_labels(codebook, labels_dir))
    if reason:
        log.warning("notice: retraining the model in %s because %s", folder, reason)
        encoder = encoder or load_encoder(kind=kind or "default")
        train_default(codebook, labels_dir=labels_dir, model_dir=folder, encoder=encoder)
    coder = load_coder(folder, codebook=codebook, encoder=encoder)
    coder.require_encoder(kind)
    return coder


def code_quotes(quotes: Iterable[Quote], coder: TrainedCoder, chunk_size: int = CHUNK_SIZE) -> Iterator[dict]:
    """Codings-layout rows in input order, computed chunk by chunk (bounded memory)."""
    total = len(quotes) if isinstance(quotes, Sized) else None
    iterator = iter(quotes)
    with task("coding", total, unit="quotes") as bar:
        while chunk := list(islice(iterator, chunk_size)):
            rows = coder.code_rows(chunk)
            bar.advance(len(chunk))
            yield from rows


def read_input(path: str | Path, options: ReadOptions = ReadOptions()) -> tuple[Quote, ...]:
    """The quotes of one input, as ``ingest`` reads them; its notices logged (never a quote's text)."""
    result = read_quotes([path], options)
    for notice in result.notices:
        log.warning("notice: %s", notice)
    return result.quotes


def stdin_quotes(stream: Iterable[str]) -> tuple[Quote, ...]:
    """Testimonials from standard input, one per non-blank line (line numbers as sources)."""
    quotes = tuple(Quote(quote_id(line.strip(), f"stdin:line {n}"), line.strip(), source=f"stdin:line {n}")
                   for n, line in enumerate(stream, start=1) if line.strip())
    if not quotes:
        raise InputError("tag -: standard input held no testimonial; pipe one per line")
    return quotes


def quote_fields(quotes: Sequence[Quote]) -> tuple[str, ...]:
    """The quote fields `code` writes after the layout, as `ingest` and `recode` do: ``source``
    (the input's own column, or file and row), and ``origin`` and ``source_url`` when given."""
    return ("source", *(name for name in ("origin", "source_url") if any(getattr(q, name) for q in quotes)))


def carry_columns(quotes: Sequence[Quote], rows: Iterable[dict]) -> Iterator[dict]:
    """Codings rows with each quote's carried input columns added."""
    for quote, row in zip(quotes, rows):
        row.update(quote.extra)
        yield row


def code_file(input_path: str | Path, output_path: str | Path, coder: TrainedCoder, *, options: ReadOptions = ReadOptions(),
              decisions: Mapping[str, PersonCoding] | None = None,
              format: ExportFormat | None = None, indicators: bool = False) -> int:
    """Code every row of a table into ``output_path``; returns the row count.

    The output is written by :func:`pipeline.exports.write_codings`: CSV, JSONL, XLSX, SPSS,
    Stata by its suffix, or ``format`` (e.g. R); ``indicators`` adds a 0/1 column per code.

    ``decisions`` (from :func:`~pipeline.review.read_decisions`) replace the model's codes of
    the quotes a person decided (same id and text); ``coded_by`` says which rows they are.
    A second process coding into the same output, or a read-only output, is refused."""
    output_path = Path(output_path)
    format = export_format(output_path, format)
    if Path(input_path).resolve() == output_path.resolve():
        raise InputError(f"{output_path}: output would overwrite the input; choose another --out")
    with exclusive_output(output_path):
        quotes = read_input(input_path, options)
        rows = list(apply_decisions(carry_columns(quotes, code_quotes(quotes, coder)), decisions or {}))
        carried = tuple(dict.fromkeys(name for q in quotes for name, _ in q.extra))
        given = quote_fields(quotes)
        for row, quote in zip(rows, quotes):
            row.update((name, getattr(quote, name)) for name in given)
        write_codings(output_path, rows, [*coding_columns(coder.code_ids), *PERSON_COLUMNS, *given, *carried], coder.codebook,
                      format=format, indicators=indicators, timestamp=file_time(input_path))
    return len(rows)


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    similarity: float


@dataclass(frozen=True)
class CodeResult:
    code: str
    name: str
    probability: float
    threshold: float
    applied: bool
    denied: bool
    sentence: str
    examples: tuple[Example, ...]
    denied_by: str = ""
    """The words of the quote that deny the framing (coding rule 2), when it is denied."""


@dataclass(frozen=True)
class TagResult:
    codes: tuple[CodeResult, ...]
    needs_review: bool
    model_id: str
    review_reason: str = ""

    @property
    def applied(self) -> tuple[CodeResult, ...]:
        return tuple(c for c in self.codes if c.applied)

    def to_dict(self) -> dict:
        return {
            "model": self.model_id,
            "needs_review": self.needs_review,
            "review_reason": self.review_reason,
            "codes": [
                {"code": c.code, "name": c.name, "probability": round(c.probability, 4), "threshold": c.threshold,
                 "applied": c.applied, "denied": c.denied, "denied_by": c.denied_by, "sentence": c.sentence,
                 "examples": [{"id": e.id, "text": e.text, "similarity": round(e.similarity, 3)} for e in c.examples]}
                for c in self.codes
            ],
        }


def tag(text: str, coder: TrainedCoder, n_examples: int = 3) -> TagResult:
    """Codes of one testimonial with probabilities, the sentence that carries each code and
    the nearest human-coded quotes as evidence."""
    if not text.strip():
        raise InputError("tag: the text is empty; pass the testimonial in quotes")
    embedded = coder.embed([text])
    scan = coder.denials([text])
    proba = coder.estimator.predict_proba(coder.features(embedded, [text]))[0]
    per_sentence = coder.sentence_proba(embedded)
    decided = coder.decide(proba[None, :], [text], scan)[0]
    denials = scan.reasons[0]
    results = []
    for k in np.argsort(-proba, kind="stable"):
        code = coder.code_ids[k]
        applied = bool(decided[k])
        examples = coder.nearest_examples(embedded.texts[0], code, n_examples) if applied else []
        results.append(CodeResult(
            code=code,
            name=coder.codebook.code(code).name,
            probability=float(proba[k]),
            threshold=float(coder.thresholds[k]),
            applied=applied,
            denied=code in denials,
            sentence=embedded.sentence_texts[int(np.argmax(per_sentence[:, k]))],
            examples=tuple(Example(e.id, e.text, s) for e, s in examples),
            denied_by=denials[code].words if code in denials else "",
        ))
    reason = coder.review_reason(proba, denials)
    return TagResult(tuple(results), bool(reason), coder.model_id, reason)

