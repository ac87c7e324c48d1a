"""Train, save and load a coder: a self-describing model folder that loads offline.

A model folder holds ``config.json`` (format, name, model id, codebook/labels/encoder
identity and hashes, feature spec, thresholds, review band, metrics, library versions, and
the sha256 of every other file) and plain ``.npy`` arrays and a JSONL evidence bank. The
model id is the sha256 of ``config.json``'s content apart from the id itself, so it follows
every byte of every file; a folder is loaded whole or refused: a link, a file its config
does not list, a changed file or an id that does not match its content is refused before
anything is parsed. Nothing is unpickled: arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from .classify import SupervisedCoder
from .errors import ModelError
from .denial import Denial, DenialScan, scan_denials
from .features import (
    Embedded,
    FeatureSpec,
    embed_with_sentences,
    feature_matrix,
    fit_tfidf,
    prototype_texts,
    tfidf_from_state,
    zero_shot_scores,
)
from .files import atomic_write_bytes, atomic_write_text, os_error_message, sha256_text
from .labels import LabelledQuote, LabelledSet
from .paths import DEFAULT_MODEL_DIR
from .records import Codebook, Quote

log = logging.getLogger(__name__)

MODEL_FORMAT = "framecode-coder/2"
ARRAYS = ("coef", "intercept", "calibration", "prototypes", "evidence_embeddings", "tfidf_idf",
          "holdout_proba", "holdout_labels", "holdout_groups")
HOLDOUT_ORIGINS = ("real", "seed")
"""Origins whose out-of-fold predictions are kept as the coder's measured error (real statements only)."""
EVIDENCE_FILE = "evidence.jsonl"
VOCABULARY_FILE = "tfidf_vocabulary.json"
CONFIG_FILE = "config.json"
MODEL_FILES = frozenset({f"{name}.npy" for name in ARRAYS} | {EVIDENCE_FILE, VOCABULARY_FILE})
"""Every file of a model folder besides ``config.json``, which lists their sha256."""
ID_DIGITS = 16
REVIEW_BAND_CANDIDATES = (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15)
MAX_REVIEW_SHARE = 0.2
DEFAULT_PARAMS = {"C": 1.0, "class_weight": "balanced", "cv": 5}
ORIGIN_WEIGHTS = {"real": 1.0, "seed": 1.0, "reviewed": 1.0, "written": 0.3, "contrast": 1.0}


@dataclass(frozen=True)
class Evidence:
    id: str
    text: str
    codes: tuple[str, ...]
    origin: str


