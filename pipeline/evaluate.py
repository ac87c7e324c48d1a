"""Evaluation that does not flatter: cross-validation on real statements held out by
source page, beside written rows, written-to-real transfer, baselines, other embeddings, a
learning curve, calibration, the effect of routing uncertain quotes to a person, and coding
rule 2 (denials) on contrast pairs held out by pair and on pairs written outside the repository."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.metrics import f1_score, precision_score, recall_score

from .agreement import cohen_kappa, krippendorff_alpha
from .denial import scan_denials
from .classify import SupervisedCoder, ZeroShotCoder, group_folds
from .features import (
    Embedded,
    FeatureSpec,
    embed_with_sentences,
    feature_matrix,
    fit_tfidf,
    prototype_texts,
    zero_shot_scores,
)
from .labels import LabelledQuote, LabelledSet
from .model import DEFAULT_PARAMS, ORIGIN_WEIGHTS, REVIEW_BAND_CANDIDATES
from .progress import task, track
from .records import Codebook

REAL_ORIGINS = ("real", "seed", "reviewed")
LEARNING_CURVE_SIZES = (50, 100, 200)
BOOTSTRAP_ROUNDS = 1000
SEED = 0


@dataclass(frozen=True)
class EvalData:
    """Everything the systems need, computed once: labels, embeddings, cue and zero-shot
    features for every labelled quote, and where coding rule 2's denial check blocks a code."""

    texts: tuple[str, ...]
    Y: np.ndarray
    groups: np.ndarray
    origins: np.ndarray
    features: np.ndarray
    zero_shot: np.ndarray
    denied: np.ndarray
    code_ids: tuple[str, ...]

    def subset(self, mask: np.ndarray) -> EvalData:
        return EvalData(
            tuple(t for t, m in zip(self.texts, mask) if m),
            self.Y[mask], self.groups[mask], self.origins[mask], self.features[mask], self.zero_shot[mask],
            self.denied[mask], self.code_ids,
        )


def prepare(labels: LabelledSet, codebook: Codebook, encoder, spec: FeatureSpec) -> EvalData:
    texts = labels.texts
    embedded: Embedded = embed_with_sentences(texts, encoder, in_context=spec.sentence_vectors == "in-context")
    proto_texts, owner = prototype_texts(codebook)
    zero_shot = zero_shot_scores(embedded, encoder.encode(proto_texts), owner, len(codebook.codes))
    denied = scan_denials(texts, spec, codebook.code_ids).denied
    return EvalData(
        tuple(texts),
        labels.matrix(codebook.code_ids),
        np.asarray(labels.groups),
        np.asarray([q.origin for q in labels.quotes]),
        feature_matrix(embedded, texts, spec, codebook.code_ids, zero_shot),
        zero_shot,
        denied,
        codebook.code_ids,
    )


# A system maps (train data, test data) to (test probabilities, thresholds).
System = Callable[[EvalData, EvalData], tuple[np.ndarray, np.ndarray]]


def supervised_system(params: Mapping | None = None, *, tfidf_weight: float = 0.0, zero_shot: bool = False) -> System:
    """The supervised coder on the prepared features, plus zero-shot scores and TF-IDF fitted
    on the training fold (as training a model does), when asked for."""
    params = {**DEFAULT_PARAMS, **(params or {})}

    def run(train: EvalData, test: EvalData):
        Xtr, Xte = train.features, test.features
        if zero_shot:
            Xtr, Xte = np.hstack([Xtr, train.zero_shot]), np.hstack([Xte, test.zero_shot])
        if tfidf_weight:  # sparse: the same fit as the dense matrix training builds, in half the time
            tfidf = fit_tfidf(train.texts)
            Xtr = sparse.hstack([Xtr, tfidf_weight * tfidf.transform(train.texts)], format="csr")
            Xte = sparse.hstack([Xte, tfidf_weight * tfidf.transform(test.texts)], format="csr")
        weights = np.array([ORIGIN_WEIGHTS.get(o, 1.0) for o in train.origins])
        coder = SupervisedCoder(**params).fit(Xtr, train.Y, groups=train.groups, sample_weight=weights)
        return coder.predict_proba(Xte), coder.thresholds_

    return run


