"""The human review loop: export quotes worth a look to XLSX, import the reviewed sheet.

``export_review`` picks quotes (those flagged ``needs_review``, or the most uncertain spread
across the probability space) and writes a workbook with one 1/0 column per code to accept or
correct. ``import_review`` validates every cell, then stores the reviewer's codings in
``labels/human/<coder>.jsonl`` (one row per quote: ``id``, ``text``, ``codes``, ``coder``,
``reviewed_at``, ``reviewer_note``, ``origin: reviewed``); it updates only that coder's rows
for the ids in the sheet and never touches another coder's file. Training reads
``labels/human/*.jsonl`` as extra labelled rows.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .agreement import split_codes
from .errors import InputError, Problem, ValidationError
from .files import atomic_write, sha256_file, sha256_text
from .tables import Table, read_table, write_workbook

REVIEW_SHEET = "review"
INSTRUCTIONS_SHEET = "instructions"
MANIFEST_SHEET = "manifest"
QUOTES_SHEET = "quotes"
INFO_COLUMNS: tuple[str, ...] = ("id", "text", "organization", "program", "suggested_codes", "probabilities")
NOTE_COLUMN = "reviewer_note"
TRUE_VALUES = frozenset({"1", "yes", "y", "true"})
FALSE_VALUES = frozenset({"0", "no", "n", "false", ""})
HUMAN_DIR = "human"
DEFAULT_THRESHOLD = 0.5


class Strategy(str, enum.Enum):
    needs_review = "needs-review"
    uncertain = "uncertain"


def code_ids_of(table: Table) -> tuple[str, ...]:
    """Code ids named by a codings table's ``p_<code>`` columns, in column order."""
    return tuple(c[2:] for c in table.columns if c.startswith("p_") and len(c) > 2)


def _probabilities(table: Table, code_ids: Sequence[str]) -> np.ndarray:
    problems = []
    matrix = np.zeros((len(table.rows), len(code_ids)))
    for i, (number, row) in enumerate(zip(table.row_numbers, table.rows)):
        for k, code in enumerate(code_ids):
            try:
                value = float(row[f"p_{code}"])
            except ValueError:
                value = float("nan")
            if not 0.0 <= value <= 1.0:
                problems.append(Problem(str(table.path), "expected a probability between 0 and 1", row=number, column=f"p_{code}"))
            else:
                matrix[i, k] = value
    if problems:
        raise ValidationError(problems)
    return matrix


def uncertainty(probabilities: np.ndarray, thresholds: np.ndarray | float = DEFAULT_THRESHOLD) -> np.ndarray:
    """1 when some code's probability sits on its threshold, 0 when every one is 0 or 1."""
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=float), probabilities.shape[1:])
    span = np.maximum(thresholds, 1 - thresholds)
    return 1 - (np.abs(probabilities - thresholds) / span).min(axis=1)


def select_uncertain(probabilities: np.ndarray, limit: int, thresholds: np.ndarray | float = DEFAULT_THRESHOLD) -> list[int]:
    """Indices of up to ``limit`` rows: uncertain ones, spread over the probability space.

    From the ``3 * limit`` most uncertain rows, a greedy farthest-point pass picks each next
    row by uncertainty plus its distance to the rows already picked (ties: input order).
    """
    if limit <= 0 or len(probabilities) == 0:
        return []
    scores = uncertainty(probabilities, thresholds)
    pool = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[: 3 * limit]
    scale = np.sqrt(probabilities.shape[1]) or 1.0
    chosen = [pool[0]]
    nearest = np.linalg.norm(probabilities[pool] - probabilities[pool[0]], axis=1) / scale
    while len(chosen) < min(limit, len(pool)):
        gain = np.array([scores[i] for i in pool]) + nearest
        gain[[pool.index(i) for i in chosen]] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(pool[best])
        nearest = np.minimum(nearest, np.linalg.norm(probabilities[pool] - probabilities[pool[best]], axis=1) / scale)
    return chosen


