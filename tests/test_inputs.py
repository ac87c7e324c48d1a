"""A researcher's own files, as they come, through every command that reads quotes: one reader,
the same column options, one policy, rows numbered as the spreadsheet shows them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import docx
import openpyxl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.coding import stdin_quotes
from pipeline.columns import ReadOptions, map_columns
from pipeline.ingest import read_quotes
from pipeline.paths import CORPUS_DIR
from pipeline.tables import read_table

runner = CliRunner()
QUESTION = "What value did sharing data bring to your organization?"
SECRET = "our clients' diagnoses"
LONG = "word " * 40_000  # 200,000 characters, one sentence


@pytest.fixture
def hash_coder(monkeypatch):
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")


def survey(path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Respondent ID", "Submitted", "Organization Name", "Programme", QUESTION])
        writer.writerow(["R-001", "2026-05-01 10:00", "Chicago Department of Public Health", "DASH",
                         f"We could target outreach to the blocks with the most overdoses, not {SECRET}."])
        writer.writerow(["R-002", "2026-05-01 11:00", "University of Vermont", "CHP", "  "])
        writer.writerow(["R-003", "2026-05-02 09:30", "University of Vermont", "chp", '=HYPERLINK("http://x","y")'])
    return path


def workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["Collected by the evaluation team in May"])
    notes.append(["Names removed"])
    for name, rows in {"CHP": [("c1", "Peer learning made our dashboards better.", "University of Vermont")],
                       "DASH": [("d1", "Shared data cut duplicate home visits.", "Chicago Department of Public Health"),
                                ("d2", "The county saved money on referrals.", "Chicago Department of Public Health")]}.items():
        sheet = book.create_sheet(name)
        sheet.append(["ID", "Testimonial", "Organisation"])
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


TRANSCRIPT = """Interview with the Regional Health Alliance, 12 May

