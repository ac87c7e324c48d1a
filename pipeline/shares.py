"""Shares that carry the coder's error.

A model's codes are not the truth: a share counted from them is off by the coder's false
positives and misses, and a Wilson interval around it counts only sampling error. Every
share here is estimated by one of four named methods, chosen per group:

``human``
    Every quote of the group was coded by a person: the people's share, Wilson interval.
``ppi``
    A random sample of the corpus was coded by people (``--human``): prediction-powered
    inference (Angelopoulos et al., *Science* 382, 2023; the power-tuned PPI++ of
    Angelopoulos, Duchi and Zrnic, 2023) with ``ppi_py.ppi_mean_ci``: the model's codes on
    every quote, corrected by the people's codes on the sample.
``adjusted``
    No human sample: adjusted classify-and-count (Forman, *Data Mining and Knowledge
    Discovery* 17, 2008): ``(q - fpr) / (tpr - fpr)`` with the model's true and false
    positive rates measured out of fold on real statements held out by source page (kept in
    the model folder). The 95% interval is a percentile bootstrap that resamples the group's
    quotes and, jointly, the source pages the rates were measured on, so it includes the
    uncertainty of the rates.
``raw``
    Model codes counted as if they were true (Wilson interval): shown beside the others,
    never instead of them.

Quotes a person coded always carry that person's codes in the output; with ``adjusted``
their codes enter the share as known and only the model-coded rest is corrected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, ModelError
from .marks import Z95, as_frame, indicators, require_columns, source_of, wilson_interval
from .records import Codebook

METHODS: dict[str, str] = {
    "human": "people's codes (every quote coded by a person)",
    "ppi": "prediction-powered estimate (model codes corrected with a random human-coded sample; PPI++)",
    "adjusted": "adjusted classify-and-count (model codes corrected with the coder's measured error rates)",
    "raw": "model codes counted as true (sampling error only)",
}
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261202
MIN_HUMAN_SAMPLE = 10
"""Fewest human-coded quotes in a group for a prediction-powered estimate; fewer fall back to ``adjusted``."""


# --------------------------------------------------------------------------- people's codes


def read_human(path: str | Path, code_ids: Sequence[str]) -> pd.DataFrame:
    """People's codings from a file or a folder of files: ``id``, ``codes`` (``;``-joined), ``coder``.

    Reads JSONL in the review loop's layout (``id``, ``codes`` list, ``coder``) or the labelled
    corpus's (``labels`` list), and CSV, TSV or XLSX with ``id`` and ``codes`` columns. A folder
    contributes every such file in it. The same id coded twice keeps the later file's coding.
    """
    from .tables import read_table

    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".jsonl", ".csv", ".tsv", ".xlsx"}) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no .jsonl, .csv, .tsv or .xlsx files of human codings in this folder")
    known = set(code_ids)
    rows: dict[str, dict[str, str]] = {}
    for file in files:
        table = as_frame(read_table(file))
        column = "codes" if "codes" in table.columns else "labels"
        require_columns(table, ["id"])
        if column not in table.columns:
            raise InputError(f"{file}: no column 'codes' (or 'labels'); expected the people's code ids per quote")
        first_row = 1 if file.suffix.lower() == ".jsonl" else 2  # the row a person sees: JSONL line, or below the header
        for number, (quote_id, cell, coder) in enumerate(
            zip(table["id"], table[column], table["coder"] if "coder" in table.columns else [""] * len(table)), start=first_row
        ):
            codes = _code_list(cell)
            unknown = sorted(set(codes) - known)
            if unknown:
                raise InputError(f"{file}, row {number}, column {column!r}: unknown code id(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(code_ids)}")
            rows[str(quote_id)] = {"codes": ";".join(sorted(codes)), "coder": str(coder or "") or file.stem}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("id").reset_index()


def _code_list(cell) -> list[str]:
    if isinstance(cell, (list, tuple)):
        return [str(c).strip() for c in cell if str(c).strip()]
    text = "" if cell is None or cell != cell else str(cell).strip()
    if text.startswith("["):
        import json

        return [str(c).strip() for c in json.loads(text)]
    return [part.strip() for part in text.split(";") if part.strip()]


def apply_human(codings, human: pd.DataFrame) -> pd.DataFrame:
    """The codings with every quote a person coded carrying that person's codes.

    ``codes`` and ``coder`` take the person's values; ``model_codes`` keeps what the model said
    (the prediction-powered estimate needs both); ``coded_by`` is ``person`` or ``model``.
    """
    frame = as_frame(codings).copy()
    require_columns(frame, ["id", "codes"])
    frame["model_codes"] = frame["model_codes"] if "model_codes" in frame.columns else frame["codes"]
    people = human.set_index("id")
    matched = frame["id"].astype(str).isin(people.index)
    ids = frame.loc[matched, "id"].astype(str)
    frame.loc[matched, "codes"] = people.loc[ids, "codes"].to_numpy()
    frame["coder"] = frame["coder"] if "coder" in frame.columns else ""
    frame.loc[matched, "coder"] = people.loc[ids, "coder"].to_numpy()
    frame["coded_by"] = coded_by(frame).where(~matched, "person")
    return frame


def coded_by(frame: pd.DataFrame) -> pd.Series:
    """``person`` or ``model`` per quote, from the ``coded_by`` column that :func:`apply_human`
    writes; without it every quote counts as coded by the model."""
    if "coded_by" not in frame.columns:
        return pd.Series("model", index=frame.index)
    return frame["coded_by"].map(lambda v: "person" if str(v).strip() == "person" else "model")


# --------------------------------------------------------------------------- the coder's error


@dataclass(frozen=True)
class CoderErrors:
    """The model's and the people's codes on real statements the model was not trained on
    (out of fold, folds grouped by source page), from a model folder."""

    model_id: str
    code_ids: tuple[str, ...]
    predicted: np.ndarray  # bool (statements, codes)
    truth: np.ndarray  # bool (statements, codes)
    pages: np.ndarray  # int (statements,)

    @classmethod
    def from_model_dir(cls, folder: str | Path) -> CoderErrors:
        from .model import load_array, read_model_folder

        config, files = read_model_folder(folder)
        proba = load_array(files, "holdout_proba", folder)
        truth = load_array(files, "holdout_labels", folder).astype(bool)
        pages = load_array(files, "holdout_groups", folder)
        predicted = proba >= np.asarray(config["thresholds"], dtype=proba.dtype)
        return cls(config["model_id"], tuple(config["code_ids"]), predicted, truth, pages)

    def columns(self, codebook: Codebook, level: str = "both") -> tuple[np.ndarray, np.ndarray]:
        """Predicted and true indicators in the column order of :func:`frequencies.indicators`."""
        if tuple(codebook.code_ids) != self.code_ids:
            raise ModelError(f"model {self.model_id} codes {', '.join(self.code_ids)}, not the codebook's "
                             f"{', '.join(codebook.code_ids)}; pass the model the codings were made with")
        out = []
        for matrix in (self.predicted, self.truth):
            rows = [";".join(c for c, on in zip(self.code_ids, row) if on) for row in matrix]
            out.append(indicators(pd.DataFrame({"codes": rows}), codebook, level).to_numpy())
        return out[0], out[1]


@dataclass(frozen=True)
class RateDraws:
    """True and false positive rates per column: measured, and bootstrap draws over source pages."""

    tpr: np.ndarray  # (columns,)
    fpr: np.ndarray
    tpr_draws: np.ndarray  # (resamples, columns)
    fpr_draws: np.ndarray

    @classmethod
    def of(cls, predicted: np.ndarray, truth: np.ndarray, pages: np.ndarray, rng: np.random.Generator,
           resamples: int = BOOTSTRAP_RESAMPLES) -> RateDraws:
        n_pages = int(pages.max()) + 1 if len(pages) else 0
        sums = {}
        for name, values in {"tp": predicted & truth, "pos": truth, "fp": predicted & ~truth, "neg": ~truth}.items():
            per_page = np.zeros((n_pages, values.shape[1]))
            np.add.at(per_page, pages, values.astype(float))
            sums[name] = per_page
        weights = rng.multinomial(n_pages, np.full(n_pages, 1.0 / n_pages), size=resamples).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            total = {name: part.sum(0) for name, part in sums.items()}
            drawn = {name: weights @ part for name, part in sums.items()}
            return cls(
                tpr=total["tp"] / total["pos"],
                fpr=total["fp"] / total["neg"],
                tpr_draws=drawn["tp"] / drawn["pos"],
                fpr_draws=drawn["fp"] / drawn["neg"],
            )


def adjust(q: np.ndarray, tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """Adjusted classify-and-count: the share ``p`` with ``q = tpr·p + fpr·(1 − p)``, clipped to [0, 1].
    Where the coder does not separate the classes (``tpr ≤ fpr``) the raw share is kept."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (q - fpr) / (tpr - fpr)
    return np.clip(np.where(np.isfinite(p) & (tpr > fpr), p, q), 0.0, 1.0)


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """Shares of one group for every column (code or theme), with how they were made."""

    method: str
    share: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    raw_share: np.ndarray  # the codes as given (people's where they coded, else the model's)
    n_quotes: int
    n_human: int
    draws: np.ndarray | None = None  # bootstrap draws (resamples, columns) for differences
    se: np.ndarray | None = None  # standard errors where the interval is normal (ppi)


