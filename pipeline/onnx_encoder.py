"""Running a verified ONNX export with ONNX Runtime and the tokenizers library alone.

sentence-transformers takes about 8 s to import (it brings torch and transformers), most of a
one-quote `framecode tag`. For the common layout (a transformer, mean pooling, then L2
normalisation) the same computation needs only onnxruntime and tokenizers, which import in
a fraction of a second: tokenize (truncate at the model's maximum length), run the graph,
average the token vectors and normalise. Vectors agree with sentence-transformers' to float
rounding (max difference about 1e-7, measured on labelled quotes). Any other layout is left
to sentence-transformers.

Each text runs alone, unpadded: the int8 graph quantizes activations with scales taken from
the whole input, so a text batched with others would get a vector that depends on them.
Texts run in parallel instead: one session, single-threaded per run, shared by one thread
per core (ONNX Runtime sessions are safe to share), faster on a CPU than padded batches
were (README, Performance).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SIMPLE_MODULES = ("Transformer", "Pooling", "Normalize")


class OnnxSentenceModel:
    """The subset of ``SentenceTransformer`` that :class:`pipeline.embed.Encoder` uses."""

    def __init__(self, session, tokenizer, dimension: int, *, threads: int = 1):
        self.session = session
        self.tokenizer = tokenizer
        self.dimension = dimension
        self.threads = threads
        self.input_names = {i.name for i in session.get_inputs()}
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def load(cls, folder: Path, onnx_file: str) -> OnnxSentenceModel | None:
        """The model in an export folder, or None when its layout is not transformer, mean
        pooling and normalisation with a ``tokenizer.json`` (then sentence-transformers loads it)."""
        settings = _simple_layout(folder)
        if settings is None:
            return None
        import onnxruntime
        from tokenizers import Tokenizer

        max_length, dimension = settings
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(folder / onnx_file), options, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer, dimension, threads=_cores())

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: Sequence[str], **_settings) -> np.ndarray:
        """Unit vectors of ``texts`` in order, as float32; each text is run alone."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        for row, vector in enumerate(self._map(self._encode_one, encodings)):
            out[row] = vector
        return out

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[np.ndarray]:
        """One pass per text: for text i an array of ``1 + len(spans[i])`` unit vectors, the
        whole text's (as :meth:`encode` gives it), then for each character span the mean of
        the token vectors inside it from the same pass. A span the encoder did not read (past
        its maximum length) is NaN."""
        encodings = self.tokenizer.encode_batch(list(texts))
        return self._map(lambda item: self._span_vectors(*item), list(zip(encodings, spans, strict=True)))

    def _map(self, function, items: list) -> list:
        """``function`` over ``items`` in order, on one thread per core (a pool kept for the
        model's life)."""
        if self.threads < 2 or len(items) < 2:
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="framecode-encoder")
        return list(self._pool.map(function, items))

    def _span_vectors(self, encoding, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        tokens = self._tokens(encoding)
        out = np.full((1 + len(spans), self.dimension), np.nan, dtype=np.float32)
        out[0] = _unit(tokens.mean(axis=0, dtype=np.float32))
        offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        content = ~np.asarray(encoding.special_tokens_mask, dtype=bool)
        read_to = int(offsets[content, 1].max()) if content.any() else 0
        truncated = bool(encoding.overflowing)
        for j, (start, end) in enumerate(spans, start=1):
            inside = content & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
            if inside.any() and not (truncated and end > read_to):
                out[j] = _unit(tokens[inside].mean(axis=0, dtype=np.float32))
        return out

    def _encode_one(self, encoding) -> np.ndarray:
        return _unit(self._tokens(encoding).mean(axis=0, dtype=np.float32))

    def _tokens(self, encoding) -> np.ndarray:
        """The token vectors of one text's pass, shape (tokens, dimension)."""
        ids = np.array([encoding.ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0][0]


def _unit(pooled: np.ndarray) -> np.ndarray:
    """``pooled`` scaled to unit length, as sentence-transformers does: its Normalize module,
    then normalize_embeddings, so twice."""
    for _ in range(2):
        pooled = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
    return pooled.astype(np.float32)


THREADS_VARIABLE = "FRAMECODE_ENCODER_THREADS"


def _cores() -> int:
    """Threads to encode with: ``FRAMECODE_ENCODER_THREADS`` when set (a Ray worker sets it to
    the CPUs it was given), else the CPU cores this process may use."""
    setting = os.environ.get(THREADS_VARIABLE, "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _simple_layout(folder: Path) -> tuple[int, int] | None:
    """(maximum tokens, dimension) when ``folder`` is transformer + mean pooling + normalise."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        names = tuple(str(m["type"]).rsplit(".", 1)[-1] for m in modules)
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8")) if len(modules) > 1 else {}
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        model_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        st_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        prompts = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    mean = pooling.get("pooling_mode") == "mean" or (
        pooling.get("pooling_mode_mean_tokens") is True
        and not any(v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"))
    max_length = st_config.get("max_seq_length") or tokenizer_config.get("model_max_length")
    if names != SIMPLE_MODULES or not mean or not (folder / "tokenizer.json").is_file() or not isinstance(max_length, int):
        return None
    # an explicit lower-casing step or a default prompt are sentence-transformers' own; left to it
    if max_length > int(model_config.get("max_position_embeddings", 0)) or st_config.get("do_lower_case") or prompts.get("default_prompt_name"):
        return None
    dimension = pooling.get("embedding_dimension") or pooling.get("word_embedding_dimension") or model_config.get("hidden_size")
    return (max_length, int(dimension)) if dimension else None
