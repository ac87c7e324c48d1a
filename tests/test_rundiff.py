"""framecode diff: codebook, model, inputs, quotes' codes and frequency shifts between runs."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook, write_codebook_yaml
from pipeline.errors import RunError
from pipeline.paths import DEFAULT_CODEBOOK
from pipeline.records import Code
from pipeline.rundiff import codebook_changes, diff_runs, excerpt
from pipeline.runs import HashCoder, start_run

runner = CliRunner()
NEW_CODE = Code(
    id="equity",
    theme="partnership",
    name="Equity",
    definition="The value of sharing data lies in directing resources to underserved neighborhoods.",
    include=("Sharing presented as the way to reach groups that were left out.",),
    exclude=("General aims such as 'advance equity' with nothing specific.",),
    examples=("We share data so the neighborhoods left out get the services first.",),
)


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(DEFAULT_CODEBOOK)


@pytest.fixture(scope="module")
def codebook_v2(codebook, tmp_path_factory):
    book = replace(codebook, version="2", codes=(*codebook.codes, NEW_CODE))
    path = tmp_path_factory.mktemp("codebooks") / "codebook_v2.yaml"
    write_codebook_yaml(book, path)
    return path


def write_corpus(path: Path, texts: list[str]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "organization", "program", "sector"])
        for i, text in enumerate(texts):
            writer.writerow([f"q{i}", text, f"Org {i % 25}", ("CHP", "DASH")[i % 2], ("housing", "public_health")[i % 3 == 0]])
    return path


TEXTS = [f"quote number {i}: sharing data helped our partners " + "and more " * (i % 5) for i in range(80)]


def test_adding_a_code_shows_its_new_codings_and_nothing_spurious(tmp_path, monkeypatch, codebook_v2):
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    corpus = write_corpus(tmp_path / "corpus.csv", TEXTS)
    runs_dir = tmp_path / "runs"
    run_ids = []
    for extra in ([], ["--codebook", str(codebook_v2)]):
        result = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(runs_dir), "--chunk-size", "16", *extra])
        assert result.exit_code == 0, result.output
        run_ids += [line.split()[1].rstrip(":") for line in result.output.splitlines() if line.startswith("run ")]
    run_a, run_b = (runs_dir / run_id for run_id in run_ids)
    out = tmp_path / "diff.json"
    result = runner.invoke(app, ["diff", run_a.name, run_b.name, "--runs-dir", str(runs_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "added equity" in result.output and "model: unchanged" in result.output and "inputs: unchanged" in result.output

    diff = json.loads(out.read_text(encoding="utf-8"))
    assert diff["codebook"] == [{"code_id": "equity", "change": "added", "fields": []}]
    assert diff["model"] is None and diff["inputs"] == []
    with open(run_b / "codings.csv", encoding="utf-8", newline="") as handle:
        carrying = [r for r in csv.DictReader(handle) if "equity" in r["codes"].split(";")]
    assert carrying, "the fake coder should give the new code some quotes"
    assert [(q["quote_id"], q["code_id"], q["change"]) for q in diff["quotes"]] == [
        (r["id"], "equity", "added") for r in carrying
    ]
    assert all(q["excerpt"] == excerpt(TEXTS[int(q["quote_id"][1:])]) for q in diff["quotes"])
    shifted = {(f["level"], f["id"]) for f in diff["frequencies"] if f["shift"] != 0}
    assert shifted <= {("code", "equity"), ("theme", "partnership")}
    assert ("code", "equity") in shifted


def test_diff_csv_and_changed_inputs(tmp_path, codebook):
    runs_dir = tmp_path / "runs"
    first = write_corpus(tmp_path / "corpus.csv", TEXTS)
    run_a = start_run([first], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir).run_dir
    edited = TEXTS[:-1]
    edited[5] = "a rewritten testimonial about timely records for case managers"
    write_corpus(first, edited)
    run_b = start_run([first], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir).run_dir
    diff = diff_runs(run_a, run_b)
    assert [(i.change, Path(i.path).name) for i in diff.inputs] == [("changed", "corpus.csv")]
    assert diff.quotes_only_in_a == 1 and diff.quotes_only_in_b == 0
    assert {q.quote_id for q in diff.quotes} <= {"q5"}
    out = tmp_path / "diff.csv"
    result = runner.invoke(app, ["diff", str(run_a), str(run_b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["section"] for r in rows} >= {"inputs", "frequencies"}
    assert [r["id"] for r in rows if r["section"] == "inputs"] == [str(first.resolve())]


def test_codebook_changes_detect_redefined_and_removed_codes(codebook):
    first, *rest = codebook.codes
    changed = replace(codebook, codes=(replace(rest[0], definition="A new definition."), *rest[1:]))
    assert [(c.code_id, c.change, c.fields) for c in codebook_changes(codebook, changed)] == [
        (first.id, "removed", ()), (rest[0].id, "redefined", ("definition",)),
    ]
    assert codebook_changes(codebook, codebook) == ()


def test_diff_refuses_incomplete_runs_and_unknown_ids(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", TEXTS[:10])
    run_a = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path).run_dir
    run_b = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path).run_dir
    manifest = json.loads((run_b / "manifest.json").read_text())
    (run_b / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    with pytest.raises(RunError, match="not complete"):
        diff_runs(run_a, run_b)
    result = runner.invoke(app, ["diff", run_a.name, "missing-run", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'missing-run'" in result.output


def test_excerpt_is_short_and_flat():
    assert excerpt("line one\n\nline   two") == "line one line two"
    long = excerpt("word " * 100)
    assert len(long) == 80 and long.endswith("…")
