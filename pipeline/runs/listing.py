"""Listing runs and reading what their work stores hold (``framecode runs``, tests)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunError
from .manifest import WORK_DB, MANIFEST, is_locked, read_manifest
from .store import open_store, read_blob

log = logging.getLogger(__name__)


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
        manifest = read_manifest(run_dir, complete=True)
        status = manifest["status"]
        if status == "running" and not is_locked(run_dir):
            status = "interrupted"
        chunks = 0
        if (run_dir / WORK_DB).is_file():
            with contextlib.closing(open_store(run_dir / WORK_DB, readonly=True)) as db, contextlib.suppress(sqlite3.Error):
                (chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        counts = manifest.get("counts") or {}
        return cls(manifest["run_id"], status, manifest["started_at"], manifest.get("ended_at") or "",
                   manifest.get("quotes"), counts.get("rejected"), chunks,
                   manifest["codebook"]["version"], manifest["model"]["id"])


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every run in ``runs_dir``, oldest first; a damaged one is reported (a warning) and skipped."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    summaries = []
    for folder in sorted(runs_dir.iterdir()):
        if (folder / MANIFEST).is_file():
            try:
                summaries.append(RunSummary.of(folder))
            except (RunError, KeyError, TypeError, AttributeError) as exc:
                reason = exc if isinstance(exc, RunError) else f"{folder / MANIFEST}: damaged manifest ({type(exc).__name__})"
                log.warning("notice: run %s skipped: %s", folder.name, reason)
    return summaries


def chunk_sessions(run_dir: Path) -> dict[int, int]:
    """Which session committed each chunk (chunk number → session number)."""
    with contextlib.closing(open_store(Path(run_dir) / WORK_DB, readonly=True)) as db:
        return dict(db.execute("SELECT chunk_no, session FROM chunks"))


def codings_count(run_dir: Path) -> tuple[int, int]:
    """(codings committed, distinct quote ids among them) in a run's work store."""
    ids: list[str] = []
    with contextlib.closing(open_store(Path(run_dir) / WORK_DB, readonly=True)) as db:
        for (blob,) in db.execute("SELECT codings FROM chunks"):
            ids += read_blob(blob).column("id").to_pylist()
    return len(ids), len(set(ids))

