"""Attributed quotes and transcript turns from documents (TXT, Markdown, HTML, Word, PDF).

A document is read as paragraphs of lines. An *attribution* is a short line naming an
organization, optionally after a dash and optionally ending with a program in parentheses
(``-Chicago Department of Public Health (DASH)``); spaCy's tokenizer and a ``Matcher`` decide
what such a line looks like. The *quoted passage* is the text just above it that opens or
closes with a quotation mark; the sentencizer finds where the quote starts when prose leads
into it. Real documents' defects are tolerated: a missing opening mark, an unbalanced
parenthesis around the program (``Health DASH)``), a dash or none, straight or curly marks.

A speaker-turn transcript (``Interviewer: ...`` / ``RHA: ...``) is read turn by turn instead
when speakers are named (:func:`extract_turns`): each turn of those speakers is one quote, its
label, a leading timestamp or stage direction, prose leading into a quotation, and an
unbalanced quotation mark removed. Word files are read with python-docx (paragraphs and table
cells in order), PDF files with pypdf (page by page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import InputError

DOCUMENT_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".docx", ".pdf")
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
MAX_LABEL_WORDS = 4
_TURN = re.compile(
    r"^\s*(?:[\[(]?\d{1,2}:\d{2}(?::\d{2})?[\])]?\s*)?"  # a timestamp: 00:12:03, [12:03]
    r"(?P<label>[^\W\d_][\w.'’()&/ -]{0,48}?)\s*:(?:\s+|$)(?P<rest>.*)$"
)
_UNCLOSED_LEAD_IN = re.compile(r"^[^\"“«]{1,120}?[,:]\s*[\"“«]")  # 'Well, as I said, "...' never closed
_STAGE_DIRECTION = re.compile(r"^\s*(?:\[[^\]]{0,40}\]|\((?:laugh|pause|inaudible|crosstalk|sigh)[^)]{0,30}\))\s*", re.I)


@dataclass(frozen=True)
class DocumentQuote:
    """A quoted passage and its attribution (or its speaker, in a transcript); ``line`` is
    the 1-based line of the document's text the quote starts on."""

    text: str
    organization: str
    program: str
    line: int
    speaker: str = ""


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
    """The quotes found in one document file, the encoding it was read with, and where each
    line of its text comes from (``places``: "paragraph 3", "page 2"; empty: the line itself)."""

    path: Path
    encoding: str
    quotes: tuple[DocumentQuote, ...]
    places: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()  # every speaker label seen, when read as a transcript

    def place(self, line: int) -> str:
        return self.places[line - 1] if 0 < line <= len(self.places) else f"line {line}"


def document_text(path: Path, data: bytes) -> tuple[str, str, tuple[str, ...]]:
    """(plain text, encoding, places): HTML reduced to one line per block, Markdown unmarked,
    Word paragraphs and PDF pages as paragraphs; ``places`` names each line's paragraph or page."""
    from .tables import decode_text

    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return _html_text(path, data), "html", ()
    if suffix == ".docx":
        return _docx_text(path, data)
    if suffix == ".pdf":
        return _pdf_text(path, data)
    text, encoding = decode_text(path, data)
    if suffix in (".md", ".markdown"):
        text = "\n".join(_unmark(line) for line in text.splitlines())
    return text, encoding, ()


def _docx_text(path: Path, data: bytes) -> tuple[str, str, tuple[str, ...]]:
    """A Word document's paragraphs (table cells included, in order), one per line, blank
    lines between them."""
    import io

    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - python-docx raises several types on unusable input
        raise InputError(f"{path}: not a readable Word document; re-save it from Word as .docx") from None
    paragraphs: list[str] = []

    def add(block) -> None:
        if isinstance(block, Table):
            for row in block.rows:
                for cell in row.cells:
                    for inner in cell.iter_inner_content():
                        add(inner)
        else:
            paragraphs.append(" ".join(block.text.split()))

    for block in document.iter_inner_content():
        add(block)
    lines: list[str] = []
    places: list[str] = []
    for number, paragraph in enumerate(paragraphs, start=1):
        lines += [paragraph, ""]
        places += [f"paragraph {number}", f"paragraph {number}"]
    return "\n".join(lines), "docx", tuple(places)


