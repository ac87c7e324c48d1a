"""How often each code and theme appears per group (sector, program, ...), with intervals.

Input is the codings layout (one row per quote; ``codes`` holds the code ids above
threshold joined by ``;``). Themes are rolled up from codes: a quote counts once per
theme however many of that theme's codes it carries. Quotes are nested in organizations,
so every count comes with the number of distinct organizations behind it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .errors import InputError
from .marks import as_frame, indicators, require_columns, wilson_interval
from .records import Codebook
from .shares import ShareEstimator

UNKNOWN = "unknown"
"""Group label of quotes whose grouping value (sector, program, ...) is empty."""

Level = Literal["code", "theme", "both"]
LEVELS: tuple[str, ...] = ("code", "theme", "both")

FREQUENCY_COLUMNS: tuple[str, ...] = (
    "level",
    "id",
    "name",
    "theme",
    "n_quotes",
    "n_with",
    "share",
    "ci_low",
    "ci_high",
    "n_organizations_with",
    "n_organizations",
    "method",
    "n_human",
    "raw_share",
    "raw_ci_low",
    "raw_ci_high",
)

READABLE_NAMES: dict[str, str] = {
    "sector": "Sector",
    "program": "Program",
    "level": "Level",
    "id": "Code or theme id",
    "name": "Name",
    "theme": "Theme",
    "n_quotes": "Quotes in group",
    "n_with": "Quotes with it",
    "share": "Estimated share of quotes",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "n_organizations_with": "Organizations using it",
    "n_organizations": "Organizations in group",
    "method": "Estimation method",
    "n_human": "Quotes coded by people",
    "raw_share": "Share counted from the codes as given",
    "raw_ci_low": "95% CI low (Wilson, codes as given)",
    "raw_ci_high": "95% CI high (Wilson, codes as given)",
}


PERCENT_COLUMNS: frozenset[str] = frozenset({"share", "ci_low", "ci_high", "raw_share", "raw_ci_low", "raw_ci_high"})
"""Fractions shown as percentages (with "(%)" in the header) in XLSX."""


def read_codings(path: str | Path) -> pd.DataFrame:
    """Read a codings file (CSV, TSV, XLSX or JSONL) with every cell as text; a codings workbook
    written by framecode is read under its column ids."""
    from .exports import read_codings_table

    frame = as_frame(read_codings_table(Path(path)))
    frame.attrs["source"] = str(path)
    return frame


def group_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column's values stripped, with empty or missing values labelled ``unknown``."""
    require_columns(frame, [column])
    values = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip())
    return values.where(values != "", UNKNOWN)


def sort_groups(labels: Iterable[str]) -> list[str]:
    """Group labels in alphabetical order with ``unknown`` last."""
    return sorted(set(labels), key=lambda g: (g == UNKNOWN, g))


def organizations(frame: pd.DataFrame) -> pd.Series:
    """Each quote's organization, stripped; empty when unknown."""
    if "organization" not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype=object)
    return frame["organization"].map(lambda v: "" if v is None or v != v else str(v).strip())


def _names(codebook: Codebook) -> dict[tuple[str, str], tuple[str, str]]:
    names = {("code", c.id): (c.name, c.theme) for c in codebook.codes}
    names.update({("theme", t.id): (t.name, t.id) for t in codebook.themes})
    return names


