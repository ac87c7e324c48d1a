"""Reading a run's inputs: pinning each file, and its records in chunks, as ``ingest`` reads them."""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import hashlib
import io
import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..columns import ColumnMap, ReadOptions, map_columns
from ..documents import PROGRAMS
from ..errors import InputError, RunError
from ..files import sha256_file
from ..records import SECTORS, Quote, quote_id
from ..sectors import default_registry, normalize_sector
from ..tables import csv_unescape

STREAMED_SUFFIXES = (".csv", ".tsv", ".jsonl")


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One record of an input file: a quote (with a notice worth checking, if any), or the
    reason it cannot be one (``outcome`` rejected, or skipped by the reading policy)."""

    file: str
    row: int  # as the spreadsheet shows it (the header is row 1), or the line for JSONL
    quote: Quote | None = None
    problem: str = ""
    outcome: str = "rejected"
    notice: str = ""
    given_id: str = ""


@dataclass(frozen=True)
class InputFile:
    """An input pinned before work: path, sha256, size, and whether it can be streamed."""

    path: str
    sha256: str
    bytes: int
    streamed: bool  # UTF-8 CSV, TSV or JSONL: read in chunks; anything else: read whole by ingest
    encoding: str

    @classmethod
    def pin(cls, path: Path) -> InputFile:
        """Hash ``path`` and check whether it is UTF-8 text that can be streamed."""
        if not path.is_file():
            raise InputError(f"{path}: input file not found; pass an existing CSV, TSV, JSONL or XLSX file")
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")()
        streamed = path.suffix.lower() in STREAMED_SUFFIXES
        size = 0
        head = b""
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                if streamed:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        streamed = False
                head = head or block
                size += len(block)
        if streamed:
            encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        else:
            encoding = _detected_encoding(path)
        return cls(str(path.resolve()), digest.hexdigest(), size, streamed, encoding)


def _detected_encoding(path: Path) -> str:
    """The encoding ``ingest`` reads a file that cannot be streamed with, as it reports it."""
    from ..documents import document_text
    from ..tables import decode_text

    suffix = path.suffix.lower()
    formats = {".xlsx": "xlsx", ".html": "html", ".htm": "html", ".docx": "docx", ".pdf": "pdf"}
    if suffix in formats:
        return document_text(path, path.read_bytes())[1] if suffix in (".docx", ".pdf") else formats[suffix]
    try:
        return decode_text(path, path.read_bytes())[1]
    except InputError:
        return "unknown"  # reading it reports the problem, row by row


def iter_records(path: Path, *, streamed: bool = True, options: ReadOptions = ReadOptions(),
                 sha256: str | None = None) -> Iterator[InputRecord]:
    """The records of one input, as ``framecode ingest`` would read them (same options and policy).

    UTF-8 CSV, TSV and JSONL are streamed row by row; other formats and encodings are read
    whole by :func:`pipeline.ingest.read_quotes` (spreadsheets and documents are small by nature).
    With ``sha256`` (the hash pinned when the run started), the bytes read are hashed as they
    are read and a :class:`RunError` naming the file is raised after the last record when
    they differ: a file edited or appended to during a run fails it.
    """
    suffix = path.suffix.lower()
    if streamed and suffix in (".csv", ".tsv"):
        yield from _iter_delimited(path, "\t" if suffix == ".tsv" else ",", options, sha256)
    elif streamed and suffix == ".jsonl":
        yield from _iter_jsonl(path, options, sha256)
    else:
        if sha256 is not None:
            _check_pinned(path, sha256_file(path), sha256)
        yield from _iter_ingested(path, options)
        if sha256 is not None:  # read whole by ingest: unchanged before and after reading
            _check_pinned(path, sha256_file(path), sha256)


class _HashingReader(io.RawIOBase):
    """A binary file that hashes every byte read from it."""

    def __init__(self, raw: io.RawIOBase):
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.digest.update(memoryview(buffer)[:n])
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


@contextlib.contextmanager
def _open_text(path: Path, sha256: str | None, newline: str | None = None) -> Iterator[io.TextIOWrapper]:
    """``path`` opened as UTF-8 text; with ``sha256``, the bytes read are checked against it
    once the caller has read to the end (an early stop checks nothing)."""
    hashing = _HashingReader(open(path, "rb", buffering=0))
    with io.TextIOWrapper(io.BufferedReader(hashing, 1 << 20), encoding="utf-8-sig", newline=newline) as handle:
        yield handle
        if sha256 is not None:
            rest = bytearray(1 << 20)
            while hashing.readinto(rest):  # whatever the reader left unread counts too
                pass
            _check_pinned(path, hashing.digest.hexdigest(), sha256)


def _check_pinned(path: Path, actual: str, pinned: str) -> None:
    if actual != pinned:
        raise RunError(f"{path}: input changed during the run (its sha256 no longer matches the one pinned when the run "
                       "started); the run failed and wrote no outputs: start a new run once the file is final")


def _iter_delimited(path: Path, delimiter: str, options: ReadOptions, sha256: str | None = None) -> Iterator[InputRecord]:
    csv.field_size_limit(sys.maxsize)
    with _open_text(path, sha256, newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        try:
            columns = map_columns(header, options)
        except InputError as exc:
            raise InputError(f"{path}: header: {exc}") from None
        width = len(header)
        found = False  # a quote or a rejected row: otherwise the file is reported, as ingest does
        for row_no, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != width:
                found = True
                yield InputRecord(str(path), row_no, problem=f"row has {len(cells)} fields, header has {width}")
                continue
            if delimiter == ",":  # undo csv_safe, as read_table does
                cells = [csv_unescape(cell) for cell in cells]
            row = dict(zip(header, cells))
            record = _record(path, row_no, columns.values(row), columns.extra(row))
            found = found or record.outcome != "skipped"
            yield record
        if not found:
            from ..ingest import NO_QUOTES

            yield InputRecord(str(path), 0, problem=NO_QUOTES, outcome="noted")


def _iter_jsonl(path: Path, options: ReadOptions, sha256: str | None = None) -> Iterator[InputRecord]:
    from ..tables import _json_cell

    mappings: dict[tuple[str, ...], ColumnMap | str] = {}
    with _open_text(path, sha256) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                yield InputRecord(str(path), line_no, problem="not valid JSON")
                continue
            if not isinstance(data, dict):
                yield InputRecord(str(path), line_no, problem="not a JSON object")
                continue
            row = {str(k).strip(): _json_cell(v) for k, v in data.items()}
            columns = _jsonl_columns(mappings, tuple(row), options)
            if isinstance(columns, str):
                yield InputRecord(str(path), line_no, problem=columns)
                continue
            yield _record(path, line_no, columns.values(row), columns.extra(row))


def _jsonl_columns(mappings: dict, keys: tuple[str, ...], options: ReadOptions) -> ColumnMap | str:
    """The column map of a JSONL object's keys (cached per key set), or what is wrong with them."""
    if keys not in mappings:
        try:
            mappings[keys] = map_columns(keys, options)
        except InputError as exc:
            mappings[keys] = str(exc)
    return mappings[keys]


