"""Compare how often two groups (CHP vs DASH, or any two values of a column) use each framing.

Per code and theme: each group's quote count and share, the difference in shares
(first group minus second) with a Newcombe hybrid-score 95% interval (built from the two
Wilson intervals), a test suited to the counts — Fisher's exact test when any expected
cell of the 2×2 table is below 5, else Pearson's chi-square without continuity
correction — and Benjamini–Hochberg adjusted p-values, separately across codes and
across themes.

Quotes are nested in organizations, so the same difference is also looked at per
organization: the share of each group's organizations that use the framing, and a
cluster bootstrap over organizations (resampled with replacement within each group; a
quote without an organization is its own cluster) giving a percentile 95% interval for
the quote-level difference. A difference *holds for organizations* when that interval
excludes zero on the same side as the difference.

Shares come from a :class:`~pipeline.shares.ShareEstimator`. Where the model's codes are
corrected for its measured error (``adjusted``, ``ppi``), the difference, its interval and
its p-value come from the estimator's draws instead of the exact tests, and the columns
``raw_*`` keep the comparison of the codes as given, so a difference that disappears once
the coder's error is counted is named in ``summary``. The organization check resamples the
codes as given: a correction with the same rates in both groups rescales a difference
without changing its sign.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from .errors import InputError
from .frequencies import as_frame, group_labels, indicators, organizations, require_columns, sort_groups
from .marks import source_of
from .records import Codebook
from .shares import ShareEstimator, difference

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240501

COMPARISON_COLUMNS: tuple[str, ...] = (
    "level",
    "id",
    "name",
    "group_a",
    "group_b",
    "n_a",
    "count_a",
    "share_a",
    "n_b",
    "count_b",
    "share_b",
    "difference",
    "ci_low",
    "ci_high",
    "test",
    "p_value",
    "p_adjusted",
    "significant",
    "organizations_a",
    "organizations_with_a",
    "organization_share_a",
    "organizations_b",
    "organizations_with_b",
    "organization_share_b",
    "bootstrap_ci_low",
    "bootstrap_ci_high",
    "holds_for_organizations",
    "method",
    "raw_share_a",
    "raw_share_b",
    "raw_difference",
    "raw_p_adjusted",
    "raw_significant",
    "summary",
)

PERCENT_COLUMNS: frozenset[str] = frozenset({
    "share_a", "share_b", "difference", "ci_low", "ci_high", "organization_share_a", "organization_share_b",
    "bootstrap_ci_low", "bootstrap_ci_high", "raw_share_a", "raw_share_b", "raw_difference",
})
"""Fractions shown as percentages (with "(%)" in the header) in XLSX; differences in points."""

READABLE_NAMES: dict[str, str] = {
    "level": "Level",
    "id": "Code or theme id",
    "name": "Name",
    "group_a": "Group A",
    "group_b": "Group B",
    "n_a": "Quotes in A",
    "count_a": "Quotes with it in A",
    "share_a": "Share in A",
    "n_b": "Quotes in B",
    "count_b": "Quotes with it in B",
    "share_b": "Share in B",
    "difference": "Difference (A - B)",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "test": "Test",
    "p_value": "p-value",
    "p_adjusted": "p-value (BH-adjusted)",
    "significant": "Significant (adjusted p < 0.05)",
    "organizations_a": "Organizations in A",
    "organizations_with_a": "Organizations using it in A",
    "organization_share_a": "Share of organizations in A",
    "organizations_b": "Organizations in B",
    "organizations_with_b": "Organizations using it in B",
    "organization_share_b": "Share of organizations in B",
    "bootstrap_ci_low": "Cluster-bootstrap 95% CI low",
    "bootstrap_ci_high": "Cluster-bootstrap 95% CI high",
    "holds_for_organizations": "Holds for organizations",
    "method": "Estimation method",
    "raw_share_a": "Share in A, codes as given",
    "raw_share_b": "Share in B, codes as given",
    "raw_difference": "Difference, codes as given",
    "raw_p_adjusted": "Adjusted p, codes as given",
    "raw_significant": "Significant, codes as given",
    "summary": "Summary",
}


def two_by_two_test(count_a: int, n_a: int, count_b: int, n_b: int) -> tuple[str, float]:
    """``(test name, two-sided p)`` for a 2×2 table of with/without counts in two groups.

    Fisher's exact test when any expected count is below 5 (or a margin is empty),
    else Pearson's chi-square without continuity correction.
    """
    table = np.array([[count_a, n_a - count_a], [count_b, n_b - count_b]])
    expected = stats.contingency.expected_freq(table)
    if (expected < 5).any():
        return "fisher", float(stats.fisher_exact(table, alternative="two-sided").pvalue)
    return "chi2", float(stats.chi2_contingency(table, correction=False).pvalue)


def _clusters(orgs: pd.Series) -> np.ndarray:
    """Cluster label per quote: its organization, or its own position when it has none."""
    return np.array([org if org else f"\x00{i}" for i, org in enumerate(orgs)], dtype=object)


def cluster_bootstrap(
    marks: np.ndarray,
    clusters: np.ndarray,
    in_a: np.ndarray,
    in_b: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95% interval of share_a − share_b per column of ``marks`` (quotes × framings),
    resampling clusters with replacement within each group."""
    rng = np.random.default_rng(seed)
    shares = []
    for mask in (in_a, in_b):
        labels, index = np.unique(clusters[mask], return_inverse=True)
        sums = np.zeros((len(labels), marks.shape[1]))
        np.add.at(sums, index, marks[mask].astype(float))
        sizes = np.bincount(index, minlength=len(labels)).astype(float)
        weights = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)), size=resamples)
        shares.append((weights @ sums) / (weights @ sizes)[:, None])
    differences = shares[0] - shares[1]
    low, high = np.percentile(differences, [2.5, 97.5], axis=0)
    return low, high


