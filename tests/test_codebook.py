import dataclasses
import textwrap
import uuid

import pytest
import yaml
from lxml import etree
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import (
    InvalidCodebookError,
    code_guid,
    export_qdc,
    import_qdc,
    load_codebook,
    validate_codebook,
    write_codebook_yaml,
)
from pipeline.errors import CodebookError
from pipeline.paths import DEFAULT_CODEBOOK, PROJECT_ROOT
from pipeline.records import Code, Codebook, Theme

runner = CliRunner()

XSD = PROJECT_ROOT.parent / "shared" / "refi-qda" / "Codebook.xsd"
V1_CODES = {
    "impact_stories": "evidence",
    "show_the_product": "evidence",
    "community_engagement": "engagement",
    "care_coordination": "engagement",
    "cost_savings": "cost",
    "financing_policy": "cost",
    "shared_goals": "partnership",
    "peer_learning": "partnership",
    "timely_data": "partnership",
}

# Written the way other QDA tools write codebooks: no isCodable, MemberCode with targetGUID,
# braced upper-case GUIDs, accented names, codes three levels deep, a flat code in no set.
FOREIGN_QDC = """\
<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0">
  <Codes>
    <Code guid="{0B1C2D3E-4F50-4617-8829-3A4B5C6D7E8F}" name="Évaluation des coûts">
      <Description>Le partage est justifié par ses effets sur les coûts.</Description>
      <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e90" name="Économies">
        <Description>Moins de passages aux urgences.</Description>
      </Code>
      <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e91" name="Financement" isCodable="true">
        <Description>Leviers de financement.</Description>
        <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e92" name="Subventions de l'État">
          <Description>Subventions publiques.</Description>
        </Code>
      </Code>
    </Code>
    <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e93" name="Coordination des soins" isCodable="true">
      <Description>Orientation entre services.</Description>
    </Code>
    <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e94" name="Participation communautaire" isCodable="1">
      <Description>La voix des habitants.</Description>
    </Code>
    <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e95" name="Données en temps réel">
      <Description>Information à jour.</Description>
    </Code>
    <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e96" name="Archive" isCodable="false"/>
  </Codes>
  <Sets>
    <Set guid="{0B1C2D3E-4F50-4617-8829-3A4B5C6D7EA0}" name="Engagement">
      <Description>Codes sur la participation.</Description>
      <MemberCode targetGUID="{0B1C2D3E-4F50-4617-8829-3A4B5C6D7E93}"/>
      <MemberCode guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e94"/>
    </Set>
  </Sets>
</CodeBook>
"""


@pytest.fixture(scope="module")
def schema():
    if not XSD.exists():
        pytest.skip(f"{XSD} not available")
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture
def v1():
    return load_codebook()


def tricky_codebook() -> Codebook:
    """Accents, multi-line and empty sections, codes listed out of theme order."""
    return Codebook(
        version="2.0-beta",
        title="Grille d'analyse « valeur »",
        description="Première ligne.\n\nSecond paragraph with Include: inline.",
        themes=(Theme("alpha", "Alpha thème", ""), Theme("beta", "Beta & <co>", "B desc")),
        codes=(
            Code("b_one", "beta", "B one", "Def b.", include=("line one\nline two", "- dash start")),
            Code("a_one", "alpha", "Café", "Définition.\n\nWith a second paragraph.", examples=("« quoted »",)),
            Code("b_two", "beta", "B two", "Def b2.", exclude=("",), examples=("x", "y")),
        ),
        rules=("Rule one.", "Rule\nspanning lines."),
    )


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- load / validate


def test_shipped_codebook_is_v1_with_fixed_ids(v1):
    assert v1.version == "1"
    assert {c.id: c.theme for c in v1.codes} == V1_CODES
    assert v1.theme_ids == ("evidence", "engagement", "cost", "partnership")
    assert all(c.definition and c.examples for c in v1.codes)
    assert validate_codebook(v1) == []


