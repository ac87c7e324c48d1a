"""Tables keep text exactly: no NA conversion, no BOM in headers, shapes reported, XLSX text never a formula."""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import openpyxl
import pytest

from pipeline.errors import InputError, ValidationError
from pipeline.files import sha256_file
from pipeline.tables import read_table, write_table, write_workbook

TRICKY = ["None", "NA", "null", "N/A", "#N/A", "=1+1", "+cmd", "-5", "@SUM(A1)", "line one\nline two", "“curly” ’quotes’", "  padded  "]
STAMP = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_round_trip_keeps_every_cell_exactly(tmp_path, suffix):
    rows = [{"id": str(i), "text": text} for i, text in enumerate(TRICKY)]
    path = tmp_path / f"t{suffix}"
    write_table(path, rows, ["id", "text"])
    table = read_table(path)
    assert table.columns == ("id", "text")
    assert [r["text"] for r in table.rows] == TRICKY


def test_xlsx_stores_formula_looking_text_as_strings(tmp_path):
    path = tmp_path / "t.xlsx"
    write_table(path, [{"text": t} for t in TRICKY], ["text"])
    sheet = openpyxl.load_workbook(path).active
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == TRICKY
    assert {c.data_type for c in cells} == {"s"}


def test_xlsx_numbers_stay_numbers(tmp_path):
    path = tmp_path / "t.xlsx"
    write_table(path, [{"p": 0.25, "n": 3}], ["p", "n"])
    row = next(openpyxl.load_workbook(path).active.iter_rows(min_row=2, values_only=True))
    assert row == (0.25, 3)
    assert read_table(path).rows == [{"p": "0.25", "n": "3"}]


def test_bom_never_reaches_the_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf text ,id\r\nNA,1\r\n")
    table = read_table(path)
    assert table.columns == ("text", "id")
    assert table.rows == [{"text": "NA", "id": "1"}]
    assert table.encoding == "utf-8-sig"


def test_cp1252_export_is_decoded_and_its_rows_flagged(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,id\nplain,1\ncaf\xe9 \u201cdata\u201d,2\n".encode("cp1252"))
    table = read_table(path)
    assert table.encoding == "cp1252"
    assert table.rows[1]["text"] == "caf\xe9 \u201cdata\u201d"
    assert [n.row for n in table.notices] == [3]  # as the spreadsheet shows it: the header is row 1


def test_wrong_field_counts_are_reported_not_padded(tmp_path):
    path = tmp_path / "shape.csv"
    path.write_text('text,id\n"a, b",1\nshort\nx,2,extra\n"multi\nline",4\n', encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        read_table(path)
    assert [(p.file, p.row) for p in caught.value.problems] == [(str(path), 3), (str(path), 4)]
    lenient = read_table(path, strict=False)
    assert lenient.rows == [{"text": "a, b", "id": "1"}, {"text": "multi\nline", "id": "4"}]
    assert lenient.row_numbers == (2, 5)


def test_tsv_and_jsonl_read_as_text(tmp_path):
    tsv = tmp_path / "t.TSV"
    tsv.write_text("Text\tid\nnull\t7\n", encoding="utf-8")
    assert read_table(tsv).rows == [{"Text": "null", "id": "7"}]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(json.dumps({"text": "NA", "n": 3, "labels": ["a", "b"], "x": None}) + "\n\n", encoding="utf-8")
    assert read_table(jsonl).rows == [{"text": "NA", "n": "3", "labels": "a;b", "x": ""}]


def test_unsupported_suffix_names_file_and_supported_types(tmp_path):
    path = tmp_path / "quotes.xls"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match=r"quotes\.xls.*\.csv, \.tsv, \.xlsx, \.jsonl"):
        read_table(path)


def test_csv_is_utf8_without_bom_with_unix_line_ends(tmp_path):
    path = tmp_path / "out.csv"
    write_table(path, [{"text": "caf\xe9, \u201cok\u201d"}], ["text"])
    assert path.read_bytes() == 'text\n"caf\xe9, \u201cok\u201d"\n'.encode("utf-8")


def test_jsonl_keeps_non_ascii_literal(tmp_path):
    path = tmp_path / "out.jsonl"
    write_table(path, [{"text": "\u201cé\u201d", "extra": "dropped"}], ["text"])
    assert path.read_text(encoding="utf-8") == '{"text": "\u201cé\u201d"}\n'


def test_workbook_with_timestamp_is_byte_identical(tmp_path):
    sheets = {"codings": ([{"id": "1", "text": "=2"}], ["id", "text"]), "summary": ([{"n": 1}], ["n"])}
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_workbook(first, sheets, timestamp=STAMP)
    write_workbook(second, sheets, timestamp=STAMP)
    assert sha256_file(first) == sha256_file(second)
    with zipfile.ZipFile(first) as archive:  # entries dated by the timestamp, not by now()
        assert {info.date_time for info in archive.infolist()} == {(2024, 5, 6, 7, 8, 8)}
    book = openpyxl.load_workbook(first)
    assert book.sheetnames == ["codings", "summary"]
    assert book.properties.created == book.properties.modified == STAMP.replace(tzinfo=None)


def test_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "out.xlsx"
    write_table(path, [{"text": "fine"}], ["text"])
    before = sha256_file(path)
    with pytest.raises(InputError, match="row 2, column 'text'"):  # the row a spreadsheet shows
        write_table(path, [{"text": "bad \x07 bell"}], ["text"])
    assert sha256_file(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.xlsx"]


def test_csv_cells_a_spreadsheet_would_run_get_a_leading_quote_and_read_back_exactly(tmp_path):
    import csv

    texts = ["=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3", "\tlead tab", "\rlead return", "'=quoted", "''@twice",
             "-0.25", "+3", "1e-5", "plain", "'not a formula"]
    path = tmp_path / "t.csv"
    write_table(path, [{"text": t, "p": -0.25} for t in texts], ["text", "p"])
    with open(path, newline="", encoding="utf-8") as handle:
        written = list(csv.reader(handle))[1:]
    assert [row[0] for row in written] == ["'=1+1", "'+cmd|' /C calc'!A0", "'@SUM(A1)", "'-2+3", "'\tlead tab", "'\rlead return",
                                           "''=quoted", "'''@twice", "-0.25", "+3", "1e-5", "plain", "'not a formula"]
    assert {row[1] for row in written} == {"-0.25"}  # numbers are never touched
    assert [r["text"] for r in read_table(path).rows] == texts


def test_workbook_has_a_frozen_bold_header_sized_columns_and_wrapped_long_text(tmp_path):
    path = tmp_path / "t.xlsx"
    write_table(path, [{"id": "q1", "text": "word " * 60, "p": 0.5}], ["id", "text", "p"], number_formats={"p": "0.0%"})
    sheet = openpyxl.load_workbook(path).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:C2"
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.column_dimensions["A"].width < sheet.column_dimensions["B"].width <= 60
    assert sheet["B2"].alignment.wrap_text and not sheet["A2"].alignment.wrap_text
    assert sheet["C2"].number_format == "0.0%" and sheet["C2"].value == 0.5
