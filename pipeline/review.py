"""The human review loop: export quotes worth a look to XLSX, import the reviewed sheet.

``export_review`` picks quotes (those flagged ``needs_review``, or the most uncertain spread
across the probability space) and writes a workbook with a ``decision`` dropdown (accept /
change / skip; empty = undecided) and one 0/1 dropdown per code. ``import_review`` validates
every cell, then stores only the rows a person decided (accept or change) in
``labels/human/<coder>.jsonl`` (one row per quote: ``id``, ``text``, ``codes``, ``coder``,
``decision``, ``reviewed_at``, ``reviewer_note``, ``origin: reviewed``); it updates only that
coder's rows for the decided ids and never touches another coder's file. Training reads
``labels/human/*.jsonl`` at full weight, and ``framecode code`` applies the decisions to the
quotes they were made on (same id and text), naming the person in ``coder``.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .agreement import split_codes
from .errors import InputError, Problem, ValidationError
from .files import atomic_write, sha256_file, sha256_text
from .tables import Table, read_table

REVIEW_SHEET = "review"
INSTRUCTIONS_SHEET = "instructions"
MANIFEST_SHEET = "manifest"
QUOTES_SHEET = "quotes"
DECISION_COLUMN = "decision"
NOTE_COLUMN = "reviewer_note"
INFO_COLUMNS: tuple[str, ...] = ("id", "text", DECISION_COLUMN, "suggested_codes", "probabilities", "organization", "program")
TRUE_VALUES = frozenset({"1", "yes", "y", "true"})
FALSE_VALUES = frozenset({"0", "no", "n", "false", ""})
HUMAN_DIR = "human"
ADJUDICATED = "adjudicated"  # labels/human/adjudicated.jsonl: final codes where coders differed; wins over theirs
DEFAULT_THRESHOLD = 0.5
SHEET_FORMAT = "framecode-review/2"


class Decision(str, enum.Enum):
    """What a reviewer decided about one quote; an empty cell means undecided."""

    accept = "accept"
    change = "change"
    skip = "skip"


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
    "Columns 'suggested_codes' and 'probabilities' show what the model proposed; 'evidence', when present, the sentence behind each code.",
    "Each code id has its own column, pre-filled with the model's suggestion: 1 = the code applies, 0 = it does not.",
    "For each quote you review, pick a 'decision' from its dropdown:",
    "  accept = the suggested codes are right (leave the code columns as they are);",
    "  change = you corrected the code columns (set 1 or 0 from the dropdowns);",
    "  skip   = you looked but will not decide. Rows left empty are undecided.",
    "Only accepted and changed rows are imported; skipped and undecided rows are not stored.",
    "Use 'reviewer_note' for anything worth telling the team. Do not edit 'id' or 'text', rename columns or add code columns.",
    "Codebook: labels/codebook.yaml (definitions, inclusion and exclusion notes, coding rules).",
    "When done, save as .xlsx and run:  framecode review import THIS_FILE.xlsx --coder 'Your Name'",
    "Your decisions are stored in labels/human/<your name>.jsonl; re-importing updates only your rows for the quotes you decided.",
    "`framecode train` learns from them at full weight, and `framecode code` applies them to the same quotes.",
)
WIDTHS = {"id": 14, "text": 70, DECISION_COLUMN: 11, "suggested_codes": 24, "probabilities": 26, "evidence": 60,
          "organization": 20, "program": 10, NOTE_COLUMN: 40}
WRAPPED = frozenset({"text", "probabilities", "evidence", NOTE_COLUMN})


def readable_evidence(evidence: str, probabilities: dict[str, float]) -> str:
    """``{"code": "sentence"}`` evidence as lines ``code (p=0.82): sentence``, most probable first;
    anything else as it is."""
    try:
        sentences = json.loads(evidence) if evidence.strip().startswith("{") else None
    except json.JSONDecodeError:
        sentences = None
    if not isinstance(sentences, dict):
        return evidence
    order = sorted(sentences, key=lambda code: (-probabilities.get(code, 0.0), code))
    return "\n".join(
        f"{code}" + (f" (p={probabilities[code]:.2f})" if code in probabilities else "") + f": {sentences[code]}"
        for code in order
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
        probs = {} if probabilities is None else {code: float(probabilities[i, k]) for k, code in enumerate(code_ids)}
        rows.append({
            **{c: row.get(c, "") for c in ("id", "text", "organization", "program")},
            DECISION_COLUMN: "",
            "suggested_codes": ";".join(sorted(suggested)),
            "probabilities": "; ".join(f"{code}={p:.2f}" for code, p in sorted(probs.items(), key=lambda kv: -kv[1])),
            **({"evidence": readable_evidence(row.get("evidence", ""), probs)} if has_evidence else {}),
            **{code: int(code in suggested) for code in code_ids},
            NOTE_COLUMN: "",
        })
    manifest = [
        {"key": "format", "value": SHEET_FORMAT},
        {"key": "source", "value": str(codings)},
        {"key": "source_sha256", "value": sha256_file(codings)},
        {"key": "exported_at", "value": when.astimezone(dt.timezone.utc).isoformat()},
        {"key": "strategy", "value": strategy.value},
        {"key": "codes", "value": ";".join(code_ids)},
    ]
    quotes = [{"id": r["id"], "text_sha256": sha256_text(r["text"]), "suggested_codes": r["suggested_codes"]} for r in rows]
    _write_review_workbook(out, rows, columns, code_ids, manifest, quotes, when)
    return len(rows)


def _write_review_workbook(out: Path, rows: list[dict], columns: Sequence[str], code_ids: Sequence[str],
                           manifest: list[dict], quotes: list[dict], when: dt.datetime) -> None:
    """The review workbook: dropdowns on the decision and code columns, widths, wrapping, a
    frozen header; manifest and quote hashes on hidden sheets. Same content and ``when``,
    same bytes."""
    import io
    import zipfile

    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.writer.excel import ExcelWriter

    from .files import atomic_write_bytes
    from .tables import restamp_zip

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = REVIEW_SHEET
    _fill(sheet, out, rows, columns)
    last = len(rows) + 1
    letters = {column: get_column_letter(k) for k, column in enumerate(columns, start=1)}
    decision = DataValidation(type="list", formula1='"accept,change,skip"', allow_blank=True, showErrorMessage=True,
                              errorTitle="decision", error="Pick accept, change or skip (or leave empty: undecided).")
    binary = DataValidation(type="list", formula1='"0,1"', allow_blank=False, showErrorMessage=True,
                            errorTitle="code", error="1 = the code applies, 0 = it does not.")
    decision.add(f"{letters[DECISION_COLUMN]}2:{letters[DECISION_COLUMN]}{max(last, 2)}")
    for code in code_ids:
        binary.add(f"{letters[code]}2:{letters[code]}{max(last, 2)}")
    sheet.add_data_validation(decision)
    sheet.add_data_validation(binary)
    for column, letter in letters.items():
        sheet.column_dimensions[letter].width = WIDTHS.get(column, max(8, len(column) + 2))
        if column in WRAPPED:
            for (cell,) in sheet.iter_rows(min_row=2, max_row=last, min_col=columns.index(column) + 1, max_col=columns.index(column) + 1):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(text_rotation=90 if cell.value in code_ids else 0, vertical="bottom")
    sheet.freeze_panes = "B2"
    guide = workbook.create_sheet(INSTRUCTIONS_SHEET)
    _fill(guide, out, [{"instructions": line} for line in INSTRUCTIONS], ["instructions"])
    guide.column_dimensions["A"].width = 120
    for title, (data, names) in {MANIFEST_SHEET: (manifest, ["key", "value"]),
                                 QUOTES_SHEET: (quotes, ["id", "text_sha256", "suggested_codes"])}.items():
        hidden = workbook.create_sheet(title)
        _fill(hidden, out, data, names)
        hidden.sheet_state = "hidden"
    stamp = when.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(workbook, archive).save()
    atomic_write_bytes(out, restamp_zip(buffer.getvalue(), stamp))


def _fill(sheet, out: Path, rows: list[dict], columns: Sequence[str]) -> None:
    """Header and rows; text always stored as text (a quote starting with '=' is no formula)."""
    from .tables import xlsx_text

    for number, row in enumerate([dict(zip(columns, columns)), *rows]):
        for k, column in enumerate(columns, start=1):
            value = row.get(column, "")
            cell = sheet.cell(row=number + 1, column=k)
            if isinstance(value, int):
                cell.value = value
            elif value:
                cell.value = xlsx_text(out, sheet.title, number, column, str(value))
                cell.data_type = "s"


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
class ReviewSummary:
    """What a reviewed sheet's decisions did, counted against the model's suggestions."""

    changed: int
    removed: int
    added: int
    accepted: int
    skipped: int
    undecided: int
    notes_left: int = 0

    def __str__(self) -> str:
        parts = [f"{_count(self.changed, 'quote')} changed: {_count(self.removed, 'code')} removed, {self.added} added",
                 f"{self.accepted} accepted as suggested", f"{self.skipped} skipped", f"{self.undecided} left undecided"]
        notes = f" ({_count(self.notes_left, 'note')} on skipped or undecided rows not imported)" if self.notes_left else ""
        return "; ".join(parts) + notes


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class ImportResult:
    path: Path
    added: int
    updated: int
    kept: int
    summary: ReviewSummary


def read_human_codings(path: str | Path) -> list[dict[str, object]]:
    """Rows of one ``labels/human/<coder>.jsonl`` file (``codes`` as a list)."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):  # U+2028 is text
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


