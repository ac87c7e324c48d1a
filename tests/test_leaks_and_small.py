"""Issue 19: no quote text in errors, rejected.csv or manifests; and the smaller promises
(U+2028 in JSONL, text kept exactly, one writer per output, read-only outputs, long quotes)."""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.coding import code_file
from pipeline.errors import InputError, ValidationError
from pipeline.files import exclusive_output
from pipeline.ingest import read_quotes
from pipeline.paths import DEFAULT_CODEBOOK
from pipeline.review import read_human_codings
from pipeline.runs import HashCoder, carried_columns, iter_records, read_manifest, start_run
from pipeline.runs.inputs import InputFile
from pipeline.tables import read_table

runner = CliRunner()
SECRET = "Jane Doe told us her HIV test came back positive in March"
HIDDEN = f"(a {len(SECRET)}-character value, not shown)"


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(DEFAULT_CODEBOOK)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def misaligned(tmp_path: Path) -> Path:
    """Row 3 lost its text cell: the quote sits in the sector column."""
    return write_csv(tmp_path / "q.csv", [
        ["id", "text", "organization", "sector"],
        ["q1", "Sharing data helped us", "Acme Clinic", "health_care"],
        ["q2", "Acme Clinic", "", SECRET],
    ])


def test_a_misaligned_sector_value_is_never_echoed_by_ingest(tmp_path):
    source = misaligned(tmp_path)
    for flags in ([], ["--redact"]):
        result = runner.invoke(app, ["ingest", str(source), "--out", str(tmp_path / "out.csv"), *flags])
        assert result.exit_code == 2
        assert f"row 3, column 'sector': unknown sector {HIDDEN}" in result.output
        assert "Jane" not in result.output and "HIV" not in result.output
    with pytest.raises(ValidationError) as error:
        read_quotes([source])
    assert "HIV" not in str(error.value)


def test_a_near_miss_sector_is_still_shown_with_its_hint(tmp_path):
    source = write_csv(tmp_path / "q.csv", [["text", "sector"], ["Sharing helps", "Pubic Helth"]])
    with pytest.raises(ValidationError, match=r"unknown sector 'Pubic Helth'; did you mean 'public_health'\?"):
        read_quotes([source])


def test_a_quote_in_the_id_column_or_the_header_is_never_echoed(tmp_path):
    ids = write_csv(tmp_path / "ids.csv", [["id", "text"], [SECRET, "first"], [SECRET, "second"]])
    with pytest.raises(ValidationError, match=re.escape(f"duplicate id {HIDDEN}")) as error:
        read_quotes([ids])
    assert "HIV" not in str(error.value)
    headerless = write_csv(tmp_path / "headerless.csv", [[SECRET, "Acme Clinic"], ["another quote", "Acme"]])
    with pytest.raises(ValidationError, match="no text column") as error:
        read_quotes([headerless])
    assert "HIV" not in str(error.value) and "Acme Clinic" in str(error.value)
    twice = write_csv(tmp_path / "twice.csv", [["text", SECRET, SECRET], ["a", "b", "c"]])
    with pytest.raises(ValidationError, match="appears twice") as error:
        read_quotes([twice])
    assert "HIV" not in str(error.value)


