"""Human-coded quotes: the labelled corpus the coder is trained and judged on.

``labels/real_statements.jsonl`` (real public statements, paraphrased, coded twice and
adjudicated), ``labels/written_statements.jsonl`` (testimonials written for the
demonstration) and ``labels/human/<coder>.jsonl`` (codings brought back by
``framecode review import``). Every row names its ``origin``; real rows name the source
page, which is the unit that cross-validation holds out. A reviewer's decision replaces the
codes of the same id and marks the quote ``reviewed`` (trained at full weight).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import InputError, Problem, ValidationError
from .files import sha256_file
from .paths import LABELS_DIR
from .records import Codebook
from .review import human_files

SIDES = ("affirmed", "denied")
LABEL_FILES = {"real_statements.jsonl": "real", "written_statements.jsonl": "written", "contrast_pairs.jsonl": "contrast"}


@dataclass(frozen=True, slots=True)
class LabelledQuote:
    """One quote with the codes a person (or adjudication) gave it."""

    id: str
    text: str
    codes: tuple[str, ...]
    origin: str  # seed | real | written | contrast | reviewed
    group: str  # the source page (real), collaboration (written) or pair (contrast): held out together
    coder: str = "adjudicated"
    organization: str = ""
    program: str = ""
    sector: str = ""
    reviewed: bool = False  # a person decided its codes in the review loop
    target: str = ""  # contrast pairs: the code the pair affirms and denies
    side: str = ""  # contrast pairs: affirmed | denied

    @classmethod
    def from_json(cls, data: dict, *, origin: str = "", coder: str = "adjudicated") -> LabelledQuote:
        codes = data.get("labels", data.get("codes", []))
        return cls(
            id=str(data["id"]),
            text=str(data["text"]),
            codes=tuple(sorted(codes)),
            origin=str(data.get("origin") or origin),
            group=str(data.get("pair") or data.get("source_url") or data.get("group") or data["id"]),
            coder=str(data.get("coder") or coder),
            organization=str(data.get("organization") or ""),
            program=str(data.get("program") or ""),
            sector=str(data.get("sector") or ""),
            target=str(data.get("code") or "") if data.get("side") else "",
            side=str(data.get("side") or ""),
        )


@dataclass(frozen=True)
class LabelledSet:
    """Labelled quotes plus the digest of each file they came from: the file's sha256, or for a
    reviewer's file the sha256 of what training reads (ids, texts, codes; not notes or dates)."""

    quotes: tuple[LabelledQuote, ...]
    files_sha256: dict[str, str]

    @property
    def content_hash(self) -> str:
        joined = "\n".join(f"{name}:{digest}" for name, digest in sorted(self.files_sha256.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    def matrix(self, code_ids: Sequence[str]) -> np.ndarray:
        """Binary (n_quotes, n_codes) indicator matrix in ``code_ids`` order."""
        index = {c: k for k, c in enumerate(code_ids)}
        y = np.zeros((len(self.quotes), len(code_ids)), dtype=np.int8)
        for i, quote in enumerate(self.quotes):
            for code in quote.codes:
                y[i, index[code]] = 1
        return y

    @property
    def texts(self) -> list[str]:
        return [q.text for q in self.quotes]

    @property
    def groups(self) -> list[str]:
        return [q.group for q in self.quotes]

    def __len__(self) -> int:
        return len(self.quotes)


def load_labels(codebook: Codebook, labels_dir: str | Path | None = None) -> LabelledSet:
    """Read every labelled file under ``labels_dir``; reviewed codings override by id.

    Raises :class:`ValidationError` listing every row with unknown code ids, a missing
    text or a duplicate id.
    """
    folder = Path(labels_dir) if labels_dir is not None else LABELS_DIR
    paths = [folder / name for name in LABEL_FILES if (folder / name).exists()]
    reviewed = human_files(folder / "human") if (folder / "human").is_dir() else []  # adjudicated.jsonl last: it wins
    if not paths and not reviewed:
        raise InputError(f"{folder}: no labelled files ({', '.join(LABEL_FILES)}); add labelled quotes first")
    known = set(codebook.code_ids)
    problems: list[Problem] = []
    by_id: dict[str, LabelledQuote] = {}
    for path in [*paths, *reviewed]:
        is_reviewed = path in reviewed
        for row_no, data in _read_jsonl(path, problems):
            try:
                quote = LabelledQuote.from_json(
                    data,
                    origin="reviewed" if is_reviewed else LABEL_FILES[path.name],
                    coder=path.stem if is_reviewed else "adjudicated",
                )
            except KeyError as exc:
                problems.append(Problem(str(path), f"missing field {exc.args[0]!r}", row=row_no))
                continue
            unknown = sorted(set(quote.codes) - known)
            if unknown:
                problems.append(Problem(str(path), f"unknown code id(s) {', '.join(unknown)}; known: {', '.join(codebook.code_ids)}", row=row_no, column="labels"))
            if not quote.text.strip():
                problems.append(Problem(str(path), "empty text", row=row_no, column="text"))
            if quote.origin == "contrast" and (quote.target not in known or quote.side not in SIDES):
                problems.append(Problem(str(path), "a contrast pair's row needs a code id in 'code' and 'affirmed' or 'denied' in 'side'", row=row_no))
            if quote.id in by_id and not is_reviewed:
                problems.append(Problem(str(path), f"duplicate id {quote.id!r}", row=row_no, column="id"))
            if is_reviewed:
                quote = replace(by_id.get(quote.id, quote), codes=quote.codes, coder=quote.coder, reviewed=True)
            by_id[quote.id] = quote
    if problems:
        raise ValidationError(problems, f"{len(problems)} problem(s) in the labelled files")
    digests = {p.relative_to(folder).as_posix(): sha256_file(p) for p in paths}
    digests.update({p.relative_to(folder).as_posix(): _training_digest(p) for p in reviewed})
    return LabelledSet(tuple(by_id.values()), digests)


EXTERNAL_DENIALS = "denials_external.jsonl"


def load_external_denials(codebook: Codebook, labels_dir: str | Path | None = None) -> LabelledSet | None:
    """The denial pairs written outside this repository (``labels/denials_external.jsonl``),
    never trained on: a check of coding rule 2 on wording the coder's authors did not write.
    None when the file is absent."""
    path = (Path(labels_dir) if labels_dir is not None else LABELS_DIR) / EXTERNAL_DENIALS
    if not path.is_file():
        return None
    problems: list[Problem] = []
    quotes = []
    for row_no, data in _read_jsonl(path, problems):
        try:
            quote = LabelledQuote.from_json(data, origin="external")
        except KeyError as exc:
            problems.append(Problem(str(path), f"missing field {exc.args[0]!r}", row=row_no))
            continue
        if quote.target not in codebook.code_ids or quote.side not in SIDES:
            problems.append(Problem(str(path), "expected a code id in 'code' and 'affirmed' or 'denied' in 'side'", row=row_no))
        unknown = sorted(set(quote.codes) - set(codebook.code_ids))
        if unknown:
            problems.append(Problem(str(path), f"unknown code id(s) {', '.join(unknown)}", row=row_no, column="labels"))
        quotes.append(quote)
    if problems:
        raise ValidationError(problems, f"{len(problems)} problem(s) in {path}")
    return LabelledSet(tuple(quotes), {EXTERNAL_DENIALS: sha256_file(path)})


def _training_digest(path: Path) -> str:
    """sha256 of the ids, texts and codes of a reviewer's file, in order: editing a note (or
    re-importing the same decisions) leaves it unchanged, so the model stays current."""
    rows = [[str(d.get("id")), str(d.get("text")), sorted(map(str, d.get("codes") or d.get("labels") or []))]
            for _, d in _read_jsonl(path, [])]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def _read_jsonl(path: Path, problems: list[Problem]) -> Iterable[tuple[int, dict]]:
    with open(path, encoding="utf-8") as handle:
        for row_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(str(path), f"not valid JSON ({exc.msg})", row=row_no))
                continue
            if not isinstance(data, dict):
                problems.append(Problem(str(path), "expected a JSON object", row=row_no))
                continue
            yield row_no, data
