import datetime as dt
import json
import zipfile

import pytest
from lxml import etree
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import code_guid, load_codebook
from pipeline.paths import PROJECT_ROOT
from pipeline.qdpx import export_qdpx
from pipeline.tables import write_table

runner = CliRunner()
XSD = PROJECT_ROOT.parent / "shared" / "refi-qda" / "Project.xsd"
NS = {"q": "urn:QDA-XML:project:1.0"}
STAMP = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
EVIDENCE = "Real-time records let café nurses act."
TEXT_Q1 = f"Before sharing, we faxed everything — 😀 slow. {EVIDENCE} It saved money too."


def write_codings(folder):
    rows = [
        {"id": "q1", "text": TEXT_Q1, "organization": "Chicago Department of Public Health", "program": "DASH",
         "sector": "public_health", "codes": "cost_savings;timely_data", "needs_review": "false",
         "p_cost_savings": "0.61", "p_timely_data": "0.93", "evidence": json.dumps({"timely_data": EVIDENCE}),
         "coder": "minilm-logreg-v1"},
        {"id": "q2", "text": "We show partners the dashboard.", "organization": "", "program": "", "sector": "",
         "codes": "", "needs_review": "true", "p_cost_savings": "0.1", "p_timely_data": "0.2", "evidence": "",
         "coder": "minilm-logreg-v1"},
    ]
    path = folder / "codings.csv"
    write_table(path, rows, list(rows[0]))
    return path


def write_human(folder):
    human = folder / "human"
    human.mkdir()
    (human / "Ana.jsonl").write_text(json.dumps({"id": "q2", "text": "x", "codes": ["show_the_product"], "coder": "Ana",
                                                 "reviewed_at": "2024-05-02T09:00:00+00:00"}) + "\n"
                                     + json.dumps({"id": "q404", "text": "x", "codes": [], "coder": "Ana"}) + "\n")
    return human


def open_project(path):
    with zipfile.ZipFile(path) as archive:
        project = etree.fromstring(archive.read("project.qde"))
        sources = {name: archive.read(name).decode("utf-8") for name in archive.namelist() if name.startswith("sources/")}
        infos = archive.infolist()
    return project, sources, infos


@pytest.fixture
def exported(tmp_path):
    out = tmp_path / "project.qdpx"
    summary = export_qdpx(write_codings(tmp_path), out, load_codebook(), human_dir=write_human(tmp_path), created=STAMP)
    return out, summary


@pytest.mark.skipif(not XSD.exists(), reason="shared REFI-QDA schema absent")
def test_project_validates_against_refi_qda_schema(exported):
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    project, _, _ = open_project(exported[0])
    assert schema.validate(project), schema.error_log


def test_offsets_point_at_the_evidence_or_the_whole_quote(exported):
    project, sources, _ = open_project(exported[0])
    code_names = {code_guid(c): c for c in load_codebook().code_ids}
    spans = {}
    for source in project.iterfind(".//q:TextSource", NS):
        text = sources["sources/" + source.get("plainTextPath").removeprefix("internal://")]
        for selection in source.iterfind("q:PlainTextSelection", NS):
            code = code_names[selection.find("q:Coding/q:CodeRef", NS).get("targetGUID")]
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            spans[(source.get("name"), code)] = text[start:end]
    assert spans[("q1", "timely_data")] == EVIDENCE
    assert spans[("q1", "cost_savings")] == TEXT_Q1
    assert spans[("q2", "show_the_product")] == "We show partners the dashboard."


def test_model_and_human_codings_are_kept_apart(exported):
    out, summary = exported
    project, _, _ = open_project(out)
    users = {u.get("guid"): u.get("name") for u in project.iterfind(".//q:User", NS)}
    assert sorted(users.values()) == ["Ana", "minilm-logreg-v1"]
    by_user = {}
    for selection in project.iterfind(".//q:PlainTextSelection", NS):
        by_user.setdefault(users[selection.get("creatingUser")], []).append(selection.findtext("q:Description", namespaces=NS))
    assert len(by_user["minilm-logreg-v1"]) == 2 and len(by_user["Ana"]) == 1
    assert any("probability: 0.9300" in d for d in by_user["minilm-logreg-v1"])
    assert "human" in by_user["Ana"][0] and "probability" not in by_user["Ana"][0]
    assert (summary.model_codings, summary.human_codings, summary.skipped_human) == (2, 1, 1)


def test_cases_carry_program_and_sector_and_reference_their_sources(exported):
    project, _, _ = open_project(exported[0])
    cases = project.findall(".//q:Case", NS)
    assert [c.get("name") for c in cases] == ["Chicago Department of Public Health"]
    values = [v.findtext("q:TextValue", namespaces=NS) for v in cases[0].iterfind("q:VariableValue", NS)]
    assert values == ["DASH", "public_health"]
    assert len(cases[0].findall("q:SourceRef", NS)) == 1


def test_codebook_uses_the_codebook_guids(exported):
    project, _, _ = open_project(exported[0])
    codable = {c.get("guid") for c in project.iterfind(".//q:Code[@isCodable='true']", NS)}
    assert codable == {code_guid(c) for c in load_codebook().code_ids}


def test_two_exports_are_byte_identical(tmp_path, exported):
    again = tmp_path / "again.qdpx"
    export_qdpx(tmp_path / "codings.csv", again, load_codebook(), human_dir=tmp_path / "human", created=STAMP)
    assert again.read_bytes() == exported[0].read_bytes()
    _, _, infos = open_project(again)
    assert {i.date_time for i in infos} == {(2024, 5, 1, 12, 0, 0)}


def test_run_folder_gives_model_id_and_timestamp(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    codings = write_codings(run)
    codings.write_text(codings.read_text().replace("minilm-logreg-v1", ""))
    (run / "manifest.json").write_text(json.dumps({"model": {"id": "model-xyz"}, "started_at": "2024-01-02T03:04:05Z"}))
    out = tmp_path / "run.qdpx"
    result = runner.invoke(app, ["export", "qdpx", str(run), "--out", str(out), "--human", str(write_human(tmp_path))])
    assert result.exit_code == 0, result.output
    project, _, infos = open_project(out)
    assert "model-xyz" in {u.get("name") for u in project.iterfind(".//q:User", NS)}
    assert project.get("creationDateTime") == "2024-01-02T03:04:05Z"
    assert infos[0].date_time == (2024, 1, 2, 3, 4, 4)  # zip times have 2-second resolution


def test_cli_rejects_unknown_codes_without_writing(tmp_path):
    path = tmp_path / "codings.csv"
    write_table(path, [{"id": "q1", "text": "t", "codes": "made_up"}], ["id", "text", "codes"])
    result = runner.invoke(app, ["export", "qdpx", str(path), "--out", str(tmp_path / "x.qdpx")])
    assert result.exit_code == 2 and "made_up" in result.output
    assert not (tmp_path / "x.qdpx").exists()
