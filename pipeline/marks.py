"""Codings as a table, and which codes and themes each quote carries.

Shared by the frequency, comparison and share-estimation stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import InputError, Problem, ValidationError
from .records import Codebook

Z95 = 1.959963984540054


def wilson_interval(count, nobs, z: float = Z95):
    """Wilson score interval for ``count`` successes out of ``nobs`` (arrays allowed).

    Returns ``(low, high)``; both are NaN where ``nobs`` is 0.
    """
    k = np.asarray(count, dtype=float)
    n = np.asarray(nobs, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = n + z * z
        center = (k + z * z / 2) / denom
        half = z / denom * np.sqrt(np.maximum(k * (n - k) / n, 0.0) + z * z / 4)
        low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high

def as_frame(codings) -> pd.DataFrame:
    """Codings as a DataFrame of strings: accepts a DataFrame, a table with ``rows`` and
    ``columns``, or an iterable of row mappings."""
    if isinstance(codings, pd.DataFrame):
        frame = codings
    elif hasattr(codings, "rows") and hasattr(codings, "columns"):
        frame = pd.DataFrame(list(codings.rows), columns=list(codings.columns))
        source = getattr(codings, "path", None) or getattr(codings, "source", None)
        if source:
            frame.attrs["source"] = str(source)
    else:
        frame = pd.DataFrame(list(_rows(codings)))
    return frame

def _rows(codings: Iterable) -> Iterable[Mapping]:
    for row in codings:
        yield row.to_row() if hasattr(row, "to_row") else dict(row)

def source_of(frame: pd.DataFrame) -> str:
    """The file a codings frame came from, for error messages."""
    return str(frame.attrs.get("source", "codings"))

def require_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`InputError` naming the file and the missing column(s)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{source_of(frame)}: no column {', '.join(repr(c) for c in missing)}; "
            f"available columns: {', '.join(map(str, frame.columns))}"
        )

def indicators(codings, codebook: Codebook, level: str = "both") -> pd.DataFrame:
    """One boolean column per code (and/or theme) telling whether each quote carries it.

    Columns are a ``(level, id)`` MultiIndex in codebook order, codes before themes. A
    theme is carried when any of its codes is. Unknown code ids are reported all at once,
    by row and id.
    """
    frame = as_frame(codings)
    require_columns(frame, ["codes"])
    known = set(codebook.code_ids)
    problems: list[Problem] = []
    carried: list[set[str]] = []
    for row_number, cell in enumerate(frame["codes"].tolist(), start=1):
        ids = {part.strip() for part in ("" if cell is None or cell != cell else str(cell)).split(";") if part.strip()}
        for code_id in sorted(ids - known):
            problems.append(
                Problem(
                    source_of(frame),
                    f"unknown code id {code_id!r} (codebook {codebook.version} has {', '.join(codebook.code_ids)}); "
                    "analyse with the codebook these codings were made with",
                    row=row_number,
                    column="codes",
                )
            )
        carried.append(ids)
    if problems:
        raise ValidationError(problems)
    columns: dict[tuple[str, str], np.ndarray] = {}
    codes = {c: np.array([c in ids for ids in carried], dtype=bool) for c in codebook.code_ids}
    if level in ("code", "both"):
        columns.update({("code", c): v for c, v in codes.items()})
    if level in ("theme", "both"):
        for theme in codebook.theme_ids:
            members = [codes[c.id] for c in codebook.codes if c.theme == theme]
            columns[("theme", theme)] = np.logical_or.reduce(members) if members else np.zeros(len(frame), bool)
    result = pd.DataFrame(columns, index=frame.index)
    result.columns = pd.MultiIndex.from_tuples(list(columns), names=["level", "id"])
    return result
