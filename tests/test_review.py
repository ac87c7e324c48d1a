import datetime as dt
import json

import numpy as np
import openpyxl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ValidationError
from pipeline.review import Strategy, export_review, import_review, select_uncertain
from pipeline.tables import read_table, write_table

runner = CliRunner()
CODES = ("cost_savings", "timely_data")
STAMP = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
SECRET = "=HYPERLINK(\"x\") Maria's private story"


def codings_file(tmp_path, evidence=False):
    rows = [
        {"id": "q1", "text": SECRET, "organization": "Org A", "program": "CHP", "sector": "housing",
         "codes": "cost_savings", "needs_review": "true", "p_cost_savings": "0.55", "p_timely_data": "0.10"},
        {"id": "q2", "text": "Records arrive on time now.", "organization": "Org B", "program": "DASH", "sector": "",
         "codes": "timely_data", "needs_review": "false", "p_cost_savings": "0.02", "p_timely_data": "0.97"},
        {"id": "q3", "text": "We avoided ER visits.", "organization": "Org A", "program": "CHP", "sector": "housing",
         "codes": "", "needs_review": "true", "p_cost_savings": "0.45", "p_timely_data": "0.48"},
    ]
    columns = ["id", "text", "organization", "program", "sector", "codes", "needs_review", "p_cost_savings", "p_timely_data"]
    if evidence:
        for row in rows:
            row["evidence"] = "nearest: q9"
        columns.append("evidence")
    path = tmp_path / "codings.csv"
    write_table(path, rows, columns)
    return path


def sheet_rows(path, sheet="review"):
    workbook = openpyxl.load_workbook(path)
    values = list(workbook[sheet].iter_rows(values_only=True))
    return [dict(zip(values[0], row)) for row in values[1:]], workbook


def test_export_needs_review_writes_flagged_quotes_with_prefilled_code_columns(tmp_path):
    out = tmp_path / "review.xlsx"
    assert export_review(codings_file(tmp_path, evidence=True), out, timestamp=STAMP) == 2
    rows, workbook = sheet_rows(out)
    assert {r["id"] for r in rows} == {"q1", "q3"}
    q1 = next(r for r in rows if r["id"] == "q1")
    assert (q1["cost_savings"], q1["timely_data"]) == (1, 0)
    assert q1["suggested_codes"] == "cost_savings" and q1["evidence"] == "nearest: q9"
    assert q1["probabilities"].startswith("cost_savings=0.55")
    assert "reviewer_note" in q1 and "instructions" in workbook.sheetnames
    cell = next(c for c in workbook["review"]["B"] if c.value == SECRET)
    assert cell.data_type == "s"  # a quote starting with '=' stays text, never a formula


def test_export_is_byte_identical_for_the_same_timestamp(tmp_path):
    codings = codings_file(tmp_path)
    export_review(codings, tmp_path / "a.xlsx", timestamp=STAMP)
    export_review(codings, tmp_path / "b.xlsx", timestamp=STAMP)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()


def test_uncertain_strategy_prefers_uncertain_and_diverse_quotes():
    probabilities = np.array([[0.5, 0.5], [0.5, 0.5], [0.98, 0.01], [0.45, 0.9], [0.52, 0.49]])
    picked = select_uncertain(probabilities, 2)
    assert picked[0] == 0
    assert picked[1] not in (1, 4)  # a duplicate or near-duplicate of row 0 adds nothing
    assert 2 not in select_uncertain(probabilities, 4)  # the confident row comes last


def test_export_uncertain_with_limit(tmp_path):
    out = tmp_path / "review.xlsx"
    assert export_review(codings_file(tmp_path), out, strategy=Strategy.uncertain, limit=1, timestamp=STAMP) == 1
    rows, _ = sheet_rows(out)
    assert rows[0]["id"] == "q3"


def edit(path, changes, note=None):
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["review"]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        quote = row[header.index("id")].value
        for column, value in changes.get(quote, {}).items():
            if column not in header:
                header.append(column)
                sheet.cell(row=1, column=len(header), value=column)
            sheet.cell(row=row[0].row, column=header.index(column) + 1, value=value)
    workbook.save(path)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_review_round_trip_stores_codings_under_the_coder(tmp_path):
    sheet = tmp_path / "review.xlsx"
    export_review(codings_file(tmp_path), sheet, timestamp=STAMP)
    edit(sheet, {"q1": {"decision": "change", "cost_savings": 0, "timely_data": "yes", "reviewer_note": "records, not savings"},
                 "q3": {"decision": "Accept", "cost_savings": None}})
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana Diaz", "--labels-dir", str(tmp_path / "labels")])
    assert result.exit_code == 0, result.output
    assert "1 quote changed: 1 code removed, 1 added; 1 accepted as suggested; 0 skipped; 0 left undecided" in result.output
    rows = read_jsonl(tmp_path / "labels" / "human" / "Ana_Diaz.jsonl")
    by_id = {r["id"]: r for r in rows}
    assert by_id["q1"]["codes"] == ["timely_data"] and by_id["q3"]["codes"] == []
    assert by_id["q1"]["coder"] == "Ana Diaz" and by_id["q1"]["text"] == SECRET
    assert by_id["q1"]["origin"] == "reviewed" and by_id["q1"]["reviewed_at"]
    assert (by_id["q1"]["decision"], by_id["q3"]["decision"]) == ("change", "accept")
    assert by_id["q1"]["reviewer_note"] == "records, not savings"


