"""Starting, resuming and executing a run, chunk by chunk."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import platform
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ..columns import ReadOptions
from ..errors import FramecodeError, InputError, RunError
from ..files import atomic_write_text, os_error_message, remove_temp_files, sha256_file
from ..progress import is_shown, track
from ..records import Codebook, Quote
from .coder import Coder
from .decisions import check_decisions, load_decisions, pin_decisions
from .inputs import InputFile, carried_columns, check_header, iter_chunks, iter_records
from .manifest import (CODEBOOK_SNAPSHOT, WORK_DB, RunResult, Timings, create_run_dir, iso, package_versions, release_space, reserve_space,
                       read_manifest, run_columns, run_lock, utc_now, write_manifest)
from .outputs import write_outputs
from .store import chunk_key, database_error, codings_blob, commit_chunk, find_reuse, open_store, reuse_sources

log = logging.getLogger(__name__)


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
    options: ReadOptions = ReadOptions(),
    human_dir: Path | None = None,
    now: Callable[[], datetime] = utc_now,
    engine: Engine | None = None,
) -> RunResult:
    """Pin the inputs, create a new run folder and code every quote into it, every input
    column carried through. The organization registry (``organizations.csv``) is skipped.

    The reviewers' decision files in ``human_dir`` (``labels/human``; None for the model's
    codings only) are pinned too and override the model in the outputs (see :mod:`.decisions`).
    ``engine`` codes the chunks: None for this process, or a
    :class:`pipeline.runs.ray_engine.RayEngine`; the outputs are the same bytes either way."""
    from ..sectors import REGISTRY_FILE

    for path in inputs:
        if Path(path).name == REGISTRY_FILE.name:
            log.warning("notice: %s skipped: the organization registry (sectors), not quotes", path)
    inputs = [p for p in inputs if Path(p).name != REGISTRY_FILE.name]
    if not inputs:
        raise InputError("recode: no input files; pass one or more CSV, TSV, JSONL or XLSX files")
    if chunk_size < 1:
        raise InputError(f"--chunk-size: expected a positive number of records, got {chunk_size}")
    if coder.codebook_hash != codebook.content_hash:
        raise RunError(f"{model_dir or coder.model_id}: model was trained on another codebook; retrain it or pass its codebook")
    pinned = [InputFile.pin(Path(p)) for p in inputs]
    for entry in pinned:
        if entry.streamed:
            check_header(Path(entry.path), options)
    if not any(r.outcome not in ("noted", "skipped") for e in pinned for r in iter_records(Path(e.path), streamed=e.streamed, options=options)):
        raise InputError(f"{', '.join(str(p) for p in inputs)}: no quotes found; every input is empty, header only "
                         "or has blank text in every row")
    carried = carried_columns(pinned, options)
    decisions = pin_decisions(human_dir, codebook)
    codebook_file = Path(codebook_path) if codebook_path else None
    provenance = {
        "inputs": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes, "streamed": f.streamed,
                    "encoding": f.encoding, "rows": None} for f in pinned],
        "decisions": decisions,
        "registry": {"path": str(REGISTRY_FILE.resolve()), "sha256": _registry_sha256()},
        "codebook": {
            "version": codebook.version,
            "content_hash": codebook.content_hash,
            "path": str(codebook_file.resolve()) if codebook_file else None,
            "sha256": sha256_file(codebook_file) if codebook_file else None,
        },
        "model": {"id": coder.model_id, "hash": coder.model_hash, "path": str(Path(model_dir).resolve()) if model_dir else None},
        "encoder": dict(coder.encoder_identity),
        "parameters": {"chunk_size": chunk_size, "reuse": reuse, "read": options.as_dict()},
    }
    fingerprint = hashlib.sha256(json.dumps(provenance, sort_keys=True).encode("utf-8")).hexdigest()
    started = now()
    run_dir = create_run_dir(Path(runs_dir), started, fingerprint)
    manifest = {
        "run_id": run_dir.name,
        "status": "running",
        "started_at": iso(started),
        "ended_at": None,
        **provenance,
        "columns": run_columns(coder, carried),
        "packages": package_versions(),
        "platform": platform.platform(),
        "quotes": None,
        "counts": None,
        "sessions": [],
    }
    with run_lock(run_dir):
        write_manifest(run_dir, manifest)
        return _execute(run_dir, manifest, coder, codebook, now=now, engine=engine)


def check_unchanged(run_dir: Path, manifest: dict) -> None:
    """Refuse, naming the file, when an input, the codebook file or a decision file changed
    since the run started."""
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
    registry = manifest.get("registry")
    if registry and _registry_sha256(Path(registry["path"])) != registry["sha256"]:
        raise RunError(f"{registry['path']}: organization registry changed since run {manifest['run_id']} started (sectors "
                       "would differ); restore it or start a new run")
    check_decisions(manifest)


def _registry_sha256(path: Path | None = None) -> str | None:
    """The sha256 of the organization registry (which resolves sectors), None when there is none."""
    from ..sectors import REGISTRY_FILE

    path = path or REGISTRY_FILE
    return sha256_file(path) if path.is_file() else None


def resume_run(run_dir: Path, *, coder: Coder, codebook: Codebook, now: Callable[[], datetime] = utc_now,
               engine: Engine | None = None) -> RunResult:
    """Continue an interrupted or failed run; finished chunks are kept, not recomputed, whichever
    engine (None: this process) committed them."""
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        remove_temp_files(run_dir)  # left by a session killed while writing
        manifest = read_manifest(run_dir, complete=True)
        if manifest["status"] == "complete":
            raise RunError(f"{run_dir}: run {manifest['run_id']} is already complete; start a new run instead")
        check_unchanged(run_dir, manifest)
        if codebook.content_hash != manifest["codebook"]["content_hash"]:
            raise RunError(f"{manifest['codebook'].get('path') or run_dir}: codebook differs from the one run {manifest['run_id']} started with")
        if coder.model_hash != manifest["model"]["hash"]:
            raise RunError(f"{manifest['model'].get('path') or coder.model_id}: model changed since run {manifest['run_id']} started; restore it or start a new run")
        manifest["status"] = "running"
        return _execute(run_dir, manifest, coder, codebook, now=now, engine=engine)


def _execute(run_dir: Path, manifest: dict, coder: Coder, codebook: Codebook, *, now: Callable[[], datetime],
             engine: Engine | None = None) -> RunResult:
    engine = engine or LocalEngine()
    columns = manifest["columns"]
    base = run_columns(coder)
    if columns[: len(base)] != base:
        raise RunError(f"{run_dir}: the coder's codes differ from the run's columns; start a new run")
    session = len(manifest["sessions"]) + 1
    manifest["sessions"].append({"session": session, "pid": os.getpid(), "started_at": iso(now()), "ended_at": None,
                                 **engine.describe()})
    work = ChunkWork(run_dir, manifest, coder, codebook, session)
    try:
        reserve_space(run_dir)
        write_manifest(run_dir, manifest)
        if not (run_dir / CODEBOOK_SNAPSHOT).is_file():
            atomic_write_text(run_dir / CODEBOOK_SNAPSHOT, json.dumps(codebook.to_dict(), indent=2, ensure_ascii=False) + "\n")
        work.open()
        rows_per_file: Counter[str] = Counter()
        engine.code(read_chunks(manifest, work, rows_per_file), work)
        for entry in manifest["inputs"]:
            entry["rows"] = rows_per_file[str(Path(entry["path"]))]
        clock = time.perf_counter()
        check_unchanged(run_dir, manifest)  # the files on disk are still the ones pinned and read
        counts = write_outputs(run_dir, work.db, manifest, codebook, load_decisions(manifest))
        work.timings.outputs += time.perf_counter() - clock
        work.db.execute("PRAGMA journal_mode=DELETE")  # fold the write-ahead log into work.sqlite
        work.close()
        manifest["quotes"] = counts["coded"]
        manifest["counts"] = counts
        manifest.pop("error", None)
        _finish_session(manifest, session, now, work)
        manifest["ended_at"] = manifest["sessions"][-1]["ended_at"]
        manifest["status"] = "complete"
        release_space(run_dir)
        write_manifest(run_dir, manifest)
    except BaseException as exc:
        work.close()
        error = run_error(exc, run_dir)
        _finish_session(manifest, session, now, work)
        manifest.update(status="failed", ended_at=None, error=str(error) if error else type(exc).__name__)
        release_space(run_dir)  # room for the manifest on a full disk
        try:
            write_manifest(run_dir, manifest)
        except OSError:
            if error is not None:
                error = RunError(f"{error}; the run's status could not be recorded as failed (`framecode runs` shows it interrupted)")
        if error is None or error is exc:
            raise
        raise error from None
    finally:
        work.close_sources()
    return RunResult(run_dir.name, run_dir, manifest, work.coded, work.reused, work.skipped, work.timings)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One fixed chunk of a run's inputs: its number, key, records read, quotes to code
    (duplicates removed) and problems (rows of the ``problems`` table)."""

    number: int
    key: str
    records: int
    quotes: tuple[Quote, ...]
    problems: tuple[tuple, ...]


