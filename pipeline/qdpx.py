"""REFI-QDA project export (``.qdpx``): quotes, cases, the codebook and every coder's codings.

The archive holds ``project.qde`` (valid against REFI-QDA's ``Project.xsd``) and one UTF-8
plain-text file per quote under ``sources/``. Each quote is a ``TextSource``; organizations are
``Case``\\ s with ``program`` and ``sector`` as text variables (also set on each source); the
codebook's themes are non-codable parent codes over its codes (same GUIDs as
``framecode codebook export``). The model is one ``User`` named by its model id, each person
who reviewed quotes (``labels/human/<coder>.jsonl``) another, so model and human codings stay
apart. Each coding is a ``PlainTextSelection`` whose ``startPosition``/``endPosition``
(character offsets into the source text, end exclusive) cover the evidence sentence when the
codings give one, else the whole quote; its ``Description`` names the coder and, for the
model, the probability. GUIDs are uuid5 and the timestamp is passed in, so the same input
gives a byte-identical file.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from .agreement import split_codes
from .codebook import code_guid, theme_guid
from .errors import InputError
from .files import atomic_write_bytes
from .records import Codebook
from .review import read_human_codings
from .tables import read_table

PROJECT_NAMESPACE = "urn:QDA-XML:project:1.0"
#: Namespace of every non-codebook GUID in an export; never change it.
GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://framecode/qdpx")
VARIABLES: tuple[str, ...] = ("program", "sector")
_NS = f"{{{PROJECT_NAMESPACE}}}"


def guid(kind: str, *parts: str) -> str:
    """Deterministic GUID of one project element."""
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join((kind, *parts))))


@dataclass(frozen=True)
class Selection:
    """One coding: ``coder`` applied ``code`` to ``text[start:end]`` of quote ``quote_id``."""

    quote_id: str
    code: str
    coder: str
    start: int
    end: int
    description: str


@dataclass(frozen=True)
class ExportSummary:
    sources: int
    cases: int
    model_codings: int
    human_codings: int
    human_coders: tuple[str, ...]
    skipped_human: int  # human codings of quotes not in the export


def evidence_span(text: str, evidence: str, code: str) -> tuple[int, int]:
    """Offsets of the evidence for ``code`` in ``text``; the whole quote when there is none.

    ``evidence`` is a sentence of the quote, or a JSON object mapping code ids to sentences.
    """
    sentence = evidence.strip()
    if sentence.startswith("{"):
        try:
            parsed = json.loads(sentence)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, Mapping):
            value = parsed.get(code)
            sentence = value.strip() if isinstance(value, str) else ""
    start = text.find(sentence) if sentence else -1
    return (start, start + len(sentence)) if start >= 0 else (0, len(text))


def _resolve(codings: Path) -> tuple[Path, Mapping[str, object]]:
    """The codings file and, for a run folder, its manifest."""
    if codings.is_dir():
        from .runs import CODINGS_CSV, read_manifest

        return codings / CODINGS_CSV, read_manifest(codings)
    return codings, {}


def run_timestamp(manifest: Mapping[str, object], codings: Path) -> dt.datetime:
    """When the run ended (or started), else the codings file's modification time (UTC)."""
    for key in ("ended_at", "started_at"):
        value = manifest.get(key)
        if isinstance(value, str) and value:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.datetime.fromtimestamp(int(codings.stat().st_mtime), dt.timezone.utc)


