"""Rule-based redaction of personal details in testimonials, before anything is stored.

Finds, on the original text and in this order of precedence: URLs ``[URL]``, e-mail
addresses ``[EMAIL]``, record numbers ``[ID]`` (SSNs with dashes, dots, spaces or, when
labelled, none; numbers labelled MRN, medical record, record, case, chart, patient, member,
client or account number/no./#/ID), labelled dates of birth ``[DATE]`` (any common numeric or
written form), US phone numbers ``[PHONE]`` (every common format, 10 digits without
separators, extensions), other numeric dates ``[DATE]``, street addresses and PO boxes
``[ADDRESS]``, ZIP codes ``[ZIP]`` (ZIP+4 anywhere; 5 digits after a state, a ``, City`` or a
"ZIP" label) and personal names ``[NAME]`` found by rules only: after a title (Dr., Ms., Nurse,
Pastor, ...), after "my name is", "I'm", "call me", "named", "signed," and after "my son",
"my caseworker" and other family or care words. Names may hold accents and particles
("Dr. José Ramírez", "Dr. van der Berg"). There is no trained named-entity model: a bare name
("Maria told us ...") is not caught, nor are cities, employers, ages, diagnoses or dates in
words without a birth label. Measured by ``benchmarks/redact.py`` on
``tests/data/redaction.jsonl``.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass

PLACEHOLDERS: tuple[str, ...] = ("URL", "EMAIL", "ID", "PHONE", "DATE", "ADDRESS", "ZIP", "NAME")

_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſḀ-ỿ"  # Latin-1 and Latin Extended capitals (the Extended blocks mix cases)
_LOWER = "a-zß-öø-ÿĀ-ſḀ-ỿ"
_WORD = (  # Maria, McDonald, O'Brien, Sánchez-Vega, Soo-jin
    rf"[{_UPPER}](?:[{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?|['’][{_UPPER}][{_LOWER}]+)(?:-[{_UPPER}{_LOWER}][{_LOWER}]+)?"
)
_PARTICLES = r"(?:(?:van|von|der|den|de|del|della|la|le|da|di|du|dos|das|bin|ibn|al|el)\s+)*"
_NAME_WORD = rf"{_PARTICLES}{_WORD}"
_FULL_NAME = rf"{_NAME_WORD}(?:\s+[{_UPPER}]\.)?(?:\s+{_NAME_WORD}){{0,2}}"
_TITLE = (
    r"(?:Dr|Mr|Mrs|Ms|Mx|Prof|Rev|Sgt)\.?|Miss|Professor|Reverend|Nurse|Officer|Pastor|Coach|Judge|Sister|Father"
    r"|Deacon|Rabbi|Imam"
)
_RELATION = (
    r"son|daughter|husband|wife|mother|father|mom|mum|dad|brother|sister|grandmother|grandfather|grandma|grandpa"
    r"|grandson|granddaughter|partner|child|baby|nephew|niece|aunt|uncle|cousin|neighbor|neighbour|friend|roommate"
    r"|caseworker|case\s+manager|counselor|counsellor|therapist|doctor|nurse|teacher|advocate|navigator"
)
# Eponyms in holidays, streets and buildings, and words that follow "I'm" without being a name.
_NOT_A_NAME = re.compile(
    r"(?:Martin\s+Luther\s+King|Black|White|Hispanic|Latina|Latino|Latinx|Catholic|Christian|Muslim|Jewish"
    r"|American|Mexican|Deaf|Blind|Native|Diabetic|Disabled|Here|Sorry|Not|So|Very|Just|Still|Now)\b"
)

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_MD = r"(?:0?[1-9]|1[0-2])"  # month
_DD = r"(?:0?[1-9]|[12]\d|3[01])"  # day
_DATE_SLASH_DASH = (
    rf"(?:{_MD}(?P<s1>[/-]){_DD}(?P=s1)(?:\d{{4}}|\d{{2}})|{_DD}(?P<s2>[/-]){_MD}(?P=s2)\d{{4}}"
    rf"|\d{{4}}(?P<s3>[/-]){_MD}(?P=s3){_DD})"
)
_DATE_DOTS = rf"(?:{_DD}\.{_MD}\.\d{{4}}|{_MD}\.{_DD}\.\d{{4}}|\d{{4}}\.{_MD}\.{_DD})"
_ANY_NUMERIC_DATE = r"(?:\d{1,2}(?P<a1>[/.-])\d{1,2}(?P=a1)(?:\d{4}|\d{2})|\d{4}(?P<a2>[/.-])\d{1,2}(?P=a2)\d{1,2})"
_WORD_DATE = (
    rf"(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})"
)
_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter"
    r"|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Plaza)"
)
_STATES = (
    r"A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|PR|RI|S[CD]|T[NX]|UT|V[AT]"
    r"|W[AIVY]|Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii"
    r"|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota"
    r"|Mississippi|Missouri|Montana|Nebraska|Nevada|New\s+Hampshire|New\s+Jersey|New\s+Mexico|New\s+York"
    r"|North\s+Carolina|North\s+Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode\s+Island|South\s+Carolina"
    r"|South\s+Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West\s+Virginia|Wisconsin|Wyoming"
)
_ZIP = r"\d{5}(?:-\d{4})?(?![\d-])"
_TLD = r"(?:com|org|net|edu|gov|io|dev|us|info|me|co|app|ly|be|tv|health)"
_URL_END = r"[^\s<>\"']*[^\s<>\"'.,;:!?)\]]"
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Finding:
    """A personal detail at ``text[start:end]``, replaced by ``[kind]``."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: str | None = None  # mask only this named group (keep the label around it)
    needs: re.Pattern[str] | None = None  # skip the rule when the text has none of this (speed)