def select_rows(table: Table, strategy: Strategy, limit: int | None, probabilities: np.ndarray | None) -> list[int]:
    """Indices of the codings rows to review, in review order (``probabilities``: rows x codes)."""
    if strategy is Strategy.needs_review:
        if "needs_review" not in table.columns:
            raise InputError(f"{table.path}: no 'needs_review' column; use --strategy uncertain or code the file with `framecode code`")
        flagged = [i for i, row in enumerate(table.rows) if row["needs_review"].strip().lower() in TRUE_VALUES]
        scores = uncertainty(probabilities) if probabilities is not None else np.zeros(len(table.rows))
        flagged.sort(key=lambda i: (-scores[i], i))
        return flagged if limit is None else flagged[:limit]
    if probabilities is None:
        raise InputError(f"{table.path}: no p_<code> columns; --strategy uncertain needs the model's probabilities")
    return select_uncertain(probabilities, 50 if limit is None else limit)


INSTRUCTIONS = (
    "How to review these quotes",
    "",
    "Sheet 'review' has one row per quote the model is least sure of (or flagged for review).",
    "Columns 'suggested_codes' and 'probabilities' show what the model proposed; 'evidence', when present, why.",
    "Each code id has its own column, pre-filled with the model's suggestion: 1 = the code applies, 0 = it does not.",
    "Accept a suggestion by leaving it; correct it by changing 1 to 0 or 0 to 1 (yes/no and blank = 0 are accepted too).",
    "Use 'reviewer_note' for anything worth telling the team. Do not edit 'id' or 'text', rename columns or add code columns.",
    "Codebook: labels/codebook.yaml (definitions, inclusion and exclusion notes, coding rules).",
    "When done, save as .xlsx and run:  framecode review import THIS_FILE.xlsx --coder 'Your Name'",
    "Your codings are stored in labels/human/<your name>.jsonl; re-importing updates only your rows for these quotes.",
    "Retrain with `framecode train`: it reads labels/human/*.jsonl as extra labelled rows (origin 'reviewed').",
)


def export_review(
    codings: str | Path,
    out: str | Path,
    *,
    strategy: Strategy = Strategy.needs_review,
    limit: int | None = None,
    timestamp: dt.datetime | None = None,
) -> int:
    """Write the review workbook for ``codings``; return the number of quotes in it.

    ``timestamp`` (default: the codings file's modification time) dates the workbook, so the
    same codings give a byte-identical sheet.
    """
    codings, out = Path(codings), Path(out)
    if out.suffix.lower() != ".xlsx":
        raise InputError(f"{out}: the review sheet is a workbook; name it with .xlsx")
    table = read_table(codings)
    missing = [c for c in ("id", "text", "codes") if c not in table.columns]
    if missing:
        raise InputError(f"{codings}: missing column(s) {', '.join(missing)}; pass the output of `framecode code`")
    code_ids = code_ids_of(table)
    probabilities = _probabilities(table, code_ids) if code_ids else None
    code_ids = code_ids or _codebook_ids()
    picked = select_rows(table, strategy, limit, probabilities)
    when = timestamp or dt.datetime.fromtimestamp(int(codings.stat().st_mtime), dt.timezone.utc)
    has_evidence = "evidence" in table.columns
    columns = [*INFO_COLUMNS, *(["evidence"] if has_evidence else []), *code_ids, NOTE_COLUMN]
    rows = []
    for i in picked:
        row = table.rows[i]
        suggested = set(split_codes(row["codes"]))
        unknown = suggested - set(code_ids)
        if unknown:
            raise InputError(f"{codings}, row {table.row_numbers[i]}, column 'codes': unknown code id(s) {', '.join(sorted(unknown))}")
        probs = "" if probabilities is None else "; ".join(
            f"{code_ids[k]}={probabilities[i, k]:.2f}" for k in np.argsort(-probabilities[i], kind="stable")
        )
        rows.append({
            **{c: row.get(c, "") for c in ("id", "text", "organization", "program")},
            "suggested_codes": ";".join(sorted(suggested)),
            "probabilities": probs,
            **({"evidence": row.get("evidence", "")} if has_evidence else {}),
            **{code: int(code in suggested) for code in code_ids},
            NOTE_COLUMN: "",
        })
    manifest = [
        {"key": "source", "value": str(codings)},
        {"key": "source_sha256", "value": sha256_file(codings)},
        {"key": "exported_at", "value": when.astimezone(dt.timezone.utc).isoformat()},
        {"key": "strategy", "value": strategy.value},
        {"key": "codes", "value": ";".join(code_ids)},
    ]
    quotes = [{"id": r["id"], "text_sha256": sha256_text(r["text"])} for r in rows]
    write_workbook(
        out,
        {
            REVIEW_SHEET: (rows, columns),
            INSTRUCTIONS_SHEET: ([{"instructions": line} for line in INSTRUCTIONS], ["instructions"]),
            MANIFEST_SHEET: (manifest, ["key", "value"]),
            QUOTES_SHEET: (quotes, ["id", "text_sha256"]),
        },
        timestamp=when,
    )
    return len(rows)