def _pdf_text(path: Path, data: bytes) -> tuple[str, str, tuple[str, ...]]:
    """A PDF's text, page by page (a blank line between pages)."""
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise InputError(f"{path}: PDF is encrypted; save a copy without a password and retry")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a readable PDF; export it again as PDF, or save its text as .txt") from None
    lines: list[str] = []
    places: list[str] = []
    for number, page in enumerate(pages, start=1):
        page_lines = page.splitlines() + [""]
        lines += page_lines
        places += [f"page {number}"] * len(page_lines)
    return "\n".join(lines), "pdf", tuple(places)


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


def read_document(path: str | Path, *, programs: dict[str, str] = PROGRAMS, speakers: Sequence[str] = ()) -> Document:
    """The attributed quotes of a document file or, when ``speakers`` are named, those
    speakers' turns (a transcript)."""
    path = Path(path)
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        raise InputError(f"{path}: not a document; expected one of {', '.join(DOCUMENT_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    text, encoding, places = document_text(path, path.read_bytes())
    if speakers:
        quotes = extract_turns(text, speakers)
        return Document(path, encoding, tuple(quotes), places, tuple(dict.fromkeys(_labels(text))))
    return Document(path, encoding, tuple(extract_quotes(text, programs=programs)), places)


def extract_turns(text: str, speakers: Sequence[str]) -> list[DocumentQuote]:
    """The turns of ``speakers`` (labels compared without case) in a speaker-turn transcript,
    each cleaned by :func:`clean_turn`. A turn runs from its labelled line to the next one."""
    wanted = {" ".join(s.split()).casefold() for s in speakers}
    turns: list[tuple[int, str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _turn_match(line)
        if match:
            turns.append((number, match.group("label").strip(), [match.group("rest")]))
        elif turns:
            turns[-1][2].append(line)
    found = []
    for number, label, lines in turns:
        if " ".join(label.split()).casefold() in wanted:
            quote = clean_turn(" ".join(lines))
            if quote:
                found.append(DocumentQuote(quote, "", "", number, label))
    return found


def _turn_match(line: str) -> re.Match | None:
    match = _TURN.match(line)
    if match and len(match.group("label").split()) <= MAX_LABEL_WORDS:
        return match
    return None


def _labels(text: str) -> list[str]:
    return [m.group("label").strip() for line in text.splitlines() if (m := _turn_match(line))]


def clean_turn(turn: str) -> str:
    """A turn's words as a quote: stage directions, prose leading into a quotation and
    unbalanced or enclosing quotation marks removed."""
    turn = " ".join(turn.split())
    while (direction := _STAGE_DIRECTION.match(turn)) and direction.end():
        turn = turn[direction.end():]
    if turn.endswith(CLOSE_MARKS) and not turn.startswith(OPEN_MARKS) and any(m in turn[:-1] for m in OPEN_MARKS):
        turn = _from_lead_in(turn)
    elif _unbalanced(turn) and (lead_in := _UNCLOSED_LEAD_IN.match(turn)):
        turn = turn[lead_in.end():]
    if turn.startswith(OPEN_MARKS) and turn.endswith(CLOSE_MARKS) and len(turn) > 1 and not _unbalanced(turn[1:-1]):
        turn = turn[1:-1]
    if turn.startswith(OPEN_MARKS) and _unbalanced(turn):
        turn = turn[1:]
    if turn.endswith(CLOSE_MARKS) and _unbalanced(turn):
        turn = turn[:-1]
    return turn.strip()


def _unbalanced(text: str) -> bool:
    return text.count('"') % 2 == 1 or text.count("“") != text.count("”") or text.count("«") != text.count("»")


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
