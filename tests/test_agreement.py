import json
import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
from typer.testing import CliRunner

from pipeline.agreement import (
    CoderCodings,
    compute_agreement,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    weighted_statistics,
)
from pipeline.cli import app
from pipeline.paths import PROJECT_ROOT
from pipeline.tables import write_table

runner = CliRunner()
CODES = ("cost_savings", "peer_learning", "timely_data")


def coder(name, codes_by_id):
    return CoderCodings.from_rows(
        [{"id": q, "codes": ";".join(c)} for q, c in codes_by_id.items()], name=name, source=f"{name}.csv"
    )


def random_coders(rng, n_coders, n_quotes, p=0.3):
    matrix = (rng.random((n_coders, n_quotes, len(CODES))) < p).astype(int)
    coders = [
        coder(f"c{i}", {f"q{j}": [code for k, code in enumerate(CODES) if matrix[i, j, k]] for j in range(n_quotes)})
        for i in range(n_coders)
    ]
    return matrix, coders


# --- our closed forms (used by the bootstrap) equal the reference implementations -------------


@pytest.mark.parametrize("seed", range(5))
def test_closed_forms_equal_reference_implementations_on_random_data(seed):
    rng = np.random.default_rng(seed)
    for n_coders in (2, 3, 5):
        values = (rng.random((n_coders, 60, 1)) < rng.uniform(0.1, 0.6)).astype(float)
        got = {k: v[0] for k, v in weighted_statistics(values, np.ones((1, 60))).items()}
        flat = values[:, :, 0]
        table, _ = aggregate_raters(flat.T.astype(int), n_cat=2)
        assert got["fleiss_kappa"] == pytest.approx(sm_fleiss(table), abs=1e-12)
        assert got["krippendorff_alpha"] == pytest.approx(
            krippendorff.alpha(reliability_data=flat, level_of_measurement="nominal"), abs=1e-12)
        assert got["percent_agreement"] == pytest.approx(np.mean(np.all(flat == flat[0], axis=0)))
        if n_coders == 2:
            assert got["cohen_kappa"] == pytest.approx(cohen_kappa_score(flat[0], flat[1]), abs=1e-12)
        else:
            assert math.isnan(got["cohen_kappa"])


def test_closed_form_alpha_handles_missing_codings_like_krippendorff():
    rng = np.random.default_rng(7)
    values = (rng.random((4, 80, 1)) < 0.35).astype(float)
    values[rng.random((4, 80, 1)) < 0.25] = np.nan
    got = weighted_statistics(values, np.ones((1, 80)))["krippendorff_alpha"][0]
    assert got == pytest.approx(krippendorff.alpha(reliability_data=values[:, :, 0], level_of_measurement="nominal"), abs=1e-12)


def test_report_equals_reference_implementations_on_random_data():
    rng = np.random.default_rng(3)
    matrix, coders = random_coders(rng, 2, 120)
    report = compute_agreement(coders, CODES, rounds=200)
    for k, row in enumerate(report.per_code):
        a, b = matrix[0, :, k], matrix[1, :, k]
        assert row.estimates["cohen_kappa"].value == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
        assert row.estimates["krippendorff_alpha"].value == pytest.approx(
            krippendorff.alpha(reliability_data=np.array([a, b]), level_of_measurement="nominal"), abs=1e-6)
        assert row.estimates["percent_agreement"].value == pytest.approx(np.mean(a == b), abs=1e-6)
        assert row.disagreements == tuple(sorted(f"q{j}" for j in np.flatnonzero(a != b)))
    pooled_a, pooled_b = matrix[0].ravel(), matrix[1].ravel()
    assert report.overall.estimates["cohen_kappa"].value == pytest.approx(cohen_kappa_score(pooled_a, pooled_b), abs=1e-6)


# --- worked examples from the literature ------------------------------------------------------


def test_krippendorff_2011_binary_example_two_observers():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section A: alpha = 0.095
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    report = compute_agreement(
        [coder("A", {f"u{i}": ["x"] * v for i, v in enumerate(a)}), coder("B", {f"u{i}": ["x"] * v for i, v in enumerate(b)})],
        ["x"], rounds=100,
    )
    assert report.per_code[0].estimates["krippendorff_alpha"].value == pytest.approx(0.095, abs=5e-4)
    assert weighted_statistics(np.array([a, b], float)[:, :, None], np.ones((1, 10)))["krippendorff_alpha"][0] == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_2011_nominal_example_with_missing_data():
    # Krippendorff (2011), section C: four observers, twelve units, missing values; nominal alpha = 0.743
    nan = np.nan
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ])
    assert krippendorff_alpha(data) == pytest.approx(0.743, abs=5e-4)