@dataclass
class TrainedCoder:
    """A fitted coder with everything needed to code quotes and explain its codings."""

    config: dict
    codebook: Codebook
    estimator: SupervisedCoder
    spec: FeatureSpec
    prototypes: np.ndarray
    evidence: tuple[Evidence, ...]
    evidence_embeddings: np.ndarray
    tfidf: TfidfVectorizer | None = None
    encoder: object | None = None
    holdout: dict[str, np.ndarray] | None = None

    @property
    def model_id(self) -> str:
        return self.config["model_id"]

    @property
    def model_hash(self) -> str:
        return self.config.get("model_hash", "")

    @property
    def codebook_hash(self) -> str:
        return self.config["codebook"]["hash"]

    @property
    def encoder_identity(self) -> dict:
        return self.config["encoder"]

    @property
    def code_ids(self) -> tuple[str, ...]:
        return tuple(self.config["code_ids"])

    @property
    def thresholds(self) -> np.ndarray:
        return self.estimator.thresholds_

    @property
    def review_band(self) -> float:
        return float(self.config["review_band"])

    def get_encoder(self):
        """The encoder the model was trained with (loaded on first use); an encoder of another
        kind, backend or weights is refused."""
        identity = self.encoder_identity
        if self.encoder is None:
            from .embed import load_encoder

            self.encoder = load_encoder(identity["model"], backend=identity["requested_backend"],
                                        kind=identity.get("kind", "default"))
        given = self.encoder.identity
        if given.weights_sha256 != identity["weights_sha256"]:
            raise ModelError(
                f"model {self.model_id} was trained on encoder weights {identity['weights_sha256'][:12]}, "
                f"but {given.weights_sha256[:12]} was loaded; retrain with `framecode train`"
            )
        self.require_encoder(given.kind)
        if given.kind == "fast" and given.backend != identity["backend"]:
            raise ModelError(f"model {self.model_id} was trained with the fast encoder {identity['backend']}, but "
                             f"{given.backend} was loaded; retrain with `framecode train --encoder fast`")
        return self.encoder

    def require_encoder(self, kind: str | None) -> None:
        """Refuse, before any encoder loads, when ``kind`` (``default``/``fast``; None for
        either) is not the encoder the model was trained with."""
        trained = self.encoder_identity.get("kind", "default")
        if kind is not None and kind != trained:
            raise ModelError(
                f"model {self.model_id} was trained with the {trained} encoder, not the {kind} one; code with "
                f"--encoder {trained}, or train a model for the {kind} encoder with `framecode train --encoder {kind}`"
            )

    def embed(self, texts: Sequence[str]) -> Embedded:
        return embed_with_sentences(texts, self.get_encoder(), in_context=self.spec.sentence_vectors == "in-context")

    def features(self, embedded: Embedded, texts: Sequence[str]) -> np.ndarray:
        zero_shot = None
        if self.spec.zero_shot_weight:
            owner = np.asarray(self.config["prototype_owner"])
            zero_shot = zero_shot_scores(embedded, self.prototypes, owner, len(self.code_ids))
        return feature_matrix(embedded, texts, self.spec, self.code_ids, zero_shot, self.tfidf)

    def denials(self, texts: Sequence[str], candidates: np.ndarray | None = None) -> DenialScan:
        """Where each quote names a code only to deny it (coding rule 2, :mod:`pipeline.denial`)."""
        return scan_denials(texts, self.spec, self.code_ids, candidates)

    def decide(self, proba: np.ndarray, texts: Sequence[str], scan: DenialScan | None = None) -> np.ndarray:
        """Codes applied: probability at or above the code's threshold, unless the quote
        names the code only to deny it (coding rule 2)."""
        above = proba >= self.thresholds
        scan = scan if scan is not None else self.denials(texts, candidates=above)
        return above & ~scan.denied

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self.estimator.predict_proba(self.features(self.embed(texts), texts))

    def sentence_proba(self, embedded: Embedded, which: np.ndarray | None = None) -> np.ndarray:
        """Sentences scored on their own, to find the sentence that carries a code (all of
        them, or the indices in ``which``)."""
        which = np.arange(len(embedded.sentences)) if which is None else which
        vectors = embedded.sentences[which]
        texts = [embedded.sentence_texts[j] for j in which]
        alone = Embedded(vectors, vectors, np.arange(len(which)), tuple(texts))
        return self.estimator.predict_proba(self.features(alone, texts))

    def code_rows(self, quotes: Sequence[Quote]) -> list[dict]:
        """Rows of the codings layout, one per quote, in order."""
        texts = [q.text for q in quotes]
        if not texts:
            return []
        embedded = self.embed(texts)
        proba = self.estimator.predict_proba(self.features(embedded, texts))
        # denials matter where a code is applied or may be flagged for review
        scan = self.denials(texts, candidates=proba >= self.thresholds - self.review_band)
        applied = self.decide(proba, texts, scan)
        # Only quotes of several sentences with a code applied need sentences scored alone.
        counts = np.bincount(embedded.owner, minlength=len(texts))
        wanted = np.flatnonzero(applied.any(axis=1)[embedded.owner] & (counts[embedded.owner] > 1))
        per_sentence = dict(zip(wanted.tolist(), self.sentence_proba(embedded, wanted))) if len(wanted) else {}
        rows = []
        for i, quote in enumerate(quotes):
            sentences = np.flatnonzero(embedded.owner == i)
            evidence = {
                code: embedded.sentence_texts[max(sentences, key=lambda j: per_sentence[j][k]) if len(sentences) > 1 else sentences[0]]
                for k, code in enumerate(self.code_ids)
                if applied[i, k]
            }
            reason = self.review_reason(proba[i], scan.reasons[i])
            row = {
                "id": quote.id,
                "text": quote.text,
                "organization": quote.organization,
                "program": quote.program,
                "sector": quote.sector,
                "codes": ";".join(sorted(c for c, a in zip(self.code_ids, applied[i]) if a)),
                "needs_review": "true" if reason else "false",
            }
            row.update({f"p_{code}": f"{proba[i, k]:.4f}" for k, code in enumerate(self.code_ids)})
            row["evidence"] = json.dumps(evidence, ensure_ascii=False, sort_keys=True) if evidence else ""
            row["coder"] = self.model_id
            row["review_reason"] = reason
            rows.append(row)
        return rows

    def review_reason(self, proba_row: np.ndarray, denials: Mapping[str, Denial] | None = None) -> str:
        """Why a person should check this quote, one clause per code ("" when nothing calls
        for it): a probability within the review band of its threshold, or a framing the
        model would code but that the quote denies in a way the rules are unsure of (far
        from the cue, in the next sentence, a hope or a doubt)."""
        reasons = []
        for k, code in enumerate(self.code_ids):
            denial = (denials or {}).get(code)
            if denial is not None and proba_row[k] >= self.thresholds[k] - self.review_band and denial.unsure:
                reasons.append(f"{code}: left uncoded as denied by \u201c{denial.words}\u201d ({denial.rule}); check it is denied")
            elif abs(proba_row[k] - self.thresholds[k]) < self.review_band:
                reasons.append(f"{code}: probability {proba_row[k]:.2f} near its threshold {self.thresholds[k]:.2f}")
        return "; ".join(reasons)

    def needs_review(self, proba_row: np.ndarray, denials: Mapping[str, Denial] | None = None) -> bool:
        return bool(self.review_reason(proba_row, denials))

    def nearest_examples(self, vector: np.ndarray, code: str, k: int = 3) -> list[tuple[Evidence, float]]:
        """The ``k`` human-coded quotes carrying ``code`` closest to ``vector``."""
        candidates = [i for i, e in enumerate(self.evidence) if code in e.codes]
        if not candidates:
            return []
        sims = self.evidence_embeddings[candidates] @ vector
        order = np.argsort(-sims, kind="stable")[:k]
        return [(self.evidence[candidates[j]], float(sims[j])) for j in order]


