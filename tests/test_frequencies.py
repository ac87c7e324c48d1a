import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.errors import InputError, ValidationError
from pipeline.shares import prepare
from pipeline.frequencies import UNKNOWN, frequencies, wide, wilson_interval

runner = CliRunner()
CODEBOOK = load_codebook()
RATES = {"CHP": {"cost_savings": 0.1, "timely_data": 0.3}, "DASH": {"cost_savings": 0.4, "timely_data": 0.3}}


def synthetic_codings(n: int = 200, n_orgs: int = 10, seed: int = 7) -> pd.DataFrame:
    """``n`` quotes over ``n_orgs`` organizations (first 60% CHP) with known code rates."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        org = i % n_orgs
        program = "CHP" if org < 0.6 * n_orgs else "DASH"
        rates = RATES[program]
        codes = sorted(c for c in CODEBOOK.code_ids if rng.random() < rates.get(c, 0.08))
        rows.append({
            "id": f"q{i:03d}",
            "text": f"testimonial {i}",
            "organization": f"Collaboration {org}",
            "program": program,
            "sector": ("public_health", "health_care", "housing")[org % 3],
            "codes": ";".join(codes),
            "needs_review": "false",
            "origin": "written",
        })
    return pd.DataFrame(rows)


@pytest.fixture
def codings():
    return synthetic_codings()


def _carries(codings: pd.DataFrame, code_id: str) -> pd.Series:
    return codings["codes"].str.split(";").map(lambda ids: code_id in ids)


def test_code_counts_recomputed_from_codings(codings):
    table = frequencies(codings, CODEBOOK, by=["program"], level="code")
    assert len(table) == 2 * len(CODEBOOK.codes)
    for row in table.itertuples():
        group = codings[codings["program"] == row.program]
        with_it = group[_carries(group, row.id)]
        assert row.n_quotes == len(group)
        assert row.n_with == len(with_it)
        assert row.share == pytest.approx(len(with_it) / len(group))
        assert row.n_organizations_with == with_it["organization"].nunique()
        assert row.n_organizations == group["organization"].nunique()
    # groups partition the quotes
    assert table.groupby("id")["n_quotes"].sum().eq(len(codings)).all()


def test_theme_counts_a_quote_once_however_many_of_its_codes(codings):
    codings.loc[0, "codes"] = "cost_savings;financing_policy"  # both in theme "cost"
    table = frequencies(codings.iloc[:1], CODEBOOK, by=[], level="theme")
    cost = table.set_index("id").loc["cost"]
    assert (cost.n_with, cost.n_quotes, cost.share) == (1, 1, 1.0)
    full = frequencies(codings, CODEBOOK, by=[], level="theme").set_index("id")
    members = [c.id for c in CODEBOOK.codes if c.theme == "cost"]
    expected = codings["codes"].str.split(";").map(lambda ids: bool(set(ids) & set(members))).sum()
    assert full.loc["cost", "n_with"] == expected
    assert expected < sum(_carries(codings, m).sum() for m in members)  # some quotes carry both


def test_empty_group_values_form_a_visible_unknown_group(codings):
    codings.loc[[0, 1, 2], "sector"] = ""
    codings.loc[3, "program"] = "   "
    by_sector = frequencies(codings, CODEBOOK, by=["sector"], level="theme")
    unknown = by_sector[by_sector["sector"] == UNKNOWN]
    assert set(unknown["n_quotes"]) == {3}
    assert by_sector["sector"].tolist()[-1] == UNKNOWN  # listed last
    assert by_sector.drop_duplicates("sector")["n_quotes"].sum() == len(codings)
    by_program = frequencies(codings, CODEBOOK, by=["program"], level="code")
    assert UNKNOWN in set(by_program["program"])


def test_wilson_interval_matches_statsmodels():
    for count, nobs in [(0, 20), (3, 20), (37, 113), (50, 50)]:
        low, high = wilson_interval(count, nobs)
        ref = proportion_confint(count, nobs, alpha=0.05, method="wilson")
        assert (low, high) == pytest.approx(ref, abs=1e-9)
    low, high = wilson_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)


def test_table_intervals_are_wilson(codings):
    table = frequencies(codings, CODEBOOK, by=["sector"], level="both")
    ref_low, ref_high = proportion_confint(table["n_with"], table["n_quotes"], method="wilson")
    np.testing.assert_allclose(table["ci_low"], ref_low, atol=1e-9)
    np.testing.assert_allclose(table["ci_high"], ref_high, atol=1e-9)


def test_organizations_without_name_are_not_counted(codings):
    codings.loc[codings["organization"] == "Collaboration 0", "organization"] = ""
    table = frequencies(codings, CODEBOOK, by=[], level="theme")
    assert set(table["n_organizations"]) == {9}


def test_wide_layout_holds_the_long_shares(codings):
    long = frequencies(codings, CODEBOOK, by=["program"], level="both")
    layout = wide(long)
    assert list(layout["program"]) == ["CHP", "DASH"]
    assert list(layout.columns[3:]) == [*CODEBOOK.code_ids, *CODEBOOK.theme_ids]
    dash = layout.set_index("program").loc["DASH"]
    expected = long[(long["program"] == "DASH") & (long["id"] == "cost_savings")]["share"].item()
    assert dash["cost_savings"] == expected


def test_unknown_code_ids_are_reported_by_row_without_text(codings):
    codings.loc[4, "codes"] = "cost_savings;not_a_code"
    with pytest.raises(ValidationError) as info:
        frequencies(codings, CODEBOOK, by=["program"])
    message = str(info.value)
    assert "row 5" in message and "not_a_code" in message and "testimonial" not in message


def test_missing_group_column_names_it(codings):
    with pytest.raises(InputError, match="'region'.*available columns"):
        frequencies(codings, CODEBOOK, by=["region"])


@pytest.fixture
def codings_file(tmp_path, codings):
    path = tmp_path / "codings.csv"
    codings.to_csv(path, index=False)
    return path


def test_cli_writes_csv_that_matches_the_library(codings_file, codings, tmp_path):
    out = tmp_path / "freq.csv"
    result = runner.invoke(app, ["frequencies", str(codings_file), "--by", "program", "--level", "theme", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    counted = frequencies(codings, CODEBOOK, by=["program"], level="theme")
    expected = frequencies(codings, CODEBOOK, by=["program"], level="theme", estimator=prepare(codings, codebook=CODEBOOK)[1])
    assert list(written.columns) == list(expected.columns)
    assert written["n_with"].tolist() == expected["n_with"].tolist()
    assert set(written["method"]) == {"adjusted"} and "shares: adjusted" in result.output
    np.testing.assert_allclose(written["share"], expected["share"], atol=1e-6)
    np.testing.assert_allclose(written["raw_share"], counted["share"], atol=1e-6)


def test_cli_xlsx_has_a_sheet_per_level_with_readable_names(codings_file, tmp_path):
    out = tmp_path / "freq.xlsx"
    result = runner.invoke(app, ["frequencies", str(codings_file), "--by", "sector", "--out", str(out)])
    assert result.exit_code == 0, result.output
    book = load_workbook(out, read_only=True)
    assert book.sheetnames == ["Codes", "Themes"]
    header = next(book["Themes"].iter_rows(values_only=True))
    assert "Quotes in group" in header and "Estimated share of quotes (%)" in header
    share = next(book["Themes"].iter_rows(min_row=2, max_row=2))[header.index("Estimated share of quotes (%)")]
    assert share.number_format == "0.0%" and 0 <= share.value <= 1


def test_cli_wide_xlsx_names_codes_and_shows_percentages(codings_file, tmp_path):
    out = tmp_path / "wide.xlsx"
    result = runner.invoke(app, ["frequencies", str(codings_file), "--by", "program", "--layout", "wide", "--out", str(out)])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out)["Codes"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["Program", "Quotes in group", "Organizations in group"]
    assert "Savings and return on investment (%)" in header and "cost_savings" not in header
    cell = sheet.cell(row=2, column=header.index("Savings and return on investment (%)") + 1)
    assert cell.number_format == "0.0%" and 0 <= cell.value <= 1
    assert sheet.freeze_panes == "A2"


def test_cli_json_wide(codings_file, tmp_path):
    out = tmp_path / "freq.json"
    result = runner.invoke(app, ["frequencies", str(codings_file), "--by", "program", "--layout", "wide", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert [r["program"] for r in records] == ["CHP", "DASH"]
    assert 0 <= records[0]["cost_savings"] <= 1


def test_cli_prints_a_table_without_out(codings_file):
    result = runner.invoke(app, ["frequencies", str(codings_file), "--by", "program", "--level", "theme"])
    assert result.exit_code == 0, result.output
    assert "partnership" in result.output and "DASH" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--by", "region"], "no column 'region'"),
        (["--out", "table.txt"], "cannot write '.txt'"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(codings_file, tmp_path, args, expected):
    args = [a if a != "table.txt" else str(tmp_path / a) for a in args]
    result = runner.invoke(app, ["frequencies", str(codings_file), *args])
    assert result.exit_code == 2
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "table.txt").exists()
