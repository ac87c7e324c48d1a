"""The ONNX export run with onnxruntime alone gives sentence-transformers' vectors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.embed import _sentence_transformer, load_encoder
from pipeline.onnx_encoder import OnnxSentenceModel
from pipeline.paths import LABELS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(backend="onnx-int8", use_cache=False)


def _export(encoder):
    from pipeline.paths import cache_dir

    (folder,) = (cache_dir() / "encoders").glob(f"*-{encoder.identity.backend}")
    return folder, json.loads((folder / "framecode-export.json").read_text(encoding="utf-8"))["onnx_file"]


def test_the_default_export_runs_without_sentence_transformers_and_gives_its_vectors(encoder):
    assert isinstance(encoder.model, OnnxSentenceModel)
    rows = [json.loads(line)["text"] for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    texts = rows[:24] + [" ".join(rows[:30])]  # the last one is past the 256-token limit: truncated alike
    folder, onnx_file = _export(encoder)
    reference = _sentence_transformer(folder, backend="onnx", model_kwargs={"file_name": onnx_file, "provider": "CPUExecutionProvider"})
    ours = encoder.model.encode(texts)  # each text alone, unpadded
    theirs = reference.encode(texts, batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == theirs.shape == (25, 384)
    assert np.abs(ours - theirs).max() < 1e-6


def test_another_pooling_is_left_to_sentence_transformers(encoder, tmp_path):
    folder, onnx_file = _export(encoder)
    copy = tmp_path / "export"
    shutil.copytree(folder, copy)
    pooling = copy / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode": "cls"}), encoding="utf-8")
    assert OnnxSentenceModel.load(copy, onnx_file) is None
    assert OnnxSentenceModel.load(folder, onnx_file) is not None


class _CountingModel:
    """Wraps the ONNX model and counts the texts each method is asked to run."""

    def __init__(self, model):
        self.model, self.passes, self.alone = model, 0, 0

    def encode_spans(self, texts, spans):
        self.passes += len(texts)
        return self.model.encode_spans(texts, spans)

    def encode(self, texts, **settings):
        self.alone += len(texts)
        return self.model.encode(texts, **settings)

    def get_sentence_embedding_dimension(self):
        return self.model.get_sentence_embedding_dimension()


def test_sentences_are_pooled_from_one_encoder_pass_per_quote(encoder, tmp_path):
    from pipeline.embed import Encoder
    from pipeline.embedding_cache import EmbeddingCache
    from pipeline.features import embed_with_sentences

    rows = [json.loads(line)["text"] for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    texts = rows[:20] + [" ".join(rows[:30])]  # the last one's end is past the 256 tokens the encoder reads
    model = _CountingModel(encoder.model)
    counted = Encoder(model, encoder.identity, cache=EmbeddingCache(tmp_path / "cache.sqlite3"))
    embedded = embed_with_sentences(texts, counted)
    assert model.passes == len(texts)
    assert 0 < model.alone < len(embedded.sentence_texts) - 20  # only the sentences past the long quote's cut
    np.testing.assert_array_equal(embedded.texts, encoder.model.encode(texts))  # the whole quote's vector is unchanged
    first = embedded.sentences[embedded.owner == 0]
    tokens = encoder.model.encode_spans([texts[0]], [[(0, len(texts[0]))]])[0]
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert 0.9 < float(tokens[0] @ tokens[1]) < 1.0  # all its words, without the [CLS] and [SEP] the whole vector holds
    again = embed_with_sentences(texts, counted)  # everything from the cache: the model does not run
    assert model.passes == len(texts)
    np.testing.assert_array_equal(again.sentences, embedded.sentences)