def _labelled(label: str, value: str) -> str:
    return rf"(?:{label})\s*(?:(?:[#:=]|\bis\b|\bwas\b|\bas\b|\bof\b)\s*)?(?P<value>{value})"


_ID_LABEL = (
    r"\b(?i:MRN|medical\s+record(?:\s+(?:number|no\.?|num\.?|\#))?"
    r"|(?:record|case|chart|patient|member|client|account)\s*(?:number|no\.?|num\.?|id|\#))"
)
_SSN_LABEL = r"\b(?i:SSN\s*\#?|social\s+security(?:\s+(?:number|no\.?|\#))?|(?<=my\s)social)"
_BIRTH_LABEL = r"\b(?i:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?)"

_RULES: tuple[_Rule, ...] = (
    _Rule("URL", re.compile(rf"\b(?:https?://|www\.){_URL_END}", re.IGNORECASE)),
    _Rule("EMAIL", re.compile(r"(?<![\w.'+-])[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
          needs=re.compile("@")),
    _Rule("URL", re.compile(rf"(?<![\w@.-])(?:[a-z0-9-]+\.)+{_TLD}\b(?:/{_URL_END})?", re.IGNORECASE)),
    _Rule("ID", re.compile(_labelled(_SSN_LABEL, r"\d{3}[\s.-]?\d{2}[\s.-]?\d{4}(?!\d)")), "value", _DIGIT),
    _Rule("ID", re.compile(_labelled(_ID_LABEL, r"(?i:(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,})\b")), "value", _DIGIT),
    _Rule("DATE", re.compile(_labelled(_BIRTH_LABEL, rf"{_ANY_NUMERIC_DATE}(?![\w/-])|{_WORD_DATE}")), "value", _DIGIT),
    _Rule("ID", re.compile(r"(?<![\w.-])\d{3}(?P<sep>[-.\s])\d{2}(?P=sep)\d{4}(?![\w-]|\.\d)"), needs=_DIGIT),
    _Rule("PHONE", re.compile(
        r"(?<![\w+/.-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)[\s.-]?|\d{3}\s*[./-]\s*|\d{3}\s)\d{3}[\s.-]\d{4}"
        r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?![\w/-]|\.\d)"
    ), needs=_DIGIT),
    _Rule("PHONE", re.compile(r"(?<![\w+/.,-])(?:\+?1)?[2-9]\d{2}[2-9]\d{6}(?![\w/-]|[.,]\d)"), needs=_DIGIT),
    _Rule("DATE", re.compile(rf"(?<![\w/.-])(?:{_DATE_SLASH_DASH}|{_DATE_DOTS})(?![\w/-]|\.\d)"), needs=_DIGIT),
    _Rule("ADDRESS", re.compile(
        rf"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:(?:[{_UPPER}][{_LOWER}A-Za-z'-]*|\d+(?:st|nd|rd|th))\.?\s+){{1,4}}"
        rf"{_STREET_SUFFIX}\b\.?(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
        r"(?:,?\s*(?:(?:Apt|Apartment|Suite|Ste|Unit|Room|Rm|Fl|Floor)\.?\s*#?|#)\s*[A-Za-z0-9-]+)?"
    ), needs=_DIGIT),
    _Rule("ADDRESS", re.compile(r"\b(?i:P\.?\s?O\.?\s*Box)\s+\d+\b"), needs=_DIGIT),
    _Rule("ZIP", re.compile(r"(?<![\w-])\d{5}-\d{4}(?![\w-])"), needs=_DIGIT),
    _Rule("ZIP", re.compile(rf"(?:\b(?:{_STATES}),?\s+|,\s*(?:[{_UPPER}][{_LOWER}]+\s+){{1,3}})(?P<value>{_ZIP})"),
          "value", _DIGIT),
    _Rule("ZIP", re.compile(_labelled(r"\b(?i:zip(?:\s*code)?|postal\s+code)", _ZIP)), "value", _DIGIT),
    _Rule("NAME", re.compile(rf"\b(?:{_TITLE})\s+(?P<value>{_FULL_NAME})"), "value"),
    _Rule("NAME", re.compile(
        rf"(?:\b(?i:my\s+name\s+is|my\s+name['’]s|call\s+me|named(?:\s+(?:him|her|them|the\s+baby))?)"
        rf"|\bI['’]m|\bI\s+am|\b(?i:signed|sincerely|regards),)\s+(?P<value>{_FULL_NAME})"
    ), "value"),
    _Rule("NAME", re.compile(
        rf"(?i:\bmy\s+(?:{_RELATION})(?:['’]s\s+name\s+is)?)\s*,?\s+(?!(?:{_TITLE})\s)"
        rf"(?P<value>{_NAME_WORD}(?:\s+{_NAME_WORD})?)(?!\s+{_STREET_SUFFIX}\b)"
    ), "value"),
)