def frequencies(
    codings,
    codebook: Codebook,
    by: Sequence[str] = ("sector",),
    level: Level = "both",
    estimator=None,
) -> pd.DataFrame:
    """Tidy table: one row per group and code/theme with counts, share and intervals.

    Columns: the ``by`` columns, then ``level`` (code or theme), ``id``, ``name``,
    ``theme``, ``n_quotes`` (quotes in the group), ``n_with`` (quotes carrying it),
    ``share`` with its 95% interval ``ci_low``/``ci_high`` estimated by ``method`` (see
    :mod:`pipeline.shares`; ``estimator`` is a :class:`~pipeline.shares.ShareEstimator`,
    by default one that counts the codes as given), ``n_organizations_with`` (distinct
    non-empty organizations among the quotes carrying it), ``n_organizations`` (distinct
    non-empty organizations in the group), ``n_human`` (quotes coded by people) and the share
    counted from the codes as given with its Wilson interval (``raw_share``, ``raw_ci_low``,
    ``raw_ci_high``). Empty grouping values form their own group, ``unknown``. ``by=()``
    gives one overall group.
    """

    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    frame = as_frame(codings)
    by = list(by)
    require_columns(frame, ["codes", *by])
    marks = indicators(frame, codebook, level)
    estimator = (estimator or ShareEstimator()).at_level(level).fit(codebook)
    final, model, human = estimator.marks(frame)
    orgs = organizations(frame)
    labels = pd.DataFrame({col: group_labels(frame, col) for col in by}, index=frame.index)
    names = _names(codebook)
    if by:
        keys = sorted(
            set(labels.itertuples(index=False, name=None)),
            key=lambda key: tuple((g == UNKNOWN, g) for g in key),
        )
    else:
        keys = [()]
    records = []
    for key in keys:
        mask = np.ones(len(frame), dtype=bool)
        for col, value in zip(by, key):
            mask &= (labels[col] == value).to_numpy()
        group_orgs = orgs[mask]
        n_organizations = group_orgs[group_orgs != ""].nunique()
        n_quotes = int(mask.sum())
        estimate = estimator.estimate(final[mask], model[mask], human[mask])
        for j, column in enumerate(marks.columns):
            carried = marks[column].to_numpy() & mask
            with_orgs = orgs[carried]
            name, theme = names[column]
            records.append(
                {
                    **dict(zip(by, key)),
                    "level": column[0],
                    "id": column[1],
                    "name": name,
                    "theme": theme,
                    "n_quotes": n_quotes,
                    "n_with": int(carried.sum()),
                    "n_organizations_with": int(with_orgs[with_orgs != ""].nunique()),
                    "n_organizations": int(n_organizations),
                    "method": estimate.method,
                    "n_human": estimate.n_human,
                    "share": float(estimate.share[j]),
                    "ci_low": float(estimate.ci_low[j]),
                    "ci_high": float(estimate.ci_high[j]),
                }
            )
    table = pd.DataFrame.from_records(records, columns=[*by, *FREQUENCY_COLUMNS])
    counts, totals = table["n_with"].to_numpy(float), table["n_quotes"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["raw_share"] = np.where(totals > 0, counts / totals, np.nan)
    table["raw_ci_low"], table["raw_ci_high"] = wilson_interval(counts, totals) if len(table) else ([], [])
    for col in ("n_quotes", "n_with", "n_organizations_with", "n_organizations", "n_human"):
        table[col] = table[col].astype("int64")
    return table


def wide_names(codebook: Codebook) -> dict[str, str]:
    """Readable XLSX headers of the code and theme columns of :func:`wide`: their names."""
    names = {t.id: t.name for t in codebook.themes}
    names.update({f"theme:{t.id}": f"{t.name} (theme)" for t in codebook.themes})
    names.update({c.id: c.name for c in codebook.codes})
    return names


def wide(table: pd.DataFrame, value: str = "share") -> pd.DataFrame:
    """Groups × codes/themes layout of one column of a :func:`frequencies` table.

    Rows are the groups (with ``n_quotes`` and ``n_organizations``), columns the code and
    theme ids in the table's order; a theme id that clashes with a code id is written
    ``theme:<id>``.
    """
    by = [c for c in table.columns if c not in FREQUENCY_COLUMNS]
    code_ids = set(table.loc[table["level"] == "code", "id"])
    labels = [
        f"theme:{i}" if lvl == "theme" and i in code_ids else i for lvl, i in zip(table["level"], table["id"])
    ]
    order = list(dict.fromkeys(labels))
    data = table.assign(_column=labels)
    if by:
        values = data.pivot(index=by, columns="_column", values=value)
        sizes = data.groupby(by, sort=False)[["n_quotes", "n_organizations"]].first()
        groups = list(dict.fromkeys(data[by].itertuples(index=False, name=None)))
        index = pd.MultiIndex.from_tuples(groups, names=by) if len(by) > 1 else pd.Index([g[0] for g in groups], name=by[0])
        result = sizes.join(values[order]).reindex(index).reset_index()
    else:
        row = {"n_quotes": data["n_quotes"].iloc[0], "n_organizations": data["n_organizations"].iloc[0]}
        row.update(dict(zip(data["_column"], data[value])))
        result = pd.DataFrame([row], columns=["n_quotes", "n_organizations", *order])
    result.columns.name = None
    return result
