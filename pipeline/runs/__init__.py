"""Batch re-coding runs: provenance, chunked crash-safe work, resume, reproducible outputs.

A run lives in its own folder ``runs/<UTC timestamp>-<short hash>/``:

- ``manifest.json``: what produced the run (inputs with sha256, codebook, model, encoder,
  package versions, parameters), its status and counts; ``status: complete`` is written last.
- ``codebook.json``: the codebook the run used (compared by ``framecode diff``).
- ``work.sqlite``: the work store. Inputs are streamed in chunks of ``chunk_size`` records;
  each chunk's row in ``chunks`` (its codings as an Arrow IPC blob) and its rejected records
  are committed in one SQLite transaction, so a run killed at any moment resumes without
  recomputing a finished chunk and without losing or doubling a coding.
- ``codings.parquet`` and ``codings.csv`` (streamed from the work store in input order, no
  timestamps inside, so the same inputs, codebook, model and decisions give byte-identical
  files; a reviewer's decision replaces the model's codes, as in ``framecode code``),
  ``frequencies_by_program.csv``, ``frequencies_by_sector.csv`` and ``rejected.csv``
  (file, row and reason of every rejected or skipped record; never a quote's text).

A chunk whose quotes, codebook and model equal a chunk of an earlier complete run in the same
runs folder is copied from that run instead of being coded again (``reuse``), which makes the
re-run of an unchanged corpus cheap.

The modules: :mod:`.inputs` (pinning and reading inputs), :mod:`.manifest` (the run folder,
its manifest and lock), :mod:`.store` (the work store and reuse), :mod:`.outputs` (codings
and frequency tables), :mod:`.decisions` (reviewers' decisions in the outputs),
:mod:`.engine` (start, resume, execute; the chunks every engine reads), :mod:`.ray_engine`
(the chunks coded on a Ray cluster, imported only for ``--engine ray``), :mod:`.listing`
(``framecode runs``) and :mod:`.coder` (what a run needs from a coder; the hash test coder).
"""

from .coder import Coder, HashCoder
from .decisions import PERSON_COLUMNS
from .engine import check_unchanged, resume_run, start_run
from .inputs import STREAMED_SUFFIXES, InputFile, InputRecord, carried_columns, check_header, iter_chunks, iter_records
from .listing import RunSummary, chunk_sessions, codings_count, list_runs
from .manifest import (BASE_COLUMNS, CODEBOOK_SNAPSHOT, CODINGS_CSV, CODINGS_PARQUET, EXTRA_COLUMNS, FREQUENCY_FILES,
                       LOCK, MANIFEST, PACKAGES, REJECTED_CSV, WORK_DB, RunResult, Timings, find_run, is_locked,
                       package_versions, read_manifest, utc_now)
from .outputs import PARQUET_ROW_GROUP, REJECTED_COLUMNS, FrequencyTally
from .store import QUOTE_COLUMNS

__all__ = [
    "BASE_COLUMNS", "CODEBOOK_SNAPSHOT", "CODINGS_CSV", "CODINGS_PARQUET", "EXTRA_COLUMNS", "FREQUENCY_FILES",
    "LOCK", "MANIFEST", "PACKAGES", "PARQUET_ROW_GROUP", "PERSON_COLUMNS", "QUOTE_COLUMNS",
    "REJECTED_COLUMNS", "REJECTED_CSV", "STREAMED_SUFFIXES", "WORK_DB", "Coder", "FrequencyTally",
    "HashCoder", "InputFile", "InputRecord", "RunResult", "RunSummary", "Timings", "carried_columns",
    "check_header", "check_unchanged", "chunk_sessions", "codings_count", "find_run", "is_locked",
    "iter_chunks", "iter_records", "list_runs", "package_versions", "read_manifest", "resume_run",
    "start_run", "utc_now",
]