def parse_review(path: str | Path, coder: str) -> tuple[list[dict[str, object]], ReviewSummary]:
    """Validate every cell of a reviewed sheet; return one human-coding row per decided quote
    (accept or change) and what the decisions changed.

    All problems (unknown or missing columns, decisions other than accept/change/skip/empty,
    code values other than 1/0/yes/no/blank, codes edited without 'change', ids not exported
    in this sheet, duplicated ids, edited text) are raised together.
    """
    path = Path(path)
    name = _check_coder(coder)
    review = _sheet(path, REVIEW_SHEET)
    manifest = {r.get("key", ""): r.get("value", "") for r in _sheet(path, MANIFEST_SHEET).rows}
    exported = {r.get("id", ""): r for r in _sheet(path, QUOTES_SHEET).rows}
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
    if DECISION_COLUMN not in review.columns:
        problems.append(Problem(file, "column missing; restore it, or re-export the quotes with `framecode review export` (sheets written before decisions existed cannot say which rows a person decided)", column=DECISION_COLUMN, sheet=REVIEW_SHEET))
    present_codes = [c for c in code_ids if c in review.columns]
    seen: set[str] = set()
    rows = []
    tally = {"changed": 0, "removed": 0, "added": 0, "accepted": 0, "skipped": 0, "undecided": 0, "notes_left": 0}
    reviewed_at = _reviewed_at(path, manifest.get("exported_at", ""))
    for number, row in zip(review.row_numbers, review.rows):
        quote = row.get("id", "").strip()
        if not quote:
            problems.append(Problem(file, "empty id; restore the exported id", row=number, column="id", sheet=REVIEW_SHEET))
        elif quote not in exported:
            problems.append(Problem(file, f"id {quote!r} is not one of the quotes exported in this sheet", row=number, column="id", sheet=REVIEW_SHEET))
        elif quote in seen:
            problems.append(Problem(file, f"id {quote!r} appears more than once; keep one row per quote", row=number, column="id", sheet=REVIEW_SHEET))
        elif "text" in review.columns and sha256_text(row["text"]) != exported[quote].get("text_sha256", ""):
            problems.append(Problem(file, "text differs from the exported quote; restore it (edit codes, not text)", row=number, column="text", sheet=REVIEW_SHEET))
        seen.add(quote)
        codes = []
        for code in present_codes:
            value = row.get(code, "").strip().lower()
            if value in TRUE_VALUES:
                codes.append(code)
            elif value not in FALSE_VALUES:
                problems.append(Problem(file, "expected 1, 0, yes, no or blank", row=number, column=code, sheet=REVIEW_SHEET))
        suggested = set(split_codes(exported.get(quote, {}).get("suggested_codes", row.get("suggested_codes", ""))))
        edited = set(codes) != suggested
        choice = row.get(DECISION_COLUMN, "").strip().lower()
        note = row.get(NOTE_COLUMN, "")
        if choice not in {"", *(d.value for d in Decision)}:
            problems.append(Problem(file, "expected accept, change, skip or empty (undecided); pick one from the dropdown", row=number, column=DECISION_COLUMN, sheet=REVIEW_SHEET))
            continue
        if choice in ("", Decision.accept.value) and edited:
            what = "no decision" if not choice else "decision 'accept'"
            problems.append(Problem(file, f"codes differ from the suggestion but the row has {what}; set 'change' to keep your edit, or restore the suggested codes", row=number, column=DECISION_COLUMN, sheet=REVIEW_SHEET))
            continue
        if choice in ("", Decision.skip.value):
            tally["undecided" if not choice else "skipped"] += 1
            tally["notes_left"] += bool(note.strip())
            continue
        if edited:
            tally["changed"] += 1
            tally["removed"] += len(suggested - set(codes))
            tally["added"] += len(set(codes) - suggested)
        else:
            tally["accepted"] += 1
        rows.append({
            "id": quote,
            "text": row.get("text", ""),
            "codes": sorted(codes),
            "coder": name,
            "decision": choice,
            "reviewed_at": reviewed_at,
            "reviewer_note": note,
            "origin": "reviewed",
        })
    if not review.rows:
        problems.append(Problem(file, "no rows to import", sheet=REVIEW_SHEET))
    if problems:
        raise ValidationError(problems, f"{path}: {len(problems)} problem(s) found; nothing was imported")
    return rows, ReviewSummary(**tally)


