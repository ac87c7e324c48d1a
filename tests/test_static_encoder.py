"""The fast encoder: distilled once, offline, into the cache; verified on reuse; model2vec's vectors.

A tiny random BERT model (96 tokens, 32 dimensions) stands in for all-MiniLM-L6-v2: the
same distillation, caching and encoding code runs in a second instead of a minute. It is
built in a child process whose home, cache and temporary folders point at an empty folder
and whose sockets refuse to connect.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import static_encoder
from pipeline.embed import EXPORT_MANIFEST
from pipeline.errors import EncoderError
from pipeline.files import sha256_file
from pipeline.static_encoder import STATIC_RECIPE, StaticSentenceModel, load_static_model

pytestmark = pytest.mark.slow  # one child process importing torch and transformers: about 10 s

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the a of and to in we our data sharing county hospital partners health community records "
         "clinic school housing families trust value money saved time staff share report map story "
         "people care city council board goals first year").split()
BUILD = """
import json, socket, sys
from pathlib import Path
attempts = []
def refuse(*args, **kwargs):
    attempts.append(1)
    raise OSError("no network in this test")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast
source, cache_root = Path(sys.argv[1]), Path(sys.argv[2])
vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,!?'", *json.loads(sys.argv[3]),
                            *"abcdefghijklmnopqrstuvwxyz", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]))
source.mkdir()
(source / "vocab.txt").write_text("\\n".join(vocab) + "\\n")
BertTokenizerFast(vocab_file=str(source / "vocab.txt")).save_pretrained(str(source))
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))  # as all-MiniLM-L6-v2's: padded and cut
tokenizer.enable_padding(length=16)
tokenizer.enable_truncation(max_length=16)
tokenizer.save(str(source / "tokenizer.json"))
torch.manual_seed(0)
config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64)
BertModel(config).save_pretrained(str(source), safe_serialization=True)
def listing(folder):
    return sorted((str(p), p.stat().st_mtime_ns) for p in Path(folder).rglob("*"))
before, elsewhere = listing(source), listing(sys.argv[4])

from pipeline.files import sha256_file
from pipeline.static_encoder import load_static_model
load_static_model(source, sha256_file(source / "model.safetensors"), cache_root)
changed = listing(source) != before or listing(sys.argv[4]) != elsewhere

from pipeline.errors import EncoderError
not_a_model = source.parent / "not-a-model"
not_a_model.mkdir()
(not_a_model / "model.safetensors").write_bytes(b"not weights")
refusal = None
try:
    load_static_model(not_a_model, sha256_file(not_a_model / "model.safetensors"), source.parent / "other-cache")
except EncoderError as exc:
    refusal = str(exc)
print(json.dumps({"network_attempts": len(attempts), "changed_outside_the_cache": changed, "refusal": refusal}))
"""
TEXTS = [
    "We share data with the county. Our hospital partners saved money and time!",
    "the first year of trust",
    "Housing families, school staff and the city council share one map of the story of care.",
    "",
    "zzz ###",
]


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The tiny source model and the cache it was distilled into, with the child's report."""
    base = tmp_path_factory.mktemp("static")
    source, cache_root, outside = base / "source", base / "cache", base / "outside"
    outside.mkdir()
    env = {**os.environ, "HOME": str(outside), "XDG_CACHE_HOME": str(outside / "cache"), "HF_HOME": str(outside / "hf"),
           "TMPDIR": str(outside), "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", BUILD, str(source), str(cache_root), json.dumps(WORDS), str(outside)],
                           env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    return {"source": source, "cache_root": cache_root, "outside": outside, "stderr": child.stderr,
            "weights": sha256_file(source / "model.safetensors"), **json.loads(child.stdout.strip().splitlines()[-1])}


def folder_of(built) -> Path:
    return built["cache_root"] / "encoders" / f"static-{STATIC_RECIPE}-{built['weights'][:16]}"


def test_distilling_is_offline_quiet_and_writes_only_into_the_cache(built):
    assert built["network_attempts"] == 0
    assert not built["changed_outside_the_cache"]  # model folder, home, caches, temporary folder (beyond
    # the empty folder importing torch makes there)
    assert [p.name for p in (built["cache_root"]).rglob("*") if p.is_dir()] == ["encoders", folder_of(built).name]
    assert "Encoding tokens" not in built["stderr"]  # no tqdm bar when stderr is not a terminal
    manifest = json.loads((folder_of(built) / EXPORT_MANIFEST).read_text())
    assert manifest["recipe"] == STATIC_RECIPE and manifest["source_weights_sha256"] == built["weights"]
    assert manifest["files"] == {name: sha256_file(folder_of(built) / name) for name in manifest["files"]}
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(manifest["files"])


def test_vectors_are_model2vec_vectors(built):
    from model2vec import StaticModel

    model = load_static_model(built["source"], built["weights"], built["cache_root"])
    reference = StaticModel.from_pretrained(folder_of(built))
    vectors = model.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), model.get_sentence_embedding_dimension())
    np.testing.assert_allclose(vectors, reference.encode(TEXTS, max_length=None), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-6)
    assert not vectors[3].any()  # no tokens: model2vec's zero vector


