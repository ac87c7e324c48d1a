"""The fast encoder: static token embeddings distilled from a sentence-transformers model.

model2vec runs every token of the model's vocabulary through the transformer once, reduces
the vectors with PCA and weights them by estimated word frequency (SIF). A text's vector is
then the mean of its tokens' vectors, L2-normalised: no transformer at run time, so encoding
is a table look-up, many times faster than the default encoder on a CPU, at some cost in
quality (README, "The fast encoder").

The distilled model is built once per source weights and ``STATIC_RECIPE`` under
``<cache>/encoders/static-<recipe>-<weights>/``, in a folder beside it renamed into place when
complete, with a manifest of every file's sha256 that is checked each time the folder is
reused; a damaged or partial folder is rebuilt with a warning, never used. Distilling reads
the local model folder only (the offline switches of :mod:`pipeline.embed` are set first) and
needs torch and transformers; loading needs only numpy, safetensors and tokenizers.

Every text is read whole (no truncation) and alone: its vector depends on its text only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .embed import EXPORT_MANIFEST, _quiet, _versions, check_model_folder, install_built_folder
from .errors import EncoderError
from .files import sha256_file

logger = logging.getLogger(__name__)

MODEL2VEC_VERSION = "0.9.0"
# PCA to 256 dimensions (model2vec's default); float32 vectors, so that a text's vector is
# the same whether model2vec or this module computes it; the tokenizer saved without the
# source's padding and truncation (model2vec 0.9.0 keeps them: every text was padded with
# [PAD] vectors to 128 tokens and cut there; fixed upstream in model2vec PR #376).
PCA_DIMS = 256
STATIC_RECIPE = f"model2vec-{MODEL2VEC_VERSION}-pca{PCA_DIMS}-float32-unpadded"
WEIGHTS_FILE = "model.safetensors"


class StaticSentenceModel:
    """The subset of ``SentenceTransformer`` that :class:`pipeline.embed.Encoder` uses, for a
    model2vec folder: token vectors looked up, averaged and normalised."""

    def __init__(self, vectors: np.ndarray, tokenizer, unknown_id: int | None):
        self.vectors = vectors
        self.tokenizer = tokenizer
        self.unknown_id = unknown_id

    @classmethod
    def load(cls, folder: Path) -> StaticSentenceModel:
        """The model saved by model2vec in ``folder`` (a plain embedding table, normalised)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            tensors = load_file(str(folder / WEIGHTS_FILE))
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except (OSError, ValueError, TypeError) as exc:
            raise EncoderError(f"{folder}: the fast encoder could not be read ({type(exc).__name__}); "
                               "remove the folder and it is distilled again") from None
        if set(tensors) != {"embeddings"} or not config.get("normalize") or config.get("pooling", "mean") != "mean":
            raise EncoderError(f"{folder}: not a plain normalised model2vec model (mean pooling, no "
                               "vocabulary quantization); remove the folder and it is distilled again")
        vectors = np.ascontiguousarray(tensors["embeddings"], dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != tokenizer.get_vocab_size():
            raise EncoderError(f"{folder}: the fast encoder's table does not match its tokenizer; "
                               "remove the folder and it is distilled again")
        tokenizer.no_padding()
        tokenizer.no_truncation()
        unknown = getattr(tokenizer.model, "unk_token", None)
        return cls(vectors, tokenizer, tokenizer.token_to_id(unknown) if unknown else None)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, texts: Sequence[str], **_settings) -> np.ndarray:
        """Unit vectors of ``texts`` in order, shape ``(len(texts), dimension)``, float32: the
        mean of each text's token vectors, normalised (a text without known tokens: zeros)."""
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        out = np.zeros((len(encodings), self.get_sentence_embedding_dimension()), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            out[row] = self._pool(ids[self._known(ids)])
        return out

    def encode_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[np.ndarray]:
        """For text i an array of ``1 + len(spans[i])`` vectors: the whole text's (as
        :meth:`encode` gives it), then per character span ``(start, end)`` the normalised mean
        of the token vectors lying inside it; a span holding no token gets the text's vector."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        out = []
        for encoding, text_spans in zip(encodings, spans, strict=True):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
            known = self._known(ids)
            vectors = np.empty((1 + len(text_spans), self.get_sentence_embedding_dimension()), dtype=np.float32)
            vectors[0] = self._pool(ids[known])
            for j, (start, end) in enumerate(text_spans, start=1):
                inside = known & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
                vectors[j] = self._pool(ids[inside]) if inside.any() else vectors[0]
            out.append(vectors)
        return out

    def _known(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` have a vector: all but the unknown token (model2vec drops it)."""
        return ids != self.unknown_id if self.unknown_id is not None else np.ones(len(ids), dtype=bool)

    def _pool(self, ids: np.ndarray) -> np.ndarray:
        """The normalised mean of the vectors of ``ids``, computed as model2vec computes it."""
        if not len(ids):
            return np.zeros(self.get_sentence_embedding_dimension(), dtype=np.float32)
        mean = self.vectors[ids].mean(axis=0)
        return mean / (np.linalg.norm(mean) + 1e-32)


def load_static_model(model_folder: Path, weights_sha256: str, cache_root: Path) -> StaticSentenceModel:
    """The fast encoder distilled from ``model_folder`` (whose weights hash to
    ``weights_sha256``), distilled into ``cache_root/encoders/`` on first use and verified by
    hash each time it is reused."""
    return StaticSentenceModel.load(static_folder(Path(model_folder), weights_sha256, Path(cache_root)))


def static_folder(source: Path, weights_sha256: str, root: Path) -> Path:
    """The verified folder of the distilled model, built once (atomically)."""
    encoders = root / "encoders"
    final = encoders / f"static-{STATIC_RECIPE}-{weights_sha256[:16]}"
    if _verified(final, weights_sha256):
        return final
    if final.exists():
        logger.warning("%s: fast encoder is incomplete or altered; distilling it again", final)
    logger.info("distilling the fast encoder from %s (%s); this happens once and takes a minute or two",
                source.name, STATIC_RECIPE)
    encoders.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=encoders))
    staging.chmod(0o755)
    try:
        _distill(source, staging)
        manifest = {
            "source": str(source),
            "source_weights_sha256": weights_sha256,
            "recipe": STATIC_RECIPE,
            "files": {name: sha256_file(staging / name) for name in _listing(staging)},
            "versions": {**_versions(), **_distill_versions()},
        }
        install_built_folder(staging, final, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not _verified(final, weights_sha256):
        raise EncoderError(f"{final}: the fast encoder could not be verified after distilling it")
    return final


def _verified(folder: Path, weights_sha256: str) -> bool:
    """Whether ``folder`` holds exactly the files its manifest lists, each with its hash, for
    these source weights and this recipe."""
    if folder.is_symlink():
        raise EncoderError(f"{folder}: a link to {folder.resolve()}; the cache's encoder folders are plain "
                           "folders - remove the link and the fast encoder is distilled again")
    try:
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest["source_weights_sha256"] != weights_sha256 or manifest["recipe"] != STATIC_RECIPE:
            return False
        if sorted(files) != _listing(folder) or WEIGHTS_FILE not in files:
            return False
        if any(sha256_file(folder / name) != digest for name, digest in files.items()):
            return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    check_model_folder(folder)
    return True


def _listing(folder: Path) -> list[str]:
    """Every file under ``folder`` but the manifest, as sorted relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if not p.is_dir() and p.name != EXPORT_MANIFEST)


def _distill(source: Path, staging: Path) -> None:
    """Distil ``source`` into ``staging`` with model2vec, on the CPU, from local files only."""
    install = f"install it with `pip install -c constraints.txt 'model2vec[distill]=={MODEL2VEC_VERSION}'`"
    try:
        installed = version("model2vec")
    except PackageNotFoundError:
        installed = None
    if installed != MODEL2VEC_VERSION:
        raise EncoderError(f"the fast encoder is distilled with model2vec {MODEL2VEC_VERSION} "
                           f"(found {installed or 'none'}); {install}")
    try:
        from model2vec.distill import distill, inference
    except ImportError as exc:
        raise EncoderError(f"distilling the fast encoder needs model2vec's distill extra ({exc.name} is "
                           f"missing); {install}") from None
    noisy = ("", "transformers", "model2vec", "skeletoken")
    with _quiet(*noisy), _distill_progress(inference):
        try:
            model = distill(str(source), device="cpu", pca_dims=PCA_DIMS, quantize_to="float32", trust_remote_code=False)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EncoderError(
                f"{source}: the fast encoder could not be distilled from this model folder ({type(exc).__name__}); "
                "it needs a complete transformers model (config.json, safetensors weights, tokenizer.json)"
            ) from exc
        model.tokenizer.no_padding()
        model.tokenizer.no_truncation()
        model.save_pretrained(staging)


def _distill_versions() -> dict[str, str]:
    found = {}
    for package in ("model2vec", "skeletoken", "transformers", "tokenizers"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


@contextlib.contextmanager
def _distill_progress(inference) -> Iterator[None]:
    """A step of the command's progress display when one is shown; model2vec's own tqdm bar
    (in its ``inference`` module) only when none is and stderr is a terminal (never in logs,
    pipes or CI)."""
    from tqdm import tqdm

    from .progress import is_shown, task

    original = inference.tqdm
    inference.tqdm = functools.partial(tqdm, disable=is_shown() or not sys.stderr.isatty())
    try:
        with task("distilling the fast encoder (once)", None, unit="tokens"):
            yield
    finally:
        inference.tqdm = original
