"""Attributed quotes from documents (TXT, Markdown, HTML).

A document is read as paragraphs of lines. An *attribution* is a short line naming an
organization, optionally after a dash and optionally ending with a program in parentheses
(``-Chicago Department of Public Health (DASH)``); spaCy's tokenizer and a ``Matcher`` decide
what such a line looks like. The *quoted passage* is the text just above it that opens or
closes with a quotation mark; the sentencizer finds where the quote starts when prose leads
into it. Real documents' defects are tolerated: a missing opening mark, an unbalanced
parenthesis around the program (``Health DASH)``), a dash or none, straight or curly marks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import InputError

DOCUMENT_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm")
PROGRAMS: dict[str, str] = {
    "chp": "CHP",
    "community health peer learning": "CHP",
    "community health peer learning program": "CHP",
    "dash": "DASH",
    "data across sectors for health": "DASH",
}
OPEN_MARKS = ("“", '"', "„", "«")
CLOSE_MARKS = ("”", '"', "»")
DASHES = ("-", "–", "—", "―", "~", "--")
CONNECTORS = frozenset({"of", "and", "for", "the", "on", "in", "at", "de", "du", "la", "y", "to"})
NAME_PUNCT = frozenset({"&", "+", ",", ".", "-", "–", "/", "'", "’", "'s", "’s", "(", ")", "@"})
MAX_ATTRIBUTION_TOKENS = 24


@dataclass(frozen=True)
class DocumentQuote:
    """A quoted passage and its attribution; ``line`` is the 1-based line the quote starts on."""

    text: str
    organization: str
    program: str
    line: int


@lru_cache(maxsize=1)
def _nlp():
    import spacy
    from spacy.matcher import Matcher
    from spacy.tokens import Token
    from spacy.util import compile_prefix_regex

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    prefixes = [re.escape(d) for d in DASHES] + list(nlp.Defaults.prefixes)
    nlp.tokenizer.prefix_search = compile_prefix_regex(prefixes).search
    if not Token.has_extension("fc_name_start"):
        Token.set_extension("fc_name_start", getter=lambda t: t.is_title or (t.is_upper and t.is_alpha) or t.text[:1].isupper())
        Token.set_extension(
            "fc_name_part",
            getter=lambda t: t.text[:1].isupper() or t.is_upper or t.like_num or t.lower_ in CONNECTORS or t.text in NAME_PUNCT,
        )
    matcher = Matcher(nlp.vocab)
    name = [{"_": {"fc_name_start": True}}, {"_": {"fc_name_part": True}, "OP": "*"}]
    matcher.add("ATTRIBUTION", [[{"ORTH": {"IN": list(DASHES)}, "OP": "?"}, *name]], greedy="LONGEST")
    matcher.add("LEAD_IN", [[{"ORTH": {"IN": [",", ":"]}}, {"ORTH": {"IN": list(OPEN_MARKS)}}]])
    return nlp, matcher


@dataclass(frozen=True)
class Document:
    """The attributed quotes found in one document file, and the encoding it was read with."""

    path: Path
    encoding: str
    quotes: tuple[DocumentQuote, ...]


def document_text(path: Path, data: bytes) -> tuple[str, str]:
    """(plain text, encoding): HTML reduced to one line per block, Markdown unmarked."""
    from .tables import decode_text

    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return _html_text(path, data), "html"
    text, encoding = decode_text(path, data)
    if suffix in (".md", ".markdown"):
        text = "\n".join(_unmark(line) for line in text.splitlines())
    return text, encoding


def _unmark(line: str) -> str:
    line = re.sub(r"^\s*(>\s*)+", "", line)  # blockquote markers
    line = re.sub(r"^\s*#{1,6}\s+", "", line)  # heading markers
    return re.sub(r"(\*\*|__|(?<!\w)[*_]|[*_](?!\w))", "", line)  # emphasis markers


_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table td th tr ul cite".split()
)


def _html_text(path: Path, data: bytes) -> str:
    import lxml.html

    try:
        root = lxml.html.document_fromstring(data)
    except Exception:  # noqa: BLE001 - lxml raises several types on unusable input
        raise InputError(f"{path}: not a readable HTML document") from None
    for element in root.iter("script", "style", "noscript", "template"):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str):
            element.text = re.sub(r"\s+", " ", element.text) if element.text else element.text
        element.tail = re.sub(r"\s+", " ", element.tail) if element.tail else element.tail
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = "\n\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n\n" + (element.text or "")
    lines = [line.strip() for line in root.text_content().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def extract_quotes(text: str, *, programs: dict[str, str] = PROGRAMS) -> list[DocumentQuote]:
    """Every attributed quote in ``text``, in document order."""
    lines = text.splitlines()
    paragraphs = _paragraphs(lines)
    found: list[DocumentQuote] = []
    for index, paragraph in enumerate(paragraphs):
        last_line, last = paragraph[-1]
        if len(paragraph) > 1:
            passage, own_paragraph = paragraph[:-1], False
        elif index > 0:
            passage, own_paragraph = paragraphs[index - 1], True
        else:
            continue
        attribution = _attribution(last, programs, strict=own_paragraph)
        if attribution is None:
            continue
        quote = _quoted_passage([line for _, line in passage])
        if quote is None:
            continue
        found.append(DocumentQuote(quote, attribution[0], attribution[1], passage[0][0]))
    return found


def read_document(path: str | Path, *, programs: dict[str, str] = PROGRAMS) -> Document:
    """The attributed quotes of a .txt, .md, .markdown, .html or .htm file."""
    path = Path(path)
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        raise InputError(f"{path}: not a document; expected one of {', '.join(DOCUMENT_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    text, encoding = document_text(path, path.read_bytes())
    return Document(path, encoding, tuple(extract_quotes(text, programs=programs)))


def _paragraphs(lines: Sequence[str]) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines as (1-based line number, stripped line)."""
    paragraphs: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            current.append((number, line.strip()))
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _attribution(line: str, programs: dict[str, str], *, strict: bool) -> tuple[str, str] | None:
    """(organization, program) when the whole line is an attribution, else None.

    ``strict`` (the line stands in its own paragraph) also asks for a dash or a program.
    """
    nlp, matcher = _nlp()
    doc = nlp.make_doc(line)
    if not 1 <= len(doc) <= MAX_ATTRIBUTION_TOKENS or doc[-1].text in (".", ":", "?", "!", ";"):
        return None
    spans = [doc[s:e] for match_id, s, e in matcher(doc) if nlp.vocab.strings[match_id] == "ATTRIBUTION"]
    if not any(span.start == 0 and span.end == len(doc) for span in spans):
        return None
    tokens = [t.text_with_ws for t in doc]
    dashed = doc[0].text in DASHES
    if dashed:
        tokens = tokens[1:]
    organization, program = _split_program("".join(tokens).strip(), programs)
    if not organization or (strict and not dashed and not program):
        return None
    return organization, program


