"""Model folders are all-or-nothing: the id follows every file's content, and a folder
holding a changed, unlisted or linked file is refused, naming the file."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.embed import check_model_folder
from pipeline.errors import EncoderError, ModelError
from pipeline.model import derive_model_id, load_coder, save_coder
from pipeline.paths import DEFAULT_MODEL_DIR
from pipeline.shares import CoderErrors

runner = CliRunner()


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


@pytest.fixture
def model(tmp_path):
    """A copy of the shipped model folder."""
    return shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model")


def _edit_config(folder, change) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    change(config)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _refused(folder, codebook, name: str) -> str:
    with pytest.raises(ModelError) as error:
        load_coder(folder, codebook=codebook)
    message = str(error.value)
    assert name in message and "\n" not in message
    return message


def test_shipped_model_loads_with_an_id_that_follows_its_content(codebook):
    coder = load_coder(DEFAULT_MODEL_DIR, codebook=codebook)
    assert coder.model_id.startswith("framecode-default-") and len(coder.model_hash) == 64


def test_zeroed_thresholds_in_config_are_refused(model, codebook):
    _edit_config(model, lambda c: c.update(thresholds=[0.0] * len(c["thresholds"])))
    _refused(model, codebook, "config.json")


def test_zeroed_coef_with_its_hash_updated_is_refused(model, codebook):
    coef = np.load(model / "coef.npy", allow_pickle=False)
    np.save(model / "coef.npy", np.zeros_like(coef), allow_pickle=False)
    digest = hashlib.sha256((model / "coef.npy").read_bytes()).hexdigest()
    _edit_config(model, lambda c: c["files"].update({"coef.npy": digest}))
    _refused(model, codebook, "config.json")


def test_a_changed_model_saved_again_gets_another_id(model, codebook, tmp_path):
    coder = load_coder(model, codebook=codebook)
    original = coder.model_id
    coder.config["thresholds"] = [0.0] * len(coder.code_ids)
    saved = load_coder(save_coder(coder, tmp_path / "zeroed"), codebook=codebook)
    assert saved.model_id != original and saved.model_id == coder.model_id
    assert (saved.thresholds == 0).all()
    again = load_coder(save_coder(load_coder(model, codebook=codebook), tmp_path / "same"), codebook=codebook)
    assert again.model_id == original  # the id is a function of the content, not of the save


def test_unlisted_file_is_refused_naming_it(model, codebook):
    np.save(model / "evil.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _refused(model, codebook, "evil.npy")


def test_a_pickle_under_a_listed_name_is_never_unpickled(model, codebook):
    np.save(model / "prototypes.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    digest = hashlib.sha256((model / "prototypes.npy").read_bytes()).hexdigest()

    def reseal(config):  # hash and id updated as a careful forger would
        config["files"]["prototypes.npy"] = digest
        config["model_id"] = derive_model_id(config)

    _edit_config(model, reseal)
    assert "pickle" in _refused(model, codebook, "prototypes.npy")


def test_symlinks_are_refused_naming_them(model, codebook, tmp_path):
    outside = tmp_path / "outside.json"
    shutil.move(model / "tfidf_vocabulary.json", outside)
    (model / "tfidf_vocabulary.json").symlink_to(outside)  # same bytes, same hash, but a link
    _refused(model, codebook, "tfidf_vocabulary.json")


def test_measured_error_rates_come_only_from_an_intact_folder(model, codebook):
    assert CoderErrors.from_model_dir(model).model_id == load_coder(model, codebook=codebook).model_id
    proba = np.load(model / "holdout_proba.npy", allow_pickle=False)
    np.save(model / "holdout_proba.npy", proba * 0, allow_pickle=False)
    with pytest.raises(ModelError, match="holdout_proba.npy"):
        CoderErrors.from_model_dir(model)


def test_code_refuses_a_tampered_model_in_one_line(model, tmp_path):
    _edit_config(model, lambda c: c.update(review_band=0.5))
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("id,text\nq1,We showed the dashboard to the council.\n", encoding="utf-8")
    result = runner.invoke(app, ["code", str(quotes), "--model", str(model), "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 2 and "config.json" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()


def test_encoder_folder_with_a_link_outside_is_refused(tmp_path):
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Pooling"}]), encoding="utf-8")
    (folder / "inside.json").write_text("{}", encoding="utf-8")
    (folder / "tokenizer.json").symlink_to(folder / "inside.json")
    check_model_folder(folder)  # a link inside the folder is fine
    (tmp_path / "elsewhere.safetensors").write_bytes(b"\0" * 8)
    (folder / "model.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(EncoderError, match="model.safetensors"):
        check_model_folder(folder)


class _FakeEncoder:
    """An encoder that only says who it is (refused before anything is encoded)."""

    def __init__(self, identity):
        self.identity = identity


def test_a_model_refuses_an_encoder_of_another_kind_than_it_was_trained_with(model, codebook):
    from pipeline.embed import EncoderIdentity

    coder = load_coder(model, codebook=codebook)
    trained = coder.encoder_identity
    assert trained["kind"] == "default"
    coder.encoder = _FakeEncoder(EncoderIdentity(trained["name"], trained["weights_sha256"], "static-model2vec-0.9.0-pca256", 256))
    with pytest.raises(ModelError, match="trained with the default encoder, not the fast one"):
        coder.get_encoder()
    coder.encoder = _FakeEncoder(EncoderIdentity(**{k: trained[k] for k in ("name", "weights_sha256", "backend", "dimension")}))
    assert coder.get_encoder() is coder.encoder


def test_coding_with_the_other_encoder_is_refused_in_one_line_before_anything_loads(model, tmp_path):
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("id,text\nq1,Sharing data saved money.\n", encoding="utf-8")
    result = runner.invoke(app, ["code", str(quotes), "--out", str(tmp_path / "out.csv"), "--model", str(model), "--encoder", "fast"])
    assert result.exit_code == 2
    assert "trained with the default encoder, not the fast one" in result.output
    assert "framecode train --encoder fast" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()
