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
  timestamps inside, so the same inputs, codebook and model give byte-identical files),
  ``frequencies_by_program.csv``, ``frequencies_by_sector.csv`` and ``rejected.csv``
  (file, row and reason of every rejected or skipped record; never a quote's text).

A chunk whose quotes, codebook and model equal a chunk of an earlier complete run in the same
runs folder is copied from that run instead of being coded again (``reuse``), which makes the
re-run of an unchanged corpus cheap.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import fcntl
import functools
import hashlib
import itertools
import json
import os
import platform
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Protocol

from .documents import PROGRAMS
from .errors import FramecodeError, InputError, RunError
from .files import atomic_write, atomic_write_text, sha256_file
from .records import SECTORS, Codebook, Quote, quote_id
from .sectors import default_registry, normalize_sector
from .tables import write_table

MANIFEST = "manifest.json"
CODEBOOK_SNAPSHOT = "codebook.json"
WORK_DB = "work.sqlite"
LOCK = "run.lock"
CODINGS_PARQUET = "codings.parquet"
CODINGS_CSV = "codings.csv"
REJECTED_CSV = "rejected.csv"
FREQUENCY_FILES = {"program": "frequencies_by_program.csv", "sector": "frequencies_by_sector.csv"}
REJECTED_COLUMNS = ("file", "row", "outcome", "reason")

STREAMED_SUFFIXES = (".csv", ".tsv", ".jsonl")
BASE_COLUMNS = ("id", "text", "organization", "program", "sector", "codes", "needs_review")
EXTRA_COLUMNS = ("coder", "origin", "source")
PARQUET_ROW_GROUP = 65_536
PACKAGES = (
    "framecode", "numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "torch",
    "sentence-transformers", "onnxruntime", "transformers", "tokenizers",
)


class Coder(Protocol):
    """What a run needs from a coder (``pipeline.classify.load_coder`` returns one)."""

    model_id: str
    model_hash: str
    codebook_hash: str
    encoder_identity: dict
    code_ids: tuple[str, ...]

    def code_rows(self, quotes: Sequence[Quote]) -> list[dict]: ...


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One record of an input file: a quote, or the reason it cannot be one."""

    file: str
    row: int  # 1-based data row (header excluded) or line number for JSONL
    quote: Quote | None = None
    problem: str = ""


@dataclass(frozen=True)
class InputFile:
    """An input pinned before work: path, sha256, size, and whether it can be streamed."""

    path: str
    sha256: str
    bytes: int
    streamed: bool  # UTF-8 CSV, TSV or JSONL: read in chunks; anything else: read whole by ingest
    encoding: str

    @classmethod
    def pin(cls, path: Path) -> InputFile:
        """Hash ``path`` and check whether it is UTF-8 text that can be streamed."""
        if not path.is_file():
            raise InputError(f"{path}: input file not found; pass an existing CSV, TSV, JSONL or XLSX file")
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")()
        streamed = path.suffix.lower() in STREAMED_SUFFIXES
        size = 0
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                if streamed:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        streamed = False
                size += len(block)
        with open(path, "rb") as handle:
            bom = handle.read(3) == codecs.BOM_UTF8
        encoding = ("utf-8-sig" if bom else "utf-8") if streamed else "detected by ingest"
        return cls(str(path.resolve()), digest.hexdigest(), size, streamed, encoding)


def iter_records(path: Path, *, streamed: bool = True) -> Iterator[InputRecord]:
    """The records of one input, as ``framecode ingest`` would read them.

    UTF-8 CSV, TSV and JSONL are streamed row by row; other formats and encodings are read
    whole by :func:`pipeline.ingest.read_quotes` (spreadsheets and documents are small by nature).
    """
    suffix = path.suffix.lower()
    if streamed and suffix in (".csv", ".tsv"):
        yield from _iter_delimited(path, "\t" if suffix == ".tsv" else ",")
    elif streamed and suffix == ".jsonl":
        yield from _iter_jsonl(path)
    else:
        yield from _iter_ingested(path)


def _iter_delimited(path: Path, delimiter: str) -> Iterator[InputRecord]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        fields = _field_columns(header)
        if isinstance(fields, str):
            raise InputError(f"{path}: header: {fields}")
        width = len(header)
        for row_no, cells in enumerate(reader, start=1):
            if not cells:
                continue
            if len(cells) != width:
                yield InputRecord(str(path), row_no, problem=f"row has {len(cells)} fields, header has {width}")
                continue
            row = dict(zip(header, cells))
            yield _record(path, row_no, {name: row[column] if column else "" for name, column in fields.items()})


def _iter_jsonl(path: Path) -> Iterator[InputRecord]:
    from .tables import _json_cell

    with open(path, encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                yield InputRecord(str(path), line_no, problem="not valid JSON")
                continue
            if not isinstance(data, dict):
                yield InputRecord(str(path), line_no, problem="not a JSON object")
                continue
            row = {str(k).strip(): _json_cell(v) for k, v in data.items()}
            fields = _field_columns(list(row))
            if isinstance(fields, str):
                yield InputRecord(str(path), line_no, problem=fields)
                continue
            yield _record(path, line_no, {name: row[column] if column else "" for name, column in fields.items()})


def check_header(path: Path) -> None:
    """Refuse a streamed CSV or TSV whose header names no text column, before any work."""
    if path.suffix.lower() in (".csv", ".tsv"):
        next(_iter_delimited(path, "\t" if path.suffix.lower() == ".tsv" else ","), None)


def _field_columns(columns: Sequence[str]) -> dict[str, str] | str:
    """Quote field → column name ("" when absent), with the aliases ``ingest`` accepts; or what is wrong."""
    from .ingest import FIELD_ALIASES, TEXT_ALIASES

    by_name = {c.casefold(): c for c in columns}
    candidates = [by_name[a] for a in TEXT_ALIASES if a in by_name]
    if not candidates:
        return f"no text column; name one of {', '.join(TEXT_ALIASES)} (columns: {', '.join(columns)})"
    if len(candidates) > 1 and candidates[0].casefold() != "text":
        return f"several possible text columns ({', '.join(candidates)}); rename all but one"
    fields = {name: next((by_name[a] for a in aliases if a in by_name), "") for name, aliases in FIELD_ALIASES.items()}
    return {"text": candidates[0], **fields}


def _iter_ingested(path: Path) -> Iterator[InputRecord]:
    from .ingest import read_quotes

    for position, quote in enumerate(read_quotes([path]).quotes, start=1):
        yield InputRecord(str(path), position, quote)


def _record(path: Path, row_no: int, values: dict[str, str]) -> InputRecord:
    """One quote built the way ``pipeline.ingest`` builds it, or the reason it cannot be."""
    text = values["text"].strip()
    if not text:
        return InputRecord(str(path), row_no, problem="empty text")
    sector = _sector(values["sector"])
    if sector is None:
        return InputRecord(str(path), row_no, problem=f"unknown sector {values['sector'].strip()!r}")
    organization = " ".join(values["organization"].split())
    source = values["source"].strip() or f"{path.name}:row {row_no}"
    return InputRecord(str(path), row_no, Quote(
        id=values["id"].strip() or quote_id(text, source),
        text=text,
        organization=organization,
        program=_program(values["program"]),
        sector=_resolved_sector(organization, sector),
        source=source,
        origin=values["origin"].strip(),
        source_url=values["source_url"].strip(),
    ))


@functools.lru_cache(maxsize=4096)
def _sector(value: str) -> str | None:
    """The normalized sector ("" when empty), or None when it is not in the vocabulary."""
    sector = normalize_sector(value)
    return sector if not sector or sector in SECTORS else None


@functools.lru_cache(maxsize=4096)
def _program(value: str) -> str:
    program = value.strip()
    return PROGRAMS.get(program.casefold(), program)


@functools.lru_cache(maxsize=65536)
def _resolved_sector(organization: str, sector: str) -> str:
    return default_registry().resolve(organization, sector)[0]


def iter_chunks(inputs: Sequence[tuple[Path, bool]], chunk_size: int) -> Iterator[list[InputRecord]]:
    """Records of every (path, streamed) input, in order, in lists of ``chunk_size``."""
    records = itertools.chain.from_iterable(iter_records(Path(p), streamed=s) for p, s in inputs)
    while chunk := list(itertools.islice(records, chunk_size)):
        yield chunk


# --------------------------------------------------------------------------- test coder


class HashCoder:
    """A deterministic stand-in for a trained coder, for tests and benchmarks only.

    Each code's probability is derived from a hash of the code id and the quote's text, so
    adding a code to the codebook leaves every other code's codings unchanged. ``delay``
    seconds are slept per call (to let a test kill a run mid-way); ``calls`` records the
    number of quotes of each call.
    """

    model_id = "hash-coder"
    model_hash = hashlib.sha256(b"framecode hash-coder v1").hexdigest()
    encoder_identity = {"name": "none (hash coder)", "weights_sha256": "", "backend": "none", "dimension": 0}

    def __init__(self, codebook: Codebook, *, delay: float = 0.0):
        self.codebook = codebook
        self.delay = delay
        self.codebook_hash = codebook.content_hash
        self.code_ids = codebook.code_ids
        self.calls: list[int] = []

    def code_rows(self, quotes: Sequence[Quote]) -> list[dict]:
        self.calls.append(len(quotes))
        if self.delay:
            time.sleep(self.delay)
        rows = []
        for quote in quotes:
            probabilities = {c: _unit_hash(c, quote.text) for c in self.code_ids}
            rows.append({
                "id": quote.id, "text": quote.text, "organization": quote.organization,
                "program": quote.program, "sector": quote.sector,
                "codes": ";".join(sorted(c for c, p in probabilities.items() if p >= 0.5)),
                "needs_review": any(abs(p - 0.5) < 0.05 for p in probabilities.values()),
                **{f"p_{c}": p for c, p in probabilities.items()},
            })
        return rows


def _unit_hash(code_id: str, text: str) -> float:
    digest = hashlib.sha256(f"{code_id}\x00{text}".encode("utf-8")).digest()
    return round(int.from_bytes(digest[:4], "big") / 0xFFFFFFFF, 4)


# --------------------------------------------------------------------------- run folder


@dataclass
class Timings:
    """Seconds spent per stage during one session of a run."""

    read: float = 0.0
    code: float = 0.0
    reuse: float = 0.0
    commit: float = 0.0
    outputs: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RunResult:
    """What one call of :func:`start_run` or :func:`resume_run` did."""

    run_id: str
    run_dir: Path
    manifest: dict
    chunks_coded: int
    chunks_reused: int
    chunks_skipped: int  # already committed by an earlier session
    timings: Timings = field(default_factory=Timings)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: no manifest; is {run_dir} a framecode run folder?") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: manifest is not valid JSON (line {exc.lineno}); the run folder is damaged") from None


def _write_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def find_run(run: str | Path, runs_dir: Path) -> Path:
    """A run folder from its id (inside ``runs_dir``) or its path."""
    candidate = Path(run)
    for folder in (candidate, Path(runs_dir) / str(run)):
        if (folder / MANIFEST).is_file():
            return folder
    raise RunError(f"{runs_dir}: no run {str(run)!r}; `framecode runs --runs-dir {runs_dir}` lists the runs")


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock; another process working on the same run is refused."""
    handle = open(run_dir / LOCK, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"{run_dir}: run is being worked on by another process; wait for it to finish") from None
        yield
    finally:
        handle.close()


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds the run's lock."""
    with contextlib.suppress(FileNotFoundError), open(run_dir / LOCK) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def _create_run_dir(runs_dir: Path, started: datetime, fingerprint: str) -> Path:
    """Make a new, unique run folder (``mkdir`` fails when the name exists, so never shared)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{fingerprint[:8]}"
    for attempt in itertools.count(1):
        folder = runs_dir / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _columns(coder: Coder) -> list[str]:
    return [*BASE_COLUMNS, *(f"p_{c}" for c in coder.code_ids), *EXTRA_COLUMNS]


# --------------------------------------------------------------------------- start / resume


def start_run(
    inputs: Sequence[Path],
    *,
    coder: Coder,
    codebook: Codebook,
    runs_dir: Path,
    codebook_path: Path | None = None,
    model_dir: Path | None = None,
    chunk_size: int = 1000,
    reuse: bool = True,
    now: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Pin the inputs, create a new run folder and code every quote into it."""
    if not inputs:
        raise InputError("recode: no input files; pass one or more CSV, TSV, JSONL or XLSX files")
    if chunk_size < 1:
        raise InputError(f"--chunk-size: expected a positive number of records, got {chunk_size}")
    if coder.codebook_hash != codebook.content_hash:
        raise RunError(f"{model_dir or coder.model_id}: model was trained on another codebook; retrain it or pass its codebook")
    pinned = [InputFile.pin(Path(p)) for p in inputs]
    for entry in pinned:
        if entry.streamed:
            check_header(Path(entry.path))
    codebook_file = Path(codebook_path) if codebook_path else None
    provenance = {
        "inputs": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes, "streamed": f.streamed,
                    "encoding": f.encoding, "rows": None} for f in pinned],
        "codebook": {
            "version": codebook.version,
            "content_hash": codebook.content_hash,
            "path": str(codebook_file.resolve()) if codebook_file else None,
            "sha256": sha256_file(codebook_file) if codebook_file else None,
        },
        "model": {"id": coder.model_id, "hash": coder.model_hash, "path": str(Path(model_dir).resolve()) if model_dir else None},
        "encoder": dict(coder.encoder_identity),
        "parameters": {"chunk_size": chunk_size, "reuse": reuse},
    }
    fingerprint = hashlib.sha256(json.dumps(provenance, sort_keys=True).encode("utf-8")).hexdigest()
    started = now()
    run_dir = _create_run_dir(Path(runs_dir), started, fingerprint)
    manifest = {
        "run_id": run_dir.name,
        "status": "running",
        "started_at": _iso(started),
        "ended_at": None,
        **provenance,
        "columns": _columns(coder),
        "packages": package_versions(),
        "platform": platform.platform(),
        "quotes": None,
        "counts": None,
        "sessions": [],
    }
    with _run_lock(run_dir):
        atomic_write_text(run_dir / CODEBOOK_SNAPSHOT, json.dumps(codebook.to_dict(), indent=2, ensure_ascii=False) + "\n")
        _write_manifest(run_dir, manifest)
        return _execute(run_dir, manifest, coder, codebook, now=now)