def _split_program(name: str, programs: dict[str, str]) -> tuple[str, str]:
    """Separate a trailing program, with balanced or unbalanced parentheses, from a name."""
    match = re.search(r"\s*(\(\s*([^()]+?)\s*\)?|([^()\s][^()]*?)\s*\))\s*$", name)
    if match:
        label = (match.group(2) or match.group(3) or "").strip()
        program = programs.get(label.casefold())
        if program is None and match.group(3):  # "Health DASH)": only the last word is the program
            head, _, last = label.rpartition(" ")
            program = programs.get(last.casefold())
            if program is not None:
                return _clean_name(name[: match.start()] + " " + head), program
        if program is not None:
            return _clean_name(name[: match.start()]), program
    return _clean_name(name), ""


def _clean_name(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip(" ,;")


def _quoted_passage(lines: Iterable[str]) -> str | None:
    """The quote in a passage, without its enclosing marks; None when it is not quoted."""
    passage = " ".join(lines).strip()
    opens = passage.startswith(OPEN_MARKS)
    closes = passage.endswith(CLOSE_MARKS)
    if not closes:
        return None
    if not opens:
        passage = _from_lead_in(passage)
    if passage.startswith(OPEN_MARKS):
        passage = passage[1:]
    passage = passage[:-1]
    return passage.strip() or None


def _from_lead_in(passage: str) -> str:
    """Drop prose that leads into a quote (``As one partner said, “...”``).

    A sentence that starts with an opening mark starts the quote; so does a mark after a comma
    or colon in the first sentence. Otherwise the whole passage is the quote (its opening mark
    went missing).
    """
    nlp, matcher = _nlp()
    doc = nlp(passage)
    starts = [s.start for s in list(doc.sents)[1:] if s[0].text in OPEN_MARKS]
    first = next(iter(doc.sents))
    starts += [s + 1 for m, s, e in matcher(doc) if nlp.vocab.strings[m] == "LEAD_IN" and e <= first.end]
    for start in sorted(starts):
        if not any(mark in doc[:start].text for mark in ("”", "»")):  # else the quote began earlier
            return doc[start:].text
    return passage
