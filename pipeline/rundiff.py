"""What changed between two runs: codebook, model, inputs, quotes' codes and frequencies.

Reads only the run folders (``manifest.json``, ``codebook.json``, ``codings.parquet`` and the
frequency tables). Text excerpts appear in the diff itself, which a researcher asked for,
never in an error message or log.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import InputError, RunError
from .files import atomic_write_text
from .records import Code, Codebook
from .runs import CODEBOOK_SNAPSHOT, CODINGS_PARQUET, FREQUENCY_FILES, read_manifest
from .tables import read_table, write_table

EXCERPT_CHARS = 80
CHANGE_ORDER = ("added", "removed", "redefined")
DIFF_COLUMNS = (
    "section", "change", "id", "code_id", "by", "group", "level",
    "share_a", "share_b", "shift", "detail", "excerpt",
)


@dataclass(frozen=True)
class CodebookChange:
    code_id: str
    change: str  # added | removed | redefined
    fields: tuple[str, ...] = ()  # which fields of a redefined code differ


@dataclass(frozen=True)
class InputChange:
    path: str
    change: str  # added | removed | changed


@dataclass(frozen=True)
class QuoteChange:
    quote_id: str
    code_id: str
    change: str  # added | removed
    excerpt: str


@dataclass(frozen=True)
class FrequencyShift:
    by: str
    group: str
    level: str
    id: str
    share_a: float | None
    share_b: float | None

    @property
    def shift(self) -> float | None:
        if self.share_a is None or self.share_b is None:
            return None
        return round(self.share_b - self.share_a, 6)


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between run A and run B."""

    run_a: str
    run_b: str
    codebook: tuple[CodebookChange, ...]
    model: dict | None  # {"a": ..., "b": ...} when the model or encoder changed
    inputs: tuple[InputChange, ...]
    quotes_only_in_a: int
    quotes_only_in_b: int
    quotes: tuple[QuoteChange, ...]
    frequencies: tuple[FrequencyShift, ...]

    def rows(self) -> list[dict]:
        """One long table, a ``section`` column telling which part each row belongs to."""
        rows = [{"section": "codebook", "change": c.change, "code_id": c.code_id, "detail": " ".join(c.fields)} for c in self.codebook]
        if self.model:
            rows.append({"section": "model", "change": "changed", "detail": f"{self.model['a']['id']} -> {self.model['b']['id']}"})
        rows += [{"section": "inputs", "change": i.change, "id": i.path} for i in self.inputs]
        rows += [{"section": "quotes", "change": q.change, "id": q.quote_id, "code_id": q.code_id, "excerpt": q.excerpt} for q in self.quotes]
        rows += [
            {"section": "frequencies", "change": "shift", "id": f.id, "by": f.by, "group": f.group, "level": f.level,
             "share_a": _blank(f.share_a), "share_b": _blank(f.share_b), "shift": _blank(f.shift)}
            for f in self.frequencies
        ]
        return rows

    def to_dict(self) -> dict:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "codebook": [asdict(c) for c in self.codebook],
            "model": self.model,
            "inputs": [asdict(i) for i in self.inputs],
            "quotes_only_in_a": self.quotes_only_in_a,
            "quotes_only_in_b": self.quotes_only_in_b,
            "quotes": [asdict(q) for q in self.quotes],
            "frequencies": [{**asdict(f), "shift": f.shift} for f in self.frequencies],
        }


def _blank(value: float | None) -> str:
    return "" if value is None else repr(value)


def diff_runs(run_a: Path, run_b: Path) -> RunDiff:
    """Compare two run folders (A the earlier, B the later)."""
    run_a, run_b = Path(run_a), Path(run_b)
    manifest_a, manifest_b = read_manifest(run_a), read_manifest(run_b)
    for folder, manifest in ((run_a, manifest_a), (run_b, manifest_b)):
        if manifest["status"] != "complete":
            raise RunError(f"{folder}: run {manifest['run_id']} is {manifest['status']}, not complete; resume it first")
    only_a, only_b, quotes = _quote_changes(run_a / CODINGS_PARQUET, run_b / CODINGS_PARQUET)
    return RunDiff(
        run_a=manifest_a["run_id"],
        run_b=manifest_b["run_id"],
        codebook=codebook_changes(_snapshot(run_a), _snapshot(run_b)),
        model=_model_change(manifest_a, manifest_b),
        inputs=_input_changes(_pinned(manifest_a), _pinned(manifest_b)),
        quotes_only_in_a=only_a,
        quotes_only_in_b=only_b,
        quotes=quotes,
        frequencies=tuple(s for by in FREQUENCY_FILES for s in _frequency_shifts(run_a, run_b, by)),
    )