def test_a_text_is_read_whole_and_alone_without_padding(built):
    model = load_static_model(built["source"], built["weights"], built["cache_root"])
    long_text = " ".join(["the county"] * 20 + ["hospital partners saved money"] * 20)  # past the source's 16 tokens
    alone = model.encode([long_text])[0]
    assert np.array_equal(alone, model.encode([TEXTS[1], long_text, TEXTS[0]])[1])
    assert not np.allclose(alone, model.encode([" ".join(["the county"] * 20)])[0], atol=1e-3)
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(folder_of(built) / "tokenizer.json"))  # what model2vec itself loads
    assert saved.padding is None and saved.truncation is None


def test_span_vectors_pool_the_tokens_inside_each_span(built):
    model = load_static_model(built["source"], built["weights"], built["cache_root"])
    text = TEXTS[0]
    first, second = (0, text.index(".") + 1), (text.index("Our"), len(text))
    [vectors] = model.encode_spans([text], [[first, second, (text.index(" Our"), text.index(" Our") + 1)]])
    assert vectors.shape == (4, model.get_sentence_embedding_dimension())
    assert np.array_equal(vectors[0], model.encode([text])[0])
    np.testing.assert_allclose(vectors[1], model.encode([text[slice(*first)]])[0], atol=1e-6)
    np.testing.assert_allclose(vectors[2], model.encode([text[slice(*second)]])[0], atol=1e-6)
    assert np.array_equal(vectors[3], vectors[0])  # a span of white space holds no token
    assert not np.allclose(vectors[1], vectors[2], atol=1e-3)
    assert [v.shape[0] for v in model.encode_spans(TEXTS[:2], [[], [(0, 3)]])] == [1, 2]


def _damage_weights(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))


DAMAGES = {
    "altered weights": _damage_weights,
    "edited tokenizer": lambda folder: (folder / "tokenizer.json").write_text("{}"),
    "missing manifest": lambda folder: (folder / EXPORT_MANIFEST).unlink(),
    "missing file": lambda folder: (folder / "config.json").unlink(),
    "extra file": lambda folder: (folder / "model.bin").write_bytes(b"x"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cached_model_is_distilled_again_never_used(built, tmp_path, monkeypatch, caplog, damage):
    cache_root = tmp_path / "cache"
    folder = cache_root / "encoders" / folder_of(built).name
    shutil.copytree(folder_of(built), folder)
    DAMAGES[damage](folder)
    distilled = []

    def distill_again(source, staging):  # what model2vec wrote the first time, in a second instead of ten
        distilled.append(source)
        for name in json.loads((folder_of(built) / EXPORT_MANIFEST).read_text())["files"]:
            shutil.copy2(folder_of(built) / name, staging / name)

    monkeypatch.setattr(static_encoder, "_distill", distill_again)
    with caplog.at_level(logging.WARNING, logger="pipeline.static_encoder"):
        model = load_static_model(built["source"], built["weights"], cache_root)
    assert distilled == [built["source"]]
    assert "incomplete or altered; distilling it again" in caplog.text
    expected = load_static_model(built["source"], built["weights"], built["cache_root"]).encode(TEXTS)
    assert np.array_equal(model.encode(TEXTS), expected)
    assert sorted(p.name for p in (cache_root / "encoders").iterdir()) == [folder.name]  # no staging left


def test_an_intact_cached_model_is_reused_not_distilled(built, monkeypatch):
    monkeypatch.setattr(static_encoder, "_distill", lambda *_: pytest.fail("distilled although the cache was intact"))
    assert isinstance(load_static_model(built["source"], built["weights"], built["cache_root"]), StaticSentenceModel)


def test_other_weights_get_their_own_distillation(built, tmp_path, monkeypatch):
    cache_root = tmp_path / "cache"
    shutil.copytree(built["cache_root"], cache_root)
    monkeypatch.setattr(static_encoder, "_distill", lambda *_: (_ for _ in ()).throw(RuntimeError("distilling")))
    with pytest.raises(RuntimeError, match="distilling"):
        load_static_model(built["source"], "0" * 64, cache_root)
    assert sorted(p.name for p in (cache_root / "encoders").iterdir()) == [folder_of(built).name]


def test_another_model2vec_version_is_refused_with_the_command_that_fixes_it(built, tmp_path, monkeypatch):
    monkeypatch.setattr(static_encoder, "version", lambda package: "0.8.1")
    with pytest.raises(EncoderError, match=r"model2vec 0\.9\.0 \(found 0\.8\.1\); install it with `pip install -c constraints.txt"):
        load_static_model(built["source"], built["weights"], tmp_path / "cache")
    assert list((tmp_path / "cache" / "encoders").iterdir()) == []  # its staging folder removed


def test_a_folder_that_is_not_a_transformers_model_is_one_clear_error(built):
    assert re.fullmatch(r".*/not-a-model: the fast encoder could not be distilled from this model folder \(\w+\); "
                        r"it needs a complete transformers model \(config.json, safetensors weights, tokenizer.json\)",
                        built["refusal"])


def test_loading_and_encoding_need_neither_torch_nor_model2vec(built):
    script = ("import sys; from pathlib import Path; from pipeline.static_encoder import load_static_model; "
              "m = load_static_model(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])); "
              "m.encode(['the county']); m.encode_spans(['the county'], [[(0, 3)]]); "
              "print([name for name in ('torch', 'transformers', 'sentence_transformers', 'model2vec') if name in sys.modules])")
    child = subprocess.run([sys.executable, "-c", script, str(built["source"]), built["weights"], str(built["cache_root"])],
                           capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    assert child.stdout.strip() == "[]"
