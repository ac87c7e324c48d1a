"""Ingest: tables (CSV, TSV, XLSX, JSONL) and documents (TXT, Markdown, HTML) into quotes.

:func:`read_quotes` validates everything before returning anything: every problem in every
file is collected and raised at once as an :class:`IngestError` (file, sheet, 1-based row,
column, rule; never a quote's text). Exact duplicate quotes (same text and organization) are
kept once and reported as notices, as are rows decoded as cp1252.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .documents import DOCUMENT_SUFFIXES, PROGRAMS, read_document
from .errors import InputError, Problem, ValidationError
from .records import SECTORS, Quote, quote_id
from .sectors import REGISTRY_FILE, SectorRegistry, closest_sector, default_registry, normalize_sector
from .tables import READ_SUFFIXES, read_table

INGEST_SUFFIXES: tuple[str, ...] = READ_SUFFIXES + DOCUMENT_SUFFIXES
TEXT_ALIASES: tuple[str, ...] = ("text", "quote", "testimonial", "statement", "comment", "response")
FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "id": ("id",),
    "organization": ("organization", "org", "organisation"),
    "program": ("program", "programme"),
    "sector": ("sector",),
    "source": ("source",),
    "origin": ("origin",),
    "source_url": ("source_url",),
}
OUTPUT_COLUMNS: tuple[str, ...] = ("id", "text", "organization", "program", "sector", "source")
OPTIONAL_OUTPUT_COLUMNS: tuple[str, ...] = ("origin", "source_url")


class IngestError(ValidationError):
    """Problems found while ingesting; the message also lists the notices, for context."""

    def __init__(self, problems: Sequence[Problem], notices: Sequence[Problem], files: int):
        super().__init__(problems, f"{len(problems)} problem(s) in {files} file(s); nothing was written")
        self.notices = tuple(notices)
        if self.notices:
            self.args = ("\n".join([self.args[0], *(f"  notice: {n}" for n in self.notices)]),)


@dataclass(frozen=True)
class IngestResult:
    """Quotes read, in input order, with what is worth telling the user about them."""

    quotes: tuple[Quote, ...]
    notices: tuple[Problem, ...] = ()
    encodings: dict[str, str] = field(default_factory=dict)  # file -> encoding detected
    sector_sources: dict[str, int] = field(default_factory=dict)  # input/registry/rule/unknown

    @property
    def unknown_sectors(self) -> int:
        return sum(1 for q in self.quotes if not q.sector)

    @property
    def columns(self) -> tuple[str, ...]:
        """Output columns: the quote fields, plus origin/source_url when any quote has them."""
        extra = tuple(c for c in OPTIONAL_OUTPUT_COLUMNS if any(getattr(q, c) for q in self.quotes))
        return OUTPUT_COLUMNS + extra


def corpus_paths(folder: str | Path) -> list[Path]:
    """Files of a folder that ``read_quotes`` reads (sorted; the sector registry left out)."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in INGEST_SUFFIXES
        and p.name != REGISTRY_FILE.name
        and not p.name.startswith(".")
    )


def read_quotes(
    paths: Iterable[str | Path],
    *,
    text_column: str | None = None,
    redact: Callable[[str], str] | None = None,
    registry: SectorRegistry | None = None,
    deduplicate: bool = True,
) -> IngestResult:
    """Read, validate and attribute the quotes of every file (folders: :func:`corpus_paths`).

    With ``deduplicate`` an exact duplicate quote is kept once (and reported); without it,
    every row is kept, so outputs can have one row per input row.
    Raises :class:`IngestError` listing every problem when any file has one.
    """
    state = _Ingest(registry or default_registry(), redact, deduplicate)
    files = [f for p in paths for f in (corpus_paths(p) if Path(p).is_dir() else [Path(p)])]
    for path in files:
        suffix = path.suffix.lower()
        if suffix not in INGEST_SUFFIXES:
            state.problem(Problem(str(path), f"unsupported file type {path.suffix or '(none)'!r}; expected one of {', '.join(INGEST_SUFFIXES)}"))
        elif not path.is_file():
            state.problem(Problem(str(path), "no such file"))
        else:
            try:
                if suffix in DOCUMENT_SUFFIXES:
                    state.add_document(path)
                else:
                    state.add_table(path, text_column)
            except ValidationError as exc:
                state.problems.extend(exc.problems)
            except InputError as exc:
                state.problem(Problem(str(path), str(exc).removeprefix(f"{path}: ")))
    if state.problems:
        raise IngestError(state.problems, state.notices, len(files))
    return IngestResult(tuple(state.quotes), tuple(state.notices), state.encodings, dict(state.sector_sources))