def review_band(oof_proba: np.ndarray, thresholds: np.ndarray) -> float:
    """The widest band around the thresholds that flags at most ``MAX_REVIEW_SHARE`` of quotes."""
    chosen = REVIEW_BAND_CANDIDATES[0]
    for band in REVIEW_BAND_CANDIDATES:
        flagged = np.any(np.abs(oof_proba - thresholds) < band, axis=1).mean()
        if flagged <= MAX_REVIEW_SHARE:
            chosen = band
    return chosen


def train_coder(
    codebook: Codebook,
    labels: LabelledSet,
    encoder,
    *,
    spec: FeatureSpec | None = None,
    params: Mapping | None = None,
    origin_weights: Mapping[str, float] | None = None,
    name: str | None = None,
) -> TrainedCoder:
    """Fit the supervised coder on every labelled quote (weighted by origin; a reviewer's
    decision at the ``reviewed`` weight whatever the quote's origin)."""
    spec = spec or FeatureSpec.from_cue_file()
    name = name or getattr(encoder.identity, "kind", "default")  # framecode-default-... or framecode-fast-...
    params = {**DEFAULT_PARAMS, **(params or {})}
    weights_by_origin = {**ORIGIN_WEIGHTS, **(origin_weights or {})}
    labels = LabelledSet(tuple(q for q in labels.quotes if quote_weight(q, weights_by_origin) > 0), labels.files_sha256)
    if len(labels) == 0:
        raise ModelError("no labelled quotes to train on; add rows to labels/real_statements.jsonl")
    texts = labels.texts
    Y = labels.matrix(codebook.code_ids)
    weights = np.array([quote_weight(q, weights_by_origin) for q in labels.quotes])
    embedded = embed_with_sentences(texts, encoder, in_context=spec.sentence_vectors == "in-context")
    proto_texts, proto_owner = prototype_texts(codebook)
    prototypes = encoder.encode(proto_texts)
    zero_shot = zero_shot_scores(embedded, prototypes, proto_owner, len(codebook.codes)) if spec.zero_shot_weight else None
    tfidf = fit_tfidf(texts) if spec.tfidf_weight else None
    X = feature_matrix(embedded, texts, spec, codebook.code_ids, zero_shot, tfidf)
    estimator = SupervisedCoder(**params).fit(X, Y, groups=labels.groups, sample_weight=weights)
    identity = encoder.identity
    encoder_info = {**identity.to_dict(), "model": identity.name, "kind": identity.kind,
                    "requested_backend": _requested_backend(identity.backend)}
    config = {
        "format": MODEL_FORMAT,
        "name": name,
        "codebook": {"version": codebook.version, "hash": codebook.content_hash},
        "labels": {
            "hash": labels.content_hash,
            "files": labels.files_sha256,
            "n_quotes": len(labels),
            "by_origin": {o: sum(q.origin == o for q in labels.quotes) for o in sorted({q.origin for q in labels.quotes})},
            "positives": {c: int(Y[:, k].sum()) for k, c in enumerate(codebook.code_ids)},
        },
        "encoder": encoder_info,
        "features": spec.to_dict(),
        "coder": {"type": "supervised-logistic", "params": params, "origin_weights": weights_by_origin},
        "code_ids": list(codebook.code_ids),
        "thresholds": [float(t) for t in estimator.thresholds_],
        "review_band": review_band(estimator.oof_proba_, estimator.thresholds_),
        "prototype_owner": proto_owner.tolist(),
        "library_versions": library_versions(),
        "metrics": _out_of_fold_metrics(estimator, Y, codebook.code_ids),
    }
    evidence = tuple(Evidence(q.id, q.text, q.codes, q.origin) for q in labels.quotes)
    coder = TrainedCoder(config, codebook, estimator, spec, prototypes, evidence, embedded.texts, tfidf, encoder,
                         holdout=_holdout(estimator, Y, labels))
    _seal(coder)
    return coder


