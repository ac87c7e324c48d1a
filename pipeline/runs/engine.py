"""Starting, resuming and executing a run, chunk by chunk."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from ..columns import ReadOptions
from ..errors import FramecodeError, InputError, RunError
from ..files import atomic_write_text, os_error_message, remove_temp_files, sha256_file
from ..progress import is_shown, track
from ..records import Codebook
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
) -> RunResult:
    """Pin the inputs, create a new run folder and code every quote into it, every input
    column carried through. The organization registry (``organizations.csv``) is skipped.

    The reviewers' decision files in ``human_dir`` (``labels/human``; None for the model's
    codings only) are pinned too and override the model in the outputs (see :mod:`.decisions`)."""
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
        return _execute(run_dir, manifest, coder, codebook, now=now)


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


def resume_run(run_dir: Path, *, coder: Coder, codebook: Codebook, now: Callable[[], datetime] = utc_now) -> RunResult:
    """Continue an interrupted or failed run; finished chunks are kept, not recomputed."""
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
        return _execute(run_dir, manifest, coder, codebook, now=now)


def _execute(run_dir: Path, manifest: dict, coder: Coder, codebook: Codebook, *, now: Callable[[], datetime]) -> RunResult:
    columns = manifest["columns"]
    base = run_columns(coder)
    if columns[: len(base)] != base:
        raise RunError(f"{run_dir}: the coder's codes differ from the run's columns; start a new run")
    chunk_size = manifest["parameters"]["chunk_size"]
    session = len(manifest["sessions"]) + 1
    manifest["sessions"].append({"session": session, "pid": os.getpid(), "started_at": iso(now()), "ended_at": None})
    timings = Timings()
    db = None
    sources: list = []
    coded = reused = skipped = 0
    try:
        reserve_space(run_dir)
        write_manifest(run_dir, manifest)
        if not (run_dir / CODEBOOK_SNAPSHOT).is_file():
            atomic_write_text(run_dir / CODEBOOK_SNAPSHOT, json.dumps(codebook.to_dict(), indent=2, ensure_ascii=False) + "\n")
        db = open_store(run_dir / WORK_DB)
        sources = reuse_sources(run_dir.parent, run_dir, coder, codebook, columns) if manifest["parameters"]["reuse"] else []
        done = dict(db.execute("SELECT chunk_no, key FROM chunks"))
        seen_ids: set[bytes] = set()
        seen_quotes: set[bytes] = set()
        rows_per_file: Counter[str] = Counter()
        clock = time.perf_counter()
        inputs = [(Path(e["path"]), e["streamed"], e["sha256"]) for e in manifest["inputs"]]
        options = ReadOptions.from_dict(manifest["parameters"].get("read"))
        # Only a shown bar needs the total, worth an extra reading pass to give time left.
        total = sum(len(c) for c in iter_chunks(inputs, chunk_size, options)) if is_shown() else None
        for chunk_no, records in enumerate(track(iter_chunks(inputs, chunk_size, options), "recoding", total, size=len)):
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
            key = chunk_key(coder, codebook, columns, accepted)
            timings.read += time.perf_counter() - clock
            if chunk_no in done:
                if done[chunk_no] != key:
                    raise RunError(f"{run_dir / WORK_DB}: chunk {chunk_no} does not match the inputs; start a new run")
                skipped += 1
            else:
                source = find_reuse(sources, key, timings)
                if source is None:
                    clock = time.perf_counter()
                    rows = coder.code_rows(accepted) if accepted else []
                    timings.code += time.perf_counter() - clock
                    if len(rows) != len(accepted):
                        raise RunError(f"{coder.model_id}: coder returned {len(rows)} rows for {len(accepted)} quotes")
                    payload = codings_blob(accepted, rows, coder, columns)
                    coded += 1
                else:
                    payload = None
                    reused += 1
                clock = time.perf_counter()
                commit_chunk(db, chunk_no, key, len(records), len(accepted), session, source, payload, problems)
                timings.commit += time.perf_counter() - clock
            clock = time.perf_counter()
        for entry in manifest["inputs"]:
            entry["rows"] = rows_per_file[str(Path(entry["path"]))]
        clock = time.perf_counter()
        check_unchanged(run_dir, manifest)  # the files on disk are still the ones pinned and read
        counts = write_outputs(run_dir, db, manifest, codebook, load_decisions(manifest))
        timings.outputs += time.perf_counter() - clock
        db.execute("PRAGMA journal_mode=DELETE")  # fold the write-ahead log into work.sqlite
        db.close()
        db = None
        manifest["quotes"] = counts["coded"]
        manifest["counts"] = counts
        manifest.pop("error", None)
        _finish_session(run_dir, manifest, session, now, timings, coded, reused, skipped)
        manifest["ended_at"] = manifest["sessions"][-1]["ended_at"]
        manifest["status"] = "complete"
        release_space(run_dir)
        write_manifest(run_dir, manifest)
    except BaseException as exc:
        if db is not None:
            db.close()
        error = run_error(exc, run_dir)
        _finish_session(run_dir, manifest, session, now, timings, coded, reused, skipped)
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
        for _, source_db in sources:
            source_db.close()
    return RunResult(run_dir.name, run_dir, manifest, coded, reused, skipped, timings)


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


def _finish_session(run_dir, manifest, session, now, timings, coded, reused, skipped) -> None:
    entry = manifest["sessions"][session - 1]
    entry.update(ended_at=iso(now()), chunks_coded=coded, chunks_reused=reused,
                 chunks_already_done=skipped, seconds=timings.as_dict())

