"""Ingest: tables (CSV, TSV, XLSX, JSONL) and documents (TXT, Markdown, HTML, Word, PDF) into quotes.

One reader for every command (``ingest``, ``code``, ``tag --file``, ``recode``'s spreadsheets
and documents) and one policy, applied the same way by :mod:`pipeline.runs` when it streams:

- a row whose text is blank is skipped and reported (a survey's unanswered question);
- an exact duplicate (same text, organization and id, or no id) is kept once and reported;
  the same id on different quotes is a problem;
- a file that is not UTF-8 is read as cp1252, and every row with a non-ASCII character is
  reported so it can be checked;
- a quote of any length is read; one with a sentence longer than the encoder reads is
  reported (the model reads it whole: sentence by sentence and through its words);
- a file or sheet without quotes is reported; no quotes at all is an error.

:func:`read_quotes` validates everything before returning anything: every problem in every
file is collected and raised at once as an :class:`IngestError` (file, sheet, row as the
spreadsheet shows it, column, rule; never a quote's text).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .columns import ColumnMap, ReadOptions, hidden_value, map_columns, shown_names, shown_value
from .documents import DOCUMENT_SUFFIXES, PROGRAMS, read_document
from .errors import InputError, Problem, ValidationError
from .records import SECTORS, Quote, quote_id
from .sectors import REGISTRY_FILE, SectorRegistry, closest_sector, default_registry, normalize_sector
from .tables import READ_SUFFIXES, Table, read_sheets, read_table

INGEST_SUFFIXES: tuple[str, ...] = READ_SUFFIXES + DOCUMENT_SUFFIXES
OUTPUT_COLUMNS: tuple[str, ...] = ("id", "text", "organization", "program", "sector", "source")
OPTIONAL_OUTPUT_COLUMNS: tuple[str, ...] = ("origin", "source_url")
LONG_SENTENCE_CHARS = 1000
"""About the 256 word pieces all-MiniLM-L6-v2 reads of one text; a longer sentence's end is
seen only by the word features."""
EMPTY_TEXT = "empty text; row skipped"
NO_QUOTES = "no quotes found"


class IngestError(ValidationError):
    """Problems found while ingesting; the message also lists the notices, for context."""

    def __init__(self, problems: Sequence[Problem], notices: Sequence[Problem], files: int):
        super().__init__(problems, f"{len(problems)} problem(s) in {files} file(s); nothing was written")
        self.notices = tuple(notices)
        if self.notices:
            self.args = ("\n".join([self.args[0], *(f"  notice: {n}" for n in self.notices)]),)


@dataclass(frozen=True)
class IngestResult:
    """Quotes read, in input order, where each came from, and what to tell the user."""

    quotes: tuple[Quote, ...]
    notices: tuple[Problem, ...] = ()
    encodings: dict[str, str] = field(default_factory=dict)  # file -> encoding detected
    sector_sources: dict[str, int] = field(default_factory=dict)  # input/registry/rule/unknown
    places: tuple[tuple[str, int], ...] = ()  # (file, row or line) of each quote
    problems: tuple[Problem, ...] = ()  # only when read with strict=False

    @property
    def unknown_sectors(self) -> int:
        return sum(1 for q in self.quotes if not q.sector)

    @property
    def carried(self) -> tuple[str, ...]:
        """The input columns carried through, in order of first appearance."""
        return tuple(dict.fromkeys(name for q in self.quotes for name, _ in q.extra))

    @property
    def columns(self) -> tuple[str, ...]:
        """Output columns: the quote fields, origin/source_url when any quote has them, then
        the carried input columns."""
        extra = tuple(c for c in OPTIONAL_OUTPUT_COLUMNS if any(getattr(q, c) for q in self.quotes))
        return OUTPUT_COLUMNS + extra + self.carried


def folder_inputs(folder: str | Path) -> tuple[list[Path], list[Problem]]:
    """The files of a folder that :func:`read_quotes` reads (sorted), and those it skips, why."""
    read: list[Path] = []
    skipped: list[Problem] = []
    for path in sorted(Path(folder).iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        if path.name.startswith("~$"):
            skipped.append(Problem(str(path), "skipped: an Office lock file, not a document"))
        elif path.suffix.lower() not in INGEST_SUFFIXES:
            skipped.append(Problem(str(path), f"skipped: file type {path.suffix or '(none)'!r} is not read; "
                                              f"expected one of {', '.join(INGEST_SUFFIXES)}"))
        elif path.name == REGISTRY_FILE.name:
            skipped.append(Problem(str(path), "skipped: the organization registry (sectors), not quotes"))
        else:
            read.append(path)
    return read, skipped


def corpus_paths(folder: str | Path) -> list[Path]:
    """Files of a folder that ``read_quotes`` reads (sorted; the sector registry left out)."""
    return folder_inputs(folder)[0]


def read_quotes(
    paths: Iterable[str | Path],
    options: ReadOptions = ReadOptions(),
    *,
    redact: Callable[[str], str] | None = None,
    registry: SectorRegistry | None = None,
    strict: bool = True,
) -> IngestResult:
    """Read, validate and attribute the quotes of every file (folders: :func:`folder_inputs`).

    Raises :class:`IngestError` listing every problem when any file has one, or when no file
    holds a quote; with ``strict=False`` the problems are returned in the result instead
    (rows with a problem left out).
    """
    state = _Ingest(registry or default_registry(), redact, options)
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            inside, skipped = folder_inputs(given)
            files += inside
            state.notices += skipped
        else:
            files.append(given)
    for path in files:
        suffix = path.suffix.lower()
        if suffix not in INGEST_SUFFIXES:
            state.problems.append(Problem(str(path), f"unsupported file type {path.suffix or '(none)'!r}; expected one of {', '.join(INGEST_SUFFIXES)}"))
        elif not path.is_file():
            state.problems.append(Problem(str(path), "no such file"))
        else:
            before = len(state.quotes)
            try:
                if suffix in DOCUMENT_SUFFIXES:
                    state.add_document(path)
                elif suffix == ".xlsx":
                    state.add_workbook(path)
                else:
                    state.add_table(read_table(path, strict=False))
            except ValidationError as exc:
                state.problems.extend(exc.problems)
            except InputError as exc:
                state.problems.append(Problem(str(path), str(exc).removeprefix(f"{path}: ")))
            if len(state.quotes) == before and not any(p.file == str(path) for p in state.problems):
                state.notices.append(Problem(str(path), NO_QUOTES))
    if strict and not state.problems and not state.quotes:
        where = ", ".join(str(p) for p in paths)
        state.problems.append(Problem(where, f"{NO_QUOTES} in {len(files)} file(s); see the notices"))
    if strict and state.problems:
        raise IngestError(state.problems, state.notices, len(files))
    return IngestResult(tuple(state.quotes), tuple(state.notices), state.encodings, dict(state.sector_sources),
                        tuple(state.places), tuple(state.problems))


def unknown_sector(value: str, *, advice: bool = True) -> str:
    """The problem of a sector outside the vocabulary; the value is shown only when it is a
    near miss of a sector (a misaligned row can put a quote there)."""
    hint = closest_sector(value)
    shown = shown_value(value) if hint else hidden_value(value)
    if not advice:
        return f"unknown sector {shown}"
    return f"unknown sector {shown}; " + (f"did you mean {hint!r}?" if hint else f"expected one of {', '.join(SECTORS)}")


def long_sentence(text: str) -> int:
    """The length of ``text``'s longest sentence when it exceeds :data:`LONG_SENTENCE_CHARS`, else 0."""
    if len(text) <= LONG_SENTENCE_CHARS:
        return 0
    from .features import split_sentences

    longest = max(len(s) for s in split_sentences([text])[0])
    return longest if longest > LONG_SENTENCE_CHARS else 0