def _codebook_ids() -> tuple[str, ...]:
    from .codebook import load_codebook

    return load_codebook().code_ids


# --- import ------------------------------------------------------------------------------------

_CODER_NAME = re.compile(r"^[\w][\w .'@-]{0,79}$")


def coder_file(labels_dir: str | Path, coder: str) -> Path:
    """``labels/human/<coder>.jsonl`` (spaces become ``_``)."""
    return Path(labels_dir) / HUMAN_DIR / f"{coder.strip().replace(' ', '_')}.jsonl"


def _check_coder(coder: str) -> str:
    name = coder.strip()
    if not name:
        raise InputError("--coder: empty coder name; pass the reviewer's name, e.g. --coder 'Ana Diaz'")
    if not _CODER_NAME.match(name) or name in {".", ".."}:
        raise InputError(
            "--coder: use letters, digits, spaces, '.', '_', '-', \"'\" or '@' (at most 80 characters); no slashes"
        )
    return name


@dataclass(frozen=True)
class ImportResult:
    path: Path
    added: int
    updated: int
    kept: int


def read_human_codings(path: str | Path) -> list[dict[str, object]]:
    """Rows of one ``labels/human/<coder>.jsonl`` file (``codes`` as a list)."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, row {number}: not valid JSON ({exc.msg}); fix or remove the line") from None
        if not isinstance(row, dict) or not isinstance(row.get("codes"), list) or not row.get("id") or not row.get("coder"):
            raise InputError(f"{path}, row {number}: expected an object with 'id', 'coder' and a 'codes' list")
        rows.append(row)
    return rows


def _sheet(path: Path, name: str) -> Table:
    try:
        return read_table(path, sheet=name)
    except InputError:
        raise InputError(
            f"{path}: no readable {name!r} sheet; import a workbook written by `framecode review export`"
        ) from None


def _reviewed_at(path: Path, fallback: str) -> str:
    """The workbook's last-saved time (set by Excel when the reviewer saves), else ``fallback``."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        modified = workbook.properties.modified
    finally:
        workbook.close()
    if modified is None:
        return fallback
    return modified.replace(tzinfo=modified.tzinfo or dt.timezone.utc).astimezone(dt.timezone.utc).isoformat()


