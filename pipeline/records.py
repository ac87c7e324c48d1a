"""Typed frozen records passed between stages: Quote, Coding, Code, Theme, Codebook."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property

from .errors import CodebookError

SECTORS: tuple[str, ...] = (
    "public_health",
    "health_care",
    "behavioral_health",
    "social_services",
    "housing",
    "criminal_justice",
    "education",
    "academic_research",
    "community_organization",
    "government",
    "philanthropy",
    "data_intermediary",
    "other",
)

ORIGINS: tuple[str, ...] = ("seed", "real", "written")

QUOTE_FIELDS: tuple[str, ...] = ("id", "text", "organization", "program", "sector", "source")


def quote_id(text: str, source: str = "") -> str:
    """Stable id derived from a quote's text and its source."""
    digest = hashlib.sha256(f"{source}\x00{text}".encode("utf-8")).hexdigest()
    return f"q{digest[:15]}"


@dataclass(frozen=True, slots=True)
class Quote:
    """One testimonial with its attribution; ``text`` is kept exactly as read. ``extra`` holds
    the input's other columns as (output name, value), carried unchanged into every output."""

    id: str
    text: str
    organization: str = ""
    program: str = ""
    sector: str = ""
    source: str = ""
    origin: str = ""
    source_url: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, object], *, source: str = "") -> Quote:
        """Build a quote from a table row; missing optional fields become empty strings."""

        def cell(name: str) -> str:
            value = row.get(name)
            return "" if value is None else str(value)

        text = cell("text")
        return cls(
            id=cell("id").strip() or quote_id(text, cell("source") or source),
            text=text,
            organization=cell("organization").strip(),
            program=cell("program").strip(),
            sector=cell("sector").strip(),
            source=cell("source") or source,
            origin=cell("origin").strip(),
            source_url=cell("source_url").strip(),
        )

    def to_row(self) -> dict[str, str]:
        """The quote's fields, then its carried columns."""
        row = {name: getattr(self, name) for name in QUOTE_FIELDS + ("origin", "source_url")}
        return {**row, **dict(self.extra)}


@dataclass(frozen=True, slots=True)
class Coding:
    """One code applied to one quote by one coder (a person's name or a model id)."""

    quote_id: str
    code_id: str
    probability: float
    coder: str
    above_threshold: bool

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must lie in [0, 1], got {self.probability}")

    @classmethod
    def human(cls, quote_id: str, code_id: str, coder: str) -> Coding:
        """A person's coding: probability 1 and always applied."""
        return cls(quote_id, code_id, 1.0, coder, True)


@dataclass(frozen=True, slots=True)
class Theme:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    theme: str
    name: str
    definition: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Code:
        return cls(
            id=str(data.get("id", "")),
            theme=str(data.get("theme", "")),
            name=str(data.get("name", "")),
            definition=str(data.get("definition", "") or ""),
            include=tuple(str(x) for x in data.get("include", ()) or ()),
            exclude=tuple(str(x) for x in data.get("exclude", ()) or ()),
            examples=tuple(str(x) for x in data.get("examples", ()) or ()),
        )


@dataclass(frozen=True)
class Codebook:
    """A versioned codebook; ``content_hash`` is recorded with every model and run."""

    version: str
    themes: tuple[Theme, ...]
    codes: tuple[Code, ...]
    rules: tuple[str, ...] = ()
    title: str = "framecode codebook"
    description: str = field(default="", compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Codebook:
        if not isinstance(data, Mapping):
            raise CodebookError("codebook: expected a mapping with 'version', 'themes' and 'codes'")
        themes = tuple(
            Theme(str(t.get("id", "")), str(t.get("name", "")), str(t.get("description", "") or ""))
            for t in data.get("themes", ()) or ()
        )
        codes = tuple(Code.from_dict(c) for c in data.get("codes", ()) or ())
        return cls(
            version=str(data.get("version", "")),
            themes=themes,
            codes=codes,
            rules=tuple(str(r) for r in data.get("rules", ()) or ()),
            title=str(data.get("title", "framecode codebook")),
            description=str(data.get("description", "") or ""),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            "version": self.version,
            "description": self.description,
            "themes": [asdict(t) for t in self.themes],
            "codes": [
                {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(c).items()}
                for c in self.codes
            ],
            "rules": list(self.rules),
        }

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON form (key order and YAML layout do not matter)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def code_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.codes)

    @property
    def theme_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.themes)

    def code(self, code_id: str) -> Code:
        for c in self.codes:
            if c.id == code_id:
                return c
        raise CodebookError(f"codebook {self.version}: unknown code id {code_id!r}; known: {', '.join(self.code_ids)}")

    def theme_of(self, code_id: str) -> str:
        return self.code(code_id).theme
