"""Shares that carry the coder's error: people's codes win, corrected shares recover the truth."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.compare import compare
from pipeline.frequencies import frequencies
from pipeline.shares import CoderErrors, ShareEstimator, apply_human, read_human

CODEBOOK = load_codebook()
CODES = CODEBOOK.code_ids
TPR, FPR = 0.7, 0.08
runner = CliRunner()


def _joined(matrix: np.ndarray) -> list[str]:
    return [";".join(c for c, on in zip(CODES, row) if on) for row in matrix]


def _noisy(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A coder with known error rates: it finds TPR of the positives and flags FPR of the negatives."""
    draws = rng.random(truth.shape)
    return np.where(truth, draws < TPR, draws < FPR)


@pytest.fixture(scope="module")
def errors() -> CoderErrors:
    rng = np.random.default_rng(1)
    truth = rng.random((3000, len(CODES))) < 0.2
    return CoderErrors("framecode-test-1", CODES, _noisy(truth, rng), truth, rng.integers(0, 1500, 3000))


def corpus(n: int, shares: np.ndarray, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(CODES))) < shares
    frame = pd.DataFrame({
        "id": [f"q{i}" for i in range(n)], "text": [f"quote {i}" for i in range(n)],
        "organization": [f"Org {i % 30}" for i in range(n)], "program": ["CHP" if i % 2 else "DASH" for i in range(n)],
        "codes": _joined(_noisy(truth, rng)), "coder": "framecode-test-1",
    })
    return frame, truth


def test_corrected_shares_recover_known_truth_where_raw_counting_does_not(errors):
    shares = np.linspace(0.03, 0.45, len(CODES))
    frame, truth = corpus(4000, shares, seed=2)
    table = frequencies(frame, CODEBOOK, by=(), level="code", estimator=ShareEstimator(errors=errors))
    true_share = truth.mean(0)
    assert set(table["method"]) == {"adjusted"}
    inside = (table["ci_low"] <= true_share) & (true_share <= table["ci_high"])
    raw_inside = (table["raw_ci_low"] <= true_share) & (true_share <= table["raw_ci_high"])
    assert inside.all()
    assert raw_inside.sum() <= 2  # counting a coder's codes as truth misses most shares
    assert np.abs(table["share"] - true_share).max() < 0.03


def test_a_persons_coding_overrides_the_models_in_every_output(tmp_path, errors):
    frame, _ = corpus(40, np.full(len(CODES), 0.2), seed=3)
    human = tmp_path / "ana.jsonl"
    human.write_text('{"id": "q0", "codes": ["peer_learning"], "coder": "Ana"}\n{"id": "q1", "codes": [], "coder": "Ana"}\n')
    applied = apply_human(frame, read_human(human, CODES))
    assert applied.loc[0, "codes"] == "peer_learning" and applied.loc[0, "coder"] == "Ana"
    assert applied.loc[1, "codes"] == "" and applied.loc[0, "model_codes"] == frame.loc[0, "codes"]
    assert applied["coded_by"].tolist()[:3] == ["person", "person", "model"]
    table = frequencies(applied, CODEBOOK, by=(), level="code", estimator=ShareEstimator(errors=errors))
    assert set(table["n_human"]) == {2}
    codings = tmp_path / "codings.csv"
    frame.to_csv(codings, index=False)
    out = tmp_path / "freq.csv"
    result = runner.invoke(app, ["frequencies", str(codings), "--human", str(human), "--out", str(out)])
    assert result.exit_code != 0 and "made by model framecode-test-1" in result.output  # not the default model's rates


def test_everything_coded_by_people_is_counted_as_people_coded(errors):
    frame, truth = corpus(60, np.full(len(CODES), 0.3), seed=4)
    people = pd.DataFrame({"id": frame["id"], "codes": _joined(truth), "coder": "Ana"})
    table = compare(apply_human(frame, people), CODEBOOK, estimator=ShareEstimator(errors=errors))
    assert set(table["method"]) == {"human"}
    assert set(table["test"]) <= {"chi2", "fisher"}


def test_prediction_powered_intervals_shrink_as_the_human_sample_grows(errors):
    frame, truth = corpus(2000, np.full(len(CODES), 0.25), seed=5)
    widths = []
    for size in (50, 200, 800):
        sample = np.random.default_rng(size).choice(len(frame), size, replace=False)
        people = pd.DataFrame({"id": frame["id"].iloc[sample], "codes": np.array(_joined(truth))[sample], "coder": "Ana"})
        table = frequencies(apply_human(frame, people), CODEBOOK, by=(), level="code",
                            estimator=ShareEstimator(errors=errors, human_sample=True))
        assert set(table["method"]) == {"ppi"}
        assert ((table["ci_low"] <= truth.mean(0)) & (truth.mean(0) <= table["ci_high"])).mean() >= 0.75
        widths.append((table["ci_high"] - table["ci_low"]).mean())
    assert widths[0] > widths[1] > widths[2]


def test_a_difference_that_coder_error_explains_is_named(errors):
    # the same true share in both groups, but the model is shown codings as a person's in one group only
    frame, truth = corpus(600, np.full(len(CODES), 0.1), seed=6)
    dash = (frame["program"] == "DASH").to_numpy()
    people = pd.DataFrame({"id": frame["id"][dash], "codes": np.array(_joined(truth))[dash], "coder": "Ana"})
    table = compare(apply_human(frame, people), CODEBOOK, estimator=ShareEstimator(errors=errors))
    assert set(table["method"]) == {"adjusted/human"}
    gone = table[table["raw_significant"] & ~table["significant"]]
    assert len(gone) > 0
    assert all("disappears once the coder's error is counted" in s for s in gone["summary"])


def test_report_of_ones_own_coded_csv_opens_offline_and_names_the_method(tmp_path):
    frame, _ = corpus(120, np.full(len(CODES), 0.2), seed=7)
    frame["coder"] = ""  # made by no model this project knows: counted as given, and the report says so
    codings = tmp_path / "mine.csv"
    frame.to_csv(codings, index=False)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(codings), "--out", str(out), "--model", str(tmp_path / "none")])
    assert result.exit_code == 2 and "--model" in result.output  # a missing model folder is named
    frame.drop(columns="coder").to_csv(codings, index=False)
    result = runner.invoke(app, ["report", str(codings), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "adjusted classify-and-count" in page and "How these codes were made" in page
    assert "Model vs people: Cohen&#x27;s κ" in page and "<details>" in page