def parse_review(path: str | Path, coder: str) -> list[dict[str, object]]:
    """Validate every cell of a reviewed sheet; return one human-coding row per quote.

    All problems (unknown or missing code columns, values other than 1/0/yes/no/blank, ids
    not exported in this sheet, duplicated ids, edited text) are raised together.
    """
    path = Path(path)
    name = _check_coder(coder)
    review = _sheet(path, REVIEW_SHEET)
    manifest = {r.get("key", ""): r.get("value", "") for r in _sheet(path, MANIFEST_SHEET).rows}
    exported = {r.get("id", ""): r.get("text_sha256", "") for r in _sheet(path, QUOTES_SHEET).rows}
    code_ids = split_codes(manifest.get("codes", ""))
    file = str(path)
    problems: list[Problem] = []
    known = {*INFO_COLUMNS, "evidence", NOTE_COLUMN, *code_ids}
    for column in review.columns:
        if column not in known:
            problems.append(Problem(file, f"unknown column; expected a code id of this sheet ({', '.join(code_ids)}) or an exported column; remove or rename it", column=column, sheet=REVIEW_SHEET))
    for column in ("id", "text", *code_ids):
        if column not in review.columns:
            problems.append(Problem(file, "column missing; restore it from the exported sheet", column=column, sheet=REVIEW_SHEET))
    present_codes = [c for c in code_ids if c in review.columns]
    seen: set[str] = set()
    rows = []
    reviewed_at = _reviewed_at(path, manifest.get("exported_at", ""))
    for number, row in zip(review.row_numbers, review.rows):
        quote = row.get("id", "").strip()
        if not quote:
            problems.append(Problem(file, "empty id; restore the exported id", row=number, column="id", sheet=REVIEW_SHEET))
        elif quote not in exported:
            problems.append(Problem(file, f"id {quote!r} is not one of the quotes exported in this sheet", row=number, column="id", sheet=REVIEW_SHEET))
        elif quote in seen:
            problems.append(Problem(file, f"id {quote!r} appears more than once; keep one row per quote", row=number, column="id", sheet=REVIEW_SHEET))
        elif "text" in review.columns and sha256_text(row["text"]) != exported[quote]:
            problems.append(Problem(file, "text differs from the exported quote; restore it (edit codes, not text)", row=number, column="text", sheet=REVIEW_SHEET))
        seen.add(quote)
        codes = []
        for code in present_codes:
            value = row.get(code, "").strip().lower()
            if value in TRUE_VALUES:
                codes.append(code)
            elif value not in FALSE_VALUES:
                problems.append(Problem(file, "expected 1, 0, yes, no or blank", row=number, column=code, sheet=REVIEW_SHEET))
        rows.append({
            "id": quote,
            "text": row.get("text", ""),
            "codes": sorted(codes),
            "coder": name,
            "reviewed_at": reviewed_at,
            "reviewer_note": row.get(NOTE_COLUMN, ""),
            "origin": "reviewed",
        })
    if not review.rows:
        problems.append(Problem(file, "no rows to import", sheet=REVIEW_SHEET))
    if problems:
        raise ValidationError(problems, f"{path}: {len(problems)} problem(s) found; nothing was imported")
    return rows


def import_review(path: str | Path, coder: str, labels_dir: str | Path) -> ImportResult:
    """Store a reviewed sheet as ``coder``'s codings; other coders' files are never touched."""
    rows = parse_review(path, coder)
    name = _check_coder(coder)
    target = coder_file(labels_dir, name)
    existing = read_human_codings(target) if target.exists() else []
    others = sorted({str(r["coder"]) for r in existing} - {name})
    if others:
        raise InputError(
            f"{target}: holds codings by {', '.join(others)}, not {name!r}; pick a --coder name that does not clash"
        )
    incoming = {r["id"]: r for r in rows}
    merged = [incoming.pop(r["id"], r) for r in existing]
    updated = len(existing) - sum(1 for a, b in zip(existing, merged) if a is b)
    added = list(incoming.values())
    with atomic_write(target, "w") as handle:
        for row in [*merged, *added]:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
    return ImportResult(target, added=len(added), updated=updated, kept=len(existing) - updated)