def import_review(path: str | Path, coder: str, labels_dir: str | Path) -> ImportResult:
    """Store the quotes a person decided in a reviewed sheet as ``coder``'s codings; other
    coders' files, and this coder's rows for quotes not decided here, are never touched."""
    rows, summary = parse_review(path, coder)
    if not rows:
        raise InputError(
            f"{path}: no row is decided ({summary.skipped} skipped, {summary.undecided} undecided); nothing was imported. "
            f"Set the '{DECISION_COLUMN}' column to accept or change for each quote you reviewed"
        )
    written = write_person_codings(labels_dir, coder, rows)
    return ImportResult(written.path, added=written.added, updated=written.updated, kept=written.kept, summary=summary)


@dataclass(frozen=True)
class WrittenCodings:
    path: Path
    added: int
    updated: int
    kept: int


def write_person_codings(labels_dir: str | Path, coder: str, rows: Sequence[Mapping[str, object]]) -> WrittenCodings:
    """The one writer of ``labels/human/<coder>.jsonl``: ``rows`` (each with ``id`` and
    ``coder``) replace this coder's rows of the same ids in place, new ids are appended, the
    rest are kept, atomically. A file that holds another coder's rows is refused."""
    name = _check_coder(coder)
    target = coder_file(labels_dir, name)
    existing = read_human_codings(target) if target.exists() else []
    others = sorted({str(r["coder"]) for r in existing} - {name})
    if others:
        raise InputError(
            f"{target}: holds codings by {', '.join(others)}, not {name!r}; pick a coder name that does not clash "
            "or rename that file"
        )
    incoming = {r["id"]: dict(r) for r in rows}
    merged = [incoming.pop(r["id"], r) for r in existing]
    updated = len(existing) - sum(1 for a, b in zip(existing, merged) if a is b)
    added = list(incoming.values())
    with atomic_write(target, "w") as handle:
        for row in [*merged, *added]:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
    return WrittenCodings(target, added=len(added), updated=updated, kept=len(existing) - updated)