def quote_weight(quote: LabelledQuote, weights_by_origin: Mapping[str, float]) -> float:
    """A labelled quote's training weight: a person's review decision counts in full (the
    ``reviewed`` weight), even over a written row's lower weight."""
    return weights_by_origin["reviewed"] if quote.reviewed else weights_by_origin[quote.origin]


def _holdout(estimator: SupervisedCoder, Y: np.ndarray, labels: LabelledSet) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities and people's codes on the real statements, with their source
    page as an index: the measured error that corrected shares are built on."""
    real = np.array([q.origin in HOLDOUT_ORIGINS for q in labels.quotes], dtype=bool)
    _, pages = np.unique(np.array(labels.groups, dtype=object)[real].astype(str), return_inverse=True)
    return {
        "holdout_proba": estimator.oof_proba_[real].astype(np.float32),
        "holdout_labels": Y[real].astype(np.int8),
        "holdout_groups": pages.astype(np.int32),
    }


def _out_of_fold_metrics(estimator: SupervisedCoder, Y: np.ndarray, code_ids: Sequence[str]) -> dict:
    from sklearn.metrics import f1_score

    decided = (estimator.oof_proba_ >= estimator.thresholds_).astype(int)
    per_code = f1_score(Y, decided, average=None, zero_division=0)
    return {
        "what": "out-of-fold predictions on every training quote, folds grouped by source page; the thresholds "
                "were chosen on these same predictions, so this is slightly optimistic - `framecode evaluate` "
                "gives the held-out figures",
        "macro_f1": round(float(per_code.mean()), 3),
        "f1": {code: round(float(f), 3) for code, f in zip(code_ids, per_code)},
        "brier": round(float(np.mean((estimator.oof_proba_ - Y) ** 2)), 4),
    }


def _requested_backend(backend: str) -> str:
    if backend.startswith("static-"):
        return "auto"  # not used by the fast encoder
    return "onnx-int8" if backend.startswith("onnx-int8") else backend


def library_versions() -> dict[str, str]:
    names = ("framecode", "numpy", "scikit-learn", "sentence-transformers", "torch", "onnxruntime", "spacy")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def derive_model_id(config: Mapping) -> str:
    """The id a model's config gives it: its name and the sha256 of the config apart from
    the id, which lists the sha256 of every other file of the folder."""
    content = {key: value for key, value in config.items() if key not in ("model_id", "model_hash")}
    return f"framecode-{config['name']}-{sha256_text(_config_text(content))[:ID_DIGITS]}"


def _config_text(config: Mapping) -> str:
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _model_files(coder: TrainedCoder) -> dict[str, bytes]:
    """The bytes of every file of the coder's folder besides ``config.json``."""
    arrays = {
        "coef": coder.estimator.coef_,
        "intercept": coder.estimator.intercept_,
        "calibration": coder.estimator.calibration_,
        "prototypes": coder.prototypes,
        "evidence_embeddings": coder.evidence_embeddings,
        "tfidf_idf": coder.tfidf.idf_ if coder.tfidf is not None else np.zeros(0),
        **(coder.holdout or {}),
    }
    files = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        files[f"{name}.npy"] = buffer.getvalue()
    files[EVIDENCE_FILE] = "".join(
        json.dumps({"id": e.id, "text": e.text, "codes": list(e.codes), "origin": e.origin}, ensure_ascii=False) + "\n"
        for e in coder.evidence
    ).encode("utf-8")
    vocabulary = {term: int(i) for term, i in sorted(coder.tfidf.vocabulary_.items())} if coder.tfidf is not None else {}
    files[VOCABULARY_FILE] = (json.dumps(vocabulary, ensure_ascii=False) + "\n").encode("utf-8")
    return files


