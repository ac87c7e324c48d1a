"""Rule-based redaction of personal details in testimonials, before anything is stored.

Replaces, in this order: URLs ``[URL]``, e-mail addresses ``[EMAIL]``, record numbers ``[ID]``
(SSNs; numbers labelled MRN, medical record, record, case, patient, member or account number),
US phone numbers ``[PHONE]``, dates ``[DATE]`` (labelled dates of birth in any common form;
numeric dates such as 3/14/1985, 03-14-85, 1985-03-14), street addresses ``[ADDRESS]``
(house number, street name and a street suffix, with an optional unit), and personal names
``[NAME]`` found by rules only: after a title (Dr., Mr., Mrs., Ms., Mx., Prof.), after "my name
is" / "call me" / "named", and after "my son", "my mother" and other family words. There is no
trained named-entity model: a bare name ("Maria told us ...") is not caught, nor are cities,
employers, ages, diagnoses or dates written in words without a birth label.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

PLACEHOLDERS: tuple[str, ...] = ("URL", "EMAIL", "ID", "PHONE", "DATE", "ADDRESS", "NAME")

_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
_NUMERIC_DATE = r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2})"
_WORD_DATE = rf"(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})"
_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter"
    r"|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Plaza)"
)
_NAME = r"[A-Z](?:[a-z]+[A-Za-z]*|['’][A-Z][A-Za-z]+)(?:-[A-Z][A-Za-z]+)?"
_FAMILY = (
    r"son|daughter|husband|wife|mother|father|mom|mum|dad|brother|sister|grandmother|grandfather|grandma|grandpa"
    r"|grandson|granddaughter|partner|child|baby|nephew|niece|aunt|uncle|cousin|neighbor|neighbour|caseworker"
)


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: str | None = None  # replace only this named group (keep the label around it)


_RULES: tuple[_Rule, ...] = (
    _Rule("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)),
    _Rule("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    _Rule("ID", re.compile(
        r"(?i:\b(?:MRN|medical\s+record|record|case|chart|patient|member|client|account|SSN|social\s+security)"
        r"(?:\s+(?:number|no\.?|num\.?|id|#))?\s*(?:is\s+|:\s*|#\s*)?)"
        r"(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,}\b)"
    ), "value"),
    _Rule("ID", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    _Rule("PHONE", re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?!\w)")),
    _Rule("DATE", re.compile(
        rf"(?i:\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?)\s*(?:is\s+|:\s*|-\s*)?)"
        rf"(?P<value>{_NUMERIC_DATE}|{_WORD_DATE})"
    ), "value"),
    _Rule("DATE", re.compile(rf"(?<![\w/.-]){_NUMERIC_DATE}(?![\w/-])")),
    _Rule("ADDRESS", re.compile(
        rf"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:(?:[A-Z][A-Za-z'-]*|\d+(?:st|nd|rd|th))\.?\s+){{1,4}}{_STREET_SUFFIX}\b\.?"
        r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*#?[A-Za-z0-9-]+)?"
    )),
    _Rule("NAME", re.compile(rf"\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Professor)\.?\s+(?P<value>{_NAME}(?:\s+[A-Z]\.)?(?:\s+{_NAME})?)"), "value"),
    _Rule("NAME", re.compile(rf"(?i:\b(?:my\s+name\s+is|my\s+name's|call\s+me|named))\s+(?P<value>{_NAME}(?:\s+{_NAME})?)"), "value"),
    _Rule("NAME", re.compile(rf"(?i:\bmy\s+(?:{_FAMILY}))\s*,?\s+(?P<value>{_NAME})(?!\s+(?:{_STREET_SUFFIX})\b)"), "value"),
)


def _redact(text: str) -> tuple[str, Counter[str]]:
    counts: Counter[str] = Counter()
    for rule in _RULES:
        def replace(match: re.Match[str], rule: _Rule = rule) -> str:
            counts[rule.kind] += 1
            if rule.group is None:
                return f"[{rule.kind}]"
            start, end = match.span(rule.group)
            whole = match.group(0)
            offset = match.start()
            return f"{whole[: start - offset]}[{rule.kind}]{whole[end - offset:]}"

        text = rule.pattern.sub(replace, text)
    return text, counts


def redact_text(text: str) -> str:
    """``text`` with personal details replaced by typed placeholders (``[PHONE]``, ...)."""
    return _redact(text)[0]


def redaction_counts(text: str) -> dict[str, int]:
    """How many of each placeholder :func:`redact_text` puts into ``text`` (zeros included)."""
    counts = _redact(text)[1]
    return {kind: counts.get(kind, 0) for kind in PLACEHOLDERS}