def many_codings(tmp_path, n=36):
    rows = [{"id": f"q{i}", "text": f"Quote number {i}.", "codes": "cost_savings" if i % 2 else "cost_savings;timely_data",
             "needs_review": "true", "p_cost_savings": "0.55", "p_timely_data": f"{0.40 + i / 1000:.3f}"} for i in range(n)]
    path = tmp_path / "many.csv"
    write_table(path, rows, ["id", "text", "codes", "needs_review", "p_cost_savings", "p_timely_data"])
    return path


def test_import_stores_only_the_rows_a_person_decided(tmp_path):
    sheet = tmp_path / "review.xlsx"
    assert export_review(many_codings(tmp_path), sheet, timestamp=STAMP) == 36
    edit(sheet, {
        "q0": {"decision": "change", "cost_savings": 0, "timely_data": 0},  # two codes removed
        "q1": {"decision": "change", "cost_savings": 0, "timely_data": 1},  # one removed, one added
        "q2": {"decision": "change", "timely_data": 0},  # one removed
        "q4": {"decision": "change", "cost_savings": 0},  # one removed
        "q5": {"decision": "accept"},
        "q6": {"decision": "accept"},
        "q7": {"decision": "skip", "reviewer_note": "unsure"},
        "q8": {"reviewer_note": "a note without a decision"},
    })
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana", "--labels", str(tmp_path / "labels")])
    assert result.exit_code == 0, result.output
    assert ("4 quotes changed: 5 codes removed, 1 added; 2 accepted as suggested; 1 skipped; 29 left undecided "
            "(2 notes on skipped or undecided rows not imported)") in result.output
    stored = {r["id"]: r["codes"] for r in read_jsonl(tmp_path / "labels" / "human" / "Ana.jsonl")}
    assert stored == {"q0": [], "q1": ["timely_data"], "q2": ["cost_savings"], "q4": ["timely_data"],
                      "q5": ["cost_savings"], "q6": ["cost_savings", "timely_data"]}


def test_edited_codes_need_the_change_decision_and_nothing_decided_is_refused(tmp_path):
    sheet = tmp_path / "review.xlsx"
    export_review(many_codings(tmp_path, 3), sheet, timestamp=STAMP)
    labels = tmp_path / "labels"
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana", "--labels-dir", str(labels)])
    assert result.exit_code == 2 and "no row is decided (0 skipped, 3 undecided)" in result.output
    edit(sheet, {"q0": {"cost_savings": 0}, "q1": {"decision": "accept", "cost_savings": 0}, "q2": {"decision": "maybe"}})
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana", "--labels-dir", str(labels)])
    assert result.exit_code == 2 and "3 problem(s)" in result.output
    assert "the row has no decision; set 'change'" in result.output
    assert "the row has decision 'accept'; set 'change'" in result.output
    assert "expected accept, change, skip or empty" in result.output
    assert not labels.exists()


def test_export_has_dropdowns_widths_wrapping_a_frozen_header_and_readable_evidence(tmp_path):
    codings = codings_file(tmp_path)
    table = read_table(codings)
    rows = [{**row, "evidence": json.dumps({"cost_savings": "We saved money."}) if row["id"] == "q1" else ""} for row in table.rows]
    write_table(codings, rows, [*table.columns, "evidence"])
    out = tmp_path / "review.xlsx"
    export_review(codings, out, timestamp=STAMP)
    rows, workbook = sheet_rows(out)
    sheet = workbook["review"]
    header = [c.value for c in sheet[1]]
    letter = {name: openpyxl.utils.get_column_letter(k) for k, name in enumerate(header, start=1)}
    validations = {cells: v.formula1 for v in sheet.data_validations.dataValidation for cells in str(v.sqref).split()}
    assert validations[f"{letter['decision']}2:{letter['decision']}3"] == '"accept,change,skip"'
    assert validations[f"{letter['cost_savings']}2:{letter['cost_savings']}3"] == '"0,1"'
    assert validations[f"{letter['timely_data']}2:{letter['timely_data']}3"] == '"0,1"'
    assert all(r["decision"] is None for r in rows)
    assert sheet.freeze_panes == "B2"
    assert sheet.column_dimensions[letter["text"]].width >= 60
    assert sheet[f"{letter['text']}2"].alignment.wrap_text
    assert next(r for r in rows if r["id"] == "q1")["evidence"] == "cost_savings (p=0.55): We saved money."
    assert {workbook[name].sheet_state for name in ("manifest", "quotes")} == {"hidden"}