def tfidf_system(train: EvalData, test: EvalData):
    """Baseline: TF-IDF n-grams with the same per-code logistic regression."""
    tfidf = fit_tfidf(train.texts)
    coder = SupervisedCoder(C=10.0).fit(tfidf.transform(train.texts), train.Y, groups=train.groups)
    return coder.predict_proba(tfidf.transform(test.texts)), coder.thresholds_


def zero_shot_system(train: EvalData, test: EvalData):
    """Similarity to the codebook's prototypes, calibrated on the training fold's labels."""
    coder = ZeroShotCoder().fit(train.zero_shot, train.Y)
    return coder.predict_proba(test.zero_shot), coder.thresholds_


def cross_validate(system: System, data: EvalData, *, extra_train: EvalData | None = None, n_splits: int = 5,
                   train_size: int | None = None, label: str = "cross-validation") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold probabilities, decisions and the thresholds each decision used; folds
    hold out whole source pages. Every system's decisions pass coding rule 2's denial check.
    ``extra_train`` rows (e.g. written testimonials) join every training fold, never a test fold."""
    rng = np.random.default_rng(SEED)
    proba = np.zeros(data.Y.shape)
    decided = np.zeros(data.Y.shape, dtype=np.int8)
    used = np.zeros(data.Y.shape)
    folds = group_folds(data.groups, n_splits, len(data.texts))
    for train_idx, test_idx in track(folds, label, len(folds), unit="folds"):
        if train_size is not None and train_size < len(train_idx):
            train_idx = np.sort(rng.choice(train_idx, size=train_size, replace=False))
        mask = np.zeros(len(data.texts), dtype=bool)
        mask[train_idx] = True
        train = data.subset(mask)
        if extra_train is not None:
            train = _concat(train, extra_train)
        test = data.subset(np.isin(np.arange(len(data.texts)), test_idx))
        p, thresholds = system(train, test)
        proba[test_idx] = p
        decided[test_idx] = ((p >= thresholds) & ~test.denied).astype(np.int8)
        used[test_idx] = thresholds
    return proba, decided, used


def fit_and_score(system: System, train: EvalData, test: EvalData) -> tuple[np.ndarray, np.ndarray]:
    p, thresholds = system(train, test)
    return p, ((p >= thresholds) & ~test.denied).astype(np.int8)


def _concat(a: EvalData, b: EvalData) -> EvalData:
    return EvalData(a.texts + b.texts, np.vstack([a.Y, b.Y]), np.concatenate([a.groups, b.groups]),
                    np.concatenate([a.origins, b.origins]), np.vstack([a.features, b.features]),
                    np.vstack([a.zero_shot, b.zero_shot]), np.vstack([a.denied, b.denied]), a.code_ids)


def per_code_metrics(Y: np.ndarray, decided: np.ndarray, proba: np.ndarray, code_ids: Sequence[str]) -> list[dict]:
    rows = []
    for k, code in enumerate(code_ids):
        y, d = Y[:, k], decided[:, k]
        pair = np.vstack([y, d]).astype(float)
        varied = len(np.unique(pair)) > 1
        rows.append({
            "code": code,
            "support": int(y.sum()),
            "predicted": int(d.sum()),
            "precision": _r(precision_score(y, d, zero_division=0)),
            "recall": _r(recall_score(y, d, zero_division=0)),
            "f1": _r(f1_score(y, d, zero_division=0)),
            "cohen_kappa": _r(cohen_kappa(pair)) if varied else None,
            "krippendorff_alpha": _r(krippendorff_alpha(pair)) if varied else None,
            "brier": _r(float(np.mean((proba[:, k] - y) ** 2))),
        })
    return rows


def macro_f1(Y: np.ndarray, decided: np.ndarray) -> float:
    return float(f1_score(Y, decided, average="macro", zero_division=0))


def bootstrap_macro_f1(Y: np.ndarray, decided: np.ndarray, groups: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS) -> tuple[float, float]:
    """95% interval of macro-F1 from resampling whole source pages. A resample's counts are
    its pages' true/false positive and false negative counts times how often each page was
    drawn, so F1 = 2tp / (2tp + fp + fn) per code (0 where undefined, as ``macro_f1``)."""
    rng = np.random.default_rng(SEED)
    unique, inverse = np.unique(groups, return_inverse=True)
    Y, decided = Y.astype(bool), decided.astype(bool)
    per_page = np.zeros((3, len(unique), Y.shape[1]))
    for counts, part in zip(per_page, (Y & decided, ~Y & decided, Y & ~decided)):
        np.add.at(counts, inverse, part)
    scores = []
    for _ in range(rounds):
        drawn = np.bincount(rng.integers(0, len(unique), len(unique)), minlength=len(unique))
        tp, fp, fn = drawn @ per_page
        denominator = 2 * tp + fp + fn
        scores.append(float(np.mean(np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0))))
    low, high = np.percentile(scores, [2.5, 97.5])
    return _r(low), _r(high)


def calibration(Y: np.ndarray, proba: np.ndarray, bins: int = 10) -> dict:
    """Brier score and expected calibration error over every (quote, code) probability."""
    p, y = proba.ravel(), Y.ravel()
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(p[inside].mean() - y[inside].mean())
            ece += inside.mean() * gap
            table.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(inside.sum()),
                          "mean_probability": _r(p[inside].mean()), "observed_rate": _r(y[inside].mean())})
    return {"brier": _r(float(np.mean((p - y) ** 2))), "ece": _r(ece), "bins": table}


def review_effect(Y: np.ndarray, decided: np.ndarray, proba: np.ndarray, thresholds: np.ndarray) -> list[dict]:
    """For each review band: share of quotes flagged, and agreement on the quotes left."""
    rows = []
    for band in REVIEW_BAND_CANDIDATES:
        flagged = np.any(np.abs(proba - thresholds) < band, axis=1)
        rest = ~flagged
        alpha_all = krippendorff_alpha(np.vstack([Y.ravel(), decided.ravel()]).astype(float))
        left = rest.any()
        alpha_rest = krippendorff_alpha(np.vstack([Y[rest].ravel(), decided[rest].ravel()]).astype(float)) if left else None
        rows.append({"band": band, "flagged_share": _r(flagged.mean()),
                     "macro_f1_all": _r(macro_f1(Y, decided)), "macro_f1_rest": _r(macro_f1(Y[rest], decided[rest])) if left else None,
                     "alpha_all": _r(alpha_all), "alpha_rest": _r(alpha_rest)})
    return rows


def _r(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 3)


def summarise(name: str, data: EvalData, proba: np.ndarray, decided: np.ndarray) -> dict:
    low, high = bootstrap_macro_f1(data.Y, decided, data.groups)
    return {"system": name, "n_quotes": len(data.texts), "n_pages": int(len(np.unique(data.groups))),
            "macro_f1": _r(macro_f1(data.Y, decided)), "macro_f1_ci95": [low, high],
            "per_code": per_code_metrics(data.Y, decided, proba, data.code_ids), "calibration": calibration(data.Y, proba)}


def contrast_scores(quotes: Sequence[LabelledQuote], decided: np.ndarray, code_ids: Sequence[str]) -> dict:
    """Coding rule 2 on contrast pairs: the share of denied framings left uncoded and of
    affirmed framings still coded (each statement's target code; statements whose
    adjudicated codes do not follow their side, so the coders read them otherwise, are left
    out and counted), overall and per code."""
    counts = {"denied": [0, 0], "affirmed": [0, 0]}
    per_code: dict[str, dict[str, list[int]]] = {}
    left_out = 0
    for quote, row in zip(quotes, decided):
        if (quote.target in quote.codes) != (quote.side == "affirmed"):
            left_out += 1
            continue
        right = bool(row[code_ids.index(quote.target)]) == (quote.side == "affirmed")
        for tally in (counts[quote.side], per_code.setdefault(quote.target, {"denied": [0, 0], "affirmed": [0, 0]})[quote.side]):
            tally[0] += right
            tally[1] += 1

    def share(tally: list[int]) -> float | None:
        return _r(tally[0] / tally[1]) if tally[1] else None

    return {"pairs": len({q.group for q in quotes}), "statements": len(quotes) - left_out, "left_out": left_out,
            "denied_left_uncoded": share(counts["denied"]), "affirmed_still_coded": share(counts["affirmed"]),
            "counts": {side: {"right": tally[0], "of": tally[1]} for side, tally in counts.items()},
            "per_code": {code: {"denied_left_uncoded": share(v["denied"]), "affirmed_still_coded": share(v["affirmed"])}
                         for code, v in sorted(per_code.items())}}


def evaluate(labels: LabelledSet, codebook: Codebook, encoder, *, spec: FeatureSpec | None = None,
             params: Mapping | None = None, variants: bool = True, learning_curve: bool = True,
             external: LabelledSet | None = None, alternatives: Mapping[str, tuple] | None = None) -> dict:
    """The full report as a JSON-ready dict (see ``framecode evaluate``). Each cross-validated
    system is a step of the progress display (:mod:`pipeline.progress`).

    Contrast pairs (origin ``contrast``) join every training fold of the headline and are
    scored on their own, held out by pair; ``external`` denial pairs are scored by a coder
    trained on everything else. ``alternatives`` ({name: (encoder, spec)}) are the default
    coder on other embeddings (another encoder, sentences encoded alone), on the same folds."""
    spec = spec or FeatureSpec.from_cue_file()
    data = prepare(labels, codebook, encoder, spec)
    real, written, contrast, extra = _split(data)
    default = supervised_system(params, tfidf_weight=spec.tfidf_weight)
    report: dict = {"codebook": {"version": codebook.version, "hash": codebook.content_hash},
                    "labels": {"hash": labels.content_hash, "real": len(real.texts), "written": len(written.texts),
                               "contrast": len(contrast.texts), "real_pages": int(len(np.unique(real.groups)))},
                    "encoder": encoder.identity.to_dict(), "held_out_by": "source page (GroupKFold, 5 folds)"}
    systems: dict[str, System] = {"zero-shot": zero_shot_system, "tfidf+lr": tfidf_system}
    if variants:
        systems["default, real rows only"] = default
        systems["default without tfidf features"] = supervised_system(params)
        systems["default + zero-shot features"] = supervised_system(params, tfidf_weight=spec.tfidf_weight, zero_shot=True)
    alternatives = alternatives or {}
    n_train = int(len(real.texts) * 0.8)
    curve_sizes = [s for s in LEARNING_CURVE_SIZES if s < n_train] + [None] if learning_curve else []
    has_written, has_contrast = len(written.texts) > 0, len(contrast.texts) > 0
    n_steps = 1 + len(systems) + len(alternatives) + 2 * has_written + has_contrast + (external is not None) + len(curve_sizes)
    extra_train = extra if len(extra.texts) else None

    with task("evaluating", total=n_steps, unit="steps") as steps:
        proba, decided, used = cross_validate(default, real, extra_train=extra_train, label="default coder on real statements")
        report["headline"] = summarise("default", real, proba, decided)
        report["review"] = review_effect(real.Y, decided, proba, used)
        steps.advance()

        report["compared"] = [{"system": "default", "macro_f1": report["headline"]["macro_f1"],
                               "macro_f1_ci95": report["headline"]["macro_f1_ci95"],
                               "f1_per_code": {r["code"]: r["f1"] for r in report["headline"]["per_code"]}}]
        for name, system in systems.items():
            on = extra_train if name not in {"default, real rows only", "zero-shot", "tfidf+lr"} else None
            report["compared"].append(_compared(name, system, real, on))
            steps.advance()
        for name, (other_encoder, other_spec) in alternatives.items():
            other_real, _, _, other_extra = _split(prepare(labels, codebook, other_encoder, other_spec))
            report["compared"].append(_compared(name, supervised_system(params, tfidf_weight=other_spec.tfidf_weight),
                                                other_real, other_extra if len(other_extra.texts) else None))
            steps.advance()

        if has_contrast:
            contrast_quotes = [q for q, c in zip(labels.quotes, data.origins == "contrast") if c]
            _, d, _ = cross_validate(default, contrast, extra_train=_concat(real, written), label="contrast pairs, held out by pair")
            report["contrast"] = {"what": "coding rule 2 on contrast pairs held out by pair (trained on the real, written "
                                          "and other pairs' statements)", **contrast_scores(contrast_quotes, d, data.code_ids)}
            steps.advance()
        if external is not None:
            checks = prepare(external, codebook, encoder, spec)
            _, d = fit_and_score(default, _concat(real, extra) if len(extra.texts) else real, checks)
            report["external_denials"] = {"what": "denial pairs written outside this repository, never trained on",
                                          **contrast_scores(external.quotes, d, data.code_ids)}
            steps.advance()

        if has_written:
            wp, wd, _ = cross_validate(default, written, label="default coder on written rows")
            steps.advance()
            tp, td = fit_and_score(default, written, real)
            report["written"] = {"cross_validation": summarise("default on written rows (held out by collaboration)", written, wp, wd),
                                 "transfer_to_real": summarise("trained on written, scored on real", real, tp, td)}
            steps.advance()

        if learning_curve:
            curve = []
            for size in curve_sizes:
                p, d, _ = cross_validate(default, real, train_size=size, extra_train=extra_train,
                                         label=f"learning curve: {size or 'all'} real statements")
                curve.append({"real_train_quotes": size or n_train, "macro_f1": _r(macro_f1(real.Y, d))})
                steps.advance()
            report["learning_curve"] = curve
    report["targets"] = check_targets(report["headline"], report.get("contrast"))
    return report


def _split(data: EvalData) -> tuple[EvalData, EvalData, EvalData, EvalData]:
    """Real statements (scored), written rows, contrast pairs, and the rows that join every
    training fold of the real statements (written and contrast)."""
    real = data.subset(np.isin(data.origins, REAL_ORIGINS))
    written = data.subset(data.origins == "written")
    contrast = data.subset(data.origins == "contrast")
    return real, written, contrast, data.subset(np.isin(data.origins, ("written", "contrast")))


def _compared(name: str, system: System, real: EvalData, extra: EvalData | None) -> dict:
    _, d, _ = cross_validate(system, real, extra_train=extra, label=f"{name} on real statements")
    low, high = bootstrap_macro_f1(real.Y, d, real.groups)
    return {"system": name, "macro_f1": _r(macro_f1(real.Y, d)), "macro_f1_ci95": [low, high],
            "f1_per_code": {c: _r(f) for c, f in zip(real.code_ids, f1_score(real.Y, d, average=None, zero_division=0))}}


def check_targets(headline: Mapping, contrast: Mapping | None = None) -> dict:
    per_code = sorted(headline["per_code"], key=lambda r: -r["support"])
    commonest = per_code[:4]
    targets = {
        "macro_f1>=0.60": headline["macro_f1"] >= 0.60,
        "f1>=0.70 on the four commonest codes": {r["code"]: r["f1"] for r in commonest},
        "alpha>=0.50 on codes with 10+ positives": {r["code"]: r["krippendorff_alpha"] for r in per_code if r["support"] >= 10},
    }
    if contrast is not None:
        targets["contrast: >=90% denied left uncoded and >=90% affirmed still coded"] = (
            (contrast["denied_left_uncoded"] or 0) >= 0.9 and (contrast["affirmed_still_coded"] or 0) >= 0.9)
    return targets
