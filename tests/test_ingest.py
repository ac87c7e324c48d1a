"""framecode ingest: every problem at once by place (never by text), nothing written on failure, text exact."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ValidationError
from pipeline.files import sha256_file
from pipeline.columns import ReadOptions
from pipeline.ingest import read_quotes
from pipeline.paths import CORPUS_DIR, PROJECT_ROOT
from pipeline.tables import read_table, write_table

SEEDS = PROJECT_ROOT.parent / "shared" / "seeds"
runner = CliRunner()

SECRET = "Maria's diabetes got better"


def _bad_csv(path):
    rows = (
        "id,text,organization,sector\n"
        f"a1,{SECRET},Lake County Health Department,\n"
        "a2,   ,Lake County Health Department,\n"  # empty text
        "a1,Another quote,Acme,\n"  # duplicate id
        "a4,Third quote,Acme,public_heath\n"  # misspelled sector
        "a5,Caf\xe9 data,Acme,\n"  # cp1252 byte
    )
    path.write_bytes(rows.encode("cp1252"))
    return path


def test_bad_csv_exits_nonzero_naming_each_row_and_writes_nothing(tmp_path):
    source = _bad_csv(tmp_path / "bad.csv")
    before = sha256_file(source)
    out = tmp_path / "quotes.csv"
    result = runner.invoke(app, ["ingest", str(source), "--out", str(out)])
    assert result.exit_code != 0
    message = result.output
    # rows as the spreadsheet shows them: the header is row 1
    assert "row 3, column 'text': empty text; row skipped" in message  # a notice, beside the problems
    assert "row 4, column 'id': duplicate id 'a1' (first at" in message
    assert "row 5, column 'sector': unknown sector 'public_heath'; did you mean 'public_health'?" in message
    assert "row 6: decoded as cp1252" in message
    assert SECRET not in message and "Another quote" not in message
    assert "Traceback" not in message
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    assert sha256_file(source) == before


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared seeds absent")
def test_seed_document_ingests_to_exactly_six_quotes(tmp_path):
    out = tmp_path / "seed.jsonl"
    result = runner.invoke(app, ["ingest", str(SEEDS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["organization"], r["program"], r["sector"]) for r in rows] == [
        ("Chicago Department of Public Health", "DASH", "public_health"),
        ("NYC Department of Health and Mental Hygiene", "", "public_health"),
        ("Providence Center for Outcomes Research and Education", "CHP", "academic_research"),
        ("University of Vermont", "CHP", "academic_research"),
        ("Center for Health Care Services", "DASH", "behavioral_health"),
        ("Public Health Seattle & King County", "DASH", "public_health"),
    ]
    assert list(rows[0]) == ["id", "text", "organization", "program", "sector", "source"]
    assert all(r["source"].startswith(next(SEEDS.glob("*.txt")).name + ":line ") for r in rows)
    assert "DASH 3" in result.output and "CHP 2" in result.output


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared seeds absent")
def test_shipped_seed_corpus_matches_the_extractor():
    shipped = read_table(CORPUS_DIR / "seed_quotes.csv")
    extracted = read_quotes(sorted(SEEDS.glob("*.txt"))).quotes
    assert [r["text"] for r in shipped.rows] == [q.text for q in extracted]
    assert [r["id"] for r in shipped.rows] == [q.id for q in extracted]
    assert {r["origin"] for r in shipped.rows} == {"seed"}
    assert all(r["sector"] for r in shipped.rows)


def test_text_survives_bom_cp1252_and_xlsx_exactly(tmp_path):
    texts = ["NA", "None", "line one\nline two", "=HYPERLINK(\"x\")", "+1", "-2", "@me", "“smart” it’s"]
    bom = tmp_path / "bom.csv"
    write_table(bom, [{"Quote": t} for t in texts], ["Quote"])
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    cp = tmp_path / "excel.tsv"
    cp.write_bytes("Testimonial\tOrg\n\u201ccaf\xe9\u201d\tAcme\n".encode("cp1252"))
    book = tmp_path / "book.xlsx"
    write_table(book, [{"text": t, "organisation": "Acme"} for t in texts], ["text", "organisation"])
    inputs = {p: sha256_file(p) for p in (bom, cp, book)}

    result = read_quotes([bom, cp, book])
    by_file = {f.split("/")[-1]: e for f, e in result.encodings.items()}
    assert by_file == {"bom.csv": "utf-8-sig", "excel.tsv": "cp1252", "book.xlsx": "xlsx"}
    assert [q.text for q in result.quotes] == texts + ["\u201ccaf\xe9\u201d"] + texts
    assert {q.organization for q in result.quotes[len(texts):]} == {"Acme"}

    out = tmp_path / "out.csv"
    assert runner.invoke(app, ["ingest", str(bom), str(cp), str(book), "--out", str(out)]).exit_code == 0
    assert [r["text"] for r in read_table(out).rows] == [q.text for q in result.quotes]
    assert {p: sha256_file(p) for p in inputs} == inputs


def test_header_variants_ids_sources_and_surrounding_whitespace(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        " STATEMENT ,Org,Programme,Sector,source_url\n"
        "  Data saved us money.  ,University of Vermont,chp,,https://example.org\n"
        "Housing data helped,Acme Housing Authority,,Public Health,\n",
        encoding="utf-8",
    )
    first, second = read_quotes([path]).quotes
    assert first.text == "  Data saved us money.  "  # text kept exactly (SPEC)
    assert (first.program, first.sector, first.source, first.source_url) == ("CHP", "academic_research", "q.csv:row 2", "https://example.org")
    assert first.id == read_quotes([path]).quotes[0].id  # stable
    assert second.sector == "public_health"  # the input's sector wins, written loosely


def test_text_column_option_and_missing_text_column(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("notes,words\nx,Sharing helps\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="no text column"):
        read_quotes([path])
    assert [q.text for q in read_quotes([path], ReadOptions(text_column="Words")).quotes] == ["Sharing helps"]
    with pytest.raises(ValidationError, match="no column 'body'"):
        read_quotes([path], ReadOptions(text_column="body"))


def test_exact_duplicates_are_kept_once_and_noticed(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("text,organization\nSame words,Acme\nSame words,acme\nSame words,Other\n", encoding="utf-8")
    result = read_quotes([path])
    assert [q.organization for q in result.quotes] == ["Acme", "Other"]
    assert [(n.row, "exact duplicate" in n.rule) for n in result.notices] == [(3, True)]


def test_all_files_are_checked_before_failing(tmp_path):
    odd = tmp_path / "quotes.xls"
    odd.write_bytes(b"x")
    short = tmp_path / "short.csv"
    short.write_text("text,id\nfine,1\nmissing field\n", encoding="utf-8")
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"text": ""}\n', encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        read_quotes([odd, short, empty])
    assert [(p.file.split("/")[-1], p.row) for p in caught.value.problems] == [("quotes.xls", None), ("short.csv", 3)]
    assert "unsupported file type '.xls'" in str(caught.value)
    assert "e.jsonl, row 1, column 'text': empty text; row skipped" in str(caught.value)  # a notice


def test_unknown_sectors_are_counted_not_guessed(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("text,organization\nOne,Blue Sky Partners\nTwo,\nThree,Marion County\n", encoding="utf-8")
    result = read_quotes([path])
    assert [q.sector for q in result.quotes] == ["", "", "government"]
    assert result.unknown_sectors == 2
    assert result.sector_sources == {"unknown": 2, "rule": 1}


def test_out_must_be_csv_or_jsonl_and_not_an_input(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("text\nOne\n", encoding="utf-8")
    before = sha256_file(path)
    assert runner.invoke(app, ["ingest", str(path), "--out", str(path)]).exit_code == 2
    result = runner.invoke(app, ["ingest", str(path), "--out", str(tmp_path / "q.txt")])
    assert result.exit_code == 2 and ".csv or .jsonl" in result.output
    assert sha256_file(path) == before


def test_redact_flag_masks_contact_details(tmp_path):
    pytest.importorskip("pipeline.redact")
    path = tmp_path / "q.csv"
    path.write_text('text\n"Write to jane.doe@example.org, we share data"\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["ingest", str(path), "--out", str(out), "--redact"])
    assert result.exit_code == 0, result.output
    text = read_table(out).rows[0]["text"]
    assert "jane.doe@example.org" not in text and text.endswith("we share data")
