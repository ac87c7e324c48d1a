import re

import numpy as np
import pandas as pd
import pytest

from pipeline.codebook import load_codebook
from pipeline.frequencies import frequencies
from pipeline.plots import program_bars, save_figure, theme_sector_heatmap
from pipeline.records import Codebook
from pipeline.report import Analysis, render_report, write_analysis

CODEBOOK = load_codebook()
PROVENANCE = {
    "date": "2025-03-01T12:00:00Z",
    "corpus": {"corpus/testimonials.csv": "ab" * 32},
    "model": "models/default (sha256 " + "cd" * 32 + ")",
    "encoder": "sentence-transformers/all-MiniLM-L6-v2 (onnx)",
}


def synthetic_codings(n: int = 200, n_orgs: int = 10, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sectors = ("public_health", "health_care", "housing", "")
    rows = []
    for i in range(n):
        org = i % n_orgs
        program = "CHP" if org < 6 else "DASH"
        rates = {"cost_savings": 0.4 if program == "DASH" else 0.1}
        codes = sorted(c for c in CODEBOOK.code_ids if rng.random() < rates.get(c, 0.15))
        rows.append({"id": f"q{i}", "text": f"secret testimonial number {i}", "organization": f"Org {org}",
                     "program": program, "sector": sectors[org % 4], "codes": ";".join(codes),
                     "needs_review": "false", "origin": "written" if i % 4 else "seed"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def codings():
    return synthetic_codings()


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory, codings):
    out = tmp_path_factory.mktemp("analysis")
    return out, write_analysis(codings, CODEBOOK, out, PROVENANCE)


def test_write_analysis_writes_every_output(analysis_dir):
    out, paths = analysis_dir
    names = {"frequencies_by_sector", "frequencies_by_program", "comparison_program", "report"}
    assert names <= set(paths)
    for stem in ("codes_by_program", "themes_by_program", "themes_by_sector"):
        assert paths[f"figures/{stem}.png"].read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in paths[f"figures/{stem}.svg"].read_bytes()
    assert all(p.is_file() and p.parent.resolve().is_relative_to(out.resolve()) for p in paths.values())
    assert not list(out.rglob("*.tmp"))


def test_frequency_csv_sums_match_the_codings(analysis_dir, codings):
    _, paths = analysis_dir
    table = pd.read_csv(paths["frequencies_by_sector"], keep_default_na=False)
    sectors = codings["sector"].replace("", "unknown")
    for row in table.itertuples():
        group = codings[sectors == row.sector]
        carried = group["codes"].str.split(";").map(
            lambda ids: row.id in ids if row.level == "code"
            else any(CODEBOOK.theme_of(c) == row.id for c in ids if c)
        )
        assert (row.n_quotes, row.n_with) == (len(group), carried.sum())
    assert "unknown" in set(table["sector"])
    assert table.drop_duplicates("sector")["n_quotes"].sum() == len(codings)


def test_comparison_csv_is_chp_vs_dash(analysis_dir):
    _, paths = analysis_dir
    table = pd.read_csv(paths["comparison_program"], dtype=str, keep_default_na=False)
    assert set(table["group_a"]) == {"CHP"} and set(table["group_b"]) == {"DASH"}
    assert table.set_index("id").loc["cost_savings", "significant"] == "true"


@pytest.mark.slow
def test_rerun_gives_byte_identical_files(analysis_dir, codings, tmp_path):
    _, first = analysis_dir
    second = write_analysis(codings, CODEBOOK, tmp_path, PROVENANCE)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name


def test_report_is_self_contained_with_provenance_and_origin_notice(analysis_dir, codings):
    _, paths = analysis_dir
    page = paths["report"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from the network
    assert page.count("data:image/png;base64,") == 3
    for value in ("2025-03-01T12:00:00Z", "ab" * 32, "cd" * 32, "all-MiniLM-L6-v2", CODEBOOK.content_hash):
        assert value in page
    written = int((codings["origin"] == "written").sum())
    assert f"{written} of the {len(codings)} quotes have <code>origin=written</code>" in page
    assert "demonstrate the tool and are not findings" in page
    assert "@media print" in page
    # exemplar quotes: seed (real-origin) rows before written ones, every finding of written rows marked
    assert "<blockquote>secret testimonial number 0<cite>" in page
    assert page.count('<span class="demo">[demonstration data]</span>') >= 3


def test_report_escapes_organization_sector_and_code_names(codings):
    hostile = codings.copy()
    hostile.loc[hostile["organization"] == "Org 1", "organization"] = "<script>alert('org')</script>"
    hostile.loc[hostile["sector"] == "housing", "sector"] = "<img src=x onerror=alert(1)>"
    data = CODEBOOK.to_dict()
    data["codes"][0]["name"] = "<script>alert('code')</script>"
    codebook = Codebook.from_dict(data)
    page = render_report(Analysis.of(hostile, codebook), codebook, {**PROVENANCE, "model": "<b>m</b>"}, figures={})
    assert "<script" not in page and "<img" not in page and "<b>m" not in page
    assert "&lt;script&gt;alert(&#x27;org&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;code&#x27;)&lt;/script&gt;" in page


def test_report_without_origin_column_says_so(codings):
    page = render_report(Analysis.of(codings.drop(columns="origin"), CODEBOOK), CODEBOOK, PROVENANCE, figures={})
    assert "no <code>origin</code> column" in page


def test_figures_are_deterministic_and_dateless(tmp_path, codings):
    by_program = frequencies(codings, CODEBOOK, by=["program"], level="code")
    first = save_figure(program_bars(by_program), tmp_path / "a" / "bars")
    second = save_figure(program_bars(by_program), tmp_path / "b" / "bars")
    for fmt in ("png", "svg"):
        assert first[fmt].read_bytes() == second[fmt].read_bytes()
    svg = first["svg"].read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg


def test_bars_order_codes_by_overall_frequency(codings):
    by_program = frequencies(codings, CODEBOOK, by=["program"], level="code")
    fig = program_bars(by_program)
    labels = [t.get_text().split("\n")[-1].strip("()") for t in fig.axes[0].get_yticklabels()]
    overall = frequencies(codings, CODEBOOK, by=[], level="code").sort_values("n_with", ascending=False, kind="stable")
    assert labels == overall["id"].tolist()


def test_heatmap_annotates_every_cell_including_unknown(codings):
    by_sector = frequencies(codings, CODEBOOK, by=["sector"], level="theme")
    fig = theme_sector_heatmap(by_sector)
    ax = fig.axes[0]
    annotations = [t.get_text() for t in ax.texts]
    assert len(annotations) == len(CODEBOOK.themes) * by_sector["sector"].nunique()
    first = by_sector.iloc[0]
    assert f"{100 * first.share:.0f}%" == annotations[0]
    assert any(label.get_text().startswith("unknown") for label in ax.get_xticklabels())
