"""The coders: a supervised multi-label coder and a zero-shot coder behind one interface,
and the self-describing model folder a trained coder lives in.

Estimators follow scikit-learn's conventions: ``__init__`` stores keyword arguments,
``fit`` learns state (names ending in ``_``) and returns ``self``. Probabilities are
calibrated on out-of-fold scores (grouped by source page), and each code's threshold is the
one that maximised F1 on those out-of-fold probabilities.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from .progress import task

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


def group_folds(groups, n_splits: int, n_samples: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold splits (no group in both train and test); one group per quote if none."""
    groups = np.asarray(groups if groups is not None else np.arange(n_samples))
    n_splits = min(n_splits, len(np.unique(groups)))
    if n_splits < 2:
        return []
    return list(GroupKFold(n_splits=n_splits).split(np.zeros(n_samples), groups=groups))


def best_thresholds(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per code, the grid threshold with the highest F1 (ties: the middle of the best run)."""
    thresholds = np.full(proba.shape[1], 0.5)
    for k in range(proba.shape[1]):
        if y[:, k].sum() == 0:
            continue
        pred = proba[:, k][:, None] >= THRESHOLD_GRID[None, :]
        tp = (pred & (y[:, k][:, None] == 1)).sum(0)
        fp = (pred & (y[:, k][:, None] == 0)).sum(0)
        fn = y[:, k].sum() - tp
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        thresholds[k] = THRESHOLD_GRID[best[len(best) // 2]]
    return thresholds


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept mapping a score to a calibrated probability."""
    if y.min() == y.max():
        prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        return 0.0, float(np.log(prior / (1 - prior)))
    model = LogisticRegression(C=1e4, max_iter=1000).fit(scores.reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


class SupervisedCoder:
    """Per-code logistic regression on feature vectors, calibrated and thresholded by
    grouped cross-validation."""

    def __init__(self, *, C: float = 1.0, class_weight: str | None = "balanced", cv: int = 5, max_iter: int = 3000):
        self.C = C
        self.class_weight = class_weight
        self.cv = cv
        self.max_iter = max_iter

    def _fit_one(self, X: np.ndarray, y: np.ndarray, sample_weight=None) -> tuple[np.ndarray, float]:
        if y.min() == y.max():
            return np.zeros(X.shape[1]), (10.0 if y[0] else -10.0)
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        model.fit(X, y, sample_weight=sample_weight)
        return model.coef_[0], float(model.intercept_[0])

    def fit(self, X, Y, groups=None, sample_weight=None) -> SupervisedCoder:
        """``X``: a dense array, or a SciPy sparse matrix (e.g. TF-IDF: same fit, far fewer operations)."""
        X = sparse.csr_matrix(X, dtype=np.float64) if sparse.issparse(X) else np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.int64)
        n, n_codes = Y.shape
        oof = np.zeros((n, n_codes))
        folds = group_folds(groups, self.cv, n)
        with task("fitting", total=(len(folds) + 1) * n_codes, unit="fits") as bar:
            for f, (train, test) in enumerate(folds, start=1):
                weights = None if sample_weight is None else np.asarray(sample_weight)[train]
                X_train = X[train]
                for k in range(n_codes):
                    bar.describe(f"fitting: fold {f}/{len(folds)}, code {k + 1}/{n_codes}")
                    coef, intercept = self._fit_one(X_train, Y[train, k], weights)
                    oof[test, k] = X[test] @ coef + intercept
                    bar.advance()
            bar.describe("calibrating on out-of-fold scores")
            self.calibration_ = np.array([_platt(oof[:, k], Y[:, k]) for k in range(n_codes)])
            self.oof_proba_ = _sigmoid(oof * self.calibration_[:, 0] + self.calibration_[:, 1])
            self.thresholds_ = best_thresholds(self.oof_proba_, Y)
            fitted = []
            for k in range(n_codes):
                bar.describe(f"fitting: all quotes, code {k + 1}/{n_codes}")
                fitted.append(self._fit_one(X, Y[:, k], sample_weight))
                bar.advance()
        self.coef_ = np.vstack([c for c, _ in fitted])
        self.intercept_ = np.array([b for _, b in fitted])
        return self

    def decision_function(self, X) -> np.ndarray:
        if sparse.issparse(X):
            return np.asarray(X @ self.coef_.T, dtype=np.float64) + self.intercept_
        X = np.asarray(X)
        if X.dtype != np.float32:
            X = X.astype(np.float64)
        # float32 features stay float32: no double-size copy of a wide matrix. Each row's dot
        # products are summed by einsum's own loop, in an order fixed per row, not by a BLAS
        # matrix product, whose blocking depends on the number of rows: a quote's scores must
        # not depend on the quotes coded with it.
        return np.einsum("ij,kj->ik", X, self.coef_.astype(X.dtype), optimize=False).astype(np.float64) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        return _sigmoid(self.decision_function(X) * self.calibration_[:, 0] + self.calibration_[:, 1])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X) >= self.thresholds_).astype(np.int8)


class ZeroShotCoder:
    """Scores a quote by its similarity to each code's prototypes (definition, inclusion
    notes, anchor examples; whole text and sentences). With labels, each code's similarity
    is calibrated to a probability and thresholded by F1; without, a fixed logistic map is
    used (``scale`` around ``centre``)."""

    def __init__(self, *, scale: float = 20.0, centre: float = 0.45):
        self.scale = scale
        self.centre = centre

    def fit(self, scores, Y=None) -> ZeroShotCoder:
        scores = np.asarray(scores, dtype=np.float64)
        n_codes = scores.shape[1]
        if Y is None:
            self.calibration_ = np.tile([self.scale, -self.scale * self.centre], (n_codes, 1))
            self.thresholds_ = np.full(n_codes, 0.5)
            return self
        Y = np.asarray(Y)
        self.calibration_ = np.array([_platt(scores[:, k], Y[:, k]) for k in range(n_codes)])
        self.thresholds_ = best_thresholds(self.predict_proba(scores), Y)
        return self

    def predict_proba(self, scores) -> np.ndarray:
        return _sigmoid(np.asarray(scores) * self.calibration_[:, 0] + self.calibration_[:, 1])

    def predict(self, scores) -> np.ndarray:
        return (self.predict_proba(scores) >= self.thresholds_).astype(np.int8)
