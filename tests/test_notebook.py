"""Execute notebooks/compare_programs.ipynb top to bottom in a kernel running this venv's Python."""

import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient

from pipeline.codebook import load_codebook
from pipeline.paths import CORPUS_DIR, PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "compare_programs.ipynb"


def synthetic_codings(n: int = 200, n_orgs: int = 10, seed: int = 5) -> pd.DataFrame:
    """200 quotes over 10 organizations (6 CHP, 4 DASH); DASH uses cost_savings far more."""
    code_ids = load_codebook().code_ids
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        org = i % n_orgs
        program = "CHP" if org < 6 else "DASH"
        rate = {"CHP": 0.1, "DASH": 0.4}[program]
        codes = sorted(c for c in code_ids if rng.random() < (rate if c == "cost_savings" else 0.15))
        rows.append({"id": f"q{i}", "text": f"testimonial {i}", "organization": f"Org {org}", "program": program,
                     "sector": ("public_health", "housing", "")[org % 3], "codes": ";".join(codes),
                     "needs_review": "false", "origin": "written"})
    return pd.DataFrame(rows)


def execute(monkeypatch, tmp_path: Path) -> nbformat.NotebookNode:
    # The python3 kernelspec launches "python"; put this interpreter first on PATH so the
    # kernel is this venv's Python whatever the caller's PATH is.
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    return client.execute()


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_uses_package_functions_and_loads_shipped_codings():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].startswith("from pipeline.jobs import shipped_codings\n\ncodings = shipped_codings()")
    assert not any("def " in source or "class " in source for source in code)  # no stage logic in cells
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean


@pytest.mark.slow
def test_notebook_runs_on_synthetic_codings(monkeypatch, tmp_path):
    path = tmp_path / "codings.csv"
    synthetic_codings().to_csv(path, index=False)
    monkeypatch.setenv("FRAMECODE_CODINGS", str(path))
    executed = execute(monkeypatch, tmp_path)
    text = outputs_text(executed)
    assert "200 quotes from 10 organizations" in text
    assert "DASH quotes use cost_savings more often than CHP" in text
    images = [o for c in executed.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2


@pytest.mark.slow
@pytest.mark.skipif(not any(CORPUS_DIR.glob("*")), reason="no shipped corpus")
def test_notebook_runs_on_the_shipped_corpus(monkeypatch, tmp_path):
    monkeypatch.delenv("FRAMECODE_CODINGS", raising=False)
    executed = execute(monkeypatch, tmp_path)
    assert "quotes from" in outputs_text(executed)
