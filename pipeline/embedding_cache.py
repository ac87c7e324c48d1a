"""Content-addressed store of sentence embeddings in one SQLite file.

A vector is stored under (encoder key, sha256 of the normalised text). Normalisation is
Unicode NFC followed by stripping leading and trailing whitespace (``normalize_text``);
the encoder embeds the normalised text, so a cached vector is exactly what encoding that
text would give. Texts are never stored, only their hashes.

The file is opened in WAL mode with a busy timeout, so two processes can share it; each
batch of new vectors is written in one transaction. A file that fails ``PRAGMA
quick_check`` or is not a database is rebuilt with a warning; a row whose vector has the
wrong length, non-finite values or is not unit length is dropped and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import EncoderError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
_CORRUPT_ERRORS = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_MAX_PARAMS = 500
_NORM_TOLERANCE = 1e-3


def normalize_text(text: str) -> str:
    """The form of ``text`` that is embedded and hashed: NFC, surrounding whitespace removed."""
    return unicodedata.normalize("NFC", text).strip()


def text_digest(normalized: str) -> bytes:
    """sha256 of an already normalised text (the cache key's second half)."""
    return hashlib.sha256(normalized.encode("utf-8")).digest()


class _Corrupt(Exception):
    pass


class EmbeddingCache:
    """Vectors keyed by (encoder key, text digest) in the SQLite file at ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0):
        self.path = Path(path)
        self.timeout = timeout
        self._conn = self._open()

    def get_many(
        self, encoder_key: str, digests: Sequence[bytes], dimension: int
    ) -> dict[bytes, np.ndarray]:
        """The stored vectors among ``digests``; missing or invalid rows are left out."""
        found: dict[bytes, np.ndarray] = {}
        invalid: list[bytes] = []
        for start in range(0, len(digests), _MAX_PARAMS):
            part = list(digests[start : start + _MAX_PARAMS])
            marks = ",".join("?" * len(part))
            rows = self._run(
                f"SELECT text_sha256, vector FROM embeddings "
                f"WHERE encoder = ? AND text_sha256 IN ({marks})",
                [encoder_key, *part],
            )
            vectors, valid = _decode(rows, dimension)
            for (digest, _), vector, ok in zip(rows, vectors, valid):
                if ok:
                    found[digest] = vector
                else:
                    invalid.append(digest)
        if invalid:
            logger.warning(
                "%s: %d cached embedding(s) were damaged; dropping and recomputing them",
                self.path,
                len(invalid),
            )
            self._delete(encoder_key, invalid)
        return found

    def put_many(self, encoder_key: str, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        """Store vectors in one transaction (all of them or none)."""
        rows = [
            (encoder_key, digest, np.asarray(vector, dtype="<f4").tobytes())
            for digest, vector in items
        ]
        if not rows:
            return
        try:
            self._write(rows)
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise _unusable(self.path, exc) from None
            self._rebuild(str(exc))
            self._write(rows)

    def count(self, encoder_key: str | None = None) -> int:
        """Number of stored vectors, for one encoder or in all."""
        if encoder_key is None:
            return self._run("SELECT COUNT(*) FROM embeddings", [])[0][0]
        return self._run("SELECT COUNT(*) FROM embeddings WHERE encoder = ?", [encoder_key])[0][0]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except (_Corrupt, sqlite3.DatabaseError) as exc:
            if isinstance(exc, sqlite3.DatabaseError) and not _is_corrupt(exc):
                raise _unusable(self.path, exc) from None
            self._discard_files(str(exc))
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise _Corrupt(f"quick_check reported: {status}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            schema = _schema(conn)
            if schema is None:
                with _begin(conn):
                    conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS embeddings ("
                        "encoder TEXT NOT NULL, text_sha256 BLOB NOT NULL, vector BLOB NOT NULL, "
                        "PRIMARY KEY (encoder, text_sha256)) WITHOUT ROWID"
                    )
                    conn.execute(
                        "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)",
                        [SCHEMA_VERSION],
                    )
                schema = _schema(conn)
            if schema != SCHEMA_VERSION:
                raise _Corrupt(f"unknown schema version {schema!r}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard_files(self, reason: str) -> None:
        logger.warning("%s: embedding cache is damaged (%s); rebuilding it", self.path, reason)
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def _rebuild(self, reason: str) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._discard_files(reason)
        self._conn = self._connect()

    def _run(self, sql: str, params: list) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise _unusable(self.path, exc) from None
            self._rebuild(str(exc))
            return self._conn.execute(sql, params).fetchall()

    def _delete(self, encoder_key: str, digests: list[bytes]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM embeddings WHERE encoder = ? AND text_sha256 = ?",
                [(encoder_key, digest) for digest in digests],
            )

    def _write(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (encoder, text_sha256, vector) VALUES (?, ?, ?)",
                rows,
            )

    @contextlib.contextmanager
    def _transaction(self):
        with _begin(self._conn):
            yield self._conn


@contextlib.contextmanager
def _begin(conn: sqlite3.Connection):
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _schema(conn: sqlite3.Connection) -> str | None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"meta", "embeddings"} <= tables:
        return None
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
    return row[0] if row else ""


def _decode(rows: Sequence[tuple[bytes, object]], dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored vectors of ``rows`` (zeros where damaged) and which of them are sound:
    the right length, finite, unit norm."""
    size = dimension * 4
    sized = np.array([isinstance(blob, bytes) and len(blob) == size for _, blob in rows], dtype=bool)
    vectors = np.zeros((len(rows), dimension), dtype=np.float32)
    if sized.any():
        joined = b"".join(blob for (_, blob), ok in zip(rows, sized) if ok)
        vectors[sized] = np.frombuffer(joined, dtype="<f4").reshape(-1, dimension)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.einsum("ij,ij->i", vectors, vectors)
    valid = sized & np.isfinite(vectors).all(axis=1) & (np.abs(norms - 1.0) <= _NORM_TOLERANCE)
    return vectors, valid


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name in _CORRUPT_ERRORS or "malformed" in str(exc) or "not a database" in str(exc)


def _unusable(path: Path, exc: sqlite3.Error) -> EncoderError:
    return EncoderError(
        f"{path}: embedding cache cannot be used ({exc}); wait for the other process to "
        "finish, or point FRAMECODE_CACHE at a writable folder"
    )