def test_validate_reports_every_problem_at_once(tmp_path):
    path = write(tmp_path, "bad.yaml", """\
        themes:
          - {id: evidence, name: Evidence}
          - {id: evidence, name: Again}
          - {id: lonely, name: Lonely}
        codes:
          - {id: Bad-Id, theme: evidence, name: Bad, definition: d}
          - {id: dup, theme: nowhere, name: Dup, definition: d}
          - {id: dup, theme: evidence, name: "", definition: "  "}
          - {id: ok, theme: evidence, name: Ok, definition: d, defintion: typo, include: not a list}
        """)
    problems = validate_codebook(yaml.safe_load(path.read_text()), file=str(path))
    rules = "\n".join(str(p) for p in problems)
    assert all(p.file == str(path) for p in problems)
    for expected in [
        "missing version",
        "duplicate theme id 'evidence'",
        "theme 'lonely' has no codes",
        "code id 'Bad-Id' must match",
        "unknown parent theme 'nowhere'",
        "duplicate code id 'dup'",
        "empty name",
        "empty definition",
        "unknown field",
        "expected a list of texts",
    ]:
        assert expected in rules
    with pytest.raises(InvalidCodebookError) as caught:
        load_codebook(path)
    assert len(caught.value.problems) == len(problems)
    assert str(path) in str(caught.value)


def test_validate_accepts_a_codebook_record(v1):
    broken = dataclasses.replace(v1, codes=(*v1.codes, dataclasses.replace(v1.codes[0], theme="nope")))
    assert [p.column for p in validate_codebook(broken)] == ["codes #10.id", "codes #10.theme"]


@pytest.mark.parametrize("content", ["- just\n- a list\n", "version: 1\n", "42\n"])
def test_validate_wrong_shapes_without_crashing(tmp_path, content):
    path = write(tmp_path, "shape.yaml", content)
    with pytest.raises(InvalidCodebookError):
        load_codebook(path)


def test_load_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(CodebookError, match="missing.yaml: codebook file not found"):
        load_codebook(tmp_path / "missing.yaml")
    path = write(tmp_path, "syntax.yaml", "version: '1'\nthemes: [a, b\ncodes: x\n")
    with pytest.raises(CodebookError, match=r"syntax\.yaml: line \d+, column \d+: not valid YAML"):
        load_codebook(path)


def test_yaml_write_round_trip_keeps_hash(tmp_path, v1):
    for codebook in (v1, tricky_codebook()):
        path = tmp_path / "out" / "codebook.yaml"
        write_codebook_yaml(codebook, path)
        assert load_codebook(path).content_hash == codebook.content_hash
        assert [p.name for p in path.parent.iterdir()] == ["codebook.yaml"]


# --------------------------------------------------------------------------- qdc export / import


def test_export_validates_against_xsd_and_is_byte_identical(schema, v1):
    data = export_qdc(v1)
    doc = etree.fromstring(data)
    schema.assertValid(doc)
    assert export_qdc(load_codebook()) == data
    ns = {"q": "urn:QDA-XML:codebook:1.0"}
    parents = doc.findall("q:Codes/q:Code", ns)
    assert [p.get("isCodable") for p in parents] == ["false"] * 4
    children = doc.findall("q:Codes/q:Code/q:Code", ns)
    assert [c.get("isCodable") for c in children] == ["true"] * 9
    assert [c.get("name") for c in children] == [c.name for c in v1.codes]
    description = children[0].findtext("q:Description", namespaces=ns)
    assert v1.codes[0].definition in description and v1.codes[0].exclude[0] in description


def test_guids_depend_only_on_ids(v1):
    assert code_guid("cost_savings") == str(uuid.UUID(code_guid("cost_savings")))
    renamed = dataclasses.replace(v1, codes=tuple(dataclasses.replace(c, name=c.name + "!") for c in v1.codes))
    guids = etree.fromstring(export_qdc(renamed)).xpath("//*[local-name()='Code']/@guid")
    assert guids == etree.fromstring(export_qdc(v1)).xpath("//*[local-name()='Code']/@guid")
    assert len(set(guids)) == 13


@pytest.mark.parametrize("make", [lambda: load_codebook(), tricky_codebook])
def test_import_of_our_export_gives_same_codebook(tmp_path, schema, make):
    codebook = make()
    path = tmp_path / "cb.qdc"
    path.write_bytes(export_qdc(codebook))
    schema.assertValid(etree.parse(str(path)))
    back = import_qdc(path)
    assert back == codebook
    assert back.description == codebook.description
    assert back.content_hash == codebook.content_hash
    assert export_qdc(back) == path.read_bytes()