def build_project(
    rows: Sequence[Mapping[str, str]],
    codebook: Codebook,
    *,
    model_id: str,
    human: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
    created: dt.datetime,
    name: str = "framecode export",
) -> tuple[bytes, dict[str, str], ExportSummary]:
    """``project.qde`` bytes, the source files (archive path -> text) and a summary.

    ``rows`` are codings rows (``id``, ``text``, ``codes``, optional ``organization``,
    ``program``, ``sector``, ``p_<code>``, ``evidence``, ``coder``); ``human`` maps a coder's
    name to that coder's rows (``id``, ``codes`` list).
    """
    stamp = created.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    known = set(codebook.code_ids)
    quotes: dict[str, Mapping[str, str]] = {}
    for number, row in enumerate(rows, start=1):
        quote = str(row.get("id", "")).strip()
        if not quote:
            raise InputError(f"codings row {number}, column 'id': empty id; every quote needs an id to be exported")
        if quote in quotes:
            raise InputError(f"codings row {number}, column 'id': id {quote!r} appears twice; ids must be unique")
        unknown = set(split_codes(row.get("codes", ""))) - known
        if unknown:
            raise InputError(f"codings row {number}, column 'codes': code id(s) {', '.join(sorted(unknown))} not in codebook {codebook.version}")
        quotes[quote] = row

    selections: list[Selection] = []
    users: dict[str, str] = {}
    model_codings = 0
    for quote, row in quotes.items():
        text = row.get("text", "")
        coder = str(row.get("coder") or "").strip() or model_id
        decided = str(row.get("coded_by", "")).strip() == "person" and coder in (human or {})
        if decided:  # the reviewer's codes come from their own file; here, what the model said
            coder = model_id
        users.setdefault(coder, "model")
        for code in split_codes(row.get("model_codes", "") if decided else row.get("codes", "")):
            start, end = evidence_span(text, row.get("evidence", "") or "", code)
            probability = row.get(f"p_{code}", "")
            note = f"coder: {coder} (model)" + (f"; probability: {float(probability):.4f}" if probability else "")
            selections.append(Selection(quote, code, coder, start, end, note))
            model_codings += 1
    human_codings = skipped = 0
    for coder, coder_rows in sorted((human or {}).items()):
        if coder in users:
            raise InputError(f"human coder {coder!r} has the same name as a model coder; rename the labels file's coder")
        users[coder] = "human"
        for hrow in coder_rows:
            quote = str(hrow["id"])
            if quote not in quotes:
                skipped += 1
                continue
            for code in sorted(hrow["codes"]):
                if code not in known:
                    raise InputError(f"human codings of {coder!r}, id {quote!r}: code id {code!r} not in codebook {codebook.version}")
                when = f"; reviewed: {hrow['reviewed_at']}" if hrow.get("reviewed_at") else ""
                selections.append(Selection(quote, code, coder, 0, len(quotes[quote].get("text", "")), f"coder: {coder} (human){when}"))
                human_codings += 1

    root = etree.Element(f"{_NS}Project", nsmap={None: PROJECT_NAMESPACE}, name=name, origin="framecode",
                         creationDateTime=stamp, modifiedDateTime=stamp)
    users_el = etree.SubElement(root, f"{_NS}Users")
    for coder, kind in users.items():
        etree.SubElement(users_el, f"{_NS}User", guid=guid("user", coder), name=coder, id=f"{kind}:{coder}")
    _codebook(root, codebook)
    variables_el = etree.SubElement(root, f"{_NS}Variables")
    for variable in VARIABLES:
        el = etree.SubElement(variables_el, f"{_NS}Variable", guid=guid("variable", variable), name=variable, typeOfVariable="Text")
        etree.SubElement(el, f"{_NS}Description").text = f"The quote's {variable} (framecode)."
    cases = _cases(root, quotes)
    sources_el = etree.SubElement(root, f"{_NS}Sources")
    files: dict[str, str] = {}
    by_quote: dict[str, list[Selection]] = {}
    for s in selections:
        by_quote.setdefault(s.quote_id, []).append(s)
    for quote, row in quotes.items():
        source_guid = guid("source", quote)
        files[f"sources/{source_guid}.txt"] = row.get("text", "")
        source = etree.SubElement(sources_el, f"{_NS}TextSource", guid=source_guid, name=quote,
                                  plainTextPath=f"internal://{source_guid}.txt", creationDateTime=stamp)
        for s in by_quote.get(quote, []):
            selection_guid = guid("selection", s.coder, quote, s.code)
            sel = etree.SubElement(source, f"{_NS}PlainTextSelection", guid=selection_guid, name=s.code,
                                   startPosition=str(s.start), endPosition=str(s.end),
                                   creatingUser=guid("user", s.coder), creationDateTime=stamp)
            etree.SubElement(sel, f"{_NS}Description").text = s.description
            coding = etree.SubElement(sel, f"{_NS}Coding", guid=guid("coding", s.coder, quote, s.code),
                                      creatingUser=guid("user", s.coder), creationDateTime=stamp)
            etree.SubElement(coding, f"{_NS}CodeRef", targetGUID=code_guid(s.code))
        for variable in VARIABLES:
            _variable_value(source, variable, row.get(variable, ""))
    summary = ExportSummary(
        sources=len(quotes), cases=cases, model_codings=model_codings, human_codings=human_codings,
        human_coders=tuple(c for c, k in users.items() if k == "human"), skipped_human=skipped,
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True), files, summary