Interviewer: How did data sharing change your work?
RHA: "Well, it let us reach more families.
We finally saw who fell through the cracks.
Interviewer: What did the board say?
RHA: As I told the board, \u201csharing data saved us money.\u201d
[00:14:02] Interviewer: Anything else?
RHA: [laughs] Trust. Partners trusted the numbers.
Interviewer: Thank you.
RHA: Thank you for having us.
Interviewer: One last thing?
RHA: Well, as I said, "the shared records mean our nurses stop repeating intake.
"""


def word_document(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Partner statements", level=1)
    document.add_paragraph("\u201cData sharing saved our county money on every referral.\u201d")
    document.add_paragraph("-University of Vermont (CHP)")
    document.save(path)
    return path


def pdf_document(path: Path, lines: list[str]) -> Path:
    """A one-page PDF with ``lines`` of Helvetica text (written by hand: no PDF writer needed)."""
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    content = "BT /F1 11 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in escaped) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    data = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(data))
        data += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(data)
    data += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    data += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    data += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(data)
    return path


def test_common_spellings_are_recognised_and_other_columns_carried():
    mapped = map_columns(["Respondent ID", "Organization Name", "Programme", "Response", "codes", "Submitted"])
    assert mapped.fields["id"] == "Respondent ID" and mapped.fields["organization"] == "Organization Name"
    assert mapped.fields["program"] == "Programme" and mapped.fields["text"] == "Response"
    # every column but the text is carried; a name an output column takes gets input_
    assert [name for _, name in mapped.carried] == ["Respondent ID", "Organization Name", "Programme", "input_codes", "Submitted"]
    assert map_columns(["ID", "Text", "Organization"], ReadOptions(organization_column="organization")).carried == ()


def test_survey_export_keeps_ids_organizations_and_every_column(tmp_path):
    source = survey(tmp_path / "survey.csv")
    out = tmp_path / "quotes.csv"
    result = runner.invoke(app, ["ingest", str(source), "--out", str(out), "--text-column", QUESTION.upper()])
    assert result.exit_code == 0, result.output
    rows = read_table(out).rows
    assert [r["id"] for r in rows] == ["R-001", "R-003"]
    assert [r["sector"] for r in rows] == ["public_health", "academic_research"]
    assert [r["Submitted"] for r in rows] == ["2026-05-01 10:00", "2026-05-02 09:30"]
    assert rows[1]["text"] == '=HYPERLINK("http://x","y")'  # read back exactly
    assert "survey.csv, row 3, column" in result.output and "empty text; row skipped" in result.output
    assert SECRET not in result.output


def test_workbook_reads_every_sheet_with_quotes_and_skips_the_notes(tmp_path):
    book = workbook(tmp_path / "partners.xlsx")
    result = read_quotes([book])
    assert [(q.id, dict(q.extra)["sheet"]) for q in result.quotes] == [("c1", "CHP"), ("d1", "DASH"), ("d2", "DASH")]
    assert [q.sector for q in result.quotes] == ["academic_research", "public_health", "public_health"]
    assert [q.program for q in result.quotes] == ["CHP", "DASH", "DASH"]  # no program column: the sheets' names
    assert [str(n) for n in result.notices] == [f"{book}, sheet Notes: sheet skipped: no text column; name one of "
                                                "text, quote, testimonial, statement, comment, comments, response, answer, "
                                                "testimony or pass --text-column (columns: Collected by the evaluation team in May)",
                                                f"{book}, sheet CHP: no program column: program CHP taken from the sheet's name",
                                                f"{book}, sheet DASH: no program column: program DASH taken from the sheet's name"]
    assert [q.source for q in read_quotes([book], ReadOptions(sheet="DASH")).quotes] == ["partners.xlsx:DASH row 2", "partners.xlsx:DASH row 3"]
    missing = runner.invoke(app, ["ingest", str(book), "--sheet", "Dash 2", "--out", str(tmp_path / "q.csv")])
    assert missing.exit_code == 2 and "no sheet 'Dash 2'; sheets: Notes, CHP, DASH" in missing.output


def test_word_pdf_and_transcripts_alone_and_in_a_folder(tmp_path):
    folder = tmp_path / "interviews"
    folder.mkdir()
    word_document(folder / "statements.docx")
    pdf_document(folder / "report.pdf", ['"Sharing data let us reach more families."', "-Chicago Department of Public Health (DASH)"])
    (folder / "slides.pptx").write_bytes(b"x")
    out = tmp_path / "quotes.csv"
    result = runner.invoke(app, ["ingest", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_table(out).rows
    assert [(r["text"], r["program"], r["source"]) for r in rows] == [
        ("Sharing data let us reach more families.", "DASH", "report.pdf:page 1"),
        ("Data sharing saved our county money on every referral.", "CHP", "statements.docx:paragraph 2"),
    ]
    assert "slides.pptx: skipped: file type '.pptx' is not read" in result.output
    alone = runner.invoke(app, ["ingest", str(folder / "statements.docx"), "--out", str(out)])
    assert alone.exit_code == 0 and "1 quote(s)" in alone.output

    transcript = tmp_path / "rha.txt"
    transcript.write_text(TRANSCRIPT, encoding="utf-8")
    turns = read_quotes([transcript], ReadOptions(speakers=("rha",))).quotes
    assert [q.text for q in turns] == [
        "Well, it let us reach more families. We finally saw who fell through the cracks.",
        "sharing data saved us money.",
        "Trust. Partners trusted the numbers.",
        "Thank you for having us.",
        "the shared records mean our nurses stop repeating intake.",
    ]
    assert {dict(q.extra)["speaker"] for q in turns} == {"RHA"} and turns[1].source == "rha.txt:line 7"
    unnamed = runner.invoke(app, ["ingest", str(transcript), "--speaker", "Director", "--out", str(out)])
    assert unnamed.exit_code == 2 and "no turns by Director (speakers found: Interviewer, RHA)" in unnamed.output


def test_no_quotes_is_an_error_not_success(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,organization\n", encoding="utf-8")
    for given in (empty, header_only):
        result = runner.invoke(app, ["ingest", str(given), "--out", str(tmp_path / "q.csv")])
        assert result.exit_code == 2 and "no quotes found" in result.output, result.output
    assert not (tmp_path / "q.csv").exists()


def test_long_quote_is_read_whole_in_every_format_and_noticed(tmp_path):
    as_csv = tmp_path / "long.csv"
    with open(as_csv, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["id", "text"], ["long", LONG], ["short", "Data sharing helps."]])
    as_jsonl = tmp_path / "long.jsonl"
    as_jsonl.write_text(json.dumps({"id": "long2", "text": LONG}) + "\n", encoding="utf-8")
    result = read_quotes([as_csv, as_jsonl])
    assert [len(q.text) for q in result.quotes] == [len(LONG), len("Data sharing helps."), len(LONG)]  # text kept exactly
    assert [(n.file.split("/")[-1], n.row) for n in result.notices] == [("long.csv", 2), ("long.jsonl", 1)]
    assert all("199,999 characters is longer than the encoder reads" in n.rule for n in result.notices)


def test_recode_takes_the_same_options_policy_and_carries_columns(tmp_path, hash_coder):
    source = survey(tmp_path / "survey.csv")
    book = workbook(tmp_path / "partners.xlsx")
    (tmp_path / "a").mkdir()
    result = runner.invoke(app, ["recode", str(source), "--runs-dir", str(tmp_path / "a"), "--text-column", QUESTION])
    assert result.exit_code == 0, result.output
    rows, rejected = _run_outputs(tmp_path / "a")
    assert [(r["id"], r["Respondent ID"], r["Submitted"]) for r in rows] == [
        ("R-001", "R-001", "2026-05-01 10:00"), ("R-003", "R-003", "2026-05-02 09:30")]
    assert rejected == [("survey.csv", "3", "skipped", "empty text; row skipped")]

    (tmp_path / "b").mkdir()
    result = runner.invoke(app, ["recode", str(book), "--runs-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    rows, rejected = _run_outputs(tmp_path / "b")
    assert [(r["id"], r["sheet"]) for r in rows] == [("c1", "CHP"), ("d1", "DASH"), ("d2", "DASH")]
    assert ("partners.xlsx", "0", "noted", "sheet Notes: sheet skipped: no text column; name one of text, quote, testimonial, "
            "statement, comment, comments, response, answer, testimony or pass --text-column (columns: "
            "Collected by the evaluation team in May)") in rejected


def test_recode_of_the_corpus_skips_the_registry(tmp_path, hash_coder):
    result = runner.invoke(app, ["recode", *map(str, sorted(CORPUS_DIR.glob("*.csv"))), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "organizations.csv skipped: the organization registry" in result.output
    header_only = tmp_path / "header.csv"
    header_only.write_text("text\n", encoding="utf-8")
    empty = runner.invoke(app, ["recode", str(header_only), "--runs-dir", str(tmp_path / "runs")])
    assert empty.exit_code == 2 and "no quotes found" in empty.output
    blank_rows = tmp_path / "blank_rows.csv"
    blank_rows.write_text("text,organization\n,A\n  ,B\n", encoding="utf-8")
    blank = runner.invoke(app, ["recode", str(blank_rows), "--runs-dir", str(tmp_path / "blank_runs")])
    assert blank.exit_code == 2 and "no quotes found" in blank.output, blank.output
    assert not (tmp_path / "blank_runs").exists()
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("text\nWe saved money.\n", encoding="utf-8")
    mixed = runner.invoke(app, ["recode", str(quotes), str(header_only), str(blank_rows), "--runs-dir", str(tmp_path / "mixed")])
    assert mixed.exit_code == 0, mixed.output
    _, rejected = _run_outputs(tmp_path / "mixed")
    assert {r for r in rejected if r[1] == "0"} == {("header.csv", "0", "noted", "no quotes found"),
                                                   ("blank_rows.csv", "0", "noted", "no quotes found")}


def _run_outputs(runs: Path) -> tuple[list[dict], list[tuple]]:
    run_dir = next(runs.iterdir())
    with open(run_dir / "codings.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(run_dir / "rejected.csv", encoding="utf-8", newline="") as handle:
        rejected = [(Path(r["file"]).name, r["row"], r["outcome"], r["reason"]) for r in csv.DictReader(handle)]
    return rows, rejected


def test_stdin_gives_one_quote_per_line():
    quotes = stdin_quotes(["Shared data cut duplicate visits.\n", "\n", "We saved money.\n"])
    assert [(q.text, q.source) for q in quotes] == [("Shared data cut duplicate visits.", "stdin:line 1"),
                                                   ("We saved money.", "stdin:line 3")]
    empty = runner.invoke(app, ["tag", "-"], input="\n")
    assert empty.exit_code == 2 and "standard input held no testimonial" in empty.output


@pytest.mark.slow
def test_code_and_tag_read_like_ingest(tmp_path):
    source = survey(tmp_path / "survey.csv")
    out = tmp_path / "codings.csv"
    coded = runner.invoke(app, ["code", str(source), "--out", str(out), "--text-column", QUESTION, "--model-only"])
    assert coded.exit_code == 0, coded.output
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["id"], r["Respondent ID"], r["Submitted"]) for r in rows] == [
        ("R-001", "R-001", "2026-05-01 10:00"), ("R-003", "R-003", "2026-05-02 09:30")]
    assert "row 3, column" in coded.output and SECRET not in coded.output

    own = tmp_path / "own.csv"  # the input's own source, origin and URL columns reach the codings
    own.write_text("text,Source,origin,Source URL\nWe saved money.,wave 1,real,https://example.org/a\n", encoding="utf-8")
    coded = runner.invoke(app, ["code", str(own), "--out", str(tmp_path / "own_codings.csv"), "--model-only"])
    assert coded.exit_code == 0, coded.output
    row = read_table(tmp_path / "own_codings.csv").rows[0]
    assert (row["source"], row["origin"], row["source_url"]) == ("wave 1", "real", "https://example.org/a")

    tagged = runner.invoke(app, ["tag", "--file", str(source), "--text-column", QUESTION, "--json"])
    assert tagged.exit_code == 0, tagged.output
    lines = [json.loads(line) for line in tagged.stdout.splitlines() if line.startswith("{")]
    assert [(r["id"], len(r["codes"])) for r in lines] == [("R-001", 9), ("R-003", 9)]
