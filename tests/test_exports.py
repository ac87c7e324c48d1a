"""Exports an analyst can open: CSV that runs nothing in a spreadsheet, XLSX with readable
columns, SPSS and Stata with labels, an R-ready CSV, one 0/1 column per code."""

from __future__ import annotations

import csv
import json

import openpyxl
import pyreadstat
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.coding import coding_columns
from pipeline.exports import ExportFormat, statistical_names, write_codings
from pipeline.frequencies import read_codings
from pipeline.runs import HashCoder

runner = CliRunner()
CODEBOOK = load_codebook()
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "'=already quoted", "-0.25"]


@pytest.fixture
def hash_coder(monkeypatch):
    """`framecode code` with a deterministic stand-in for the trained model (no model to load)."""
    monkeypatch.setattr("pipeline.cli.coding._coder", lambda ctx, book, model, kind=None: HashCoder(book))


@pytest.fixture
def formula_quotes(tmp_path):
    path = tmp_path / "quotes.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "text": t, "organization": "@Org", "Submitted": "2024-05-01"}) + "\n"
                            for i, t in enumerate(FORMULAS)), encoding="utf-8")
    return path


def codings_rows(n: int = 3) -> list[dict[str, str]]:
    ids = CODEBOOK.code_ids
    return [{"id": f"q{i}", "text": f"quote {i}", "organization": "Org" if i else "", "program": "CHP", "sector": "",
             "codes": ";".join(sorted({ids[0], ids[i % len(ids)]})) if i else "", "needs_review": "true" if i == 1 else "false",
             **{f"p_{c}": f"{0.1 * i:.4f}" for c in ids}, "evidence": json.dumps({ids[0]: "The sentence."}) if i else "",
             "coder": "m", "Respondent ID": str(100 + i), "p_value": "n/a"} for i in range(n)]


COLUMNS = [*coding_columns(CODEBOOK.code_ids), "Respondent ID", "p_value"]


def test_csv_written_by_code_runs_no_formula_and_reads_back_exactly(tmp_path, formula_quotes, hash_coder):
    out = tmp_path / "codings.csv"
    result = runner.invoke(app, ["code", str(formula_quotes), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]  # as Excel or LibreOffice parse it
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not c.lstrip("-").replace(".", "").isdigit()]
    assert any(c == "'=HYPERLINK(\"http://x\",\"y\")" for c in cells)
    assert read_codings(out)["text"].tolist() == FORMULAS  # framecode reads back what it wrote


@pytest.mark.parametrize("suffix", [".jsonl", ".xlsx"])
def test_jsonl_and_xlsx_from_code_keep_formula_text_exact(tmp_path, formula_quotes, hash_coder, suffix):
    out = tmp_path / f"codings{suffix}"
    result = runner.invoke(app, ["code", str(formula_quotes), "--out", str(out)])
    assert result.exit_code == 0, result.output
    if suffix == ".jsonl":
        texts = [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        sheet = openpyxl.load_workbook(out)["Codings"]
        column = [c.value for c in sheet[1]].index("Quote") + 1
        cells = [sheet.cell(row=r, column=column) for r in range(2, sheet.max_row + 1)]
        assert {c.data_type for c in cells} == {"s"}
        texts = [c.value for c in cells]
    assert texts == FORMULAS


def test_code_writes_xlsx_with_readable_columns_and_indicators(tmp_path, formula_quotes, hash_coder):
    out = tmp_path / "codings.xlsx"
    result = runner.invoke(app, ["code", str(formula_quotes), "--out", str(out), "--indicators"])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    sheet = book["Codings"]
    header = [c.value for c in sheet[1]]
    assert header[:6] == ["Quote id", "Quote", "Organization", "Program", "Sector", "Codes (ids)"]
    assert "Savings and return on investment (0/1)" in header and "P(Savings and return on investment)" in header
    assert "Submitted" in header  # input columns carried under their own name
    assert sheet.freeze_panes == "A2" and sheet[1][0].font.bold
    assert sheet.column_dimensions["B"].width >= len("=HYPERLINK")
    p = sheet.cell(row=2, column=header.index("P(Savings and return on investment)") + 1)
    assert isinstance(p.value, float) and p.number_format == "0.000"
    # framecode reads its own workbook back under the column ids, indicators agreeing with codes
    frame = read_codings(out)
    for _, row in frame.iterrows():
        codes = set(filter(None, row["codes"].split(";")))
        assert {c for c in CODEBOOK.code_ids if row[f"code_{c}"] == "1"} == codes


def test_code_keeps_the_inputs_source_origin_and_url_under_readable_names(tmp_path, hash_coder):
    quotes = tmp_path / "quotes.jsonl"
    quotes.write_text(json.dumps({"text": "We saved money.", "Source": "wave 1", "origin": "real",
                                  "Source URL": "https://example.org/a"}) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["code", str(quotes), "--out", str(tmp_path / "codings.xlsx")])
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(tmp_path / "codings.xlsx")["Codings"]
    row = {c.value: v.value for c, v in zip(sheet[1], sheet[2])}
    assert (row["Source"], row["Origin"], row["Source URL"]) == ("wave 1", "real", "https://example.org/a")


def test_code_refuses_an_unknown_output_suffix_before_coding(tmp_path, formula_quotes, hash_coder):
    result = runner.invoke(app, ["code", str(formula_quotes), "--out", str(tmp_path / "codings.txt")])
    assert result.exit_code == 2
    assert ".xlsx" in result.output and ".sav" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "codings.txt").exists()