def test_import_foreign_codebook(tmp_path, schema):
    path = write(tmp_path, "foreign.qdc", FOREIGN_QDC)
    assert not schema.validate(etree.parse(str(path)))  # tolerated deviations from the schema
    codebook = import_qdc(path)
    assert [(t.id, t.name) for t in codebook.themes] == [
        ("evaluation_des_couts", "Évaluation des coûts"),
        ("engagement", "Engagement"),
        ("ungrouped", "Ungrouped"),
    ]
    assert [(c.id, c.theme, c.name) for c in codebook.codes] == [
        ("evaluation_des_couts", "evaluation_des_couts", "Évaluation des coûts"),
        ("economies", "evaluation_des_couts", "Économies"),
        ("financement", "evaluation_des_couts", "Financement"),
        ("financement_subventions_de_l_etat", "evaluation_des_couts", "Financement / Subventions de l'État"),
        ("coordination_des_soins", "engagement", "Coordination des soins"),
        ("participation_communautaire", "engagement", "Participation communautaire"),
        ("donnees_en_temps_reel", "ungrouped", "Données en temps réel"),
    ]
    assert codebook.code("economies").definition == "Moins de passages aux urgences."
    assert codebook.themes[1].description == "Codes sur la participation."
    assert validate_codebook(codebook) == []
    schema.assertValid(etree.fromstring(export_qdc(codebook)))


def test_import_rejects_what_is_not_a_codebook(tmp_path):
    broken = write(tmp_path, "broken.qdc", "<CodeBook><Codes><Code name='x'></Codes>")
    with pytest.raises(CodebookError, match=r"broken\.qdc: line \d+: not well-formed XML"):
        import_qdc(broken)
    empty = write(tmp_path, "empty.qdc", "<CodeBook xmlns='urn:QDA-XML:codebook:1.0'/>")
    with pytest.raises(CodebookError, match="no <Codes> element"):
        import_qdc(empty)


def test_import_does_not_expand_entities(tmp_path):
    secret = write(tmp_path, "secret.txt", "TOP-SECRET")
    path = write(tmp_path, "xxe.qdc", f"""\
        <?xml version="1.0"?>
        <!DOCTYPE CodeBook [<!ENTITY x SYSTEM "file://{secret}">]>
        <CodeBook><Codes><Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e95" name="A">
        <Description>&x;</Description></Code></Codes></CodeBook>
        """)
    assert "TOP-SECRET" not in import_qdc(path).codes[0].definition


# --------------------------------------------------------------------------- CLI


def test_cli_validate_prints_version_counts_and_hash(v1):
    result = runner.invoke(app, ["codebook", "validate"])
    assert result.exit_code == 0, result.output
    assert "version 1" in result.output and "4 themes, 9 codes" in result.output
    assert v1.content_hash in result.output


def test_cli_validate_lists_problems_exit_2(tmp_path):
    path = write(tmp_path, "bad.yaml", """\
        version: "1"
        themes: [{id: a, name: A}]
        codes:
          - {id: x, theme: b, name: X, definition: ""}
        """)
    result = runner.invoke(app, ["codebook", "validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "unknown parent theme 'b'" in result.output
    assert "empty definition" in result.output
    assert "theme 'a' has no codes" in result.output


def test_cli_export_import_round_trip(tmp_path, schema, v1):
    qdc, back = tmp_path / "cb.qdc", tmp_path / "cb.yaml"
    result = runner.invoke(app, ["codebook", "export", "--format", "qdc", "--out", str(qdc)])
    assert result.exit_code == 0, result.output
    schema.assertValid(etree.parse(str(qdc)))
    result = runner.invoke(app, ["codebook", "import", str(qdc), "--out", str(back)])
    assert result.exit_code == 0, result.output
    assert load_codebook(back).content_hash == v1.content_hash
    result = runner.invoke(app, ["codebook", "validate", str(back)])
    assert v1.content_hash in result.output


def test_cli_export_rejects_unknown_format(tmp_path):
    result = runner.invoke(app, ["codebook", "export", "--format", "nvivo", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_cli_import_keeps_existing_yaml_unless_forced(tmp_path):
    qdc = write(tmp_path, "foreign.qdc", FOREIGN_QDC)
    out = write(tmp_path, "mine.yaml", "keep me\n")
    result = runner.invoke(app, ["codebook", "import", str(qdc), "--out", str(out)])
    assert result.exit_code == 2 and "--force" in result.output
    assert out.read_text() == "keep me\n"
    result = runner.invoke(app, ["codebook", "import", str(qdc), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert len(load_codebook(out).codes) == 7


def test_cli_import_warns_about_what_needs_editing(tmp_path):
    qdc = write(tmp_path, "bare.qdc", """\
        <CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes>
        <Code guid="0b1c2d3e-4f50-4617-8829-3a4b5c6d7e95" name="Sans définition"/>
        </Codes></CodeBook>
        """)
    out = tmp_path / "bare.yaml"
    result = runner.invoke(app, ["codebook", "import", str(qdc), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()
    assert "empty definition" in result.output
    assert str(DEFAULT_CODEBOOK) not in result.output
