"""Codings in the formats analysts open: CSV, JSONL, XLSX, SPSS (.sav), Stata (.dta) and R.

One writer serves `framecode code --out` and `framecode export table`. CSV and JSONL keep the
codings layout (machine-readable ids; CSV text made safe for spreadsheets). XLSX is for
people: readable column names, probabilities as numbers, evidence as lines, and a
``Variables`` sheet that maps each column back to its id (:func:`read_codings_workbook`).
SPSS, Stata and R get one 0/1 column per code (``code_<id>``) and snake_case names; SPSS and
Stata carry variable labels and value labels (0 = "not coded", 1 = "coded").
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path

from .errors import InputError
from .files import atomic_write_bytes
from .records import Codebook
from .tables import Table, read_table, write_table, write_workbook

INDICATOR_PREFIX = "code_"
CODINGS_SHEET = "Codings"
VARIABLES_SHEET = "Variables"
CODED_LABELS = {0: "not coded", 1: "coded"}
YES_NO_LABELS = {0: "no", 1: "yes"}
SPSS_MAX_STRING_BYTES = 32767
STAT_NAME_LENGTH = 32  # Stata's limit; SPSS allows 64, R any: one rule for all three

READABLE_COLUMNS: dict[str, str] = {
    "id": "Quote id",
    "text": "Quote",
    "organization": "Organization",
    "program": "Program",
    "sector": "Sector",
    "codes": "Codes (ids)",
    "needs_review": "Needs review",
    "review_reason": "Why review",
    "evidence": "Evidence",
    "coder": "Coder",
    "model_codes": "Model's codes (ids)",
    "coded_by": "Coded by",
    "source": "Source",
    "sheet": "Sheet",
    "speaker": "Speaker",
    "origin": "Origin",
    "source_url": "Source URL",
}
_STATA_RESERVED = {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n",
                   "_pi", "_pred", "_rc", "_skip", "strl", "using", "with"}


class ExportFormat(str, Enum):
    """What a codings file is written as."""

    csv = "csv"
    jsonl = "jsonl"
    xlsx = "xlsx"
    spss = "spss"
    stata = "stata"
    r = "r"


SUFFIXES: dict[ExportFormat, str] = {
    ExportFormat.csv: ".csv", ExportFormat.jsonl: ".jsonl", ExportFormat.xlsx: ".xlsx",
    ExportFormat.spss: ".sav", ExportFormat.stata: ".dta", ExportFormat.r: ".csv",
}
WITH_INDICATORS = frozenset({ExportFormat.spss, ExportFormat.stata, ExportFormat.r})


def export_format(path: str | Path, requested: ExportFormat | None = None) -> ExportFormat:
    """The format to write ``path`` in: ``requested``, or the one its suffix names (.csv, .jsonl,
    .xlsx, .sav, .dta); the suffix must fit the format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if requested is None:
        by_suffix = {s: f for f, s in SUFFIXES.items() if f is not ExportFormat.r}
        if suffix not in by_suffix:
            raise InputError(f"{path}: cannot write {path.suffix or 'a file without suffix'!r} codings; name it "
                             f"{', '.join(by_suffix)} (or .csv with --format r for R)")
        return by_suffix[suffix]
    if suffix != SUFFIXES[requested]:
        raise InputError(f"{path}: --format {requested.value} writes a {SUFFIXES[requested]} file; rename --out")
    return requested