@pytest.mark.parametrize(("suffix", "read"), [(".sav", pyreadstat.read_sav), (".dta", pyreadstat.read_dta)])
def test_spss_and_stata_carry_variable_and_value_labels(tmp_path, suffix, read):
    out = tmp_path / f"codings{suffix}"
    write_codings(out, codings_rows(), COLUMNS, CODEBOOK)
    frame, meta = read(str(out))
    cost = "code_cost_savings"
    assert meta.column_names_to_labels[cost] == CODEBOOK.code("cost_savings").name
    assert meta.column_names_to_labels["respondent_id"] == "Respondent ID"
    assert {int(k): v for k, v in meta.variable_value_labels[cost].items()} == {0: "not coded", 1: "coded"}
    assert {int(k): v for k, v in meta.variable_value_labels["needs_review"].items()} == {0: "no", 1: "yes"}
    first = CODEBOOK.code_ids[0]
    assert frame[f"code_{first}"].tolist() == [0, 1, 1]
    assert frame["needs_review"].tolist() == [0, 1, 0]
    assert frame["p_cost_savings"].tolist() == pytest.approx([0.0, 0.1, 0.2])
    assert frame["text"].tolist() == ["quote 0", "quote 1", "quote 2"]
    assert frame["p_value"].tolist() == ["n/a"] * 3  # an input column, kept as text
    assert frame["evidence"][1] == f"{CODEBOOK.code(first).name}: The sentence."


def test_spss_refuses_a_quote_beyond_its_string_limit_naming_the_row(tmp_path):
    rows = codings_rows()
    rows[2]["text"] = "x" * 200_000
    out = tmp_path / "codings.sav"
    with pytest.raises(Exception, match=r"row 4, column 'text': 200000 bytes exceed SPSS") as caught:
        write_codings(out, rows, COLUMNS, CODEBOOK)
    assert "xxxx" not in str(caught.value)
    assert not out.exists()
    write_codings(tmp_path / "codings.dta", rows, COLUMNS, CODEBOOK)  # Stata keeps it whole
    assert len(pyreadstat.read_dta(str(tmp_path / "codings.dta"))[0]["text"][2]) == 200_000


def test_r_csv_has_snake_case_names_na_and_indicators(tmp_path):
    out = tmp_path / "codings.csv"
    assert write_codings(out, codings_rows(), COLUMNS, CODEBOOK, format=ExportFormat.r) is ExportFormat.r
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert "respondent_id" in rows[0] and "code_cost_savings" in rows[0]
    assert rows[0]["organization"] == "NA" and rows[0]["sector"] == "NA" and rows[0]["codes"] == ""
    assert [r["needs_review"] for r in rows] == ["FALSE", "TRUE", "FALSE"]
    assert {r[f"code_{CODEBOOK.code_ids[0]}"] for r in rows} == {"0", "1"}
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")


def test_statistical_names_are_valid_unique_and_short():
    names = statistical_names(["Respondent ID", "respondent_id", "2024 score", "in", "What did data sharing change " * 3])
    assert list(names.values())[:4] == ["respondent_id", "respondent_id_2", "v_2024_score", "in_"]
    assert all(len(n) <= 32 and n[0].isalpha() for n in names.values())


def test_export_table_converts_a_codings_csv(tmp_path):
    source = tmp_path / "codings.csv"
    write_codings(source, codings_rows(), COLUMNS, CODEBOOK)
    out = tmp_path / "codings.dta"
    result = runner.invoke(app, ["export", "table", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 3 codings as stata" in result.output
    frame, meta = pyreadstat.read_dta(str(out))
    assert frame["respondent_id"].tolist() == ["100", "101", "102"]
    bad = runner.invoke(app, ["export", "table", str(source), "--out", str(tmp_path / "x.csv"), "--format", "spss"])
    assert bad.exit_code == 2 and "--format spss writes a .sav file" in bad.output


def test_export_table_names_a_code_the_codebook_lacks(tmp_path):
    rows = codings_rows()
    rows[1]["codes"] = "not_a_code"
    source = tmp_path / "codings.csv"
    write_codings(source, rows, COLUMNS, CODEBOOK)
    result = runner.invoke(app, ["export", "table", str(source), "--out", str(tmp_path / "x.sav")])
    assert result.exit_code == 2
    assert "row 3, column 'codes': code id(s) not_a_code are not in the codebook" in result.output
    assert not (tmp_path / "x.sav").exists()


def test_the_same_codings_give_a_byte_identical_workbook(tmp_path):
    source = tmp_path / "codings.csv"
    write_codings(source, codings_rows(), COLUMNS, CODEBOOK)
    for name in ("a.xlsx", "b.xlsx"):
        assert runner.invoke(app, ["export", "table", str(source), "--out", str(tmp_path / name)]).exit_code == 0
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