def _seal(coder: TrainedCoder) -> dict[str, bytes]:
    """Record the hash of every file of the coder's folder, and the id and hash they give,
    in its config; returns the files' bytes."""
    files = _model_files(coder)
    config = coder.config
    config.pop("model_hash", None)
    config["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    config["model_id"] = derive_model_id(config)
    config["model_hash"] = sha256_text(_config_text({k: v for k, v in config.items() if k != "model_hash"}))
    return files


def save_coder(coder: TrainedCoder, folder: str | Path) -> Path:
    """Write the model folder atomically (built beside it, then renamed into place); the
    coder's config takes the id of what was written."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, data in _seal(coder).items():
            atomic_write_bytes(staging / name, data)
        config = {key: value for key, value in coder.config.items() if key != "model_hash"}
        atomic_write_text(staging / CONFIG_FILE, _config_text(config))
        os.chmod(staging, 0o755)
        backup = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            shutil.rmtree(backup, ignore_errors=True)
            folder.rename(backup)
        staging.rename(folder)
        shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def read_model_config(folder: str | Path) -> dict:
    """The config of a model folder, unverified (see :func:`read_model_folder`)."""
    path = Path(folder) / CONFIG_FILE
    try:
        return _parse_config(path, path.read_bytes())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no {CONFIG_FILE}; not a framecode model folder (train one with `framecode train`)") from None


def _parse_config(path: Path, data: bytes) -> dict:
    try:
        config = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); retrain with `framecode train`") from None
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise ModelError(f"{path}: format {found!r} is not {MODEL_FORMAT!r}; retrain with `framecode train`")
    return config


def read_model_folder(folder: str | Path) -> tuple[dict, dict[str, bytes]]:
    """The verified config (with ``model_hash``) and the bytes of every other file of a model
    folder. Refused, naming the file: a link, a file the config does not list, a listed file
    missing or changed, and a config whose content does not give its model id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found; train one with `framecode train` or pass --model")
    entries = sorted(folder.iterdir())
    for entry in entries:
        if entry.is_symlink():
            raise ModelError(f"{entry}: a symbolic link; a model folder holds only its own plain files - remove the link or retrain with `framecode train`")
    config_path = folder / CONFIG_FILE
    config_bytes = _read_plain(config_path)
    config = _parse_config(config_path, config_bytes)
    listed = config.get("files")
    if not isinstance(listed, dict) or set(listed) != MODEL_FILES:
        raise ModelError(f"{config_path}: does not list the model's files; retrain with `framecode train`")
    for entry in entries:
        if entry.name != CONFIG_FILE and entry.name not in listed:
            raise ModelError(f"{entry}: not listed in {CONFIG_FILE}; a model folder holds only the files it was saved with - remove it or retrain with `framecode train`")
    files = {}
    for name, expected in sorted(listed.items()):
        files[name] = _read_plain(folder / name)
        if hashlib.sha256(files[name]).hexdigest() != expected:
            raise ModelError(f"{folder / name}: changed since the model was saved (sha256 mismatch); retrain with `framecode train`")
    if (config_bytes != _config_text(config).encode("utf-8") or not isinstance(config.get("name"), str)
            or config.get("model_id") != derive_model_id(config)):
        raise ModelError(f"{config_path}: changed since the model was saved (its content does not give model id "
                         f"{config.get('model_id')!r}); retrain with `framecode train`")
    config["model_hash"] = hashlib.sha256(config_bytes).hexdigest()
    return config, files


def _read_plain(path: Path) -> bytes:
    """The bytes of a model folder's regular file, never through a link."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing from the model folder; retrain with `framecode train`") from None
    except OSError as exc:
        raise ModelError(os_error_message(exc, path)) from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ModelError(f"{path}: not a plain file; retrain with `framecode train`")
        return handle.read()


def load_array(files: Mapping[str, bytes], name: str, folder: str | Path) -> np.ndarray:
    """An array of a verified model folder, read with pickles disallowed."""
    try:
        return np.load(io.BytesIO(files[f"{name}.npy"]), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise ModelError(f"{Path(folder) / f'{name}.npy'}: not a plain .npy array (pickles are never loaded); retrain with `framecode train`") from None


def load_coder(model_dir: str | Path | None = None, *, codebook: Codebook, encoder=None) -> TrainedCoder:
    """Load a model folder after checking its files, their hashes, its id and its codebook."""
    folder = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    config, files = read_model_folder(folder)
    if config["codebook"]["hash"] != codebook.content_hash:
        raise ModelError(
            f"{folder}: model was trained under codebook {config['codebook']['version']} "
            f"(hash {config['codebook']['hash']}), but the codebook in use is {codebook.version} "
            f"(hash {codebook.content_hash}); retrain with `framecode train` or pass the matching --codebook"
        )
    arrays = {name: load_array(files, name, folder) for name in ARRAYS}
    estimator = SupervisedCoder(**config["coder"]["params"])
    estimator.coef_ = arrays["coef"]
    estimator.intercept_ = arrays["intercept"]
    estimator.calibration_ = arrays["calibration"]
    estimator.thresholds_ = np.asarray(config["thresholds"])
    evidence = []
    for line in filter(None, files[EVIDENCE_FILE].decode("utf-8").split("\n")):
        item = json.loads(line)
        evidence.append(Evidence(item["id"], item["text"], tuple(item["codes"]), item["origin"]))
    vocabulary = json.loads(files[VOCABULARY_FILE].decode("utf-8"))
    tfidf = tfidf_from_state(vocabulary, arrays["tfidf_idf"]) if vocabulary else None
    return TrainedCoder(
        config, codebook, estimator, FeatureSpec.from_dict(config["features"]), arrays["prototypes"], tuple(evidence),
        arrays["evidence_embeddings"], tfidf, encoder,
        holdout={name: arrays[name] for name in ARRAYS if name.startswith("holdout_")},
    )


def model_is_stale(folder: str | Path, codebook: Codebook, labels: LabelledSet) -> str | None:
    """Why the model in ``folder`` no longer matches the codebook or labels (None if current)."""
    try:
        config = read_model_config(folder)
    except ModelError as exc:
        return str(exc)
    if config["codebook"]["hash"] != codebook.content_hash:
        return f"the codebook changed (hash {config['codebook']['hash'][:12]} -> {codebook.content_hash[:12]})"
    if config["labels"]["hash"] != labels.content_hash:
        return f"the labels changed (hash {config['labels']['hash'][:12]} -> {labels.content_hash[:12]})"
    return None