class ShareEstimator:
    """Estimates shares per group under one of :data:`METHODS`.

    ``errors`` (a :class:`CoderErrors`) enables ``adjusted``; ``human_sample=True`` says that the
    quotes coded by people are a random sample of the corpus, which enables ``ppi``. Without
    either, groups that are not fully human-coded get ``raw`` and the output says so.
    """

    def __init__(self, *, errors: CoderErrors | None = None, human_sample: bool = False,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, level: str = "both"):
        self.errors = errors
        self.human_sample = human_sample
        self.resamples = resamples
        self.seed = seed
        self.level = level

    def at_level(self, level: str) -> ShareEstimator:
        """The same estimator for another level (``code``, ``theme`` or ``both``), unfitted."""
        return ShareEstimator(errors=self.errors, human_sample=self.human_sample, resamples=self.resamples,
                              seed=self.seed, level=level)

    def fit(self, codebook: Codebook) -> ShareEstimator:
        """Draw the coder's rates once, so every group and difference shares the same draws."""
        self.codebook_ = codebook
        self.rates_ = None
        if self.errors is not None:
            predicted, truth = self.errors.columns(codebook, self.level)
            self.rates_ = RateDraws.of(predicted, truth, self.errors.pages, np.random.default_rng(self.seed), self.resamples)
        return self

    def marks(self, codings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(final codes, model codes, human-coded mask) as indicator matrices of the codings."""
        frame = as_frame(codings)
        final = indicators(frame, self.codebook_, self.level).to_numpy()
        human = (coded_by(frame) == "person").to_numpy()
        if "model_codes" in frame.columns:
            model = indicators(frame.assign(codes=frame["model_codes"]), self.codebook_, self.level).to_numpy()
        else:
            model = final
        return final, model, human

    def method_for(self, n_quotes: int, n_human: int) -> str:
        if n_quotes and n_human == n_quotes:
            return "human"
        if self.human_sample and n_human >= MIN_HUMAN_SAMPLE:
            return "ppi"
        if self.rates_ is not None:
            return "adjusted"
        return "raw"

    def estimate(self, final: np.ndarray, model: np.ndarray, human: np.ndarray, rng: np.random.Generator | None = None) -> Estimate:
        """Shares of one group given its indicator rows (see :meth:`marks`)."""
        n, n_human = len(final), int(human.sum())
        raw = final.mean(0) if n else np.full(final.shape[1], np.nan)
        method = self.method_for(n, n_human)
        if method in ("human", "raw") or n == 0:
            low, high = wilson_interval(final.sum(0), np.full(final.shape[1], n))
            return Estimate(method if n else "raw", raw, np.asarray(low), np.asarray(high), raw, n, n_human)
        if method == "ppi":
            return self._ppi(final, model, human, raw)
        return self._adjusted(final, model, human, raw, rng or np.random.default_rng(self.seed + 1))

    def _ppi(self, final, model, human, raw) -> Estimate:
        from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

        Y, Yhat, Yhat_unlabeled = final[human].astype(float), model[human].astype(float), model[~human].astype(float)
        if len(Yhat_unlabeled) == 0:
            Yhat_unlabeled = Yhat
        share = np.atleast_1d(ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled))
        low, high = (np.atleast_1d(v) for v in ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.05))
        se = (high - low) / (2 * Z95)
        return Estimate("ppi", np.clip(share, 0, 1), np.clip(low, 0, 1), np.clip(high, 0, 1), raw,
                        len(final), int(human.sum()), se=se)

    def _adjusted(self, final, model, human, raw, rng) -> Estimate:
        rates = self.rates_
        people = final[human].sum(0).astype(float)
        rest = model[~human]
        n, m = len(final), len(rest)
        q = rest.mean(0)
        share = (people + m * adjust(q, rates.tpr, rates.fpr)) / n
        q_draws = rng.binomial(m, q, size=(self.resamples, len(q))) / m
        draws = (people + m * adjust(q_draws, rates.tpr_draws, rates.fpr_draws)) / n
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0)
        return Estimate("adjusted", share, low, high, raw, n, int(human.sum()), draws=draws)


def difference(a: Estimate, b: Estimate, rng: np.random.Generator | None = None):
    """``(difference, ci_low, ci_high, p_value)`` of share A − share B, or ``None`` when both groups
    are counted as given (``human`` or ``raw``: the caller's exact tests apply).

    Otherwise a percentile interval and a two-sided bootstrap p from paired draws: ``adjusted``
    groups bring their draws (both use the same draws of the rates), ``ppi`` groups normal draws
    around their estimate, counted groups binomial draws."""
    if a.method in COUNTED and b.method in COUNTED:
        return None
    rng = rng or np.random.default_rng(BOOTSTRAP_SEED + 2)
    resamples = next((e.draws.shape[0] for e in (a, b) if e.draws is not None), BOOTSTRAP_RESAMPLES)
    d = _draws(a, resamples, rng) - _draws(b, resamples, rng)
    low, high = np.nanpercentile(d, [2.5, 97.5], axis=0)
    tail = np.minimum((d <= 0).sum(0), (d >= 0).sum(0))
    p = np.minimum(1.0, 2 * (tail + 1) / (resamples + 1))
    return a.share - b.share, low, high, p


COUNTED = ("human", "raw")


def _draws(estimate: Estimate, resamples: int, rng: np.random.Generator) -> np.ndarray:
    if estimate.draws is not None:
        return estimate.draws
    if estimate.se is not None:
        return estimate.share + estimate.se * rng.standard_normal((resamples, len(estimate.share)))
    n = max(estimate.n_quotes, 1)
    return rng.binomial(n, np.nan_to_num(estimate.raw_share), size=(resamples, len(estimate.share))) / n


def describe(methods: Mapping[str, int] | Sequence[str]) -> str:
    """Plain words for the methods used, e.g. for a report or a CLI line."""
    names = sorted(set(methods))
    return "; ".join(f"{m}: {METHODS[m]}" for m in names)


def check_model(codings, errors: CoderErrors) -> None:
    """Refuse to correct codings with the error rates of another model than the one that made them."""
    frame = as_frame(codings)
    if "coder" not in frame.columns:
        return
    made_by = {str(c) for c, who in zip(frame["coder"], coded_by(frame)) if who == "model" and str(c).strip()}
    others = sorted(made_by - {errors.model_id})
    if others:
        raise InputError(
            f"{source_of(frame)}: codings were made by model {others[0]}, but the error rates come from "
            f"{errors.model_id}; pass --model with the folder of the model that made them"
        )


def prepare(codings, *, human: str | Path | None = None, model_dir: str | Path | None = None,
            codebook: Codebook) -> tuple[pd.DataFrame, ShareEstimator]:
    """Codings with people's codes applied, and the estimator their shares call for.

    ``human`` (a file or folder of people's codings, a random sample of the corpus) enables the
    prediction-powered estimate; the model folder's measured error enables ``adjusted`` for
    model-coded quotes (the codings must have been made by that model).
    """
    from .paths import DEFAULT_MODEL_DIR

    frame = as_frame(codings)
    if human is not None:
        frame = apply_human(frame, read_human(human, codebook.code_ids))
    errors = None
    if (coded_by(frame) == "model").any():
        errors = CoderErrors.from_model_dir(model_dir or DEFAULT_MODEL_DIR)
        check_model(frame, errors)
    return frame, ShareEstimator(errors=errors, human_sample=human is not None)
