"""Read and write CSV, TSV, XLSX and JSONL tables with every cell kept as exact text.

Reading never converts a cell: ``None``, ``NA``, ``null`` and ``N/A`` stay text, a UTF-8 BOM
never reaches a header, embedded newlines survive, and a row with too few or too many fields
is reported (file and row as a spreadsheet shows it: the header is row 1), never padded. Writing is atomic and
keeps text exact; in XLSX every text cell is stored as a string, never as a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .columns import shown_names
from .errors import InputError, Problem, ValidationError
from .files import atomic_write, atomic_write_bytes

READ_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".xlsx", ".jsonl")
WRITE_SUFFIXES: tuple[str, ...] = (".csv", ".jsonl", ".xlsx")
XLSX_MAX_CELL = 32767

Row = Mapping[str, object]


@dataclass(frozen=True)
class Table:
    """A table read from a file: header names and rows of exact text.

    ``row_numbers[i]`` is the row of ``rows[i]`` as a spreadsheet shows it (the header is
    row 1, the first data row row 2; the line for JSONL). ``problems`` are rows left out because their shape was wrong (only when read
    with ``strict=False``); ``notices`` are things worth checking that did not stop reading.
    """

    path: Path
    columns: tuple[str, ...]
    rows: list[dict[str, str]]
    encoding: str
    sheet: str | None = None
    row_numbers: tuple[int, ...] = ()
    problems: tuple[Problem, ...] = field(default=(), compare=False)
    notices: tuple[Problem, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.row_numbers:
            object.__setattr__(self, "row_numbers", tuple(range(2, len(self.rows) + 2)))


def read_table(
    path: str | Path, *, encoding: str | None = None, sheet: str | None = None, strict: bool = True
) -> Table:
    """Read a .csv, .tsv, .xlsx or .jsonl file with every cell as text.

    ``encoding`` forces a text encoding; by default UTF-8 (with or without BOM), UTF-16 with
    BOM and cp1252 are recognised. ``sheet`` names an XLSX worksheet (default: the first).
    With ``strict`` (the default) rows of the wrong shape raise :class:`ValidationError`
    listing all of them; otherwise they are left out and listed in ``Table.problems``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise InputError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(READ_SUFFIXES)}"
        )
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if suffix == ".xlsx":
        table = _read_xlsx(path, sheet)
    else:
        text, used = decode_text(path, path.read_bytes(), encoding)
        if suffix == ".jsonl":
            table = _read_jsonl(path, text, used)
        else:
            table = _read_delimited(path, text, used, "\t" if suffix == ".tsv" else ",")
    if strict and table.problems:
        raise ValidationError(
            table.problems, f"{path}: {len(table.problems)} row(s) have the wrong number of fields"
        )
    return table


