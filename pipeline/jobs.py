"""The main job: ingest the shipped corpus, code it with the default model, give every quote
that people coded their adjudicated codes, and write the codings, frequency tables, CHP vs DASH
comparison, figures and report."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .codebook import load_codebook
from .coding import code_quotes, coding_columns, default_coder
from .files import sha256_file
from .frequencies import read_codings
from .ingest import corpus_paths, read_quotes
from .labels import load_labels
from .paths import CORPUS_DIR, DEFAULT_CODEBOOK, DEFAULT_MODEL_DIR, LABELS_DIR
from .records import Codebook
from .shares import CoderErrors, ShareEstimator, apply_human
from .tables import write_table

log = logging.getLogger(__name__)

CODINGS_ENV = "FRAMECODE_CODINGS"
EXTRA_COLUMNS = ("origin", "source")
PEOPLE = "people (two blind coders, adjudicated)"
"""The ``coder`` of a quote whose codes come from the labelled corpus."""


@dataclass(frozen=True)
class JobResult:
    out_dir: Path
    paths: dict[str, Path]
    quotes: int
    by_origin: dict[str, int]
    by_program: dict[str, int]
    summaries: tuple[str, ...]


def code_corpus(codebook: Codebook, *, corpus_dir: Path = CORPUS_DIR, model_dir: Path = DEFAULT_MODEL_DIR) -> tuple[pd.DataFrame, dict]:
    """Codings of every quote in ``corpus_dir`` and the provenance that produced them."""
    inputs = corpus_paths(corpus_dir)
    quotes = read_quotes(inputs).quotes
    coder = default_coder(codebook, model_dir=model_dir)
    rows = []
    for quote, row in zip(quotes, code_quotes(quotes, coder)):
        row.update(origin=quote.origin, source=quote.source)
        rows.append(row)
    columns = [*coding_columns(coder.code_ids), *EXTRA_COLUMNS]
    codings = pd.DataFrame(rows, columns=columns)
    hashes = {str(p.relative_to(corpus_dir.parent)) if p.is_relative_to(corpus_dir.parent) else str(p): sha256_file(p) for p in inputs}
    stamp = max(p.stat().st_mtime for p in [*inputs, model_dir / "config.json"])
    provenance = {
        "date": dt.datetime.fromtimestamp(int(stamp), tz=dt.timezone.utc).isoformat(),
        "corpus": hashes,
        "model": f"{coder.model_id} (sha256 {coder.model_hash[:16]})",
        "encoder": f"{coder.encoder_identity['name']}, backend {coder.encoder_identity['backend']}, "
                   f"weights sha256 {coder.encoder_identity['weights_sha256'][:16]}",
    }
    return codings, provenance


def people_codes(codings: pd.DataFrame, codebook: Codebook, labels_dir: Path = LABELS_DIR) -> pd.DataFrame:
    """The labelled corpus's codes (``id``, ``codes``, ``coder``) for the quotes of ``codings`` that
    people coded; a reviewer's decision (``labels/human/``) wins over the adjudicated one and
    covers written quotes too."""
    wanted = set(codings["id"].astype(str))
    rows = [
        {"id": q.id, "codes": ";".join(q.codes), "coder": PEOPLE if q.coder == "adjudicated" else q.coder}
        for q in load_labels(codebook, labels_dir).quotes
        if q.id in wanted and (q.reviewed or q.origin in ("real", "seed"))
    ]
    return pd.DataFrame(rows, columns=["id", "codes", "coder"])


def shipped_codings() -> pd.DataFrame:
    """Codings of the shipped corpus, people's codes applied (or the file named by ``FRAMECODE_CODINGS``)."""
    path = os.environ.get(CODINGS_ENV)
    if path:
        return read_codings(path)
    codebook = load_codebook()
    codings, _ = code_corpus(codebook)
    return apply_human(codings, people_codes(codings, codebook))


def run_main_job(out_dir: str | Path = "out", *, codebook_path: Path = DEFAULT_CODEBOOK,
                 corpus_dir: Path = CORPUS_DIR, model_dir: Path = DEFAULT_MODEL_DIR) -> JobResult:
    """``framecode run``: the whole mission on the shipped corpus."""
    from .compare import summaries
    from .report import Analysis, Reliability, read_agreement, write_analysis_of

    out = Path(out_dir)
    codebook = load_codebook(codebook_path)
    codings, provenance = code_corpus(codebook, corpus_dir=corpus_dir, model_dir=model_dir)
    codings = apply_human(codings, people_codes(codings, codebook))
    paths = {"codings": out / "codings.csv"}
    write_table(paths["codings"], codings.to_dict("records"), list(codings.columns))
    errors = CoderErrors.from_model_dir(model_dir)
    reliability = Reliability.of(errors, read_agreement())
    analysis = Analysis.of(codings, codebook, estimator=ShareEstimator(errors=errors), reliability=reliability)
    paths.update(write_analysis_of(analysis, codebook, out, provenance))
    return JobResult(
        out_dir=out,
        paths=paths,
        quotes=len(codings),
        by_origin=dict(Counter(codings["origin"].replace("", "unknown"))),
        by_program=dict(Counter(codings["program"].replace("", "unknown"))),
        summaries=tuple(summaries(analysis.comparison)),
    )