def _snapshot(run_dir: Path) -> Codebook:
    path = run_dir / CODEBOOK_SNAPSHOT
    try:
        return Codebook.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        raise RunError(f"{path}: codebook snapshot missing or damaged; the run folder is incomplete") from None


def codebook_changes(a: Codebook, b: Codebook) -> tuple[CodebookChange, ...]:
    """Codes added, removed or redefined (any field differs) from ``a`` to ``b``."""
    codes_a, codes_b = {c.id: c for c in a.codes}, {c.id: c for c in b.codes}
    changes = [CodebookChange(c, "added") for c in codes_b if c not in codes_a]
    changes += [CodebookChange(c, "removed") for c in codes_a if c not in codes_b]
    for code_id in codes_a.keys() & codes_b.keys():
        differing = tuple(f.name for f in fields(Code) if getattr(codes_a[code_id], f.name) != getattr(codes_b[code_id], f.name))
        if differing:
            changes.append(CodebookChange(code_id, "redefined", differing))
    return tuple(sorted(changes, key=lambda c: (CHANGE_ORDER.index(c.change), c.code_id)))


def _model_change(a: dict, b: dict) -> dict | None:
    side = lambda m: {"id": m["model"]["id"], "hash": m["model"]["hash"], "encoder": m["encoder"]}  # noqa: E731
    return None if side(a) == side(b) else {"a": side(a), "b": side(b)}


def _pinned(manifest: dict) -> list[dict]:
    """A run's pinned files: its inputs and the reviewers' decision files it applied."""
    decisions = (manifest.get("decisions") or {}).get("files", [])
    return manifest["inputs"] + [{"path": f"{e['path']} (decisions)", "sha256": e["sha256"]} for e in decisions]


def _input_changes(a: list[dict], b: list[dict]) -> tuple[InputChange, ...]:
    hashes_a, hashes_b = {e["path"]: e["sha256"] for e in a}, {e["path"]: e["sha256"] for e in b}
    changes = [InputChange(p, "added") for p in hashes_b if p not in hashes_a]
    changes += [InputChange(p, "removed") for p in hashes_a if p not in hashes_b]
    changes += [InputChange(p, "changed") for p in hashes_a.keys() & hashes_b.keys() if hashes_a[p] != hashes_b[p]]
    return tuple(sorted(changes, key=lambda c: (c.change, c.path)))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _quote_changes(parquet_a: Path, parquet_b: Path) -> tuple[int, int, tuple[QuoteChange, ...]]:
    """Per-quote codes added and removed, streaming B against an id → codes map of A."""
    import pyarrow.parquet as pq

    for path in (parquet_a, parquet_b):
        if not path.is_file():
            raise RunError(f"{path}: codings missing; the run folder is incomplete")
    table_a = pq.read_table(parquet_a, columns=["id", "codes"])
    codes_a = dict(zip(table_a.column("id").to_pylist(), table_a.column("codes").to_pylist()))
    del table_a
    changes: list[QuoteChange] = []
    only_b = 0
    for batch in pq.ParquetFile(parquet_b).iter_batches(columns=["id", "codes", "text"]):
        for quote_id, codes, text in zip(*(batch.column(i).to_pylist() for i in range(3))):
            before = codes_a.pop(quote_id, None)
            if before is None:
                only_b += 1
            elif before != codes:
                old, new = set(filter(None, before.split(";"))), set(filter(None, codes.split(";")))
                short = excerpt(text)
                changes += [QuoteChange(quote_id, c, "added", short) for c in sorted(new - old)]
                changes += [QuoteChange(quote_id, c, "removed", short) for c in sorted(old - new)]
    return len(codes_a), only_b, tuple(changes)


def _frequency_shifts(run_a: Path, run_b: Path, by: str) -> list[FrequencyShift]:
    shares_a, shares_b = _shares(run_a / FREQUENCY_FILES[by], by), _shares(run_b / FREQUENCY_FILES[by], by)
    keys = list(shares_a) + [k for k in shares_b if k not in shares_a]
    return [FrequencyShift(by, *key, shares_a.get(key), shares_b.get(key)) for key in keys]


def _shares(path: Path, by: str) -> dict[tuple[str, str, str], float]:
    if not path.is_file():
        raise RunError(f"{path}: frequency table missing; the run folder is incomplete")
    return {(r[by], r["level"], r["id"]): float(r["share"]) for r in read_table(path).rows}


def write_diff(diff: RunDiff, path: Path) -> None:
    """Write the diff as CSV (one long table) or JSON, by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        atomic_write_text(path, json.dumps(diff.to_dict(), indent=2, ensure_ascii=False) + "\n")
    elif suffix == ".csv":
        write_table(path, diff.rows(), DIFF_COLUMNS)
    else:
        raise InputError(f"{path}: cannot write a diff as {suffix or 'a file without suffix'!r}; use .csv or .json")