# --- decisions in outputs ------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonCoding:
    """A person's decided codes for one quote, tied to the exact text they were decided on."""

    id: str
    text_sha256: str
    codes: tuple[str, ...]
    coder: str


def human_files(folder: str | Path) -> list[Path]:
    """The coders' files in ``folder`` (``labels/human``) in the order they take effect: by
    name, with ``adjudicated.jsonl`` last, so an adjudication wins over the coders' codes."""
    return sorted(Path(folder).glob("*.jsonl"), key=lambda p: (p.stem == ADJUDICATED, p.name))


def read_decisions(folder: str | Path) -> dict[str, PersonCoding]:
    """Every coder's decisions in ``folder`` (``labels/human``) by quote id; for an id decided
    in several files, the last in :func:`human_files` order wins (an adjudication, if any)."""
    return read_decision_files(human_files(folder))


def read_decision_files(paths: Iterable[str | Path]) -> dict[str, PersonCoding]:
    """The decisions in ``paths`` by quote id; a later file's decision wins over an earlier one."""
    decisions: dict[str, PersonCoding] = {}
    for path in paths:
        for row in read_human_codings(path):
            quote = str(row["id"])
            decisions[quote] = PersonCoding(quote, sha256_text(str(row.get("text", ""))),
                                            tuple(sorted(map(str, row["codes"]))), str(row["coder"]))
    return decisions


PERSON_COLUMNS: tuple[str, ...] = ("model_codes", "coded_by")
"""Written after the codings layout by `code` and `recode`: the model's own codes, and ``person`` or ``model``."""


def apply_decisions(rows: Iterable[dict], decisions: Mapping[str, PersonCoding]) -> Iterator[dict]:
    """Codings rows with a person's decision in place of the model's codes wherever that
    person decided the same quote (same id and text): ``codes`` and ``coder`` become theirs,
    ``needs_review`` false and ``review_reason`` empty; ``model_codes`` keeps the model's codes and ``coded_by`` says
    ``person`` or ``model``. Probabilities and evidence stay the model's."""
    for row in rows:
        row["model_codes"] = row["codes"]
        decision = decisions.get(str(row["id"]))
        if decision is not None and decision.text_sha256 == sha256_text(str(row["text"])):
            row.update(codes=";".join(decision.codes), coder=decision.coder, needs_review="false", coded_by="person")
            if "review_reason" in row:
                row["review_reason"] = ""
        else:
            row["coded_by"] = "model"
        yield row