def check_unchanged(run_dir: Path, manifest: dict) -> None:
    """Refuse, naming the file, when an input or the codebook file changed since the run started."""
    for entry in manifest["inputs"]:
        path = Path(entry["path"])
        if not path.is_file():
            raise RunError(f"{path}: input of run {manifest['run_id']} is missing; restore it or start a new run")
        if sha256_file(path) != entry["sha256"]:
            raise RunError(f"{path}: input changed since run {manifest['run_id']} started; restore it or start a new run")
    book = manifest["codebook"]
    if book.get("path"):
        path = Path(book["path"])
        if not path.is_file() or sha256_file(path) != book["sha256"]:
            raise RunError(f"{path}: codebook changed or missing since run {manifest['run_id']} started; restore it or start a new run")


def resume_run(run_dir: Path, *, coder: Coder, codebook: Codebook, now: Callable[[], datetime] = utc_now) -> RunResult:
    """Continue an interrupted or failed run; finished chunks are kept, not recomputed."""
    run_dir = Path(run_dir)
    with _run_lock(run_dir):
        manifest = read_manifest(run_dir)
        if manifest["status"] == "complete":
            raise RunError(f"{run_dir}: run {manifest['run_id']} is already complete; start a new run instead")
        check_unchanged(run_dir, manifest)
        if codebook.content_hash != manifest["codebook"]["content_hash"]:
            raise RunError(f"{manifest['codebook'].get('path') or run_dir}: codebook differs from the one run {manifest['run_id']} started with")
        if coder.model_hash != manifest["model"]["hash"]:
            raise RunError(f"{manifest['model'].get('path') or coder.model_id}: model changed since run {manifest['run_id']} started; restore it or start a new run")
        manifest["status"] = "running"
        _write_manifest(run_dir, manifest)
        return _execute(run_dir, manifest, coder, codebook, now=now)


