"""A run folder: its file names, manifest, lock, columns and what one session did."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..errors import RunError
from ..files import atomic_write_text, os_error_message
from .coder import Coder

MANIFEST = "manifest.json"
CODEBOOK_SNAPSHOT = "codebook.json"
WORK_DB = "work.sqlite"
LOCK = "run.lock"
RESERVE = ".space-reserve"  # disk held during a run for the manifest's final write
RESERVE_BYTES = 1 << 18
CODINGS_PARQUET = "codings.parquet"
CODINGS_CSV = "codings.csv"
REJECTED_CSV = "rejected.csv"
FREQUENCY_FILES = {"program": "frequencies_by_program.csv", "sector": "frequencies_by_sector.csv"}

BASE_COLUMNS = ("id", "text", "organization", "program", "sector", "codes", "needs_review")
EXTRA_COLUMNS = ("coder", "origin", "source", "review_reason")
PACKAGES = (
    "framecode", "numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "torch",
    "sentence-transformers", "onnxruntime", "transformers", "tokenizers",
)


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


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


MANIFEST_KEYS = ("run_id", "status", "started_at", "inputs", "codebook", "model", "parameters", "columns", "sessions")


def read_manifest(run_dir: Path, *, complete: bool = False) -> dict:
    """A run's manifest; a missing, unreadable or damaged one (``complete``: also one that lacks
    a key a run needs) is a :class:`RunError` naming it."""
    path = Path(run_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: no manifest; is {run_dir} a framecode run folder?") from None
    except OSError as exc:
        raise RunError(os_error_message(exc, path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise RunError(f"{path}: damaged manifest, not valid JSON{where}; the run cannot be used: start a new run") from None
    if not isinstance(manifest, dict):
        raise RunError(f"{path}: damaged manifest, not a JSON object; the run cannot be used: start a new run")
    missing = [key for key in MANIFEST_KEYS if key not in manifest] if complete else []
    if missing:
        raise RunError(f"{path}: damaged manifest, {', '.join(missing)} missing; the run cannot be used: start a new run")
    return manifest


def write_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def reserve_space(run_dir: Path) -> None:
    """Hold ``RESERVE_BYTES`` of disk in the run folder, released by :func:`release_space` when
    the run ends, so that its final status can be written even when the disk fills up."""
    path = run_dir / RESERVE
    if not path.is_file() or path.stat().st_size < RESERVE_BYTES:
        try:
            with open(path, "wb") as handle:
                handle.write(bytes(RESERVE_BYTES))  # real bytes: a sparse file would reserve nothing
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            exc.filename = exc.filename or str(path)
            raise


def release_space(run_dir: Path) -> None:
    with contextlib.suppress(OSError):  # a folder that became read-only keeps it; nothing else to do
        (run_dir / RESERVE).unlink(missing_ok=True)


def find_run(run: str | Path, runs_dir: Path) -> Path:
    """A run folder from its id (inside ``runs_dir``) or its path."""
    candidate = Path(run)
    for folder in (candidate, Path(runs_dir) / str(run)):
        if (folder / MANIFEST).is_file():
            return folder
    raise RunError(f"{runs_dir}: no run {str(run)!r}; `framecode runs --runs-dir {runs_dir}` lists the runs")


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
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


def create_run_dir(runs_dir: Path, started: datetime, fingerprint: str) -> Path:
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


def run_columns(coder: Coder, carried: Sequence[str] = ()) -> list[str]:
    return [*BASE_COLUMNS, *(f"p_{c}" for c in coder.code_ids), *EXTRA_COLUMNS, *carried]

