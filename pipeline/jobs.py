"""The main job: ingest the shipped corpus, code it with the default model, and write the
codings, frequency tables, CHP vs DASH comparison, figures and report."""

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
from .paths import CORPUS_DIR, DEFAULT_CODEBOOK, DEFAULT_MODEL_DIR
from .records import Codebook
from .tables import write_table

log = logging.getLogger(__name__)

CODINGS_ENV = "FRAMECODE_CODINGS"
EXTRA_COLUMNS = ("origin", "source")


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


def shipped_codings() -> pd.DataFrame:
    """Codings of the shipped corpus (or of the file named by ``FRAMECODE_CODINGS``)."""
    path = os.environ.get(CODINGS_ENV)
    if path:
        return read_codings(path)
    codings, _ = code_corpus(load_codebook())
    return codings


def run_main_job(out_dir: str | Path = "out", *, codebook_path: Path = DEFAULT_CODEBOOK,
                 corpus_dir: Path = CORPUS_DIR, model_dir: Path = DEFAULT_MODEL_DIR) -> JobResult:
    """``framecode run``: the whole mission on the shipped corpus."""
    from .compare import summaries
    from .report import Analysis, write_analysis_of

    out = Path(out_dir)
    codebook = load_codebook(codebook_path)
    codings, provenance = code_corpus(codebook, corpus_dir=corpus_dir, model_dir=model_dir)
    paths = {"codings": out / "codings.csv"}
    write_table(paths["codings"], codings.to_dict("records"), list(codings.columns))
    analysis = Analysis.of(codings, codebook)
    paths.update(write_analysis_of(analysis, codebook, out, provenance))
    return JobResult(
        out_dir=out,
        paths=paths,
        quotes=len(codings),
        by_origin=dict(Counter(codings["origin"].replace("", "unknown"))),
        by_program=dict(Counter(codings["program"].replace("", "unknown"))),
        summaries=tuple(summaries(analysis.comparison)),
    )