def compare(
    codings,
    codebook: Codebook,
    by: str = "program",
    groups: Sequence[str] = ("CHP", "DASH"),
    *,
    alpha: float = ALPHA,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    estimator: ShareEstimator | None = None,
) -> pd.DataFrame:
    """One row per code then per theme comparing ``groups[0]`` (A) with ``groups[1]`` (B).

    ``difference`` is share A − share B. See the module docstring for the methods; the
    columns are :data:`COMPARISON_COLUMNS`. Empty values of ``by`` form the group
    ``unknown``. Raises :class:`InputError` naming the column and the available groups
    when a group is absent.
    """
    frame = as_frame(codings)
    require_columns(frame, ["codes", by])
    if len(groups) != 2 or groups[0] == groups[1]:
        raise InputError(f"compare needs two different groups of column {by!r}, got {', '.join(map(str, groups)) or 'none'}")
    group_a, group_b = (str(g) for g in groups)
    labels = group_labels(frame, by)
    absent = [g for g in (group_a, group_b) if not (labels == g).any()]
    if absent:
        raise InputError(
            f"{source_of(frame)}: column {by!r} has no group {', '.join(repr(g) for g in absent)}; "
            f"available groups: {', '.join(sort_groups(labels))}"
        )
    marks = indicators(frame, codebook, "both")
    in_a, in_b = (labels == group_a).to_numpy(), (labels == group_b).to_numpy()
    values = marks.to_numpy()
    orgs = organizations(frame).to_numpy()
    n_a, n_b = int(in_a.sum()), int(in_b.sum())
    count_a, count_b = values[in_a].sum(axis=0), values[in_b].sum(axis=0)
    ci_low, ci_high = confint_proportions_2indep(count_a, n_a, count_b, n_b, method="newcomb", compare="diff")
    boot_low, boot_high = cluster_bootstrap(values, _clusters(pd.Series(orgs)), in_a, in_b, resamples, seed)
    names = {("code", c.id): c.name for c in codebook.codes} | {("theme", t.id): t.name for t in codebook.themes}
    estimator = (estimator or ShareEstimator()).at_level("both").fit(codebook)
    final, model, human = estimator.marks(frame)
    estimate_a = estimator.estimate(final[in_a], model[in_a], human[in_a])
    estimate_b = estimator.estimate(final[in_b], model[in_b], human[in_b], np.random.default_rng(seed + 7))
    corrected = difference(estimate_a, estimate_b)
    records = []
    for j, (level, framing) in enumerate(marks.columns):
        test, p_value = two_by_two_test(int(count_a[j]), n_a, int(count_b[j]), n_b)
        org_counts = {}
        for side, mask in (("a", in_a), ("b", in_b)):
            group_orgs = {o for o in orgs[mask] if o}
            using = {o for o in orgs[mask & values[:, j]] if o}
            org_counts[side] = (len(group_orgs), len(using), len(using) / len(group_orgs) if group_orgs else np.nan)
        records.append(
            {
                "level": level,
                "id": framing,
                "name": names[(level, framing)],
                "group_a": group_a,
                "group_b": group_b,
                "n_a": n_a,
                "count_a": int(count_a[j]),
                "share_a": count_a[j] / n_a,
                "n_b": n_b,
                "count_b": int(count_b[j]),
                "share_b": count_b[j] / n_b,
                "difference": count_a[j] / n_a - count_b[j] / n_b,
                "ci_low": float(ci_low[j]),
                "ci_high": float(ci_high[j]),
                "test": test,
                "p_value": p_value,
                "organizations_a": org_counts["a"][0],
                "organizations_with_a": org_counts["a"][1],
                "organization_share_a": org_counts["a"][2],
                "organizations_b": org_counts["b"][0],
                "organizations_with_b": org_counts["b"][1],
                "organization_share_b": org_counts["b"][2],
                "bootstrap_ci_low": float(boot_low[j]),
                "bootstrap_ci_high": float(boot_high[j]),
                "method": _method(estimate_a.method, estimate_b.method),
            }
        )
    table = pd.DataFrame.from_records(records)
    table["raw_share_a"], table["raw_share_b"] = table["share_a"], table["share_b"]
    table["raw_difference"], raw_p = table["difference"], table["p_value"].copy()
    if corrected is not None:
        table["share_a"], table["share_b"] = estimate_a.share, estimate_b.share
        table["difference"], table["ci_low"], table["ci_high"], table["p_value"] = corrected
        table["test"] = "bootstrap" if "ppi" not in (estimate_a.method, estimate_b.method) else "ppi-normal/bootstrap"
    table["p_adjusted"] = _bh(table["p_value"], table["level"])
    table["raw_p_adjusted"] = _bh(raw_p, table["level"])
    table["significant"] = table["p_adjusted"] < alpha
    table["raw_significant"] = table["raw_p_adjusted"] < alpha
    table["holds_for_organizations"] = (
        (table["difference"] > 0) & (table["bootstrap_ci_low"] > 0)
        | (table["difference"] < 0) & (table["bootstrap_ci_high"] < 0)
    )
    table["summary"] = [
        summary_line(row, by) if row.significant else disappeared_line(row, by) if row.raw_significant else ""
        for row in table.itertuples(index=False)
    ]
    return table[list(COMPARISON_COLUMNS)]