def test_fleiss_1971_diagnoses_example():
    # Fleiss (1971): 30 patients, 6 psychiatrists, 5 diagnoses; kappa = 0.430
    diagnoses = np.array([
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
        [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
        [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
        [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
        [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]).T
    assert fleiss_kappa(diagnoses, categories=(1, 2, 3, 4, 5)) == pytest.approx(0.430, abs=5e-4)


def test_gwet_2008_high_agreement_paradox_example():
    # Gwet (2008), 125 subjects: 118 both "+", 5 "+/-", 2 "-/+", 0 both "-": kappa < 0, AC1 = 0.9408
    a = [1] * 118 + [1] * 5 + [0] * 2
    b = [1] * 118 + [0] * 5 + [1] * 2
    counts = np.array([[2 - (x + y), x + y] for x, y in zip(a, b)])
    assert gwet_ac1(counts) == pytest.approx(0.9408, abs=5e-5)
    report = compute_agreement(
        [coder("A", {f"s{i}": ["x"] * v for i, v in enumerate(a)}), coder("B", {f"s{i}": ["x"] * v for i, v in enumerate(b)})],
        ["x"], rounds=200,
    )
    est = report.per_code[0].estimates
    assert est["gwet_ac1"].value == pytest.approx(0.9408, abs=5e-5)
    assert est["cohen_kappa"].value == pytest.approx(-0.0234, abs=5e-4)


# --- behaviour ----------------------------------------------------------------------------------


def test_code_without_variation_is_reported_undefined_not_a_crash():
    coders = [coder("A", {"q1": ["cost_savings"], "q2": []}), coder("B", {"q1": ["cost_savings"], "q2": []})]
    report = compute_agreement(coders, CODES, rounds=100)
    timely = next(r for r in report.per_code if r.code == "timely_data")
    for name in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha"):
        assert timely.estimates[name].value is None
        assert "no variation" in timely.estimates[name].reason
    assert timely.estimates["percent_agreement"].value == 1.0
    assert json.dumps(report.to_dict())  # JSON-safe: no NaN


def test_missing_quotes_are_reported_and_used_by_alpha_only():
    a = coder("A", {"q1": ["cost_savings"], "q2": [], "q3": ["timely_data"], "q4": []})
    b = coder("B", {"q1": ["cost_savings"], "q2": ["cost_savings"], "q3": []})
    c = coder("C", {"q1": ["cost_savings"], "q2": [], "q4": ["timely_data"]})
    report = compute_agreement([a, b, c], CODES, rounds=100)
    assert report.shared_quotes == 2
    excluded = {(e["file"], e["id"]) for e in report.excluded_quotes}
    assert excluded == {("A.csv", "q3"), ("A.csv", "q4"), ("B.csv", "q3"), ("C.csv", "q4")}
    timely = next(r for r in report.per_code if r.code == "timely_data")
    assert set(timely.disagreements) == {"q3", "q4"}  # disagreements seen by alpha on partly coded quotes
    assert timely.estimates["cohen_kappa"].value is None  # three coders


def test_duplicate_ids_and_unknown_codes_are_excluded_with_reasons():
    a = CoderCodings.from_rows([{"id": "q1", "codes": "x"}, {"id": "q1", "codes": ""}, {"id": "q2", "codes": "made_up"}], name="A", source="a.csv")
    b = coder("B", {"q1": [], "q2": []})
    report = compute_agreement([a, b], CODES, rounds=100)
    assert {"file": "a.csv", "id": "q1", "reason": "id appears 2 times in a.csv"} in report.excluded_quotes
    assert [e["code"] for e in report.excluded_codes] == ["made_up"]


def test_bootstrap_is_reproducible_and_brackets_the_estimate():
    rng = np.random.default_rng(11)
    _, coders = random_coders(rng, 2, 80)
    first = compute_agreement(coders, CODES, rounds=300, seed=5).to_dict()
    again = compute_agreement(coders, CODES, rounds=300, seed=5).to_dict()
    assert first == again
    for name in ("percent_agreement", "krippendorff_alpha", "gwet_ac1"):
        low, high = first["overall"][name]["ci95"]
        assert low <= first["overall"][name]["value"] <= high and low < high


def test_cli_prints_table_and_writes_json(tmp_path):
    rows_a = [{"id": "q1", "codes": "cost_savings"}, {"id": "q2", "codes": ""}, {"id": "q3", "codes": "timely_data"}]
    rows_b = [{"id": "q1", "codes": "cost_savings"}, {"id": "q2", "codes": "timely_data"}, {"id": "q3", "codes": "timely_data"}]
    write_table(tmp_path / "a.csv", rows_a, ["id", "codes"])
    write_table(tmp_path / "b.csv", rows_b, ["id", "codes"])
    out = tmp_path / "agreement.json"
    result = runner.invoke(app, ["agreement", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out", str(out), "--rounds", "100"])
    assert result.exit_code == 0, result.output
    assert "Gwet AC1" in result.output and "overall" in result.output
    report = json.loads(out.read_text())
    assert report["per_code"]["timely_data"]["disagreements"] == ["q2"]
    assert report["per_code"]["peer_learning"]["cohen_kappa"]["value"] is None


def test_cli_rejects_a_file_without_codes_column(tmp_path):
    write_table(tmp_path / "a.csv", [{"id": "q1"}], ["id"])
    write_table(tmp_path / "b.csv", [{"id": "q1", "codes": ""}], ["id", "codes"])
    result = runner.invoke(app, ["agreement", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    assert result.exit_code == 2
    assert "a.csv" in result.output and "codes" in result.output


LABELLED = PROJECT_ROOT.parent / "shared" / "labelled" / "real_dev.jsonl"


@pytest.mark.skipif(not LABELLED.exists(), reason="shared labelled data absent")
def test_blind_coders_alpha_matches_published_agreement():
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
    published = json.loads((LABELLED.parent / "agreement.json").read_text())["krippendorff_alpha_nominal_per_code"]
    coders = [coder(name, {r["id"]: r["coders"][name] for r in rows}) for name in ("A", "B")]
    report = compute_agreement(coders, list(published), rounds=100)
    for row in report.per_code:
        assert row.estimates["krippendorff_alpha"].value == pytest.approx(published[row.code], abs=5e-4)