def decode_text(path: Path, data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode a file's bytes: (text without BOM, encoding used).

    Tries UTF-8 (BOM or not), UTF-16 with BOM, then cp1252 (Excel's Windows exports).
    """
    if encoding:
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except (LookupError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot be decoded as {encoding} ({type(exc).__name__}); check --encoding") from None
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ("utf-16",)
    else:
        candidates = ("utf-8", "cp1252")
    for name in candidates:
        try:
            return data.decode(name).removeprefix("\ufeff"), name
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path}: text is neither UTF-8 nor cp1252; save it as UTF-8 (CSV UTF-8 in Excel) and retry")


def _cp1252_notices(path: Path, rows: Sequence[Sequence[str]], numbers: Sequence[int], encoding: str) -> list[Problem]:
    if encoding != "cp1252":
        return []
    return [
        Problem(str(path), "decoded as cp1252 (file is not UTF-8); check the non-ASCII characters in this row", row=n)
        for n, cells in zip(numbers, rows)
        if any(not cell.isascii() for cell in cells)
    ]


def _header(path: Path, cells: Sequence[str], sheet: str | None = None) -> tuple[str, ...]:
    names = [cell.strip() for cell in cells]
    if names:
        names[0] = names[0].removeprefix("\ufeff").strip()
    while names and not names[-1]:
        names.pop()
    place = f"{path}" + (f", sheet {sheet}" if sheet else "")
    if not names:
        raise InputError(f"{place}: no header row; the first row must name the columns (e.g. text)")
    for i, name in enumerate(names, start=1):
        if not name:
            raise InputError(f"{place}: header column {i} is empty; give every column a name")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{place}: column {shown_names([name])} appears twice in the header; rename one")
        seen.add(name)
    return tuple(names)


def _read_delimited(path: Path, text: str, encoding: str, delimiter: str) -> Table:
    csv.field_size_limit(sys.maxsize)  # a quote may be longer than the csv module's 131,072 characters
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file ({exc})") from None
    if delimiter == ",":  # undo csv_safe: framecode reads back exactly what it wrote
        records = [[csv_unescape(cell) for cell in cells] for cells in records]
    if not records:
        raise InputError(f"{path}: file is empty; expected a header row naming the columns (e.g. text)")
    columns = _header(path, records[0])
    rows: list[dict[str, str]] = []
    numbers: list[int] = []
    problems: list[Problem] = []
    for number, cells in enumerate(records[1:], start=2):
        if not cells:  # a blank line
            continue
        if len(cells) != len(columns):
            problems.append(
                Problem(str(path), f"expected {len(columns)} fields, found {len(cells)}; check quoting and delimiters", row=number)
            )
            continue
        rows.append(dict(zip(columns, cells)))
        numbers.append(number)
    notices = _cp1252_notices(path, [list(r.values()) for r in rows], numbers, encoding)
    return Table(path, columns, rows, encoding, None, tuple(numbers), tuple(problems), tuple(notices))


def _json_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        return ";".join(_json_cell(v) for v in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _read_jsonl(path: Path, text: str, encoding: str) -> Table:
    columns: dict[str, None] = {}
    parsed: list[tuple[int, dict[str, str]]] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 is text
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(str(path), f"not valid JSON ({exc.msg} at column {exc.colno})", row=number))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(str(path), f"expected a JSON object, found {type(obj).__name__}", row=number))
            continue
        row = {str(k).strip(): _json_cell(v) for k, v in obj.items()}
        columns.update(dict.fromkeys(row))
        parsed.append((number, row))
    names = tuple(columns)
    rows = [{name: row.get(name, "") for name in names} for _, row in parsed]
    numbers = tuple(n for n, _ in parsed)
    notices = _cp1252_notices(path, [list(r.values()) for r in rows], numbers, encoding)
    return Table(path, names, rows, encoding, None, numbers, tuple(problems), tuple(notices))


def _xlsx_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _read_xlsx(path: Path, sheet: str | None) -> Table:
    tables, problems = read_sheets(path, sheet, first_only=sheet is None)
    if problems:
        raise InputError(str(problems[0]))
    return tables[0]


def read_sheets(path: str | Path, sheet: str | None = None, *, first_only: bool = False) -> tuple[list[Table], list[Problem]]:
    """Every worksheet of an XLSX workbook as a table (or only ``sheet``, or the first), and
    the sheets that cannot be one (empty, no header), each as a problem naming the sheet."""
    import openpyxl

    path = Path(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many unrelated types for bad files
        raise InputError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}); re-save it from Excel as .xlsx") from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise InputError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}")
        tables: list[Table] = []
        problems: list[Problem] = []
        for worksheet in workbook.worksheets[:1] if first_only else workbook.worksheets:
            if sheet is not None and worksheet.title != sheet:
                continue
            records = [[_xlsx_cell(v) for v in values] for values in worksheet.iter_rows(values_only=True)]
            try:
                tables.append(_sheet_table(path, worksheet.title, records))
            except InputError as exc:
                problems.append(Problem(str(path), str(exc).split(": ", 1)[-1], sheet=worksheet.title))
    finally:
        workbook.close()
    return tables, problems


def _sheet_table(path: Path, name: str, records: list[list[str]]) -> Table:
    """A worksheet's table; its header is the first row with a value (rows as Excel numbers them)."""
    first = next((i for i, cells in enumerate(records) if any(cells)), None)
    if first is None:
        raise InputError(f"{path}, sheet {name}: sheet is empty; expected a header row naming the columns (e.g. text)")
    columns = _header(path, records[first], name)
    rows: list[dict[str, str]] = []
    numbers: list[int] = []
    problems: list[Problem] = []
    for number, cells in enumerate(records[first + 1:], start=first + 2):
        if not any(cells):
            continue
        extra = [c for c in cells[len(columns):] if c]
        if extra:
            problems.append(
                Problem(str(path), f"{len(extra)} value(s) beyond the {len(columns)} named columns; add a header or remove them", row=number, sheet=name)
            )
            continue
        cells = cells[: len(columns)] + [""] * (len(columns) - len(cells))
        rows.append(dict(zip(columns, cells)))
        numbers.append(number)
    return Table(path, columns, rows, "xlsx", name, tuple(numbers), tuple(problems))


def _text(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


FORMULA_START = "=+-@\t\r"
"""First characters that make a spreadsheet read a CSV cell as a formula (OWASP CSV injection)."""
_NEEDS_ESCAPE = re.compile(r"'*[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


def csv_safe(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet runs: a leading ``'`` before a formula character.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return (after any ``'``)
    gets one more ``'`` in front; plain numbers such as ``-0.25`` are left alone.
    :func:`csv_unescape` undoes it exactly.
    """
    if text and text[0] in "'" + FORMULA_START and _NEEDS_ESCAPE.match(text) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def csv_unescape(cell: str) -> str:
    """A CSV cell as written before :func:`csv_safe`: one leading ``'`` dropped before a formula character."""
    if cell.startswith("'") and _NEEDS_ESCAPE.match(cell, 1):
        return cell[1:]
    return cell


def write_table(
    path: str | Path,
    rows: Iterable[Row],
    columns: Sequence[str],
    *,
    sheet: str = "data",
    timestamp: dt.datetime | None = None,
    number_formats: Mapping[str, str] | None = None,
) -> None:
    """Write ``rows`` (only ``columns``, in that order) to .csv, .jsonl or .xlsx, atomically.

    CSV is UTF-8 without BOM, ``\\n`` line ends, minimal quoting, and text cells made safe for
    spreadsheets with :func:`csv_safe`; JSONL holds one object per line and keeps text exact.
    ``sheet``, ``timestamp`` and ``number_formats`` apply to XLSX (see :func:`write_workbook`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    columns = tuple(columns)
    if suffix == ".csv":
        with atomic_write(path, "w") as handle:
            write_csv_rows(handle, [[csv_safe(c) for c in columns]])
            write_csv_rows(handle, ([csv_safe(_text(row.get(c))) for c in columns] for row in rows))
    elif suffix == ".jsonl":
        with atomic_write(path, "w") as handle:
            for row in rows:
                handle.write(json.dumps({c: row.get(c, "") for c in columns}, ensure_ascii=False) + "\n")
    elif suffix == ".xlsx":
        write_workbook(path, {sheet: (rows, columns)}, timestamp=timestamp, number_formats=number_formats)
    else:
        raise InputError(
            f"{path}: cannot write {path.suffix or 'a file without suffix'!r}; use one of {', '.join(WRITE_SUFFIXES)}"
        )


def write_csv_rows(handle, rows: Iterable[Sequence[str]]) -> None:
    """CSV rows in framecode's dialect: ``\\n`` line ends, minimal quoting, and every field of
    a row quoted when a cell holds a bare carriage return (which minimal quoting leaves bare,
    so that a reader would split the row there)."""
    plain = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for cells in rows:
        (quoted if any("\r" in cell for cell in cells) else plain).writerow(cells)


def write_workbook(
    path: str | Path,
    sheets: Mapping[str, tuple[Iterable[Row], Sequence[str]]],
    *,
    timestamp: dt.datetime | None = None,
    number_formats: Mapping[str, str] | None = None,
) -> None:
    """Write a multi-sheet XLSX workbook atomically; sheet name -> (rows, columns).

    Text is stored as strings (never formulas, whatever it starts with); int, float and bool
    values as numbers, shown with ``number_formats[column]`` (an Excel format such as
    ``0.0%``) where given. Every sheet has a bold, frozen header row with a filter, columns
    sized to their content and long text wrapped. With ``timestamp`` the workbook's
    created/modified properties and its zip entries carry that time, so the same content
    gives byte-identical files.
    """
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    path = Path(path)
    if not sheets:
        raise InputError(f"{path}: a workbook needs at least one sheet")
    tables = {title: (tuple(columns), [_xlsx_row(path, title, n, row, columns) for n, row in enumerate(rows, start=2)])
              for title, (rows, columns) in sheets.items()}
    formats = dict(number_formats or {})
    workbook = Workbook(write_only=True)
    for title, (columns, values) in tables.items():
        worksheet = workbook.create_sheet(title=title)
        widths = _column_widths(columns, values)
        _lay_out(worksheet, widths, len(values))
        worksheet.append([_header_cell(worksheet, xlsx_text(path, title, 1, c, c)) for c in columns])
        styles = [(formats.get(c), width >= XLSX_WRAP_WIDTH) for c, width in zip(columns, widths)]
        for row in values:
            worksheet.append([_cell(worksheet, v, *style) for v, style in zip(row, styles)])
    stamp = (timestamp or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).save()
    data = buffer.getvalue()
    if timestamp is not None:
        data = restamp_zip(data, stamp)
    atomic_write_bytes(path, data)


XLSX_WRAP_WIDTH = 60
"""Widest column, in characters; text columns that need more are wrapped at this width."""


def _column_widths(columns: Sequence[str], values: Sequence[Sequence[object]]) -> list[int]:
    """Each column's width in characters: its longest line (header included), 8 to XLSX_WRAP_WIDTH."""
    def longest(value: object) -> int:
        text = f"{value:.4g}" if isinstance(value, float) else _text(value)
        return max((len(line) for line in text.splitlines()), default=0)

    widths = [len(c) for c in columns]
    for row in values[:1000]:  # enough to size a column; keeps big sheets fast
        widths = [max(w, longest(v)) for w, v in zip(widths, row)]
    return [min(max(w + 2, 8), XLSX_WRAP_WIDTH) for w in widths]


def _lay_out(worksheet, widths: Sequence[int], n_rows: int) -> None:
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(widths, start=1):
        worksheet.column_dimensions[get_column_letter(i)].width = width
    worksheet.freeze_panes = "A2"
    if widths:
        worksheet.auto_filter.ref = f"A1:{get_column_letter(len(widths))}{n_rows + 1}"


def _xlsx_row(path: Path, sheet: str, number: int, row: Row, columns: Sequence[str]) -> list[object]:
    """A row's values for XLSX: finite numbers as they are, everything else as checked text."""
    values: list[object] = []
    for column in columns:
        value = row.get(column)
        if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            values.append(value)
        else:
            values.append(xlsx_text(path, sheet, number, column, _text(value)))
    return values


def xlsx_text(path: Path, sheet: str, number: int, column: str, text: str) -> str:
    """``text`` if XLSX can hold it; ``number`` is the spreadsheet row (1 = header)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    where = f"{path}, sheet {sheet}, " + (f"row {number}, column {column!r}" if number > 1 else f"header {column!r}")
    if len(text) > XLSX_MAX_CELL:
        raise InputError(f"{where}: {len(text)} characters exceed XLSX's {XLSX_MAX_CELL}-character cell limit; write CSV or JSONL instead")
    if ILLEGAL_CHARACTERS_RE.search(text):
        raise InputError(f"{where}: holds a control character XLSX cannot store; write CSV or JSONL instead")
    return text


def _header_cell(worksheet, name: str):
    from openpyxl.styles import Font

    cell = _cell(worksheet, name)
    cell.font = Font(bold=True)
    return cell


def _cell(worksheet, value: object, number_format: str | None = None, wrap: bool = False):
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment

    cell = WriteOnlyCell(worksheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # text, never a formula or an error code
        if wrap:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    elif number_format and not isinstance(value, bool):
        cell.number_format = number_format
    return cell


def restamp_zip(data: bytes, stamp: dt.datetime) -> bytes:
    """Rewrite a zip archive with every entry dated ``stamp`` (deterministic bytes)."""
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()