def read_chunks(manifest: dict, work: ChunkWork, rows_per_file: Counter[str]) -> Iterator[Chunk]:
    """The run's inputs in fixed chunks of ``chunk_size`` records, in input order, with the
    reading policy of ``ingest`` and duplicates rejected across the whole run; every engine
    reads them so, hence the same keys and outputs whichever codes them."""
    seen_ids: set[bytes] = set()
    seen_quotes: set[bytes] = set()
    inputs = [(Path(e["path"]), e["streamed"], e["sha256"]) for e in manifest["inputs"]]
    options = ReadOptions.from_dict(manifest["parameters"].get("read"))
    chunks = iter_chunks(inputs, manifest["parameters"]["chunk_size"], options)
    for chunk_no in itertools.count():
        clock = time.perf_counter()
        records = next(chunks, None)
        if records is None:
            return
        accepted, problems = [], []
        for record in records:
            rows_per_file[record.file] += record.outcome != "noted"
            quote = record.quote
            if quote is None:
                problems.append((chunk_no, record.file, record.row, record.outcome, record.problem))
                continue
            content = _digest(quote.text, quote.organization.casefold(), record.given_id)
            if content in seen_quotes:
                problems.append((chunk_no, record.file, record.row, "skipped", "exact duplicate (same text, organization and id)"))
                continue
            if record.notice:
                problems.append((chunk_no, record.file, record.row, "noted", record.notice))
            seen_quotes.add(content)
            identity = _digest(quote.id)
            if identity in seen_ids:
                problems.append((chunk_no, record.file, record.row, "rejected", "duplicate id"))
                continue
            seen_ids.add(identity)
            accepted.append(quote)
        key = chunk_key(work.coder, work.codebook, work.columns, accepted)
        work.timings.read += time.perf_counter() - clock
        yield Chunk(chunk_no, key, len(records), tuple(accepted), tuple(problems))


