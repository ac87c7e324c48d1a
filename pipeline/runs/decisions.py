"""Reviewers' decisions in a run's outputs, as ``framecode code`` applies them.

The decision files (``labels/human/*.jsonl``) are pinned in the manifest like the inputs
(path and sha256) and applied only when the outputs are written, so the work store holds the
model's codings and chunk reuse does not depend on them. A decision applies to a quote with
the same id and text: its ``codes`` and ``coder`` become the person's, ``model_codes`` keeps
the model's, and ``coded_by`` says ``person`` or ``model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import InputError, RunError
from ..files import sha256_file
from ..records import Codebook
from ..review import PERSON_COLUMNS, PersonCoding, apply_decisions, human_files, read_decision_files, read_human_codings
from .manifest import BASE_COLUMNS, EXTRA_COLUMNS


def pin_decisions(human_dir: Path | None, codebook: Codebook) -> dict:
    """The manifest's ``decisions`` entry: the folder and each decision file with its sha256
    (none when ``human_dir`` is None or not a folder). Refuses a file that names a code the
    codebook does not have."""
    if human_dir is None or not Path(human_dir).is_dir():
        return {"folder": None, "files": []}
    files = human_files(human_dir)
    known = set(codebook.code_ids)
    for path in files:
        for row in read_human_codings(path):
            unknown = sorted(set(map(str, row["codes"])) - known)
            if unknown:
                raise InputError(f"{path}: quote {row['id']}: code {unknown[0]!r} is not in codebook "
                                 f"{codebook.version}; fix the decision, or pass --model-only")
    return {"folder": str(Path(human_dir).resolve()),
            "files": [{"path": str(p.resolve()), "sha256": sha256_file(p)} for p in files]}


def check_decisions(manifest: dict) -> None:
    """Refuse, naming the file, when a pinned decision file changed or went missing."""
    for entry in (manifest.get("decisions") or {}).get("files", []):
        path = Path(entry["path"])
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            raise RunError(f"{path}: decisions changed or missing since run {manifest['run_id']} started; "
                           "restore the file or start a new run")


def load_decisions(manifest: dict) -> dict[str, PersonCoding]:
    """The pinned decisions by quote id (a later file's decision wins, as in ``code``)."""
    return read_decision_files(entry["path"] for entry in (manifest.get("decisions") or {}).get("files", []))


def output_columns(columns: Sequence[str], codebook: Codebook) -> list[str]:
    """The work store's columns with :data:`PERSON_COLUMNS` after the coding layout, before
    the carried input columns (the order of ``framecode code``)."""
    at = _first_carried(codebook)
    return [*columns[:at], *PERSON_COLUMNS, *columns[at:]]


def _first_carried(codebook: Codebook) -> int:
    return len(BASE_COLUMNS) + len(codebook.code_ids) + len(EXTRA_COLUMNS)


def with_decisions(table, decisions: Mapping[str, PersonCoding], codebook: Codebook):
    """A chunk's codings (an Arrow table) with the decisions applied and the person columns
    added; returns (table, number of quotes a person decided)."""
    import pyarrow as pa

    model_codes = table.column("codes")
    coded_by = ["model"] * table.num_rows
    ids = table.column("id").to_pylist() if decisions else []
    hits = [i for i, quote in enumerate(ids) if quote in decisions]
    if hits:
        texts = table.column("text")
        given = model_codes.to_pylist()
        codes, coders = given.copy(), table.column("coder").to_pylist()
        flags = table.column("needs_review").to_pylist()
        reasons = table.column("review_reason").to_pylist()
        candidates = ({"id": ids[i], "text": texts[i].as_py(), "codes": given[i]} for i in hits)
        for i, row in zip(hits, apply_decisions(candidates, decisions)):
            if row["coded_by"] == "person":
                codes[i], coders[i], flags[i], reasons[i], coded_by[i] = row["codes"], row["coder"], False, "", "person"
        replaced = (("codes", codes, pa.string()), ("coder", coders, pa.string()), ("needs_review", flags, pa.bool_()),
                    ("review_reason", reasons, pa.string()))
        for name, values, kind in replaced:
            position = table.schema.get_field_index(name)
            table = table.set_column(position, table.schema.field(position), pa.array(values, type=kind))
    at = _first_carried(codebook)
    table = table.add_column(at, pa.field(PERSON_COLUMNS[0], pa.string()), model_codes)
    table = table.add_column(at + 1, pa.field(PERSON_COLUMNS[1], pa.string()), pa.array(coded_by, type=pa.string()))
    return table, coded_by.count("person")
