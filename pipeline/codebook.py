"""Load, validate, write and exchange the codebook (YAML and REFI-QDA ``.qdc``).

The YAML file is the source of truth. :func:`load_codebook` reads it and refuses an
invalid one, listing every problem at once; :func:`validate_codebook` returns those
problems without raising.

REFI-QDA exchange. :func:`export_qdc` writes themes as non-codable parent codes and codes as
codable children, with GUIDs derived from the ids (uuid5 in a fixed framecode namespace), so
the same codebook always gives the same bytes. Everything a ``.qdc`` has no attribute for
travels as plain text that other tools show to their coders:

* a code's ``Description`` holds its definition, then ``Include:``, ``Exclude:`` and
  ``Examples:`` lists, then a last line ``framecode id: <code id>``;
* a theme's ``Description`` holds its description, then ``framecode id: <theme id>``;
* one ``Set``, named after the codebook's title and holding every code, carries the
  codebook's description, its ``Rules:`` and a last line ``framecode version: <version>``.

:func:`import_qdc` reads those lines back, so importing our own export gives the same
codebook (same ``content_hash``). For a file written by another tool, ids are the names
slugified (accents folded to ASCII), top-level codes with children become themes and every
codable code below them (at any depth) becomes one of their codes, named by its path
("Parent / Child") when nested deeper than one level; top-level codes without children are
grouped into themes by the sets that hold them, else into an ``ungrouped`` theme.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from lxml import etree

from .errors import CodebookError, Problem
from .files import atomic_write_text
from .paths import DEFAULT_CODEBOOK
from .records import Code, Codebook, Theme

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
QDC_NAMESPACE = "urn:QDA-XML:codebook:1.0"
#: Namespace of the uuid5 GUIDs written to ``.qdc`` files; never change it.
GUID_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-5b7a-9c4e-2f0d1b3a7e61")

_TOP_FIELDS = frozenset({"title", "version", "description", "themes", "codes", "rules"})
_THEME_FIELDS = frozenset({"id", "name", "description"})
_CODE_FIELDS = frozenset({"id", "theme", "name", "definition", "include", "exclude", "examples"})
_CODE_SECTIONS = (("include", "Include"), ("exclude", "Exclude"), ("examples", "Examples"))
_TAG_PREFIX = "framecode "


class InvalidCodebookError(CodebookError):
    """A codebook file with one or more problems; ``problems`` lists all of them."""

    def __init__(self, file: str, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        lines = [f"{file}: invalid codebook, {len(self.problems)} problem(s); fix them and rerun "
                 "`framecode codebook validate`"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- YAML


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read and validate a codebook YAML file (default: ``labels/codebook.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_CODEBOOK
    data = _read_yaml(path)
    problems = validate_codebook(data, file=str(path))
    if problems:
        raise InvalidCodebookError(str(path), problems)
    return Codebook.from_dict(data)


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CodebookError(f"{path}: codebook file not found; pass an existing YAML file") from None
    except IsADirectoryError:
        raise CodebookError(f"{path}: is a folder; pass the codebook YAML file") from None
    except UnicodeDecodeError as exc:
        raise CodebookError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise CodebookError(f"{path}: {where}not valid YAML ({problem}); fix the syntax") from None


def write_codebook_yaml(codebook: Codebook, path: str | Path) -> None:
    """Write ``codebook`` as YAML, atomically; :func:`load_codebook` reads it back unchanged."""
    header = (
        f"# {codebook.title}, version {codebook.version}\n"
        f"# content hash: {codebook.content_hash}\n"
    )
    body = yaml.safe_dump(codebook.to_dict(), sort_keys=False, allow_unicode=True, width=100)
    atomic_write_text(path, header + body)


def validate_codebook(data: Mapping | Codebook, file: str = "<codebook>") -> list[Problem]:
    """Every problem of a codebook (a parsed YAML mapping or a :class:`Codebook`), at once."""
    if isinstance(data, Codebook):
        data = data.to_dict()
    if not isinstance(data, Mapping):
        return [Problem(file, "expected a mapping with 'version', 'themes' and 'codes' at the top level")]
    problems: list[Problem] = []

    def report(rule: str, column: str | None = None) -> None:
        problems.append(Problem(file, rule, column=column))

    for key in sorted(set(map(str, data)) - _TOP_FIELDS):
        report(f"unknown field; expected one of {', '.join(sorted(_TOP_FIELDS))}", key)
    if _blank(data.get("version")):
        report("missing version; add e.g. version: \"1\"", "version")
    for key in ("title", "description"):
        if key in data and not isinstance(data[key], str | None):
            report("expected text", key)
    _check_text_list(data.get("rules"), "rules", report)

    themes = _items(data.get("themes"), "themes", "theme", report)
    theme_ids: dict[str, int] = {}
    for number, theme in themes:
        place = f"themes #{number}"
        for key in sorted(set(map(str, theme)) - _THEME_FIELDS):
            report(f"unknown field; expected one of {', '.join(sorted(_THEME_FIELDS))}", f"{place}.{key}")
        theme_id = _check_id(theme.get("id"), f"{place}.id", "theme", report)
        if theme_id is not None:
            if theme_id in theme_ids:
                report(f"duplicate theme id {theme_id!r} (also themes #{theme_ids[theme_id]})", f"{place}.id")
            else:
                theme_ids[theme_id] = number
        if _blank(theme.get("name")):
            report("empty name; give the theme a readable name", f"{place}.name")

    codes = _items(data.get("codes"), "codes", "code", report)
    code_ids: dict[str, int] = {}
    used_themes: set[str] = set()
    for number, code in codes:
        place = f"codes #{number}"
        for key in sorted(set(map(str, code)) - _CODE_FIELDS):
            report(f"unknown field; expected one of {', '.join(sorted(_CODE_FIELDS))}", f"{place}.{key}")
        code_id = _check_id(code.get("id"), f"{place}.id", "code", report)
        if code_id is not None:
            if code_id in code_ids:
                report(f"duplicate code id {code_id!r} (also codes #{code_ids[code_id]})", f"{place}.id")
            else:
                code_ids[code_id] = number
        theme = code.get("theme")
        if _blank(theme):
            report("missing parent theme; set theme to one of the theme ids", f"{place}.theme")
        elif str(theme) not in theme_ids:
            known = ", ".join(theme_ids) or "none defined"
            report(f"unknown parent theme {str(theme)!r}; expected one of: {known}", f"{place}.theme")
        else:
            used_themes.add(str(theme))
        if _blank(code.get("name")):
            report("empty name; give the code a readable name", f"{place}.name")
        if _blank(code.get("definition")):
            report("empty definition; say when the code applies", f"{place}.definition")
        for key in ("include", "exclude", "examples"):
            _check_text_list(code.get(key), f"{place}.{key}", report)

    for theme_id, number in theme_ids.items():
        if theme_id not in used_themes:
            report(f"theme {theme_id!r} has no codes; add a code with theme: {theme_id} or remove it",
                   f"themes #{number}")
    return problems


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _items(value: object, key: str, kind: str, report) -> list[tuple[int, Mapping]]:
    """The mapping entries of a top-level list, numbered from 1; reports what is not one."""
    if value is None:
        report(f"missing {key}; add a list of {kind}s", key)
        return []
    if not isinstance(value, list) or not value:
        report(f"expected a non-empty list of {kind}s", key)
        return []
    items = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, Mapping):
            items.append((number, item))
        else:
            report(f"expected a {kind} (a mapping with id, name, ...)", f"{key} #{number}")
    return items


def _check_id(value: object, column: str, kind: str, report) -> str | None:
    if _blank(value):
        report(f"missing {kind} id", column)
        return None
    text = str(value)
    if not ID_PATTERN.match(text):
        report(f"{kind} id {text!r} must match {ID_PATTERN.pattern} (lower-case letters, digits, "
               f"underscores; starting with a letter), e.g. {_slug(text, kind)!r}", column)
    return text


def _check_text_list(value: object, column: str, report) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        report("expected a list of texts (one '- ' line each)", column)
    elif any(not isinstance(item, str) for item in value):
        report("expected every item to be text", column)


# --------------------------------------------------------------------------- REFI-QDA export


def code_guid(code_id: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, f"code:{code_id}"))


def theme_guid(theme_id: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, f"theme:{theme_id}"))


def codebook_set_guid() -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, "codebook"))


def export_qdc(codebook: Codebook) -> bytes:
    """The codebook as a REFI-QDA ``.qdc`` document (UTF-8); identical input gives identical bytes."""
    problems = validate_codebook(codebook, file=f"codebook {codebook.title!r}")
    if problems:
        raise InvalidCodebookError(f"codebook {codebook.title!r}", problems)
    ns = f"{{{QDC_NAMESPACE}}}"
    root = etree.Element(f"{ns}CodeBook", nsmap={None: QDC_NAMESPACE}, origin="framecode")
    codes_el = etree.SubElement(root, f"{ns}Codes")
    for theme in codebook.themes:
        theme_el = etree.SubElement(codes_el, f"{ns}Code", guid=theme_guid(theme.id), name=theme.name,
                                    isCodable="false")
        etree.SubElement(theme_el, f"{ns}Description").text = _compose(theme.description, (), {"id": theme.id})
        for code in codebook.codes:
            if code.theme != theme.id:
                continue
            code_el = etree.SubElement(theme_el, f"{ns}Code", guid=code_guid(code.id), name=code.name,
                                       isCodable="true")
            sections = [(label, getattr(code, key)) for key, label in _CODE_SECTIONS]
            etree.SubElement(code_el, f"{ns}Description").text = _compose(code.definition, sections, {"id": code.id})
    sets_el = etree.SubElement(root, f"{ns}Sets")
    set_el = etree.SubElement(sets_el, f"{ns}Set", guid=codebook_set_guid(), name=codebook.title)
    etree.SubElement(set_el, f"{ns}Description").text = _compose(
        codebook.description, [("Rules", codebook.rules)], {"version": codebook.version}
    )
    for code in codebook.codes:
        etree.SubElement(set_el, f"{ns}MemberCode", guid=code_guid(code.id))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _compose(body: str, sections: Iterable[tuple[str, Iterable[str]]], tags: Mapping[str, str]) -> str:
    """Plain-text description: body, labelled lists, then ``framecode key: value`` lines."""
    parts = [body] if body else []
    for label, items in sections:
        if items:
            parts.append(f"{label}:\n" + "\n".join("- " + item.replace("\n", "\n  ") for item in items))
    parts.append("\n".join(f"{_TAG_PREFIX}{key}: {value}" for key, value in tags.items()))
    return "\n\n".join(parts)


@dataclass
class _Parsed:
    body: str
    sections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


_TAG_LINE = re.compile(r"^framecode ([a-z_]+): (.*)$")
_SECTION = re.compile(r"(?:\A|\n\n)(Include|Exclude|Examples|Rules):\n(?=- )")


def _parse_description(text: str) -> _Parsed:
    """Inverse of :func:`_compose`; a description written by hand is all body."""
    tags: dict[str, str] = {}
    head, sep, last = text.rpartition("\n\n")
    lines = last.split("\n")
    if all(_TAG_LINE.match(line) for line in lines):
        tags = dict(_TAG_LINE.match(line).groups() for line in lines)
        text = head if sep else ""
    matches = list(_SECTION.finditer(text))
    if not matches:
        return _Parsed(text, {}, tags)
    sections: dict[str, tuple[str, ...]] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        block = text[match.end(): following.start() if following else len(text)]
        items = block[2:].split("\n- ")
        sections[match.group(1)] = tuple(item.replace("\n  ", "\n") for item in items)
    return _Parsed(text[: matches[0].start()], sections, tags)


# --------------------------------------------------------------------------- REFI-QDA import


@dataclass
class _Node:
    guid: str
    name: str
    codable: bool
    description: str
    children: list[_Node]


def import_qdc(path: str | Path) -> Codebook:
    """Read a REFI-QDA codebook (ours or another tool's) into a :class:`Codebook`.

    The result is not validated: a foreign codebook may lack definitions; check it with
    :func:`validate_codebook` and edit the YAML written from it.
    """
    path = Path(path)
    root = _parse_xml(path)
    codes_el = next((el for el in root.iter() if _local(el) == "Codes"), None)
    if codes_el is None:
        raise CodebookError(f"{path}: no <Codes> element; expected a REFI-QDA codebook (.qdc)")
    nodes = [_node(el) for el in codes_el if _local(el) == "Code"]
    if not nodes:
        raise CodebookError(f"{path}: <Codes> holds no <Code>; nothing to import")
    sets = [el for el in root.iter() if _local(el) == "Set"]

    meta, meta_members = _Parsed(""), []
    title = str(root.get("origin") or path.stem)
    groups: list[tuple[str, str, set[str]]] = []  # (name, description, member guids) of sets
    for set_el in sets:
        parsed = _parse_description(_description(set_el))
        members = [_norm_guid(m.get("guid") or m.get("targetGUID") or "")
                   for m in set_el if _local(m) == "MemberCode"]
        if "version" in parsed.tags:
            meta, meta_members, title = parsed, members, set_el.get("name", "")
        else:
            groups.append((set_el.get("name", ""), parsed.body, set(members)))

    theme_ids = _IdMaker("theme")
    code_ids = _IdMaker("code")
    themes: list[Theme] = []
    codes: list[Code] = []

    code_guids: list[str] = []

    def add_code(node: _Node, theme_id: str, name: str) -> None:
        parsed = _parse_description(node.description)
        code_id = code_ids.make(parsed.tags.get("id") or name)
        sections = {key: parsed.sections.get(label, ()) for key, label in _CODE_SECTIONS}
        codes.append(Code(code_id, theme_id, name, parsed.body, **sections))
        code_guids.append(_norm_guid(node.guid))

    def add_theme(name: str, description: str) -> str:
        parsed = _parse_description(description)
        theme_id = theme_ids.make(parsed.tags.get("id") or name)
        themes.append(Theme(theme_id, name, parsed.body))
        return theme_id

    grouped: dict[int, list[_Node]] = {}
    ungrouped: list[_Node] = []
    for node in nodes:
        if node.children:
            theme_id = add_theme(node.name, node.description)
            if node.codable:
                add_code(node, theme_id, node.name)
            for child, trail in _descendants(node.children, ()):
                add_code(child, theme_id, " / ".join(trail))
        elif not node.codable:
            log.info("%s: skipped non-codable code %r: it has no codes below it", path, node.name)
        else:
            group = next((i for i, (_, _, members) in enumerate(groups) if _norm_guid(node.guid) in members), None)
            (grouped.setdefault(group, []) if group is not None else ungrouped).append(node)
    for index, members in sorted(grouped.items()):
        name, description, _ = groups[index]
        theme_id = add_theme(name, description)
        for node in members:
            add_code(node, theme_id, node.name)
    if ungrouped:
        theme_id = add_theme("Ungrouped", "")
        for node in ungrouped:
            add_code(node, theme_id, node.name)

    if meta_members:  # our own export: the codebook's set keeps the codes' original order
        rank = {guid: i for i, guid in enumerate(meta_members)}
        order = sorted(range(len(codes)), key=lambda i: rank.get(code_guids[i], len(rank)))
        codes = [codes[i] for i in order]
    return Codebook(
        version=meta.tags.get("version", "1"),
        themes=tuple(themes),
        codes=tuple(codes),
        rules=meta.sections.get("Rules", ()),
        title=title,
        description=meta.body,
    )


def _parse_xml(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.parse(str(path), parser).getroot()
    except OSError:
        raise CodebookError(f"{path}: cannot be read; pass an existing .qdc file") from None
    except etree.XMLSyntaxError as exc:
        line = f"line {exc.lineno}: " if exc.lineno else ""
        raise CodebookError(f"{path}: {line}not well-formed XML; expected a REFI-QDA codebook (.qdc)") from None


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _description(element: etree._Element) -> str:
    found = next((el for el in element if _local(el) == "Description"), None)
    return (found.text or "") if found is not None else ""


def _node(element: etree._Element) -> _Node:
    codable = (element.get("isCodable") or "true").strip().lower() not in ("false", "0")
    return _Node(
        guid=element.get("guid", ""),
        name=(element.get("name") or "").strip(),
        codable=codable,
        description=_description(element),
        children=[_node(el) for el in element if _local(el) == "Code"],
    )


def _descendants(nodes: list[_Node], trail: tuple[str, ...]):
    """Codable nodes below a theme, each with its name path from the theme's child down."""
    for node in nodes:
        path = (*trail, node.name)
        if node.codable:
            yield node, path
        yield from _descendants(node.children, path)


def _norm_guid(guid: str) -> str:
    return guid.strip().strip("{}").lower()


class _IdMaker:
    """Unique valid ids: a valid recovered id is kept, anything else is slugified."""

    def __init__(self, kind: str):
        self.kind = kind
        self.seen: set[str] = set()

    def make(self, wanted: str) -> str:
        base = wanted if ID_PATTERN.match(wanted) else _slug(wanted, self.kind)
        candidate, n = base, 2
        while candidate in self.seen:
            candidate, n = f"{base}_{n}", n + 1
        self.seen.add(candidate)
        return candidate


_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o",
                       "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "þ": "th", "ð": "d"})


def _slug(name: str, kind: str = "code") -> str:
    """An id from a name: accents folded to ASCII, lower case, runs of other characters as ``_``."""
    ascii_name = unicodedata.normalize("NFKD", name.translate(_FOLD)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:48].rstrip("_")
    if not slug:
        return kind
    return slug if slug[0].isalpha() else f"{kind}_{slug}"