def count_records(manifest: dict) -> int:
    """Records in the run's inputs (an extra reading pass, for a progress bar's time left)."""
    inputs = [(Path(e["path"]), e["streamed"], e["sha256"]) for e in manifest["inputs"]]
    options = ReadOptions.from_dict(manifest["parameters"].get("read"))
    return sum(len(c) for c in iter_chunks(inputs, manifest["parameters"]["chunk_size"], options))


def code_chunk(coder: Coder, quotes: Sequence[Quote], columns: Sequence[str]) -> bytes:
    """A chunk's codings as the work store keeps them (see :func:`.store.codings_blob`)."""
    rows = coder.code_rows(quotes) if quotes else []
    if len(rows) != len(quotes):
        raise RunError(f"{coder.model_id}: coder returned {len(rows)} rows for {len(quotes)} quotes")
    return codings_blob(quotes, rows, coder, columns)


class ChunkWork:
    """One session's work store and bookkeeping: which chunks are already done, which are
    copied from earlier runs, the commit of each coded chunk, counts and timings."""

    def __init__(self, run_dir: Path, manifest: dict, coder: Coder, codebook: Codebook, session: int):
        self.run_dir, self.manifest, self.coder, self.codebook, self.session = run_dir, manifest, coder, codebook, session
        self.columns: list[str] = manifest["columns"]
        self.timings = Timings()
        self.db: sqlite3.Connection | None = None
        self.sources: list = []
        self.done: dict[int, str] = {}
        self.coded = self.reused = self.skipped = 0

    def open(self) -> None:
        self.db = open_store(self.run_dir / WORK_DB)
        if self.manifest["parameters"]["reuse"]:
            self.sources = reuse_sources(self.run_dir.parent, self.run_dir, self.coder, self.codebook, self.columns)
        self.done = dict(self.db.execute("SELECT chunk_no, key FROM chunks"))

    def pending(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` still needs coding: False when an earlier session committed it or
        an earlier run's identical chunk was copied now."""
        if chunk.number in self.done:
            if self.done[chunk.number] != chunk.key:
                raise RunError(f"{self.run_dir / WORK_DB}: chunk {chunk.number} does not match the inputs; start a new run")
            self.skipped += 1
            return False
        source = find_reuse(self.sources, chunk.key, self.timings)
        if source is None:
            return True
        self._commit(chunk, source, None)
        self.reused += 1
        return False

    def code(self, chunk: Chunk) -> bytes:
        """Code ``chunk`` with this process's coder."""
        clock = time.perf_counter()
        payload = code_chunk(self.coder, chunk.quotes, self.columns)
        self.timings.code += time.perf_counter() - clock
        return payload

    def commit(self, chunk: Chunk, payload: bytes) -> None:
        """Commit a coded chunk (its codings blob and problems) in one transaction."""
        self._commit(chunk, None, payload)
        self.coded += 1

    def _commit(self, chunk: Chunk, source: tuple[str, bytes] | None, payload: bytes | None) -> None:
        clock = time.perf_counter()
        commit_chunk(self.db, chunk.number, chunk.key, chunk.records, len(chunk.quotes), self.session, source, payload,
                     chunk.problems)
        self.timings.commit += time.perf_counter() - clock

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def close_sources(self) -> None:
        for _, source_db in self.sources:
            source_db.close()


class Engine(Protocol):
    """What codes a run's pending chunks: this process (:class:`LocalEngine`) or a Ray cluster
    (:class:`pipeline.runs.ray_engine.RayEngine`)."""

    def describe(self) -> dict:
        """What the manifest's session entry records about the engine."""
        ...

    def code(self, chunks: Iterator[Chunk], work: ChunkWork) -> None:
        """Code and commit (``work.commit``) every chunk for which ``work.pending`` is true."""
        ...


class LocalEngine:
    """Code the chunks one after another in this process."""

    def describe(self) -> dict:
        return {"engine": "local"}

    def code(self, chunks: Iterator[Chunk], work: ChunkWork) -> None:
        # Only a shown bar needs the total, worth an extra reading pass to give time left.
        total = count_records(work.manifest) if is_shown() else None
        for chunk in track(chunks, "recoding", total, size=lambda c: c.records):
            if work.pending(chunk):
                work.commit(chunk, work.code(chunk))


def run_error(exc: BaseException, run_dir: Path) -> FramecodeError | None:
    """The one-line error a user should see for ``exc`` (None for a crash or an interrupt):
    a file or database failure names the path, the cause in words and what to do."""
    if isinstance(exc, FramecodeError):
        return exc
    if isinstance(exc, OSError):
        return RunError(os_error_message(exc))
    if isinstance(exc, sqlite3.Error):
        return database_error(exc, run_dir / WORK_DB)
    return None


def _digest(*parts: str) -> bytes:
    """16-byte digest kept instead of the text itself, so duplicate checks stay small."""
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


def _finish_session(manifest: dict, session: int, now: Callable[[], datetime], work: ChunkWork) -> None:
    entry = manifest["sessions"][session - 1]
    entry.update(ended_at=iso(now()), chunks_coded=work.coded, chunks_reused=work.reused,
                 chunks_already_done=work.skipped, seconds=work.timings.as_dict())