def check_header(path: Path, options: ReadOptions = ReadOptions()) -> None:
    """Refuse a streamed CSV or TSV whose header names no text column, before any work."""
    if path.suffix.lower() in (".csv", ".tsv"):
        next(_iter_delimited(path, "\t" if path.suffix.lower() == ".tsv" else ",", options), None)


def carried_columns(inputs: Sequence[InputFile], options: ReadOptions = ReadOptions()) -> list[str]:
    """The input columns every input carries through, in order of first appearance (a JSONL
    file is scanned whole: its objects may have different keys)."""
    from ..ingest import read_quotes

    names: dict[str, None] = {}
    for entry in inputs:
        path = Path(entry.path)
        suffix = path.suffix.lower()
        if entry.streamed and suffix in (".csv", ".tsv"):
            csv.field_size_limit(sys.maxsize)  # a header cell may be long too
            with open(path, encoding="utf-8-sig", newline="") as handle:
                header = [name.strip() for name in next(csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ","), [])]
            names.update(dict.fromkeys(name for _, name in map_columns(header, options).carried))
        elif entry.streamed and suffix == ".jsonl":
            mappings: dict = {}
            with open(path, encoding="utf-8-sig") as handle:
                for line in handle:
                    with contextlib.suppress(json.JSONDecodeError):
                        data = json.loads(line) if line.strip() else None
                        keys = tuple(str(k).strip() for k in data) if isinstance(data, dict) else ()
                        if keys and keys not in mappings and not isinstance(columns := _jsonl_columns(mappings, keys, options), str):
                            names.update(dict.fromkeys(name for _, name in columns.carried))
        else:
            names.update(dict.fromkeys(read_quotes([path], options, strict=False).carried))
    return list(names)


