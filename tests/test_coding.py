"""The coding stage: training, the model folder's safety checks, `code`, `tag`, `evaluate`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.classify import SupervisedCoder, best_thresholds
from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.coding import PERSON_COLUMNS, coding_columns, default_coder, tag
from pipeline.errors import ModelError
from pipeline.labels import load_labels
from pipeline.model import load_coder, model_is_stale, save_coder, train_coder
from pipeline.paths import DEFAULT_MODEL_DIR, LABELS_DIR
from pipeline.records import Codebook, Quote

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook()


@pytest.fixture(scope="module")
def encoder():
    from pipeline.embed import load_encoder

    return load_encoder()


@pytest.fixture(scope="module")
def small_labels(tmp_path_factory, codebook):
    """80 real statements (every code present) in a labels folder of their own."""
    folder = tmp_path_factory.mktemp("labels")
    rows = [json.loads(line) for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    picked, seen = [], set()
    for code in codebook.code_ids:
        for row in [r for r in rows if code in r["labels"]][:6]:
            if row["id"] not in seen:
                picked.append(row)
                seen.add(row["id"])
    picked += [r for r in rows if not r["labels"]][:20]
    with open(folder / "real_statements.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in picked)
    return folder


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, codebook, small_labels, encoder):
    coder = train_coder(codebook, load_labels(codebook, small_labels), encoder)
    return save_coder(coder, tmp_path_factory.mktemp("models") / "small")


@pytest.fixture(scope="module")
def shipped(codebook, encoder):
    return default_coder(codebook, encoder=encoder)


def test_supervised_coder_follows_sklearn_conventions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5]).astype(int)
    coder = SupervisedCoder(C=2.0)
    assert coder.C == 2.0 and not hasattr(coder, "coef_")
    assert coder.fit(X, Y, groups=np.arange(80) // 4) is coder
    proba = coder.predict_proba(X)
    assert proba.shape == (80, 2) and (proba >= 0).all() and (proba <= 1).all()
    assert (coder.predict(X) == Y).mean() > 0.85


def test_thresholds_maximise_f1_on_the_given_probabilities():
    proba = np.array([[0.9], [0.8], [0.35], [0.3], [0.1]])
    y = np.array([[1], [1], [1], [0], [0]])
    assert 0.3 < best_thresholds(proba, y)[0] <= 0.35


def test_saved_model_folder_is_self_describing_and_plain_data(small_model, codebook):
    config = json.loads((small_model / "config.json").read_text())
    assert config["codebook"]["hash"] == codebook.content_hash
    assert config["encoder"]["weights_sha256"].startswith("53aa5117")
    assert set(config["code_ids"]) == set(codebook.code_ids)
    assert {p.suffix for p in small_model.iterdir()} <= {".json", ".jsonl", ".npy"}
    assert "scikit-learn" in config["library_versions"]


def test_model_under_another_codebook_is_refused_naming_both_hashes(small_model, codebook):
    other = Codebook.from_dict({**codebook.to_dict(), "version": "2"})
    with pytest.raises(ModelError) as error:
        load_coder(small_model, codebook=other)
    assert codebook.content_hash in str(error.value) and other.content_hash in str(error.value)


def test_tampered_or_pickled_model_folder_is_refused(small_model, codebook, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(small_model, tampered)
    coef = np.load(tampered / "coef.npy")
    np.save(tampered / "coef.npy", coef + 1.0)
    with pytest.raises(ModelError, match="sha256"):
        load_coder(tampered, codebook=codebook)
    pickled = tmp_path / "pickled"
    shutil.copytree(small_model, pickled)
    (pickled / "extra.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(ModelError, match="extra.pkl"):
        load_coder(pickled, codebook=codebook)


def test_default_model_is_retrained_when_labels_change(small_labels, small_model, codebook, encoder, tmp_path, caplog):
    labels_dir = tmp_path / "labels"
    shutil.copytree(small_labels, labels_dir)
    model_dir = tmp_path / "model"
    shutil.copytree(small_model, model_dir)
    assert model_is_stale(model_dir, codebook, load_labels(codebook, labels_dir)) is None
    with open(labels_dir / "real_statements.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "new1", "text": "Shared alerts reach case managers the same day.", "labels": ["timely_data"], "source_url": "x"}) + "\n")
    assert "labels changed" in model_is_stale(model_dir, codebook, load_labels(codebook, labels_dir))
    with caplog.at_level("WARNING"):
        coder = default_coder(codebook, labels_dir=labels_dir, model_dir=model_dir, encoder=encoder)
    assert "retraining" in caplog.text
    assert coder.config["labels"]["n_quotes"] == json.loads((small_model / "config.json").read_text())["labels"]["n_quotes"] + 1


def test_shipped_model_is_current(codebook):
    assert model_is_stale(DEFAULT_MODEL_DIR, codebook, load_labels(codebook)) is None


def test_agreement_paperwork_alone_gets_no_code(shipped):
    rows = shipped.code_rows([Quote.from_row({"text": "The county attorney and the hospital signed a data use agreement in March after six months of legal review."})])
    assert rows[0]["codes"] == ""


def test_denied_framing_is_not_coded(shipped):
    text = "Honestly, sharing the data did not save money, and the return-on-investment case fell flat with our partners."
    assert "cost_savings" not in shipped.code_rows([Quote.from_row({"text": text})])[0]["codes"]


def test_the_issues_six_denied_sentences_are_left_uncoded_and_their_twins_coded(shipped):
    pairs = json.loads((Path(__file__).parent / "data" / "denied_and_affirmed.json").read_text(encoding="utf-8"))
    quotes = [Quote.from_row({"id": f"q{i}{side[0]}", "text": pair[side]}) for i, pair in enumerate(pairs) for side in ("denied", "affirmed")]
    rows = {row["id"]: row["codes"].split(";") for row in shipped.code_rows(quotes)}
    assert all(pair["code"] not in rows[f"q{i}d"] for i, pair in enumerate(pairs))
    assert sum(pair["code"] in rows[f"q{i}a"] for i, pair in enumerate(pairs)) >= 5


def test_tag_shows_a_denied_framing_with_the_words_that_deny_it(shipped):
    text = "The Medicaid waiver did not give us any leverage with the hospitals."
    table = runner.invoke(app, ["tag", text], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "no: denied by \u201cdid not give\u201d (coding rule 2)" in table.output
    shown = json.loads(runner.invoke(app, ["tag", text, "--json"]).output)
    financing = next(c for c in shown["codes"] if c["code"] == "financing_policy")
    assert financing["denied"] and not financing["applied"] and financing["denied_by"] == "did not give"


def test_an_unsure_denial_of_a_likely_framing_goes_to_a_person_with_the_reason(shipped):
    from pipeline.denial import Denial

    k = shipped.code_ids.index("cost_savings")
    proba = np.zeros(len(shipped.code_ids))
    proba[k] = 0.99
    far = {"cost_savings": Denial("cost_savings", "next sentence", "It didn't.", near=False)}
    near = {"cost_savings": Denial("cost_savings", "negation", "did not", near=True)}
    assert shipped.review_reason(proba, far).startswith("cost_savings: left uncoded as denied by \u201cIt didn't.\u201d")
    assert shipped.review_reason(proba, near) == ""
    rows = shipped.code_rows([Quote.from_row({"text": "We told the county board that linking the data would cut ER visits and save money. It didn't."})])
    assert "cost_savings" not in rows[0]["codes"]
    assert rows[0]["needs_review"] == ("true" if rows[0]["review_reason"] else "false")


def test_clear_framings_are_coded(shipped):
    text = ("Because the hospital shares real-time admission alerts with our case managers, we reach "
            "frequent emergency department users within a day, and avoidable ED visits fell by a third.")
    codes = shipped.code_rows([Quote.from_row({"text": text})])[0]["codes"].split(";")
    assert {"care_coordination", "cost_savings", "timely_data"} <= set(codes)


def test_code_command_writes_the_contract_columns_in_input_order(tmp_path, shipped):
    source = tmp_path / "new.csv"
    texts = [
        "Our 211 referral platform lets social workers see whether a family actually reached the food bank.",
        "None",
        "The board approved the data governance charter.",
    ]
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Quote", "organization"])
        writer.writerows([[t, "Example Org"] for t in texts])
    out = tmp_path / "codings.csv"
    result = runner.invoke(app, ["code", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["text"] for r in rows] == texts
    assert list(rows[0]) == [*coding_columns(shipped.code_ids), *PERSON_COLUMNS, "source"]
    assert rows[0]["source"] == "new.csv:row 2"
    for row in rows:
        codes = [c for c in row["codes"].split(";") if c]
        assert codes == sorted(codes)
        assert all(float(row[f"p_{c}"]) >= 0.0 for c in shipped.code_ids)
        assert row["needs_review"] in {"true", "false"}


def test_code_command_rejects_a_file_without_text_column(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("name,notes\na,b\n", encoding="utf-8")
    result = runner.invoke(app, ["code", str(source), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "no text column" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_tag_gives_the_carrying_sentence_and_nearest_coded_quotes(shipped):
    text = ("We were skeptical at first. Then we showed the county commissioners a map of overdose calls "
            "next to our treatment beds, and they funded two new sites.")
    result = tag(text, shipped)
    applied = {c.code: c for c in result.applied}
    assert "show_the_product" in applied
    item = applied["show_the_product"]
    assert item.sentence.startswith("Then we showed")
    assert 1 <= len(item.examples) <= 3
    assert all("show_the_product" in next(e for e in shipped.evidence if e.id == ex.id).codes for ex in item.examples)


def test_tag_command_prints_json(shipped):
    result = runner.invoke(app, ["tag", "--json", "Shared care plans keep every provider in the loop."])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == shipped.model_id
    assert len(report["codes"]) == 9


def test_evaluate_holds_out_whole_pages_and_reports_baselines(small_labels, codebook, encoder):
    from pipeline.evaluate import evaluate

    report = evaluate(load_labels(codebook, small_labels), codebook, encoder, variants=False, learning_curve=False)
    assert report["held_out_by"].startswith("source page")
    assert {r["system"] for r in report["compared"]} == {"default", "zero-shot", "tfidf+lr"}
    assert len(report["headline"]["per_code"]) == 9
    low, high = report["headline"]["macro_f1_ci95"]
    assert low <= report["headline"]["macro_f1"] <= high
    assert 0.0 <= report["headline"]["calibration"]["brier"] <= 1.0
