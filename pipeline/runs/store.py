"""The work store ``work.sqlite``: each chunk's codings (an Arrow IPC blob) and problems,
committed in one transaction, and the chunks of earlier runs that can be reused."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import RunError
from ..records import Codebook, Quote
from .coder import Coder
from .manifest import WORK_DB, Timings, read_manifest

log = logging.getLogger(__name__)

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
    """Open a work store; a damaged or unwritable one is a :class:`RunError` naming it."""
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise database_error(exc, path) from None
    return db


def database_error(exc: sqlite3.Error, path: Path) -> RunError:
    """One line for a failed work store: its path, the cause in words and what to do."""
    message = str(exc).lower()
    if "full" in message:
        cause, advice = "no space left on device", "free some space, then resume the run"
    elif "readonly" in message or "read-only" in message:
        cause, advice = "read-only", "make the run folder writable or use another --runs-dir"
    elif "unable to open" in message or "permission" in message:
        cause, advice = "cannot be opened (permission denied or missing folder)", "check the run folder's permissions"
    elif isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        cause, advice = f"damaged database ({exc})", "the run cannot be resumed; start a new run"
    else:
        cause, advice = f"database error ({exc})", "resume the run, or start a new one if this persists"
    return RunError(f"{path}: {cause}; {advice}")


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
        try:
            other = read_manifest(folder, complete=True)
            if (other["status"] == "complete" and other["model"]["hash"] == coder.model_hash
                    and other["codebook"]["content_hash"] == codebook.content_hash and other["columns"] == columns):
                sources.append((folder.name, open_store(folder / WORK_DB, readonly=True)))
        except (RunError, KeyError, TypeError, sqlite3.Error) as exc:
            log.warning("notice: run %s skipped for reuse: %s", folder.name,
                        exc if isinstance(exc, RunError) else "its manifest or work store is damaged")
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
        if name == "review_reason":
            return [str(r.get(name) or "") for r in rows]
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



def find_reuse(sources: list[tuple[str, sqlite3.Connection]], key: str, timings: Timings) -> tuple[str, bytes] | None:
    """(earlier run, its codings blob) of a chunk with this key, if any. A damaged source is
    reported once and dropped from ``sources``: it never blocks this run."""
    import pyarrow as pa

    clock = time.perf_counter()
    try:
        for name, source in list(sources):
            try:
                hit = source.execute("SELECT codings FROM chunks WHERE key = ?", (key,)).fetchone()
                if hit:
                    read_blob(hit[0])  # a damaged blob raises here, not in the outputs
                    return name, hit[0]
            except (sqlite3.Error, pa.ArrowException) as exc:
                log.warning("notice: run %s is damaged (%s in its %s); skipped, its chunks are coded again",
                            name, type(exc).__name__, WORK_DB)
                sources.remove((name, source))
                source.close()
        return None
    finally:
        timings.reuse += time.perf_counter() - clock


def commit_chunk(db, chunk_no, key, n_records, n_coded, session, source, payload, problems) -> None:
    """One transaction: the chunk's row in ``chunks`` (with its codings, or those of ``source``:
    (earlier run, codings blob) from :func:`find_reuse`) and its problems."""
    if source is not None:
        payload = source[1]
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany("INSERT INTO problems VALUES (?, ?, ?, ?, ?)", problems)
        db.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (chunk_no, key, n_records, n_coded, session, source and source[0], payload))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