def test_reimport_updates_only_that_coders_rows_for_those_ids(tmp_path):
    labels = tmp_path / "labels"
    other = labels / "human" / "Ben.jsonl"
    other.parent.mkdir(parents=True)
    other.write_text('{"id": "q1", "text": "t", "codes": [], "coder": "Ben", "reviewed_at": ""}\n')
    before = other.read_bytes()
    mine = labels / "human" / "Ana.jsonl"
    mine.write_text('{"id": "q9", "text": "t", "codes": ["cost_savings"], "coder": "Ana", "reviewed_at": ""}\n')
    sheet = tmp_path / "review.xlsx"
    export_review(codings_file(tmp_path), sheet, timestamp=STAMP)
    edit(sheet, {"q1": {"decision": "accept"}, "q3": {"decision": "accept"}})
    first = import_review(sheet, "Ana", labels)
    assert (first.added, first.updated, first.kept) == (2, 0, 1)
    edit(sheet, {"q1": {"decision": ""}, "q3": {"decision": "change", "timely_data": 1}})
    second = import_review(sheet, "Ana", labels)
    assert (second.added, second.updated, second.kept) == (0, 1, 2)
    rows = {r["id"]: r for r in read_jsonl(mine)}
    assert set(rows) == {"q9", "q1", "q3"} and rows["q3"]["codes"] == ["timely_data"]
    assert other.read_bytes() == before


def test_import_refuses_a_name_that_maps_onto_another_coders_file(tmp_path):
    labels = tmp_path / "labels"
    (labels / "human").mkdir(parents=True)
    (labels / "human" / "Ana_Diaz.jsonl").write_text('{"id": "q1", "text": "t", "codes": [], "coder": "Ana_Diaz"}\n')
    sheet = tmp_path / "review.xlsx"
    export_review(codings_file(tmp_path), sheet, timestamp=STAMP)
    edit(sheet, {"q1": {"decision": "accept"}})
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana Diaz", "--labels-dir", str(labels)])
    assert result.exit_code == 2 and "Ana_Diaz" in result.output


def test_import_reports_every_bad_cell_at_once_without_quote_text(tmp_path):
    sheet = tmp_path / "review.xlsx"
    export_review(codings_file(tmp_path), sheet, timestamp=STAMP)
    edit(sheet, {"q1": {"cost_savings": "maybe", "made_up_code": 1}, "q3": {"id": "q77"}})
    with pytest.raises(ValidationError) as caught:
        import_review(sheet, "Ana", tmp_path / "labels")
    rules = [str(p) for p in caught.value.problems]
    assert any("made_up_code" in r and "unknown column" in r for r in rules)
    assert any("'cost_savings'" in r and "expected 1, 0, yes, no or blank" in r for r in rules)
    assert any("q77" in r and "not one of the quotes exported" in r for r in rules)
    assert SECRET not in str(caught.value) and "private" not in str(caught.value)
    assert not (tmp_path / "labels").exists()


def test_import_rejects_edited_text_and_empty_coder(tmp_path):
    sheet = tmp_path / "review.xlsx"
    export_review(codings_file(tmp_path), sheet, timestamp=STAMP)
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "  ", "--labels-dir", str(tmp_path / "l")])
    assert result.exit_code == 2 and "empty coder name" in result.output
    edit(sheet, {"q1": {"text": "changed"}})
    result = runner.invoke(app, ["review", "import", str(sheet), "--coder", "Ana", "--labels-dir", str(tmp_path / "l")])
    assert result.exit_code == 2 and "text differs" in result.output


def test_cli_export_needs_review_column(tmp_path):
    path = tmp_path / "plain.csv"
    write_table(path, [{"id": "q1", "text": "t", "codes": ""}], ["id", "text", "codes"])
    result = runner.invoke(app, ["review", "export", str(path), "--out", str(tmp_path / "r.xlsx")])
    assert result.exit_code == 2 and "needs_review" in result.output
    assert not (tmp_path / "r.xlsx").exists()
