"""An organization's sector: from the input, else the registry, else rules on its name.

The registry is ``corpus/organizations.csv`` (columns ``organization``, ``aliases`` with
names separated by ``;``, ``sector``). Names are compared ignoring case, punctuation, ``&``
versus ``and`` and a trailing parenthetical (``Healthix (HIE)`` finds ``Healthix``). What
neither the registry nor the rules settle stays empty: unknown, never guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from .columns import hidden_value, shown_value
from .errors import InputError, Problem, ValidationError
from .paths import CORPUS_DIR
from .records import SECTORS

REGISTRY_FILE = CORPUS_DIR / "organizations.csv"
REGISTRY_COLUMNS: tuple[str, ...] = ("organization", "aliases", "sector")

# (pattern, sector), first match wins; order matters ("School of Public Health" is research,
# "University Hospital" is health care, "Mecklenburg County Public Health" is public health).
NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"health information (exchange|network)|community information exchange|\b(HIE|CIE)\b", "data_intermediary"),
    (r"hospital|health ?system|medical center|clinic|health center|health plan", "health_care"),
    (r"school of public health|universit|college|research|academ", "academic_research"),
    (r"behavioral health|mental health|substance use|addiction|psychiatr", "behavioral_health"),
    (r"health and human services", "government"),
    (r"public health|health department|department of health|board of health|epidemiolog", "public_health"),
    (r"housing|homeless", "housing"),
    (r"sheriff|jail|police|court|correction|district attorney|probation|criminal justice", "criminal_justice"),
    (r"school|education", "education"),
    (r"foundation|philanthrop", "philanthropy"),
    (r"human services|social services|family services|food bank", "social_services"),
    (r"^city of\b|\bcity of\b|\bcounty\b|^state of\b|\bstate of\b|department of|office of|agency|governor|medicaid", "government"),
    (r"coalition|collaborative|neighborhood association|community-based", "community_organization"),
)
_COMPILED_RULES = tuple((re.compile(pattern, re.IGNORECASE), sector) for pattern, sector in NAME_RULES)


def normalize_name(name: str) -> str:
    """Compare-form of an organization name: lower case, ``&`` as ``and``, no punctuation."""
    text = name.casefold().replace("&", " and ").replace("+", " and ")
    text = re.sub(r"['’]s\b", "s", text)
    return " ".join(re.findall(r"[^\W_]+", text))


def normalize_sector(value: str) -> str:
    """``Public Health`` and ``public-health`` both read as ``public_health``."""
    return re.sub(r"[\s\-]+", "_", value.strip().casefold())


def closest_sector(value: str) -> str | None:
    """The valid sector a misspelled value most likely meant, or None."""
    matches = difflib.get_close_matches(normalize_sector(value), SECTORS, n=1, cutoff=0.6)
    return matches[0] if matches else None


def sector_from_name(organization: str) -> str:
    """The sector the naming rules give ``organization``, or "" when no rule applies."""
    for pattern, sector in _COMPILED_RULES:
        if pattern.search(organization):
            return sector
    return ""


@dataclass(frozen=True)
class SectorRegistry:
    """Organization names and aliases mapped to sectors."""

    sectors: Mapping[str, str] = field(default_factory=dict)  # normalized name -> sector

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, Iterable[str], str]]) -> SectorRegistry:
        """Build from (organization, aliases, sector) triples; later entries do not override."""
        sectors: dict[str, str] = {}
        for organization, aliases, sector in entries:
            for name in (organization, *aliases):
                key = normalize_name(name)
                if key:
                    sectors.setdefault(key, sector)
        return cls(MappingProxyType(sectors))

    @classmethod
    def from_file(cls, path: str | Path = REGISTRY_FILE) -> SectorRegistry:
        """Read a registry table, checking every sector against the vocabulary."""
        from .tables import read_table

        table = read_table(path)
        missing = [c for c in REGISTRY_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REGISTRY_COLUMNS)}")
        problems = []
        entries = []
        for number, row in zip(table.row_numbers, table.rows):
            sector = normalize_sector(row["sector"])
            if sector not in SECTORS:
                hint = closest_sector(sector)
                rule = f"unknown sector {shown_value(row['sector']) if hint else hidden_value(row['sector'])}" + (f"; did you mean {hint!r}?" if hint else f"; expected one of {', '.join(SECTORS)}")
                problems.append(Problem(str(path), rule, row=number, column="sector"))
                continue
            aliases = [a.strip() for a in row["aliases"].split(";") if a.strip()]
            entries.append((row["organization"].strip(), aliases, sector))
        if problems:
            raise ValidationError(problems, f"{path}: {len(problems)} problem(s) in the organization registry")
        return cls.from_entries(entries)

    def lookup(self, organization: str) -> str:
        """The registry's sector for ``organization`` (or its name without a trailing
        parenthetical), or "" when it is not listed."""
        for name in (organization, re.sub(r"\s*\([^()]*\)?\s*$", "", organization)):
            sector = self.sectors.get(normalize_name(name))
            if sector:
                return sector
        return ""

    def resolve(self, organization: str, given: str = "") -> tuple[str, str]:
        """(sector, how): how is ``input``, ``registry``, ``rule`` or ``unknown``.

        ``given`` must already be a valid sector or empty.
        """
        if given:
            return given, "input"
        if not organization.strip():
            return "", "unknown"
        sector = self.lookup(organization)
        if sector:
            return sector, "registry"
        sector = sector_from_name(organization)
        return (sector, "rule") if sector else ("", "unknown")


@lru_cache(maxsize=1)
def default_registry() -> SectorRegistry:
    """The shipped registry (empty when ``corpus/organizations.csv`` is absent)."""
    return SectorRegistry.from_file(REGISTRY_FILE) if REGISTRY_FILE.is_file() else SectorRegistry()