def long_sentence_notice(length: int) -> str:
    return (f"a sentence of {length:,} characters is longer than the encoder reads (about "
            f"{LONG_SENTENCE_CHARS:,}); the quote is coded whole, but that sentence's end only through its words")


class _Ingest:
    """Accumulates quotes, problems and notices across files."""

    def __init__(self, registry: SectorRegistry, redact: Callable[[str], str] | None, options: ReadOptions):
        self.registry = registry
        self.redact = redact
        self.options = options
        self.quotes: list[Quote] = []
        self.places: list[tuple[str, int]] = []
        self.problems: list[Problem] = []
        self.notices: list[Problem] = []
        self.encodings: dict[str, str] = {}
        self.sector_sources: Counter[str] = Counter()
        self.ids: dict[str, str] = {}  # id -> where first seen
        self.seen: dict[tuple[str, str, str], str] = {}  # (text, organization, given id) -> where first seen

    def add_document(self, path: Path) -> None:
        document = read_document(path, speakers=self.options.speakers)
        self.encodings[str(path)] = document.encoding
        if not document.quotes:
            if self.options.speakers:
                seen = shown_names(document.speakers, 32, 4) or "none"
                rule = f"no turns by {', '.join(self.options.speakers)} (speakers found: {seen})"
            else:
                rule = ("no attributed quotes found (a quoted passage followed by a line naming its organization; "
                        "for an interview transcript pass --speaker LABEL)")
            self.notices.append(Problem(str(path), rule))
        for quote in document.quotes:
            extra = (("speaker", quote.speaker),) if quote.speaker else ()
            self.add(_Where(str(path), quote.line), {"text": quote.text, "organization": quote.organization,
                                                    "program": quote.program},
                     source=f"{path.name}:{document.place(quote.line)}", extra=extra)

    def add_workbook(self, path: Path) -> None:
        """Every sheet with a text column (or the one ``--sheet`` names); others are noticed."""
        tables, unusable = read_sheets(path, self.options.sheet)
        self.encodings[str(path)] = "xlsx"
        chosen = self.options.sheet is not None or len(tables) + len(unusable) == 1
        (self.problems if chosen else self.notices).extend(
            Problem(p.file, p.rule if chosen else f"skipped: {p.rule}", sheet=p.sheet) for p in unusable)
        usable = []
        for table in tables:
            try:
                usable.append((table, map_columns(table.columns, self.options)))
            except InputError as exc:
                if chosen:
                    self.problems.append(Problem(str(path), str(exc), sheet=table.sheet))
                else:
                    self.notices.append(Problem(str(path), f"sheet skipped: {exc}", sheet=table.sheet))
        if tables and not usable and not chosen:
            self.problems.append(Problem(str(path), "no sheet has a text column; name it with --text-column, or pick a sheet with --sheet"))
        for table, columns in usable:
            program = PROGRAMS.get((table.sheet or "").strip().casefold(), "")
            if program and not columns.fields["program"]:
                self.notices.append(Problem(str(path), f"no program column: program {program} taken from the sheet's name",
                                            sheet=table.sheet))
            self._add_rows(table, columns, (("sheet", table.sheet or ""),), program=program)

    def add_table(self, table: Table) -> None:
        self.encodings[str(table.path)] = table.encoding
        try:
            columns = map_columns(table.columns, self.options)
        except InputError as exc:
            self.problems.append(Problem(str(table.path), str(exc)))
            return
        self._add_rows(table, columns)

    def _add_rows(self, table: Table, columns: ColumnMap, added: tuple[tuple[str, str], ...] = (), *, program: str = "") -> None:
        """Add a table's rows; ``program`` fills the program when the table has no program column."""
        self.problems.extend(table.problems)
        self.notices.extend(table.notices)
        for number, row in zip(table.row_numbers, table.rows):
            values = columns.values(row)
            if not columns.fields["program"]:
                values["program"] = program
            sheet = f"{table.sheet} " if table.sheet else ""
            source = values["source"].strip() or f"{table.path.name}:{sheet}row {number}"
            self.add(_Where(str(table.path), number, table.sheet), values, source=source,
                     extra=added + columns.extra(row), columns=columns.fields)

    def add(self, where: _Where, values: dict[str, str], *, source: str, extra: tuple[tuple[str, str], ...] = (),
            columns: dict[str, str] | None = None) -> None:
        """Validate one quote and keep it, or record why not."""
        columns = columns or {}
        text = values["text"]  # kept exactly; only the blank check ignores whitespace
        if not text.strip():
            self.notices.append(_at(where, EMPTY_TEXT, columns.get("text")))
            return
        if self.redact is not None:
            text = self.redact(text)
        organization = " ".join(values.get("organization", "").split())
        given_id = values.get("id", "").strip()
        sector = values.get("sector", "")
        given_sector = normalize_sector(sector)
        place = _place(where)
        key = (text, organization.casefold(), given_id)
        if key in self.seen:
            self.notices.append(_at(where, f"exact duplicate of the quote at {self.seen[key]} (same text, organization and id); kept once"))
            return
        self.seen[key] = place
        ok = True
        if given_sector and given_sector not in SECTORS:
            self.problems.append(_at(where, unknown_sector(sector), columns.get("sector")))
            ok = False
        quote_key = given_id or quote_id(text, source)
        if quote_key in self.ids:
            self.problems.append(_at(where, f"duplicate id {shown_value(quote_key)} (first at {self.ids[quote_key]}); ids must be unique", columns.get("id")))
            ok = False
        else:
            self.ids[quote_key] = place
        if not ok:
            return
        if length := long_sentence(text):
            self.notices.append(_at(where, long_sentence_notice(length), columns.get("text")))
        program = values.get("program", "").strip()
        resolved, how = self.registry.resolve(organization, given_sector)
        self.sector_sources[how] += 1
        self.places.append((where.file, where.row))
        self.quotes.append(
            Quote(
                id=quote_key,
                text=text,
                organization=organization,
                program=PROGRAMS.get(program.casefold(), program),
                sector=resolved,
                source=source,
                origin=values.get("origin", "").strip(),
                source_url=values.get("source_url", "").strip(),
                extra=extra,
            )
        )


