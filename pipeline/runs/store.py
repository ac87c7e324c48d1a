"""The work store ``work.sqlite``: each chunk's codings (an Arrow IPC blob) and problems,
committed in one transaction, and the chunks of earlier runs that can be reused."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import RunError
from ..records import Codebook, Quote
from .coder import Coder
from .manifest import WORK_DB, Timings, read_manifest

QUOTE_COLUMNS = ("id", "text", "organization", "program", "sector", "origin", "source")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    chunk_no INTEGER PRIMARY KEY, key TEXT NOT NULL, records INTEGER NOT NULL,
    coded INTEGER NOT NULL, session INTEGER NOT NULL, reused_from TEXT,
    codings BLOB NOT NULL);  -- the chunk's codings as an Arrow IPC stream
CREATE INDEX IF NOT EXISTS chunks_key ON chunks(key);
CREATE TABLE IF NOT EXISTS problems (
    chunk_no INTEGER NOT NULL, file TEXT NOT NULL, row INTEGER NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL);
"""


def open_store(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    return db


def chunk_key(coder: Coder, codebook: Codebook, columns: Sequence[str], quotes: Sequence[Quote]) -> str:
    digest = hashlib.sha256()
    for part in (coder.model_hash, codebook.content_hash, "\x1f".join(columns)):
        digest.update(part.encode("utf-8") + b"\x1e")
    for q in quotes:
        digest.update("\x1f".join((q.id, q.text, q.organization, q.program, q.sector, q.origin, q.source,
                                   *(f"{k}\x1d{v}" for k, v in q.extra))).encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def reuse_sources(runs_dir: Path, this_run: Path, coder: Coder, codebook: Codebook, columns: list[str]) -> list[tuple[str, sqlite3.Connection]]:
    """Work stores of earlier complete runs with the same model, codebook and columns, newest first."""
    sources = []
    for folder in sorted(runs_dir.iterdir(), reverse=True):
        if folder == this_run or not (folder / WORK_DB).is_file():
            continue
        with contextlib.suppress(RunError, KeyError, TypeError):
            other = read_manifest(folder)
            if (other["status"] == "complete" and other["model"]["hash"] == coder.model_hash
                    and other["codebook"]["content_hash"] == codebook.content_hash and other["columns"] == columns):
                sources.append((folder.name, open_store(folder / WORK_DB, readonly=True)))
        if len(sources) == 3:
            break
    return sources


def arrow_schema(columns: Sequence[str]):
    import pyarrow as pa

    return pa.schema([
        (c, pa.float64() if c.startswith("p_") else pa.bool_() if c == "needs_review" else pa.string())
        for c in columns
    ])


def _as_flag(value: object) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def codings_blob(quotes: Sequence[Quote], rows: Sequence[dict], coder: Coder, columns: Sequence[str]) -> bytes:
    """A chunk's codings as an Arrow IPC stream with fixed types (str, bool, float)."""
    import pyarrow as pa

    def column(name: str) -> list:
        if name.startswith("p_"):
            return [float(r[name]) for r in rows]
        if name == "needs_review":
            return [_as_flag(r.get(name, False)) for r in rows]
        if name == "codes":
            return [str(r.get(name) or "") for r in rows]
        if name == "coder":
            return [str(r.get(name) or coder.model_id) for r in rows]
        if name in QUOTE_COLUMNS:
            return [getattr(q, name) for q in quotes]
        return [dict(q.extra).get(name, "") for q in quotes]

    schema = arrow_schema(columns)
    table = pa.Table.from_arrays([pa.array(column(f.name), type=f.type) for f in schema], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_blob(blob: bytes):
    import pyarrow as pa

    return pa.ipc.open_stream(blob).read_all()



def find_reuse(sources, key: str, timings: Timings) -> tuple[str, int] | None:
    clock = time.perf_counter()
    try:
        for name, source in sources:
            hit = source.execute("SELECT chunk_no FROM chunks WHERE key = ?", (key,)).fetchone()
            if hit:
                return name, hit[0]
        return None
    finally:
        timings.reuse += time.perf_counter() - clock


def commit_chunk(db, chunk_no, key, n_records, n_coded, session, source, payload, problems, sources) -> None:
    """One transaction: the chunk's row in ``chunks`` (with its codings) and its problems."""
    if source is not None:
        name, source_chunk = source
        (payload,) = dict(sources)[name].execute("SELECT codings FROM chunks WHERE chunk_no = ?", (source_chunk,)).fetchone()
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany("INSERT INTO problems VALUES (?, ?, ?, ?, ?)", problems)
        db.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (chunk_no, key, n_records, n_coded, session, source and source[0], payload))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise

