"""Inter-coder agreement per code and overall, with bootstrap intervals over quotes.

Each code is a presence/absence (nominal, two-category) judgement per quote. Point estimates
come from the established implementations (scikit-learn's Cohen's kappa, statsmodels'
Fleiss' kappa, the ``krippendorff`` package's alpha) and from :func:`gwet_ac1`; the bootstrap
re-weights quotes with the closed forms in :func:`weighted_statistics`, which the tests check
against those implementations.

Percent agreement, Cohen's and Fleiss' kappa and Gwet's AC1 use the quotes every coder coded;
Krippendorff's alpha uses every quote at least two coders coded (a quote absent from a file is
missing for that coder). "Overall" pools every (quote, code) decision; its bootstrap still
resamples whole quotes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .tables import read_table

STATISTICS: tuple[str, ...] = ("percent_agreement", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")
LABELS: dict[str, str] = {
    "percent_agreement": "% agree",
    "cohen_kappa": "Cohen κ",
    "fleiss_kappa": "Fleiss κ",
    "krippendorff_alpha": "Kripp. α",
    "gwet_ac1": "Gwet AC1",
}
NO_VARIATION = "no variation: every coder gave every quote the same value"


def split_codes(cell: object) -> tuple[str, ...]:
    """Code ids from a ``codes`` cell (``a;b``) or list; blanks dropped, order kept."""
    items = cell if isinstance(cell, list | tuple) else str(cell or "").split(";")
    return tuple(c.strip() for c in items if str(c).strip())


@dataclass(frozen=True)
class CoderCodings:
    """One coder's codes per quote id, read from one file."""

    name: str
    source: str
    codes: Mapping[str, frozenset[str]]
    excluded: tuple[tuple[str, str], ...] = ()  # (quote id, reason) dropped while reading

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]], *, name: str, source: str) -> CoderCodings:
        """Codes per id; an id that appears more than once is excluded (ambiguous)."""
        seen: dict[str, list[frozenset[str]]] = {}
        for row in rows:
            quote = str(row.get("id") or "").strip()
            if quote:
                seen.setdefault(quote, []).append(frozenset(split_codes(row.get("codes"))))
        codes = {q: v[0] for q, v in seen.items() if len(v) == 1}
        excluded = tuple((q, f"id appears {len(v)} times in {source}") for q, v in seen.items() if len(v) > 1)
        return cls(name, source, codes, excluded)


def read_coder_file(path: str | Path) -> CoderCodings:
    """Read a codings file (``id`` and ``codes`` columns); the coder is its ``coder`` column
    when that holds one name, else the file's stem. A file with people's decisions applied
    (a ``model_codes`` column) is read as the model's own codings, so a reviewer is never
    compared with their own decisions."""
    path = Path(path)
    table = read_table(path)
    missing = [c for c in ("id", "codes") if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; agreement needs 'id' and 'codes' (code ids joined by ';')"
        )
    rows = table.rows
    if "model_codes" in table.columns:
        rows = [{**row, "codes": row["model_codes"], "coder": "" if row.get("coded_by", "").strip() == "person" else row.get("coder", "")}
                for row in rows]
    coders = {row.get("coder", "").strip() for row in rows} - {""}
    name = coders.pop() if len(coders) == 1 else path.stem
    return CoderCodings.from_rows(rows, name=name, source=str(path))


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap 95% interval; ``value`` is None when undefined."""

    value: float | None
    low: float | None = None
    high: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci95": [self.low, self.high], **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class CodeAgreement:
    code: str
    quotes: int  # quotes every coder coded
    positives: int  # codings that apply the code, over those quotes and coders
    estimates: Mapping[str, Estimate]
    disagreements: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "quotes": self.quotes,
            "positives": self.positives,
            **{name: est.to_dict() for name, est in self.estimates.items()},
            "disagreements": list(self.disagreements),
        }


@dataclass(frozen=True)
class AgreementReport:
    coders: tuple[str, ...]
    files: tuple[str, ...]
    shared_quotes: int
    quotes_with_missing: int
    per_code: tuple[CodeAgreement, ...]
    overall: CodeAgreement
    excluded_quotes: tuple[Mapping[str, str], ...] = ()
    excluded_codes: tuple[Mapping[str, str], ...] = ()
    bootstrap: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "coders": list(self.coders),
            "files": list(self.files),
            "shared_quotes": self.shared_quotes,
            "quotes_with_missing_codings": self.quotes_with_missing,
            "bootstrap": dict(self.bootstrap),
            "overall": self.overall.to_dict(),
            "per_code": {c.code: c.to_dict() for c in self.per_code},
            "excluded_quotes": [dict(e) for e in self.excluded_quotes],
            "excluded_codes": [dict(e) for e in self.excluded_codes],
            "notes": {
                "units": "percent agreement, Cohen, Fleiss and AC1 use the shared quotes; Krippendorff's alpha uses "
                "every quote at least two coders coded (missing codings allowed)",
                "overall": "pools every (quote, code) decision; bootstrap resamples quotes",
                "percent_agreement": "share of quotes on which all coders agree",
            },
        }


# --- statistics on a reliability matrix (coders x units, 0/1 or NaN for missing) ---------------


def _category_counts(matrix: np.ndarray, categories: Sequence[float]) -> np.ndarray:
    """units x categories table of how many coders chose each category."""
    return np.stack([(matrix == c).sum(axis=0) for c in categories], axis=1).astype(float)


def percent_agreement(matrix: np.ndarray) -> float:
    """Share of units (no missing values) on which every coder gave the same value."""
    return float(np.mean(np.all(matrix == matrix[0], axis=0)))


def cohen_kappa(matrix: np.ndarray) -> float:
    """Cohen's kappa of exactly two coders (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(matrix[0], matrix[1]))


def fleiss_kappa(matrix: np.ndarray, categories: Sequence[float] = (0, 1)) -> float:
    """Fleiss' kappa (statsmodels) over units every coder coded."""
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(_fleiss(_category_counts(matrix, categories), method="fleiss"))


def krippendorff_alpha(matrix: np.ndarray) -> float:
    """Krippendorff's alpha, nominal, NaN for missing values (``krippendorff`` package)."""
    import krippendorff

    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's AC1 (Gwet 2008, multiple raters) from a units x categories count table.

    Units rated by fewer than two raters add to the category prevalences only.
    """
    counts = np.asarray(counts, dtype=float)
    raters = counts.sum(axis=1)
    categories = counts.shape[1]
    rated = raters > 0
    pairable = raters >= 2
    pa = np.mean((counts[pairable] * (counts[pairable] - 1)).sum(axis=1) / (raters[pairable] * (raters[pairable] - 1)))
    pi = (counts[rated] / raters[rated, None]).mean(axis=0)
    pe = float((pi * (1 - pi)).sum() / (categories - 1))
    return float((pa - pe) / (1 - pe))


# --- the same statistics as closed forms over weighted units (for the bootstrap) ---------------


def weighted_statistics(values: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Binary agreement statistics for each row of ``weights``.

    ``values`` is coders x units x codes (1, 0 or NaN); ``weights`` is resamples x units (how
    often each unit was drawn). Codes are pooled (the "overall" figures): a unit's terms are
    summed over its codes. Undefined results are NaN.
    """
    values = np.asarray(values, dtype=float)
    coders = values.shape[0]
    weights = np.asarray(weights, dtype=float)
    present = ~np.isnan(values)
    ones = np.nansum(values, axis=0)  # units x codes
    rated = present.sum(axis=0).astype(float)
    zeros = rated - ones
    complete = rated == coders
    pairable = rated >= 2

    def total(terms: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return weights @ np.where(mask, terms, 0.0).sum(axis=1)

    with np.errstate(invalid="ignore", divide="ignore"):
        # complete units: percent agreement, Fleiss, AC1, Cohen
        n_units = total(np.ones_like(ones), complete)
        agree = total(((ones == 0) | (zeros == 0)).astype(float), complete) / n_units
        pairs = np.where(complete, (ones * (ones - 1) + zeros * (zeros - 1)) / max(coders * (coders - 1), 1), 0.0)
        observed = total(pairs, complete) / n_units
        p1 = total(ones, complete) / (n_units * coders)
        fleiss_pe = p1**2 + (1 - p1) ** 2
        ac1_pe = 2 * p1 * (1 - p1)
        out = {
            "percent_agreement": agree,
            "fleiss_kappa": np.where(fleiss_pe < 1, (observed - fleiss_pe) / (1 - fleiss_pe), np.nan),
            "gwet_ac1": (observed - ac1_pe) / (1 - ac1_pe),
        }
        if coders == 2:
            a = total(np.nan_to_num(values[0]), complete) / n_units
            b = total(np.nan_to_num(values[1]), complete) / n_units
            cohen_pe = a * b + (1 - a) * (1 - b)
            out["cohen_kappa"] = np.where(cohen_pe < 1, (agree - cohen_pe) / (1 - cohen_pe), np.nan)
        else:
            out["cohen_kappa"] = np.full(len(weights), np.nan)
        # pairable units: Krippendorff's alpha, nominal
        n1 = total(ones, pairable)
        n0 = total(zeros, pairable)
        disagreeing = total(np.where(pairable, ones * zeros / np.maximum(rated - 1, 1), 0.0), pairable)
        out["krippendorff_alpha"] = np.where(n0 * n1 > 0, 1 - (n0 + n1 - 1) * disagreeing / (n0 * n1), np.nan)
    return out


# --- the report --------------------------------------------------------------------------------


def _point_estimates(matrix: np.ndarray, complete: np.ndarray, coders: int) -> dict[str, Estimate]:
    """Reference-implementation values for one code (or the pooled codes)."""
    shared = matrix[:, complete]
    pairable = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2]
    result: dict[str, Estimate] = {}
    if shared.shape[1] == 0:
        reason = "no quote was coded by every coder"
        result.update({name: Estimate(None, reason=reason) for name in STATISTICS if name != "krippendorff_alpha"})
    else:
        varied = len(np.unique(shared)) > 1
        result["percent_agreement"] = Estimate(percent_agreement(shared))
        if coders != 2:
            result["cohen_kappa"] = Estimate(None, reason=f"Cohen's kappa needs exactly two coders, got {coders}")
        elif not varied:
            result["cohen_kappa"] = Estimate(None, reason=NO_VARIATION)
        else:
            result["cohen_kappa"] = Estimate(cohen_kappa(shared))
        result["fleiss_kappa"] = Estimate(fleiss_kappa(shared)) if varied else Estimate(None, reason=NO_VARIATION)
        result["gwet_ac1"] = Estimate(gwet_ac1(_category_counts(shared, (0, 1))))
    if pairable.shape[1] == 0:
        result["krippendorff_alpha"] = Estimate(None, reason="no quote was coded by two or more coders")
    elif len(np.unique(pairable[~np.isnan(pairable)])) < 2:
        result["krippendorff_alpha"] = Estimate(None, reason=NO_VARIATION)
    else:
        result["krippendorff_alpha"] = Estimate(krippendorff_alpha(pairable))
    return {name: result[name] for name in STATISTICS}


def _with_intervals(estimates: Mapping[str, Estimate], boot: Mapping[str, np.ndarray]) -> dict[str, Estimate]:
    out = {}
    for name, est in estimates.items():
        draws = boot[name][~np.isnan(boot[name])]
        if est.value is None or draws.size == 0:
            out[name] = est
            continue
        low, high = np.percentile(draws, [2.5, 97.5])
        out[name] = Estimate(_round(est.value), _round(low), _round(high), est.reason)
    return out


def _round(value: float) -> float:
    return float(round(float(value), 6))


def _resample_weights(units: int, rounds: int, seed: int, mask: np.ndarray) -> np.ndarray:
    """rounds x units counts of a bootstrap over the units where ``mask`` holds."""
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(mask)
    weights = np.zeros((rounds, units))
    if chosen.size:
        draws = chosen[rng.integers(0, chosen.size, size=(rounds, chosen.size))]
        for r in range(rounds):
            weights[r] = np.bincount(draws[r], minlength=units)
    return weights


def compute_agreement(
    codings: Sequence[CoderCodings],
    code_ids: Sequence[str] | None = None,
    *,
    rounds: int = 1000,
    seed: int = 0,
) -> AgreementReport:
    """Agreement of two or more coders, per code and pooled, with bootstrap 95% intervals.

    ``code_ids`` (e.g. the codebook's) fixes the codes compared; codes found in the files but
    not listed are excluded and reported. Without it, every code any coder used is compared.
    """
    if len(codings) < 2:
        raise InputError("agreement needs at least two codings files; pass FILE_A FILE_B [FILE...]")
    names = _unique_names([c.name for c in codings])
    used = sorted(set().union(*(s for c in codings for s in c.codes.values())))
    codes = list(code_ids) if code_ids is not None else used
    excluded_codes = [
        {"code": code, "reason": "not in the codebook", "files": ", ".join(c.source for c in codings if any(code in s for s in c.codes.values()))}
        for code in used
        if code not in codes
    ]
    ids = sorted(set().union(*(c.codes for c in codings)))
    excluded_quotes = [{"file": c.source, "id": q, "reason": reason} for c in codings for q, reason in c.excluded]
    for c in codings:
        for quote in sorted(c.codes):
            missing_from = [other.source for other in codings if other is not c and quote not in other.codes]
            if missing_from:
                kept = len(codings) - len(missing_from) >= 2
                use = "kept for Krippendorff's alpha only" if kept else "coded by one coder only; left out"
                excluded_quotes.append({"file": c.source, "id": quote, "reason": f"not coded in {', '.join(missing_from)}; {use}"})
    values = np.full((len(codings), len(ids), len(codes)), np.nan)
    for i, c in enumerate(codings):
        for j, quote in enumerate(ids):
            if quote in c.codes:
                values[i, j] = [code in c.codes[quote] for code in codes]
    present = ~np.isnan(values[:, :, 0]) if codes else np.zeros((len(codings), len(ids)), bool)
    complete = present.all(axis=0)
    pairable = present.sum(axis=0) >= 2
    shared_weights = _resample_weights(len(ids), rounds, seed, complete)
    pairable_weights = _resample_weights(len(ids), rounds, seed, pairable)

    def summarise(name: str, cube: np.ndarray) -> CodeAgreement:
        flat = cube.reshape(len(codings), -1)
        point = _point_estimates(flat, np.repeat(complete, cube.shape[2]), len(codings))
        boot = weighted_statistics(cube, shared_weights)
        boot["krippendorff_alpha"] = weighted_statistics(cube, pairable_weights)["krippendorff_alpha"]
        disagree = [q for j, q in enumerate(ids) if pairable[j] and _disagree(cube[:, j, :])]
        positives = int(np.nansum(cube[:, complete, :]))
        return CodeAgreement(name, int(complete.sum()), positives, _with_intervals(point, boot), tuple(disagree))

    per_code = tuple(summarise(code, values[:, :, [k]]) for k, code in enumerate(codes))
    overall = summarise("overall", values)
    return AgreementReport(
        coders=tuple(names),
        files=tuple(c.source for c in codings),
        shared_quotes=int(complete.sum()),
        quotes_with_missing=int((~complete).sum()),
        per_code=per_code,
        overall=overall,
        excluded_quotes=tuple(excluded_quotes),
        excluded_codes=tuple(excluded_codes),
        bootstrap={"rounds": rounds, "seed": seed},
    )


def _disagree(unit: np.ndarray) -> bool:
    """Whether the coders who coded this quote differ on any of the given codes."""
    rows = unit[~np.isnan(unit).any(axis=1)]
    return bool(len(rows) >= 2 and (rows != rows[0]).any())


def _unique_names(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in out:
            candidate, n = f"{name} ({n})", n + 1
        out.append(candidate)
    return out


def format_value(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
