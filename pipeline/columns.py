"""How a table's columns become a quote: the reading options every command shares, and the
mapping of a header onto the quote's fields, with every other column carried through.

Column names are matched without regard to case, spaces, ``_``, ``-`` or ``.``
(``Respondent ID`` = ``respondent_id``). A column the options name wins; otherwise the first
common spelling in :data:`FIELD_ALIASES` found in the header. Every input column that is not
the quote's text, and not already in the output under its own name (``id``, ``organization``,
...), is *carried*: copied unchanged into every output. A carried column whose name is taken
by an output column (``codes``, ``p_<code>``, ``coder``, ``sheet``, ...) is written as
``input_<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import InputError

TEXT_ALIASES: tuple[str, ...] = (
    "text", "quote", "testimonial", "statement", "comment", "comments", "response", "answer", "testimony",
)
FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "id": ("id", "quote id", "respondent id", "response id", "record id", "participant id", "interview id"),
    "organization": ("organization", "organisation", "org", "organization name", "organisation name", "org name",
                     "agency", "agency name"),
    "program": ("program", "programme", "program name", "programme name"),
    "sector": ("sector", "organization sector", "organisation sector"),
    "source": ("source",),
    "origin": ("origin",),
    "source_url": ("source url",),
}
OPTION_FIELDS: tuple[str, ...] = ("text", "id", "organization", "program", "sector")
RESERVED: frozenset[str] = frozenset(
    ("text", *FIELD_ALIASES, "codes", "needs_review", "review_reason", "evidence", "coder", "model_codes", "coded_by", "sheet",
     "speaker")
)
CARRIED_PREFIX = "input_"


@dataclass(frozen=True)
class ReadOptions:
    """How to read quotes; the same for ``ingest``, ``code``, ``tag --file`` and ``recode``.

    ``*_column`` name the column of a field (case-insensitive; default: its common spellings);
    ``sheet`` picks one XLSX worksheet (default: every sheet with a text column);
    ``speakers`` read documents as speaker-turn transcripts, keeping these speakers' turns.
    """

    text_column: str | None = None
    id_column: str | None = None
    organization_column: str | None = None
    program_column: str | None = None
    sector_column: str | None = None
    sheet: str | None = None
    speakers: tuple[str, ...] = ()

    def column(self, field: str) -> str | None:
        return getattr(self, f"{field}_column") if field in OPTION_FIELDS else None

    def as_dict(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> ReadOptions:
        data = dict(data or {})
        data["speakers"] = tuple(data.get("speakers") or ())
        return cls(**data)


@dataclass(frozen=True)
class ColumnMap:
    """Field -> input column ("" when absent), and (input column, output name) carried."""

    fields: dict[str, str]
    carried: tuple[tuple[str, str], ...]

    def values(self, row: Mapping[str, str]) -> dict[str, str]:
        return {name: row.get(column, "") if column else "" for name, column in self.fields.items()}

    def extra(self, row: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple((name, row.get(column, "")) for column, name in self.carried)


_PLAIN_VALUE = re.compile(r"[\w&.,'()/?# -]+")


def shown_value(value: str, limit: int = 32, words: int = 3) -> str:
    """A cell value fit for a message: ``'value'`` when it is short and looks like a name,
    sector or id; otherwise only its length (a misaligned row can put a quote in any cell)."""
    value = value.strip()
    if len(value) <= limit and len(value.split()) <= words and _PLAIN_VALUE.fullmatch(value or "-"):
        return repr(value)
    return hidden_value(value)


def hidden_value(value: str) -> str:
    """A cell value by its length only: ``(a 142-character value, not shown)``."""
    return f"(a {len(value.strip()):,}-character value, not shown)"


def shown_names(names: Sequence[str], limit: int = 64, words: int = 10) -> str:
    """Names (a header's columns, a transcript's speakers) for a message, unquoted; a name that
    may be a quote (a header-less file starts with data) is shown by its length only."""
    return ", ".join(name if shown_value(name, limit, words) != hidden_value(name) else hidden_value(name) for name in names)


def normalize_name(name: str) -> str:
    """``Respondent_ID`` -> ``respondent id``: the form column names are compared in."""
    return " ".join(re.sub(r"[_\-.]", " ", name).casefold().split())


def carried_name(column: str) -> str:
    """The output name of a carried column: itself, or ``input_<column>`` when taken."""
    key = column.strip().casefold()
    return f"{CARRIED_PREFIX}{column}" if key in RESERVED or key.startswith("p_") else column


def map_columns(columns: Sequence[str], options: ReadOptions = ReadOptions()) -> ColumnMap:
    """The quote fields and carried columns of a header; :class:`InputError` (one line, no
    file) when the text column or a named column is missing or the text column is ambiguous."""
    by_name: dict[str, str] = {}
    for column in columns:
        by_name.setdefault(normalize_name(column), column)
    fields: dict[str, str] = {}
    for field in OPTION_FIELDS:
        wanted = options.column(field)
        if wanted is not None:
            column = by_name.get(normalize_name(wanted))
            if column is None:
                raise InputError(f"no column {wanted!r} (from --{field}-column); columns: {shown_names(columns)}")
            fields[field] = column
    if "text" not in fields:
        candidates = [by_name[a] for a in TEXT_ALIASES if a in by_name and by_name[a] not in fields.values()]
        if not candidates:
            raise InputError(f"no text column; name one of {', '.join(TEXT_ALIASES)} or pass --text-column "
                             f"(columns: {shown_names(columns)})")
        if len(candidates) > 1 and normalize_name(candidates[0]) != "text":
            raise InputError(f"several possible text columns ({shown_names(candidates)}); choose one with --text-column")
        fields["text"] = candidates[0]
    for field, aliases in FIELD_ALIASES.items():
        if field not in fields:
            used = set(fields.values())
            fields[field] = next((by_name[a] for a in aliases if a in by_name and by_name[a] not in used), "")
    own = {column for field, column in fields.items() if column and normalize_name(column) == normalize_name(field)}
    carried = tuple((c, carried_name(c)) for c in columns if c != fields["text"] and c not in own)
    return ColumnMap(fields, carried)
