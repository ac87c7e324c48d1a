"""The review loop end to end: only decided rows are stored, a decision beats the label in
training and the model in every output, and a note alone does not make the model stale."""

from __future__ import annotations

import json

import openpyxl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.labels import load_labels
from pipeline.model import model_is_stale
from pipeline.paths import LABELS_DIR
from pipeline.tables import read_table, write_table

runner = CliRunner()
pytestmark = pytest.mark.slow
CODEBOOK = load_codebook()
NEW_TEXT = "Our nurses now see the discharge notice the same morning, so the first home visit happens within a day."


def _rows(name):
    return [json.loads(line) for line in open(LABELS_DIR / name, encoding="utf-8")]


@pytest.fixture(scope="module")
def written():
    """The written quote whose first code a reviewer removes."""
    return next(r for r in _rows("written_statements.jsonl") if len(r["labels"]) >= 2)


@pytest.fixture(scope="module")
def loop(tmp_path_factory, written):
    """A small labels folder, a reviewed sheet imported into it, and a model trained on it."""
    root = tmp_path_factory.mktemp("loop")
    labels = root / "labels"
    labels.mkdir()
    real, picked = _rows("real_statements.jsonl"), {}
    for code in CODEBOOK.code_ids:
        picked.update((r["id"], r) for r in [r for r in real if code in r["labels"]][:6])
    picked.update((r["id"], r) for r in [r for r in real if not r["labels"]][:20])
    (labels / "real_statements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in picked.values()), encoding="utf-8")
    (labels / "written_statements.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in _rows("written_statements.jsonl")[:40]), encoding="utf-8")
    suggestions = [(written["id"], written["text"], written["labels"]), ("n1", NEW_TEXT, ["timely_data"]),
                   ("n2", "A quote nobody decides.", [])]
    codings = root / "codings.csv"
    write_table(codings, [{"id": i, "text": t, "codes": ";".join(sorted(c)), "needs_review": "true",
                           **{f"p_{k}": "0.6" if k in c else "0.4" for k in CODEBOOK.code_ids}} for i, t, c in suggestions],
                ["id", "text", "codes", "needs_review", *(f"p_{k}" for k in CODEBOOK.code_ids)])
    sheet = root / "review.xlsx"
    assert runner.invoke(app, ["review", "export", str(codings), "--out", str(sheet)]).exit_code == 0
    removed = sorted(written["labels"])[0]
    _decide(sheet, {written["id"]: {"decision": "change", removed: 0},
                    "n1": {"decision": "change", "timely_data": 0, "care_coordination": 1}})
    imported = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana Diaz", "--labels-dir", str(labels)])
    assert imported.exit_code == 0, imported.output
    model = root / "model"
    trained = runner.invoke(app, ["train", "--labels", str(labels), "--out", str(model)])
    assert trained.exit_code == 0, trained.output
    source = root / "new.csv"
    write_table(source, [{"id": written["id"], "text": written["text"]}, {"id": "n1", "text": NEW_TEXT},
                         {"id": "n2", "text": "A quote nobody decides."}, {"id": "n1b", "text": NEW_TEXT}], ["id", "text"])
    return {"root": root, "labels": labels, "model": model, "source": source, "removed": removed,
            "import_output": imported.output, "sheet": sheet}


def _decide(path, changes):
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["review"]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        for column, value in changes.get(row[0].value, {}).items():
            row[header.index(column)].value = value
    workbook.save(path)


def _code(loop, *options):
    out = loop["root"] / f"codings{len(options)}.csv"
    result = runner.invoke(app, ["code", str(loop["source"]), "--out", str(out), "--model", str(loop["model"]), *options])
    assert result.exit_code == 0, result.output
    return {r["id"]: r for r in read_table(out).rows}, out


def test_import_reports_the_changes_and_stores_only_decisions(loop, written):
    assert "2 quotes changed: 2 codes removed, 1 added; 0 accepted as suggested; 0 skipped; 1 left undecided" in loop["import_output"]
    stored = [json.loads(line) for line in (loop["labels"] / "human" / "Ana_Diaz.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in stored) == sorted([written["id"], "n1"])


def test_a_removed_code_is_gone_after_training_and_in_the_output(loop, written):
    model_only, _ = _code(loop, "--model-only")
    assert loop["removed"] not in model_only[written["id"]]["codes"].split(";")  # the label itself changed, at full weight
    decided, _ = _code(loop, "--human", str(loop["labels"] / "human"))
    row = decided[written["id"]]
    assert row["codes"] == ";".join(sorted(set(written["labels"]) - {loop["removed"]}))
    assert (row["coder"], row["coded_by"], row["needs_review"]) == ("Ana Diaz", "person", "false")
    assert (decided["n1"]["codes"], decided["n1"]["coder"]) == ("care_coordination", "Ana Diaz")
    assert decided["n1"]["model_codes"] == model_only["n1"]["codes"]
    # an undecided quote, and the same text under another id, stay the model's
    assert decided["n2"]["coded_by"] == "model" and decided["n1b"]["coded_by"] == "model"
    assert decided["n1b"]["codes"] == model_only["n1b"]["codes"]


def test_qdpx_of_decided_codings_keeps_model_and_person_apart(loop, written):
    _, codings = _code(loop, "--human", str(loop["labels"] / "human"))
    out = loop["root"] / "project.qdpx"
    result = runner.invoke(app, ["export", "qdpx", str(codings), "--out", str(out), "--human", str(loop["labels"] / "human")])
    assert result.exit_code == 0, result.output
    assert f"{len(written['labels'])} human codings by 1 coder(s)" in result.output  # its labels minus one, and n1's one code
    assert "framecode-model" not in result.output


def test_a_note_alone_does_not_make_the_model_stale(loop):
    path = loop["labels"] / "human" / "Ana_Diaz.jsonl"
    original = path.read_text()
    try:
        rows = [json.loads(line) for line in original.splitlines()]
        rows[0]["reviewer_note"] = "changed my mind about the wording, not the codes"
        rows[0]["reviewed_at"] = "2030-01-01T00:00:00+00:00"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        assert model_is_stale(loop["model"], CODEBOOK, load_labels(CODEBOOK, loop["labels"])) is None
        rows[0]["codes"] = []
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        assert "labels changed" in model_is_stale(loop["model"], CODEBOOK, load_labels(CODEBOOK, loop["labels"]))
    finally:
        path.write_text(original)


def test_agreement_compares_the_model_with_the_reviewer_on_decided_quotes_only(loop):
    _, codings = _code(loop, "--human", str(loop["labels"] / "human"))
    result = runner.invoke(app, ["agreement", str(codings), str(loop["labels"] / "human" / "Ana_Diaz.jsonl"), "--rounds", "100"])
    assert result.exit_code == 0, result.output
    assert "coders: framecode-" in result.output and ", Ana Diaz; shared quotes: 2;" in result.output