def _iter_ingested(path: Path, options: ReadOptions) -> Iterator[InputRecord]:
    from ..ingest import EMPTY_TEXT, read_quotes

    result = read_quotes([path], options, strict=False)
    for problem in result.problems:
        yield InputRecord(str(path), problem.row or 0, problem=_rule(problem))
    for notice in result.notices:
        if notice.row is not None and (notice.rule == EMPTY_TEXT or "exact duplicate" in notice.rule):
            yield InputRecord(str(path), notice.row, problem=_rule(notice), outcome="skipped")
    for notice in result.notices:
        if notice.row is None:
            yield InputRecord(str(path), 0, problem=_rule(notice), outcome="noted")
    notices = {n.row: _rule(n) for n in result.notices if n.row is not None}
    for quote, (_, row) in zip(result.quotes, result.places):
        yield InputRecord(str(path), row, quote, notice=notices.get(row, ""), given_id=quote.id)


def _rule(problem) -> str:
    """A problem's rule with its sheet and column, for rejected.csv (file and row have columns)."""
    where = [f"sheet {problem.sheet}"] if problem.sheet else []
    where += [f"column {problem.column!r}"] if problem.column else []
    return f"{', '.join(where)}: {problem.rule}" if where else problem.rule


def _record(path: Path, row_no: int, values: dict[str, str], extra: tuple[tuple[str, str], ...] = ()) -> InputRecord:
    """One quote built the way ``pipeline.ingest`` builds it, or the reason it cannot be."""
    from ..ingest import EMPTY_TEXT, long_sentence, long_sentence_notice, unknown_sector

    text = values["text"]  # kept exactly, as ingest keeps it
    if not text.strip():
        return InputRecord(str(path), row_no, problem=EMPTY_TEXT, outcome="skipped")
    sector = _sector(values["sector"])
    if sector is None:
        return InputRecord(str(path), row_no, problem=unknown_sector(values["sector"], advice=False))
    organization = " ".join(values["organization"].split())
    source = values["source"].strip() or f"{path.name}:row {row_no}"
    given_id = values["id"].strip()
    length = long_sentence(text)
    return InputRecord(str(path), row_no, Quote(
        id=given_id or quote_id(text, source),
        text=text,
        organization=organization,
        program=_program(values["program"]),
        sector=_resolved_sector(organization, sector),
        source=source,
        origin=values["origin"].strip(),
        source_url=values["source_url"].strip(),
        extra=extra,
    ), notice=long_sentence_notice(length) if length else "", given_id=given_id)


@functools.lru_cache(maxsize=4096)
def _sector(value: str) -> str | None:
    """The normalized sector ("" when empty), or None when it is not in the vocabulary."""
    sector = normalize_sector(value)
    return sector if not sector or sector in SECTORS else None


@functools.lru_cache(maxsize=4096)
def _program(value: str) -> str:
    program = value.strip()
    return PROGRAMS.get(program.casefold(), program)


@functools.lru_cache(maxsize=65536)
def _resolved_sector(organization: str, sector: str) -> str:
    return default_registry().resolve(organization, sector)[0]


def iter_chunks(inputs: Sequence[tuple[Path, bool, str | None]], chunk_size: int,
                options: ReadOptions = ReadOptions()) -> Iterator[list[InputRecord]]:
    """Records of every (path, streamed, pinned sha256 or None) input, in order, in lists of
    ``chunk_size``; an input that differs from its pinned hash fails (see :func:`iter_records`)."""
    records = itertools.chain.from_iterable(iter_records(Path(p), streamed=s, options=options, sha256=h) for p, s, h in inputs)
    while chunk := list(itertools.islice(records, chunk_size)):
        yield chunk