def find_personal_data(text: str) -> list[Finding]:
    """The personal details in ``text``, in order and never overlapping (earlier rules win)."""
    starts: list[int] = []  # the findings so far, sorted by start (and so by end)
    findings: list[Finding] = []
    for rule in _RULES:
        if rule.needs is not None and rule.needs.search(text) is None:
            continue
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group or 0)
            if rule.kind == "NAME" and _NOT_A_NAME.match(text, start):
                continue
            index = bisect.bisect_right(starts, start)
            if (index and findings[index - 1].end > start) or (index < len(starts) and starts[index] < end):
                continue
            starts.insert(index, start)
            findings.insert(index, Finding(start, end, rule.kind))
    return findings


def _redact(text: str) -> tuple[str, Counter[str]]:
    pieces: list[str] = []
    counts: Counter[str] = Counter()
    position = 0
    for finding in find_personal_data(text):
        pieces += [text[position:finding.start], f"[{finding.kind}]"]
        counts[finding.kind] += 1
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces), counts


def redact_text(text: str) -> str:
    """``text`` with personal details replaced by typed placeholders (``[PHONE]``, ...)."""
    return _redact(text)[0]


def redaction_counts(text: str) -> dict[str, int]:
    """How many of each placeholder :func:`redact_text` puts into ``text`` (zeros included)."""
    counts = _redact(text)[1]
    return {kind: counts.get(kind, 0) for kind in PLACEHOLDERS}
