import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.compare import compare, summaries, two_by_two_test
from pipeline.errors import InputError

runner = CliRunner()
CODEBOOK = load_codebook()


def synthetic_codings(n: int = 200, n_orgs: int = 10, seed: int = 3, dash_cost: float = 0.45) -> pd.DataFrame:
    """``n`` quotes over ``n_orgs`` organizations; DASH uses cost_savings far more than CHP."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        org = i % n_orgs
        program = "CHP" if org < 0.6 * n_orgs else "DASH"
        rates = {"cost_savings": dash_cost if program == "DASH" else 0.08, "impact_stories": 0.02}
        codes = sorted(c for c in CODEBOOK.code_ids if rng.random() < rates.get(c, 0.15))
        rows.append({"id": f"q{i}", "text": f"testimonial {i}", "organization": f"Org {org}",
                     "program": program, "sector": "public_health", "codes": ";".join(codes)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def codings():
    return synthetic_codings()


@pytest.fixture(scope="module")
def comparison(codings):
    return compare(codings, CODEBOOK, by="program", groups=("CHP", "DASH"))


def test_one_row_per_code_then_theme(comparison):
    assert comparison["id"].tolist() == [*CODEBOOK.code_ids, *CODEBOOK.theme_ids]
    assert set(comparison["group_a"]) == {"CHP"} and set(comparison["group_b"]) == {"DASH"}


def test_counts_and_p_values_match_scipy_on_the_same_table(codings, comparison):
    for row in comparison[comparison["level"] == "code"].itertuples():
        carries = codings["codes"].str.split(";").map(lambda ids: row.id in ids)
        a, b = codings["program"] == "CHP", codings["program"] == "DASH"
        table = np.array([[(carries & a).sum(), (~carries & a).sum()], [(carries & b).sum(), (~carries & b).sum()]])
        assert (row.count_a, row.n_a, row.count_b, row.n_b) == (table[0, 0], a.sum(), table[1, 0], b.sum())
        if (stats.contingency.expected_freq(table) < 5).any():
            assert row.test == "fisher"
            assert row.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-12)
        else:
            assert row.test == "chi2"
            assert row.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-12)
    assert set(comparison["test"]) == {"fisher", "chi2"}  # the fixture exercises both branches


def test_benjamini_hochberg_per_level_matches_statsmodels(comparison):
    for level in ("code", "theme"):
        part = comparison[comparison["level"] == level]
        expected = multipletests(part["p_value"], method="fdr_bh")[1]
        np.testing.assert_allclose(part["p_adjusted"], expected, rtol=1e-12)
    assert (comparison["significant"] == (comparison["p_adjusted"] < 0.05)).all()


def test_difference_and_newcombe_interval(comparison):
    row = comparison.set_index("id").loc["cost_savings"]
    assert row.difference == pytest.approx(row.share_a - row.share_b)
    low, high = confint_proportions_2indep(row.count_a, row.n_a, row.count_b, row.n_b, method="newcomb", compare="diff")
    assert (row.ci_low, row.ci_high) == pytest.approx((low, high))
    assert row.ci_low < row.difference < row.ci_high < 0


def test_known_difference_is_found_and_summarised(comparison):
    cost = comparison.set_index("id").loc["cost_savings"]
    assert cost.significant and cost.holds_for_organizations
    assert cost.organizations_a == 6 and cost.organizations_b == 4
    assert cost.bootstrap_ci_high < 0
    lines = summaries(comparison)
    line = next(x for x in lines if " cost_savings " in x)
    assert line.startswith("DASH quotes use cost_savings more often than CHP (")
    assert f"{100 * cost.share_b:.0f}% vs {100 * cost.share_a:.0f}%" in line
    assert "adjusted p" in line and "holds at the organization level" in line


def test_bootstrap_is_reproducible_and_seeded(codings, comparison):
    again = compare(codings, CODEBOOK)
    pd.testing.assert_frame_equal(again, comparison)
    other = compare(codings, CODEBOOK, seed=1)
    assert not np.allclose(other["bootstrap_ci_low"], comparison["bootstrap_ci_low"])


def test_one_talkative_organization_does_not_hold_for_organizations():
    codings = synthetic_codings(dash_cost=0.08, seed=11)
    talkative = pd.DataFrame([{"id": f"t{i}", "text": "x", "organization": "Org 9", "program": "DASH",
                               "sector": "housing", "codes": "cost_savings"} for i in range(30)])
    codings = pd.concat([codings, talkative], ignore_index=True)
    cost = compare(codings, CODEBOOK).set_index("id").loc["cost_savings"]
    assert cost.significant  # quote-level test is fooled by one organization
    assert not cost.holds_for_organizations
    assert cost.difference < 0 <= cost.bootstrap_ci_high


def test_two_by_two_test_picks_fisher_for_small_expected_counts():
    assert two_by_two_test(1, 10, 4, 12)[0] == "fisher"
    assert two_by_two_test(30, 100, 45, 100)[0] == "chi2"
    assert two_by_two_test(0, 50, 0, 40) == ("fisher", 1.0)


def test_absent_group_names_column_and_available_groups(codings):
    with pytest.raises(InputError, match=r"column 'program' has no group 'XYZ'; available groups: CHP, DASH"):
        compare(codings, CODEBOOK, groups=("CHP", "XYZ"))


def test_other_grouping_column_and_unknown_group(codings):
    codings = codings.assign(sector=["housing" if i % 2 else "" for i in range(len(codings))])
    table = compare(codings, CODEBOOK, by="sector", groups=("housing", "unknown"))
    assert set(table["n_a"]) == {100} and set(table["n_b"]) == {100}


@pytest.fixture
def codings_file(tmp_path, codings):
    path = tmp_path / "codings.csv"
    codings.to_csv(path, index=False)
    return path


def test_cli_writes_comparison_and_prints_summaries(codings_file, comparison, tmp_path):
    out = tmp_path / "comparison.csv"
    result = runner.invoke(app, ["compare", str(codings_file), "--by", "program", "--groups", "CHP", "DASH", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "DASH quotes use cost_savings more often than CHP" in result.output
    written = pd.read_csv(out, keep_default_na=False)
    assert written["id"].tolist() == comparison["id"].tolist()
    assert set(written["method"]) == {"adjusted"} and "shares: adjusted" in result.output
    np.testing.assert_allclose(written["raw_p_adjusted"].astype(float), comparison["p_adjusted"], rtol=1e-5)


def test_cli_absent_group_is_one_line_exit_2(codings_file, tmp_path):
    out = tmp_path / "comparison.csv"
    result = runner.invoke(app, ["compare", str(codings_file), "--groups", "CHP", "XYZ", "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"framecode: error: {codings_file}: column 'program' has no group 'XYZ'; available groups: CHP, DASH"
    )
    assert not out.exists()