def write_codings(
    path: str | Path,
    rows: Sequence[Mapping[str, str]],
    columns: Sequence[str],
    codebook: Codebook,
    *,
    format: ExportFormat | None = None,
    indicators: bool = False,
    timestamp: dt.datetime | None = None,
) -> ExportFormat:
    """Write codings-layout ``rows`` (text cells, as `framecode code` makes or reads them) to ``path``.

    ``indicators`` adds a 0/1 column ``code_<id>`` per code of ``codebook`` after ``codes``
    (always there for SPSS, Stata and R). Returns the format written.
    """
    path = Path(path)
    format = export_format(path, format)
    columns = list(columns)
    if "codes" not in columns:
        raise InputError(f"{path}: the codings have no 'codes' column; pass the output of `framecode code`")
    if indicators or format in WITH_INDICATORS:
        rows, columns = with_indicators(rows, columns, codebook)
    if format in (ExportFormat.csv, ExportFormat.jsonl):
        write_table(path, rows, columns)
    elif format is ExportFormat.xlsx:
        _write_xlsx(path, rows, columns, codebook, timestamp)
    elif format is ExportFormat.r:
        _write_r(path, rows, columns)
    else:
        _write_statistical(path, rows, columns, codebook, format)
    return format


def file_time(path: str | Path) -> dt.datetime:
    """A file's modification time, to date a workbook: the same input gives the same bytes."""
    return dt.datetime.fromtimestamp(int(Path(path).stat().st_mtime), tz=dt.timezone.utc)


def indicator_column(code_id: str) -> str:
    return f"{INDICATOR_PREFIX}{code_id}"


def with_indicators(
    rows: Sequence[Mapping[str, str]], columns: Sequence[str], codebook: Codebook
) -> tuple[list[dict[str, object]], list[str]]:
    """``rows`` with a 0/1 ``code_<id>`` column per code right after ``codes``, derived from
    ``codes`` (columns of those names already there, as in a re-exported file, are replaced).

    Raises :class:`InputError` for a code id the codebook lacks (row as a spreadsheet shows
    it: header = row 1).
    """
    added = [indicator_column(c) for c in codebook.code_ids]
    columns = [c for c in columns if c not in added]
    known = set(codebook.code_ids)
    out = []
    for number, row in enumerate(rows, start=2):
        codes = {c for c in str(row.get("codes") or "").split(";") if c}
        unknown = sorted(codes - known)
        if unknown:
            raise InputError(f"row {number}, column 'codes': code id(s) {', '.join(unknown)} are not in the codebook; "
                             "pass the --codebook the codings were made with")
        out.append({**row, **{indicator_column(c): int(c in codes) for c in codebook.code_ids}})
    at = list(columns).index("codes") + 1
    return out, [*columns[:at], *added, *columns[at:]]


def _code_names(codebook: Codebook) -> dict[str, str]:
    return {c.id: c.name for c in codebook.codes}


def readable_columns(columns: Sequence[str], codebook: Codebook) -> dict[str, str]:
    """Column id -> header for people: fixed names, ``P(<code name>)``, ``<code name> (0/1)``;
    input columns keep their own name (made unique when it clashes with another header)."""
    names = _code_names(codebook)
    readable: dict[str, str] = {}
    for column in columns:
        if column in READABLE_COLUMNS:
            name = READABLE_COLUMNS[column]
        elif column.startswith("p_") and column[2:] in names:
            name = f"P({names[column[2:]]})"
        elif column.startswith(INDICATOR_PREFIX) and column[len(INDICATOR_PREFIX):] in names:
            name = f"{names[column[len(INDICATOR_PREFIX):]]} (0/1)"
        else:
            name = column
        readable[column] = name if name not in readable.values() else column
    return readable


def readable_evidence(value: str, codebook: Codebook) -> str:
    """The ``evidence`` cell ({code id: sentence} JSON) as one line per code: ``Name: sentence``."""
    try:
        evidence = json.loads(value) if value else {}
    except json.JSONDecodeError:
        return value
    if not isinstance(evidence, dict):
        return value
    names = _code_names(codebook)
    return "\n".join(f"{names.get(code, code)}: {sentence}" for code, sentence in evidence.items())