def _method(a: str, b: str) -> str:
    return a if a == b else f"{a}/{b}"


def _bh(p_values: pd.Series, levels: pd.Series) -> pd.Series:
    """Benjamini–Hochberg adjusted p-values, separately across codes and across themes."""
    adjusted = pd.Series(np.nan, index=p_values.index)
    for level in ("code", "theme"):
        rows = levels == level
        if rows.any():
            adjusted[rows] = multipletests(p_values[rows], method="fdr_bh")[1]
    return adjusted


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _points(x: float) -> str:
    return f"{100 * x:.0f}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def summary_line(row, by: str = "program") -> str:
    """One plain-words sentence about a compared framing (a :func:`compare` row)."""
    more, less = (row.group_a, row.group_b) if row.difference >= 0 else (row.group_b, row.group_a)
    share_more, share_less = (row.share_a, row.share_b) if row.difference >= 0 else (row.share_b, row.share_a)
    low, high = (row.ci_low, row.ci_high) if row.difference >= 0 else (-row.ci_high, -row.ci_low)
    framing = f"the {row.id} theme" if row.level == "theme" else row.id
    subject = f"{more} quotes" if by == "program" else f"Quotes with {by} {more}"
    other = less if by == "program" else f"{by} {less}"
    nested = (
        "the difference holds at the organization level"
        if row.holds_for_organizations
        else "it does not hold once quotes are grouped by organization (cluster-bootstrap interval includes zero)"
    )
    return (
        f"{subject} use {framing} more often than {other} ({_pct(share_more)} vs {_pct(share_less)}, "
        f"difference {_points(abs(row.difference))} points, 95% CI {_points(low)} to {_points(high)}, "
        f"adjusted {_p(row.p_adjusted)}); {nested}."
    )


def disappeared_line(row, by: str = "program") -> str:
    """The sentence for a difference that the codes as given show but the corrected shares do not."""
    framing = f"the {row.id} theme" if row.level == "theme" else row.id
    return (
        f"Counted from the codes as given, {framing} differs between {row.group_a} and {row.group_b} "
        f"({_pct(row.raw_share_a)} vs {_pct(row.raw_share_b)}, adjusted {_p(row.raw_p_adjusted)}), but the difference "
        f"disappears once the coder's error is counted ({_pct(row.share_a)} vs {_pct(row.share_b)}, "
        f"95% CI {_points(row.ci_low)} to {_points(row.ci_high)} points, adjusted {_p(row.p_adjusted)})."
    )


def summaries(comparison: pd.DataFrame) -> list[str]:
    """The plain-words lines of the significant differences, codes first."""
    return [line for line in comparison["summary"] if line]