class _Ingest:
    """Accumulates quotes, problems and notices across files."""

    def __init__(self, registry: SectorRegistry, redact: Callable[[str], str] | None, deduplicate: bool = True):
        self.registry = registry
        self.redact = redact
        self.deduplicate = deduplicate
        self.quotes: list[Quote] = []
        self.problems: list[Problem] = []
        self.notices: list[Problem] = []
        self.encodings: dict[str, str] = {}
        self.sector_sources: Counter[str] = Counter()
        self.ids: dict[str, str] = {}  # id -> where first seen
        self.seen: dict[tuple[str, str], str] = {}  # (text, organization) -> where first seen

    def problem(self, problem: Problem) -> None:
        self.problems.append(problem)

    def add_document(self, path: Path) -> None:
        document = read_document(path)
        self.encodings[str(path)] = document.encoding
        if not document.quotes:
            self.notices.append(Problem(str(path), "no attributed quotes found (a quoted passage followed by a line naming its organization)"))
        for quote in document.quotes:
            where = _Where(str(path), quote.line)
            self.add(where, text=quote.text, organization=quote.organization, program=quote.program,
                     source=f"{path.name}:line {quote.line}")

    def add_table(self, path: Path, text_column: str | None) -> None:
        table = read_table(path, strict=False)
        self.encodings[str(path)] = table.encoding
        self.problems.extend(table.problems)
        self.notices.extend(table.notices)
        mapping = self._columns(path, table.columns, table.sheet, text_column)
        if mapping is None:
            return
        for number, row in zip(table.row_numbers, table.rows):
            where = _Where(str(path), number, table.sheet)
            values = {name: row[column] if column else "" for name, column in mapping.items()}
            self.add(
                where,
                text=values["text"],
                organization=values["organization"],
                program=values["program"],
                sector=values["sector"],
                id=values["id"],
                source=values["source"].strip() or f"{path.name}:row {number}",
                origin=values["origin"],
                source_url=values["source_url"],
                columns=mapping,
            )

    def _columns(self, path: Path, columns: Sequence[str], sheet: str | None, text_column: str | None) -> dict[str, str] | None:
        """Field name -> column name ("" when absent); None when there is no text column."""
        by_name = {c.casefold(): c for c in columns}
        mapping = {name: next((by_name[a] for a in aliases if a in by_name), "") for name, aliases in FIELD_ALIASES.items()}
        if text_column is not None:
            text = by_name.get(text_column.strip().casefold(), "")
            if not text:
                self.problem(Problem(str(path), f"no column {text_column!r} (from --text-column); columns: {', '.join(columns)}", sheet=sheet))
                return None
        else:
            candidates = [by_name[a] for a in TEXT_ALIASES if a in by_name]
            if not candidates:
                self.problem(Problem(str(path), f"no text column; name one of {', '.join(TEXT_ALIASES)} or pass --text-column (columns: {', '.join(columns)})", sheet=sheet))
                return None
            if len(candidates) > 1 and candidates[0].casefold() != "text":
                self.problem(Problem(str(path), f"several possible text columns ({', '.join(candidates)}); choose one with --text-column", sheet=sheet))
                return None
            text = candidates[0]
        return {"text": text, **mapping}

    def add(self, where: _Where, *, text: str, organization: str = "", program: str = "", sector: str = "",
            id: str = "", source: str, origin: str = "", source_url: str = "", columns: Mapping[str, str] | None = None) -> None:
        """Validate one quote and keep it, or record why not."""
        columns = columns or {}
        text = text.strip()
        if self.redact is not None and text:
            text = self.redact(text)
        organization = " ".join(organization.split())
        place = _place(where)
        given_sector = normalize_sector(sector)
        ok = bool(text)
        if not text:
            self.problem(_at(where, "empty text; fill it in or delete the row", columns.get("text")))
        if given_sector and given_sector not in SECTORS:
            hint = closest_sector(sector)
            advice = f"did you mean {hint!r}?" if hint else f"expected one of {', '.join(SECTORS)}"
            self.problem(_at(where, f"unknown sector {sector.strip()!r}; {advice}", columns.get("sector")))
            ok = False
        key = (text, organization.casefold())
        if self.deduplicate and text and key in self.seen:
            self.notices.append(_at(where, f"exact duplicate of the quote at {self.seen[key]} (same text and organization); kept once"))
            return
        quote_key = id.strip() or quote_id(text, source)
        if not text and not id.strip():
            return
        if quote_key in self.ids:
            self.problem(_at(where, f"duplicate id {quote_key!r} (first at {self.ids[quote_key]}); ids must be unique", columns.get("id")))
            ok = False
        else:
            self.ids[quote_key] = place
        self.seen[key] = place
        if not ok:
            return
        resolved, how = self.registry.resolve(organization, given_sector)
        self.sector_sources[how] += 1
        self.quotes.append(
            Quote(
                id=quote_key,
                text=text,
                organization=organization,
                program=PROGRAMS.get(program.strip().casefold(), program.strip()),
                sector=resolved,
                source=source,
                origin=origin.strip(),
                source_url=source_url.strip(),
            )
        )


class _Where(NamedTuple):
    """Where a quote came from: file, 1-based row (tables) or line (documents), sheet."""

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
    if result.notices:
        lines.append(f"{len(result.notices)} notice(s):")
        lines.extend(f"  - {n}" for n in result.notices)
    return lines