# --------------------------------------------------------------------------- work store


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


def _open_store(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    return db


def _chunk_key(coder: Coder, codebook: Codebook, columns: Sequence[str], quotes: Sequence[Quote]) -> str:
    digest = hashlib.sha256()
    for part in (coder.model_hash, codebook.content_hash, "\x1f".join(columns)):
        digest.update(part.encode("utf-8") + b"\x1e")
    for q in quotes:
        digest.update("\x1f".join((q.id, q.text, q.organization, q.program, q.sector, q.origin, q.source)).encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def _reuse_sources(runs_dir: Path, this_run: Path, coder: Coder, codebook: Codebook, columns: list[str]) -> list[tuple[str, sqlite3.Connection]]:
    """Work stores of earlier complete runs with the same model, codebook and columns, newest first."""
    sources = []
    for folder in sorted(runs_dir.iterdir(), reverse=True):
        if folder == this_run or not (folder / WORK_DB).is_file():
            continue
        with contextlib.suppress(RunError, KeyError, TypeError):
            other = read_manifest(folder)
            if (other["status"] == "complete" and other["model"]["hash"] == coder.model_hash
                    and other["codebook"]["content_hash"] == codebook.content_hash and other["columns"] == columns):
                sources.append((folder.name, _open_store(folder / WORK_DB, readonly=True)))
        if len(sources) == 3:
            break
    return sources


def _schema(columns: Sequence[str]):
    import pyarrow as pa

    return pa.schema([
        (c, pa.float64() if c.startswith("p_") else pa.bool_() if c == "needs_review" else pa.string())
        for c in columns
    ])


def _as_flag(value: object) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def _codings_blob(quotes: Sequence[Quote], rows: Sequence[dict], coder: Coder, columns: Sequence[str]) -> bytes:
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
        return [getattr(q, name) for q in quotes]

    schema = _schema(columns)
    table = pa.Table.from_arrays([pa.array(column(f.name), type=f.type) for f in schema], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_blob(blob: bytes):
    import pyarrow as pa

    return pa.ipc.open_stream(blob).read_all()


def _execute(run_dir: Path, manifest: dict, coder: Coder, codebook: Codebook, *, now: Callable[[], datetime]) -> RunResult:
    columns = manifest["columns"]
    if columns != _columns(coder):
        raise RunError(f"{run_dir}: the coder's codes differ from the run's columns; start a new run")
    chunk_size = manifest["parameters"]["chunk_size"]
    session = len(manifest["sessions"]) + 1
    manifest["sessions"].append({"session": session, "pid": os.getpid(), "started_at": _iso(now()), "ended_at": None})
    _write_manifest(run_dir, manifest)
    timings = Timings()
    db = _open_store(run_dir / WORK_DB)
    sources = _reuse_sources(run_dir.parent, run_dir, coder, codebook, columns) if manifest["parameters"]["reuse"] else []
    coded = reused = skipped = 0
    try:
        done = dict(db.execute("SELECT chunk_no, key FROM chunks"))
        seen_ids: set[bytes] = set()
        seen_quotes: set[bytes] = set()
        rows_per_file: Counter[str] = Counter()
        clock = time.perf_counter()
        inputs = [(Path(e["path"]), e["streamed"]) for e in manifest["inputs"]]
        for chunk_no, records in enumerate(iter_chunks(inputs, chunk_size)):
            accepted, problems = [], []
            for record in records:
                rows_per_file[record.file] += 1
                quote = record.quote
                if quote is None:
                    problems.append((chunk_no, record.file, record.row, "rejected", record.problem))
                    continue
                content = _digest(quote.text, quote.organization.casefold())
                if content in seen_quotes:
                    problems.append((chunk_no, record.file, record.row, "skipped", "exact duplicate (same text and organization)"))
                    continue
                seen_quotes.add(content)
                identity = _digest(quote.id)
                if identity in seen_ids:
                    problems.append((chunk_no, record.file, record.row, "rejected", "duplicate id"))
                    continue
                seen_ids.add(identity)
                accepted.append(quote)
            key = _chunk_key(coder, codebook, columns, accepted)
            timings.read += time.perf_counter() - clock
            if chunk_no in done:
                if done[chunk_no] != key:
                    raise RunError(f"{run_dir / WORK_DB}: chunk {chunk_no} does not match the inputs; start a new run")
                skipped += 1
            else:
                source = _reuse(sources, key, timings)
                if source is None:
                    clock = time.perf_counter()
                    rows = coder.code_rows(accepted) if accepted else []
                    timings.code += time.perf_counter() - clock
                    if len(rows) != len(accepted):
                        raise RunError(f"{coder.model_id}: coder returned {len(rows)} rows for {len(accepted)} quotes")
                    payload = _codings_blob(accepted, rows, coder, columns)
                    coded += 1
                else:
                    payload = None
                    reused += 1
                clock = time.perf_counter()
                _commit(db, chunk_no, key, len(records), len(accepted), session, source, payload, problems, sources)
                timings.commit += time.perf_counter() - clock
            clock = time.perf_counter()
        for entry in manifest["inputs"]:
            entry["rows"] = rows_per_file[str(Path(entry["path"]))]
        clock = time.perf_counter()
        counts = _write_outputs(run_dir, db, manifest, codebook)
        timings.outputs += time.perf_counter() - clock
        db.execute("PRAGMA journal_mode=DELETE")  # fold the write-ahead log into work.sqlite
    except BaseException as exc:
        db.close()
        _finish_session(run_dir, manifest, session, now, timings, coded, reused, skipped)
        manifest["status"] = "failed"
        manifest["error"] = str(exc) if isinstance(exc, FramecodeError) else type(exc).__name__
        _write_manifest(run_dir, manifest)
        raise
    finally:
        for _, source_db in sources:
            source_db.close()
    db.close()
    manifest["quotes"] = counts["coded"]
    manifest["counts"] = counts
    manifest.pop("error", None)
    _finish_session(run_dir, manifest, session, now, timings, coded, reused, skipped)
    manifest["ended_at"] = manifest["sessions"][-1]["ended_at"]
    manifest["status"] = "complete"
    _write_manifest(run_dir, manifest)
    return RunResult(run_dir.name, run_dir, manifest, coded, reused, skipped, timings)


def _digest(*parts: str) -> bytes:
    """16-byte digest kept instead of the text itself, so duplicate checks stay small."""
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


def _reuse(sources, key: str, timings: Timings) -> tuple[str, int] | None:
    clock = time.perf_counter()
    try:
        for name, source in sources:
            hit = source.execute("SELECT chunk_no FROM chunks WHERE key = ?", (key,)).fetchone()
            if hit:
                return name, hit[0]
        return None
    finally:
        timings.reuse += time.perf_counter() - clock


def _commit(db, chunk_no, key, n_records, n_coded, session, source, payload, problems, sources) -> None:
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


def _finish_session(run_dir, manifest, session, now, timings, coded, reused, skipped) -> None:
    entry = manifest["sessions"][session - 1]
    entry.update(ended_at=_iso(now()), chunks_coded=coded, chunks_reused=reused,
                 chunks_already_done=skipped, seconds=timings.as_dict())


# --------------------------------------------------------------------------- outputs


def _csv_columns(table) -> list[list[str]]:
    """A chunk's columns as the text cells :func:`pipeline.tables.write_table` would write."""
    cells = []
    for schema_field, column in zip(table.schema, table.columns):
        values = column.to_pylist()
        if schema_field.name == "needs_review":
            values = ["true" if v else "false" for v in values]
        elif schema_field.name.startswith("p_"):
            values = [repr(v) for v in values]
        cells.append(values)
    return cells


def _write_outputs(run_dir: Path, db: sqlite3.Connection, manifest: dict, codebook: Codebook) -> dict:
    """Stream the committed chunks, in input order, to Parquet, CSV and the frequency tables.

    The CSV has the dialect of :func:`pipeline.tables.write_table` (a test holds them equal);
    it is written here column-wise because that is several times faster at a million rows.
    Parquet row groups hold ``PARQUET_ROW_GROUP`` rows whatever the chunk size, so the file
    is byte-identical for the same codings.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = manifest["columns"]
    schema = _schema(columns)
    tally = FrequencyTally(codebook)
    coded = 0
    with atomic_write(run_dir / CODINGS_PARQUET, "wb") as parquet_handle, atomic_write(run_dir / CODINGS_CSV) as csv_handle:
        writer = csv.writer(csv_handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        parquet = pq.ParquetWriter(parquet_handle, schema, compression="zstd")
        pending: list = []
        pending_rows = 0
        for (blob,) in db.execute("SELECT codings FROM chunks ORDER BY chunk_no"):
            table = _read_blob(blob)
            cells = _csv_columns(table)
            writer.writerows(zip(*cells))
            tally.add_columns(*(cells[columns.index(c)] for c in ("program", "sector", "organization", "codes")))
            coded += table.num_rows
            pending.append(table)
            pending_rows += table.num_rows
            if pending_rows >= PARQUET_ROW_GROUP:
                merged = pa.concat_tables(pending)
                whole = pending_rows - pending_rows % PARQUET_ROW_GROUP
                parquet.write_table(merged.slice(0, whole), row_group_size=PARQUET_ROW_GROUP)
                pending, pending_rows = [merged.slice(whole)], pending_rows - whole
        if pending_rows:
            parquet.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP)
        parquet.close()
    for by in FREQUENCY_FILES:
        frequency_columns, frequency_rows = tally.rows(by)
        write_table(run_dir / FREQUENCY_FILES[by], frequency_rows, frequency_columns)
    problems = [dict(zip(REJECTED_COLUMNS, p)) for p in db.execute(
        "SELECT file, row, outcome, reason FROM problems ORDER BY chunk_no, rowid")]
    write_table(run_dir / REJECTED_CSV, problems, REJECTED_COLUMNS)
    reasons: dict[str, Counter] = {"rejected": Counter(), "skipped": Counter()}
    for problem in problems:
        reasons[problem["outcome"]][problem["reason"]] += 1
    return {
        "coded": coded,
        "skipped": sum(reasons["skipped"].values()),
        "rejected": sum(reasons["rejected"].values()),
        "skipped_reasons": dict(sorted(reasons["skipped"].items())),
        "rejected_reasons": dict(sorted(reasons["rejected"].items())),
    }


class FrequencyTally:
    """The tables of :func:`pipeline.frequencies.frequencies` by program and by sector, counted
    chunk by chunk from the model's codes as given (method ``raw``; ``framecode frequencies`` on
    the run's codings corrects them for the coder's error).

    Same columns, rows, order and values as that function (a test holds them equal), in
    memory bounded by the distinct (program, sector, organization, codes) combinations
    instead of the number of quotes.
    """

    def __init__(self, codebook: Codebook):
        self.codebook = codebook
        self._combinations: Counter[tuple[str, str, str, str]] = Counter()

    def add_columns(self, programs: Sequence[str], sectors: Sequence[str], organizations: Sequence[str], codes: Sequence[str]) -> None:
        self._combinations.update(zip(programs, sectors, organizations, codes))

    def rows(self, by: str) -> tuple[list[str], list[dict]]:
        """(columns, rows) as ``frequencies(codings, codebook, by=(by,))`` gives them."""
        import numpy as np

        from .frequencies import FREQUENCY_COLUMNS, UNKNOWN, sort_groups, wilson_interval

        theme_of = {c.id: c.theme for c in self.codebook.codes}
        quotes: Counter[str] = Counter()
        carrying: Counter[tuple[str, str, str]] = Counter()
        organizations: dict[str, set[str]] = {}
        organizations_with: dict[tuple[str, str, str], set[str]] = {}
        for (program, sector, organization, codes), count in self._combinations.items():
            group = (program if by == "program" else sector).strip() or UNKNOWN
            organization = organization.strip()
            code_ids = {c.strip() for c in codes.split(";") if c.strip()}
            carried = [("code", c) for c in code_ids] + [("theme", t) for t in {theme_of[c] for c in code_ids}]
            quotes[group] += count
            for level, item in carried:
                carrying[(group, level, item)] += count
            if organization:
                organizations.setdefault(group, set()).add(organization)
                for level, item in carried:
                    organizations_with.setdefault((group, level, item), set()).add(organization)
        names = {("code", c.id): (c.name, c.theme) for c in self.codebook.codes}
        names |= {("theme", t.id): (t.name, t.id) for t in self.codebook.themes}
        rows = []
        for group in sort_groups(quotes):
            for level, item in names:
                key = (group, level, item)
                rows.append({
                    by: group, "level": level, "id": item, "name": names[level, item][0], "theme": names[level, item][1],
                    "n_quotes": quotes[group], "n_with": carrying[key],
                    "n_organizations_with": len(organizations_with.get(key, ())),
                    "n_organizations": len(organizations.get(group, ())),
                })
        counts = np.array([r["n_with"] for r in rows], dtype=float)
        totals = np.array([r["n_quotes"] for r in rows], dtype=float)
        low, high = wilson_interval(counts, totals) if rows else ([], [])
        for row, k, n, lo, hi in zip(rows, counts, totals, low, high):
            row.update(share=float(k / n), ci_low=float(lo), ci_high=float(hi), method="raw", n_human=0,
                       raw_share=float(k / n), raw_ci_low=float(lo), raw_ci_high=float(hi))
        return [by, *FREQUENCY_COLUMNS], rows


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class RunSummary:
    """One line of ``framecode runs``."""

    run_id: str
    status: str
    started_at: str
    ended_at: str
    quotes: int | None
    rejected: int | None
    chunks_done: int
    codebook_version: str
    model_id: str

    @classmethod
    def of(cls, run_dir: Path) -> RunSummary:
        manifest = read_manifest(run_dir)
        status = manifest["status"]
        if status == "running" and not is_locked(run_dir):
            status = "interrupted"
        chunks = 0
        if (run_dir / WORK_DB).is_file():
            with contextlib.closing(_open_store(run_dir / WORK_DB, readonly=True)) as db, contextlib.suppress(sqlite3.Error):
                (chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        counts = manifest.get("counts") or {}
        return cls(manifest["run_id"], status, manifest["started_at"], manifest.get("ended_at") or "",
                   manifest.get("quotes"), counts.get("rejected"), chunks,
                   manifest["codebook"]["version"], manifest["model"]["id"])


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every run in ``runs_dir``, oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [RunSummary.of(folder) for folder in sorted(runs_dir.iterdir()) if (folder / MANIFEST).is_file()]


def chunk_sessions(run_dir: Path) -> dict[int, int]:
    """Which session committed each chunk (chunk number → session number)."""
    with contextlib.closing(_open_store(Path(run_dir) / WORK_DB, readonly=True)) as db:
        return dict(db.execute("SELECT chunk_no, session FROM chunks"))


def codings_count(run_dir: Path) -> tuple[int, int]:
    """(codings committed, distinct quote ids among them) in a run's work store."""
    ids: list[str] = []
    with contextlib.closing(_open_store(Path(run_dir) / WORK_DB, readonly=True)) as db:
        for (blob,) in db.execute("SELECT codings FROM chunks"):
            ids += _read_blob(blob).column("id").to_pylist()
    return len(ids), len(set(ids))