def test_a_misaligned_sector_never_reaches_rejected_csv_or_the_manifest(tmp_path, codebook):
    source = misaligned(tmp_path)
    (record,) = [r for r in iter_records(source) if r.problem]
    assert record.row == 3 and "HIV" not in record.problem
    result = start_run([source], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs")
    rejected = (result.run_dir / "rejected.csv").read_text(encoding="utf-8")
    assert f"unknown sector {HIDDEN}" in rejected
    assert "HIV" not in rejected and "HIV" not in (result.run_dir / "manifest.json").read_text(encoding="utf-8")
    assert read_manifest(result.run_dir)["counts"]["rejected"] == 1


def test_ingest_jsonl_with_line_separators_reads_back_exactly(tmp_path):
    texts = ["one\u2028two", "para\u2029graph", "next\x85line", "form\x0cfeed", "plain"]
    source = write_csv(tmp_path / "q.csv", [["id", "text"], *([f"q{i}", t] for i, t in enumerate(texts))])
    out = tmp_path / "quotes.jsonl"
    assert runner.invoke(app, ["ingest", str(source), "--out", str(out)]).exit_code == 0
    assert [r["text"] for r in read_table(out).rows] == texts
    assert [q.text for q in read_quotes([out]).quotes] == texts
    human = tmp_path / "ann.jsonl"
    human.write_text("".join(json.dumps({"id": f"q{i}", "coder": "ann", "codes": [], "text": t}, ensure_ascii=False) + "\n"
                             for i, t in enumerate(texts)), encoding="utf-8")
    assert [r["text"] for r in read_human_codings(human)] == texts


def test_surrounding_whitespace_of_a_quote_is_kept_exactly(tmp_path):
    texts = ["  Data saved us money.  ", "\ttabbed\n", "plain"]
    source = write_csv(tmp_path / "q.csv", [["text"], *([t] for t in texts), ["   "]])
    result = read_quotes([source])
    assert [q.text for q in result.quotes] == texts
    assert any("empty text" in n.rule for n in result.notices)  # a blank quote is still skipped
    streamed = [r for r in iter_records(source)]
    assert [r.quote.text for r in streamed if r.quote] == texts
    assert [r.quote.id for r in streamed if r.quote] == [q.id for q in result.quotes]


def test_a_second_writer_of_one_output_is_refused_naming_the_file(tmp_path, codebook):
    source = write_csv(tmp_path / "q.csv", [["text"], ["Sharing helps"]])
    out = tmp_path / "codings.csv"
    with exclusive_output(out):
        with pytest.raises(InputError, match="another framecode process is writing this file") as error:
            code_file(source, out, HashCoder(codebook))
    assert str(error.value).startswith(f"{out}: ") and "\n" not in str(error.value)
    assert not out.exists()
    assert code_file(source, out, HashCoder(codebook)) == 1  # the lock is released
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_read_only_output_is_refused_not_replaced(tmp_path, codebook):
    source = write_csv(tmp_path / "q.csv", [["text"], ["Sharing helps"]])
    out = tmp_path / "codings.csv"
    out.write_text("kept\n", encoding="utf-8")
    os.chmod(out, stat.S_IRUSR | stat.S_IRGRP)
    try:
        with pytest.raises(InputError, match=f"{out}: the output file is read-only"):
            code_file(source, out, HashCoder(codebook))
        assert out.read_text(encoding="utf-8") == "kept\n"
        result = runner.invoke(app, ["ingest", str(source), "--out", str(out)])  # every atomic write refuses it
        assert result.exit_code == 2 and f"{out}: the output file is read-only" in result.output
        assert out.read_text(encoding="utf-8") == "kept\n"
    finally:
        os.chmod(out, stat.S_IRUSR | stat.S_IWUSR)


def test_quotes_longer_than_the_csv_modules_field_limit_are_read_everywhere(tmp_path):
    long = "word " * 30_000 + "end"  # 150,003 characters; the csv module refuses 131,072 by default
    source = write_csv(tmp_path / "q.csv", [["id", "text", "notes"], ["q1", "short", "x"], ["q2", long, "y"]])
    tsv = tmp_path / "q.tsv"
    tsv.write_text(f"id\ttext\nq1\t{long}\n", encoding="utf-8")
    readers = {
        "read_table": lambda p: [r["text"] for r in read_table(p).rows][-1],
        "read_quotes": lambda p: read_quotes([p]).quotes[-1].text,
        "iter_records": lambda p: [r.quote.text for r in iter_records(p)][-1],
        "carried_columns": lambda p: (carried_columns([InputFile.pin(p)]), long)[1],  # reads without refusing
    }
    for name, read in readers.items():
        for path in (source, tsv):
            csv.field_size_limit(131_072)
            assert read(path) == long, (name, path.name)