def _codebook(root: etree._Element, codebook: Codebook) -> None:
    codes_el = etree.SubElement(etree.SubElement(root, f"{_NS}CodeBook"), f"{_NS}Codes")
    for theme in codebook.themes:
        theme_el = etree.SubElement(codes_el, f"{_NS}Code", guid=theme_guid(theme.id), name=theme.name, isCodable="false")
        etree.SubElement(theme_el, f"{_NS}Description").text = f"{theme.description}\n\nframecode id: {theme.id}".lstrip()
        for code in codebook.codes:
            if code.theme == theme.id:
                code_el = etree.SubElement(theme_el, f"{_NS}Code", guid=code_guid(code.id), name=code.name, isCodable="true")
                etree.SubElement(code_el, f"{_NS}Description").text = f"{code.definition}\n\nframecode id: {code.id}".lstrip()


def _cases(root: etree._Element, quotes: Mapping[str, Mapping[str, str]]) -> int:
    members: dict[str, list[str]] = {}
    for quote, row in quotes.items():
        organization = row.get("organization", "").strip()
        if organization:
            members.setdefault(organization, []).append(quote)
    if not members:
        return 0
    cases_el = etree.SubElement(root, f"{_NS}Cases")
    for organization in sorted(members):
        case = etree.SubElement(cases_el, f"{_NS}Case", guid=guid("case", organization), name=organization)
        for variable in VARIABLES:
            values = sorted({quotes[q].get(variable, "").strip() for q in members[organization]} - {""})
            _variable_value(case, variable, "; ".join(values))
        for quote in members[organization]:
            etree.SubElement(case, f"{_NS}SourceRef", targetGUID=guid("source", quote))
    return len(members)


def _variable_value(parent: etree._Element, variable: str, value: str) -> None:
    if value.strip():
        el = etree.SubElement(parent, f"{_NS}VariableValue")
        etree.SubElement(el, f"{_NS}VariableRef", targetGUID=guid("variable", variable))
        etree.SubElement(el, f"{_NS}TextValue").text = value.strip()


def pack(project: bytes, files: Mapping[str, str], created: dt.datetime) -> bytes:
    """The ``.qdpx`` zip: entries in a fixed order, all dated ``created``."""
    stamp = created.astimezone(dt.timezone.utc)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in [("project.qde", project), *((p, files[p].encode("utf-8")) for p in sorted(files))]:
            entry = zipfile.ZipInfo(path, date_time=date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return buffer.getvalue()


def load_human(folder: str | Path) -> dict[str, list[dict[str, object]]]:
    """Every coder's rows from ``labels/human/*.jsonl``, keyed by coder name."""
    out: dict[str, list[dict[str, object]]] = {}
    for path in sorted(Path(folder).glob("*.jsonl")):
        for row in read_human_codings(path):
            out.setdefault(str(row["coder"]), []).append(row)
    return out


def _model_coder(rows: Sequence[Mapping[str, str]]) -> str:
    """The ``coder`` of the first row the model coded (not a person), or ''."""
    return next((str(r.get("coder") or "").strip() for r in rows
                 if str(r.get("coded_by", "")).strip() != "person" and str(r.get("coder") or "").strip()), "")


def export_qdpx(
    codings: str | Path,
    out: str | Path,
    codebook: Codebook,
    *,
    human_dir: str | Path | None = None,
    model_id: str | None = None,
    created: dt.datetime | None = None,
) -> ExportSummary:
    """Write ``out`` (.qdpx) from a codings file or run folder, plus human codings if given."""
    codings, out = Path(codings), Path(out)
    if out.suffix.lower() != ".qdpx":
        raise InputError(f"{out}: a REFI-QDA project file must end in .qdpx")
    path, manifest = _resolve(codings)
    table = read_table(path)
    missing = [c for c in ("id", "text", "codes") if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; pass the output of `framecode code` or a run folder")
    model = manifest.get("model") if isinstance(manifest.get("model"), Mapping) else {}
    model_id = model_id or str(model.get("id") or "") or _model_coder(table.rows) or "framecode-model"
    created = created or run_timestamp(manifest, path)
    if human_dir is not None and not Path(human_dir).is_dir():
        raise InputError(f"{human_dir}: no such folder; pass the folder of human codings (labels/human)")
    human = load_human(human_dir) if human_dir is not None else {}
    project, files, summary = build_project(table.rows, codebook, model_id=model_id, human=human, created=created)
    atomic_write_bytes(out, pack(project, files, created))
    return summary