def _number(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _flag(value: object) -> int | None:
    text = str(value).strip().lower()
    return 1 if text in ("true", "1", "yes") else 0 if text in ("false", "0", "no") else None


def column_kinds(columns: Sequence[str], codebook: Codebook) -> dict[str, str]:
    """Each column's kind: ``probability`` (p_<code id>), ``indicator`` (code_<code id>),
    ``flag`` (needs_review), ``evidence`` or ``text`` (everything else, input columns included)."""
    probabilities = {f"p_{c}" for c in codebook.code_ids}
    indicators = {indicator_column(c) for c in codebook.code_ids}
    return {c: "probability" if c in probabilities else "indicator" if c in indicators else
            "flag" if c == "needs_review" else "evidence" if c == "evidence" else "text" for c in columns}


def _typed(kind: str, value: object, codebook: Codebook) -> object:
    """A cell as an analyst wants it: probabilities as numbers, flags as 0/1, evidence as lines."""
    if kind == "probability":
        return _number(value)
    if kind == "flag":
        return _flag(value)
    if kind == "indicator":
        return int(value)
    if kind == "evidence":
        return readable_evidence(str(value or ""), codebook)
    return "" if value is None else str(value)


def _write_xlsx(path: Path, rows, columns: list[str], codebook: Codebook, timestamp: dt.datetime | None) -> None:
    readable = readable_columns(columns, codebook)
    kinds = column_kinds(columns, codebook)
    headers = [readable[c] for c in columns]
    values = []
    for row in rows:
        cells = {readable[c]: _typed(kinds[c], row.get(c), codebook) for c in columns}
        for column in (c for c in columns if kinds[c] == "flag" and cells[readable[c]] is not None):
            cells[readable[column]] = bool(cells[readable[column]])
        values.append(cells)
    formats = {readable[c]: "0.000" for c in columns if kinds[c] == "probability"}
    variables = [{"Column": readable[c], "Variable": c, "Meaning": _meaning(c, codebook)} for c in columns]
    write_workbook(path, {CODINGS_SHEET: (values, headers), VARIABLES_SHEET: (variables, ["Column", "Variable", "Meaning"])},
                   timestamp=timestamp, number_formats=formats)


def _meaning(column: str, codebook: Codebook) -> str:
    names = _code_names(codebook)
    if column.startswith("p_") and column[2:] in names:
        return f"probability that the quote carries the code {column[2:]}"
    if column.startswith(INDICATOR_PREFIX) and column[len(INDICATOR_PREFIX):] in names:
        return f"1 if the code {column[len(INDICATOR_PREFIX):]} applies, 0 if not"
    return {
        "codes": "code ids that apply, sorted, joined by ;",
        "needs_review": "a person should check: a probability near its threshold, or a denial the rules are unsure of",
        "review_reason": "why the quote needs review, per code",
        "evidence": "the sentence that carries each code",
        "coder": "the model id or the person who coded the quote",
    }.get(column, READABLE_COLUMNS.get(column, "input column, as given"))


def read_codings_table(path: str | Path) -> Table:
    """Any codings file as text cells under their ids: a workbook from :func:`write_codings`
    through its ``Variables`` sheet, everything else as :func:`pipeline.tables.read_table` reads it."""
    return read_codings_workbook(path) if is_codings_workbook(path) else read_table(path)


def read_codings_workbook(path: str | Path) -> Table:
    """A codings workbook written by framecode, with its columns renamed back to their ids
    (from the ``Variables`` sheet), so it reads like the CSV of the same codings."""
    path = Path(path)
    table = read_table(path, sheet=CODINGS_SHEET)
    variables = read_table(path, sheet=VARIABLES_SHEET)
    ids = {row["Column"]: row["Variable"] for row in variables.rows}
    columns = tuple(ids.get(c, c) for c in table.columns)
    rows = [{ids.get(k, k): v for k, v in row.items()} for row in table.rows]
    return Table(table.path, columns, rows, table.encoding, table.sheet, table.row_numbers, table.problems, table.notices)


def is_codings_workbook(path: str | Path) -> bool:
    """Whether ``path`` is an XLSX written by :func:`write_codings` (it has a Variables sheet)."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx" or not path.is_file():
        return False
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True)
    except Exception:  # noqa: BLE001 - not a workbook: read_table reports it
        return False
    try:
        return workbook.sheetnames[:2] == [CODINGS_SHEET, VARIABLES_SHEET]
    finally:
        workbook.close()


def statistical_names(columns: Sequence[str]) -> dict[str, str]:
    """Column -> a name SPSS, Stata and R accept: snake_case ASCII, at most 32 characters,
    starting with a letter, unique (``_2``, ``_3`` ... on a clash)."""
    names: dict[str, str] = {}
    for column in columns:
        base = re.sub(r"[^0-9a-z]+", "_", column.lower()).strip("_") or "column"
        if not base[0].isalpha():
            base = f"v_{base}"
        base = base[:STAT_NAME_LENGTH].rstrip("_")
        if base in _STATA_RESERVED:
            base = f"{base}_"
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base[:STAT_NAME_LENGTH - len(str(n)) - 1]}_{n}"
        names[column] = name
    return names


def _write_r(path: Path, rows, columns: list[str]) -> None:
    """UTF-8 CSV for R: snake_case names, NA for missing, TRUE/FALSE flags, 0/1 indicators."""
    names = statistical_names(columns)

    def cell(column: str, value: object) -> str:
        if column == "needs_review":
            flag = _flag(value)
            return "NA" if flag is None else "TRUE" if flag else "FALSE"
        text = "" if value is None else str(value)
        return text if text or column == "codes" else "NA"

    write_table(path, ({names[c]: cell(c, row.get(c)) for c in columns} for row in rows), [names[c] for c in columns])


def _write_statistical(path: Path, rows, columns: list[str], codebook: Codebook, format: ExportFormat) -> None:
    """SPSS .sav or Stata .dta with variable labels and 0/1 value labels, written atomically."""
    import pandas as pd
    import pyreadstat

    names = statistical_names(columns)
    readable = readable_columns(columns, codebook)
    kinds = column_kinds(columns, codebook)
    code_of = {indicator_column(c.id): c.name for c in codebook.codes}
    data = {names[c]: [_typed(kinds[c], row.get(c), codebook) for row in rows] for c in columns}
    if format is ExportFormat.spss:
        _check_spss_strings(path, data, {names[c]: c for c in columns})
    frame = pd.DataFrame(data, columns=list(data))
    for column in columns:
        if kinds[column] != "text" and kinds[column] != "evidence":
            frame[names[column]] = pd.to_numeric(frame[names[column]])
    labels = {names[c]: code_of.get(c, readable[c])[:80] for c in columns}  # Stata's labels hold 80 characters
    value_labels = {names[c]: CODED_LABELS if kinds[c] == "indicator" else YES_NO_LABELS
                    for c in columns if kinds[c] in ("indicator", "flag")}
    writer = pyreadstat.write_sav if format is ExportFormat.spss else pyreadstat.write_dta
    with tempfile.TemporaryDirectory(prefix="framecode-export-") as folder:
        scratch = Path(folder) / f"codings{path.suffix.lower()}"
        writer(frame, str(scratch), column_labels=labels, variable_value_labels=value_labels)
        atomic_write_bytes(path, scratch.read_bytes())


def _check_spss_strings(path: Path, data: Mapping[str, list], columns: Mapping[str, str]) -> None:
    for name, values in data.items():
        for number, value in enumerate(values, start=2):
            if isinstance(value, str) and len(value) > SPSS_MAX_STRING_BYTES // 4 and len(value.encode("utf-8")) > SPSS_MAX_STRING_BYTES:
                raise InputError(f"{path}, row {number}, column {columns[name]!r}: {len(value.encode('utf-8'))} bytes exceed "
                                 f"SPSS's {SPSS_MAX_STRING_BYTES}-byte string limit; export Stata (.dta), CSV or JSONL instead")
