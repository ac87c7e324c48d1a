import logging
import multiprocessing
import sqlite3

import numpy as np
import pytest

from pipeline.embedding_cache import EmbeddingCache, normalize_text, text_digest
from pipeline.errors import EncoderError

KEY = "torch-4-0123456789abcdef"
DIM = 4


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def digest(text: str) -> bytes:
    return text_digest(normalize_text(text))


def fill(cache: EmbeddingCache, count: int) -> None:
    cache.put_many(KEY, [(digest(f"quote {i}"), unit(i)) for i in range(count)])


def test_stored_vector_comes_back_exactly(tmp_path):
    with EmbeddingCache(tmp_path / "e.sqlite3") as cache:
        cache.put_many(KEY, [(digest("a"), unit(1))])
        found = cache.get_many(KEY, [digest("a"), digest("b")], DIM)
    assert list(found) == [digest("a")]
    assert found[digest("a")].tobytes() == unit(1).tobytes()


def test_vectors_are_kept_per_encoder(tmp_path):
    with EmbeddingCache(tmp_path / "e.sqlite3") as cache:
        cache.put_many(KEY, [(digest("a"), unit(1))])
        assert cache.get_many("onnx-4-0123456789abcdef", [digest("a")], DIM) == {}


def test_vectors_survive_reopening(tmp_path):
    with EmbeddingCache(tmp_path / "e.sqlite3") as cache:
        fill(cache, 10)
    with EmbeddingCache(tmp_path / "e.sqlite3") as cache:
        assert cache.count(KEY) == 10
        assert cache.get_many(KEY, [digest("quote 3")], DIM)[digest("quote 3")].tobytes() == unit(3).tobytes()


def test_normalisation_is_nfc_and_outer_whitespace_only():
    assert normalize_text("  caf\u0065\u0301 data\n") == "caf\u00e9 data"
    assert digest(" Sharing data\t") == digest("Sharing data")
    assert digest("Sharing  data") != digest("Sharing data")
    assert digest("None") != digest("")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_file_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    path = tmp_path / "e.sqlite3"
    with EmbeddingCache(path) as cache:
        fill(cache, 2000)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    else:
        path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING), EmbeddingCache(path) as cache:
        assert cache.count() == 0
        fill(cache, 3)
        assert cache.count(KEY) == 3
    assert "rebuilding" in caplog.text


@pytest.mark.parametrize("blob", [b"\x00\x01\x02", np.float32([3, 0, 0, 0]).tobytes(), np.float32([np.nan, 0, 0, 1]).tobytes()])
def test_damaged_row_is_never_returned(tmp_path, caplog, blob):
    path = tmp_path / "e.sqlite3"
    with EmbeddingCache(path) as cache:
        fill(cache, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE embeddings SET vector = ? WHERE text_sha256 = ?", [blob, digest("quote 1")])
    with caplog.at_level(logging.WARNING), EmbeddingCache(path) as cache:
        wanted = [digest(f"quote {i}") for i in range(3)]
        found = cache.get_many(KEY, wanted, DIM)
        assert set(found) == {wanted[0], wanted[2]}
        assert cache.count(KEY) == 2  # the damaged row was dropped, to be recomputed
    assert "damaged" in caplog.text


def test_locked_file_is_reported_not_wiped(tmp_path):
    path = tmp_path / "e.sqlite3"
    with EmbeddingCache(path) as cache:
        fill(cache, 5)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with EmbeddingCache(path, timeout=0.2) as cache:
            with pytest.raises(EncoderError, match="e.sqlite3"):
                cache.put_many(KEY, [(digest("new"), unit(9))])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with EmbeddingCache(path) as cache:
        assert cache.count(KEY) == 5


def _writer(path: str, offset: int) -> None:
    with EmbeddingCache(path) as cache:
        for batch in range(20):
            start = offset + batch * 10
            cache.put_many(KEY, [(digest(f"q{i}"), unit(i)) for i in range(start, start + 10)])


def test_two_processes_can_write_at_once(tmp_path):
    path = str(tmp_path / "e.sqlite3")
    EmbeddingCache(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, offset)) for offset in (0, 1000)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with EmbeddingCache(path) as cache:
        assert cache.count(KEY) == 400