class _Where(NamedTuple):
    """Where a quote came from: file, row as the spreadsheet shows it (tables) or line (documents), sheet."""

    file: str
    row: int
    sheet: str | None = None


def _at(where: _Where, rule: str, column: str | None = None) -> Problem:
    return Problem(where.file, rule, row=where.row, column=column or None, sheet=where.sheet)


def _place(where: _Where) -> str:
    return str(_at(where, "")).removesuffix(": ")


def summarize(result: IngestResult) -> list[str]:
    """Short summary lines: counts per program and sector, unknowns, encodings, notices."""
    quotes = result.quotes
    programs = Counter(q.program or "(none)" for q in quotes)
    sectors = Counter(q.sector or "(unknown)" for q in quotes)
    lines = [
        f"{len(quotes)} quote(s) from {len(result.encodings)} file(s)",
        "by program: " + ", ".join(f"{k} {v}" for k, v in sorted(programs.items())),
        "by sector: " + ", ".join(f"{k} {v}" for k, v in sorted(sectors.items())),
        "sector from: " + ", ".join(f"{k} {result.sector_sources.get(k, 0)}" for k in ("input", "registry", "rule", "unknown"))
        + f" ({result.unknown_sectors} unknown)",
        "encodings: " + ", ".join(f"{Path(f).name} {e}" for f, e in result.encodings.items()),
    ]
    if result.carried:
        lines.append("columns carried through: " + ", ".join(result.carried))
    if result.notices:
        lines.append(f"{len(result.notices)} notice(s):")
        lines.extend(f"  - {n}" for n in result.notices)
    return lines
