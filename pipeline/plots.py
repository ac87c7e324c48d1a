"""Figures of the frequency tables: a theme × sector heatmap and program bars with intervals.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas (no pyplot
state, no change to the session's backend) and saved as PNG and SVG with no dates and a fixed SVG hash salt, so the same
tables give byte-identical files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .errors import InputError
from .files import atomic_write_bytes

OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
"""Colour-blind-safe palette (Okabe & Ito 2008), darkest first."""

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "framecode",
    "svg.fonttype": "none",
    "path.simplify": True,
}
PNG_DPI = 150


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _pretty(label: str) -> str:
    return label.replace("_", " ")


def theme_sector_heatmap(table: pd.DataFrame, by: str = "sector", title: str | None = None,
                         mark: str | None = None) -> Figure:
    """Heatmap of estimated theme shares (rows: themes, columns: groups of ``by``), values annotated.

    ``table`` is :func:`pipeline.frequencies.frequencies` grouped by ``by`` alone, with
    theme rows (``level`` theme or both). ``mark`` is printed inside the figure.
    """
    themes = table[table["level"] == "theme"]
    if themes.empty or by not in themes.columns:
        raise InputError(f"heatmap needs a frequency table of themes grouped by {by!r}")
    groups = list(dict.fromkeys(themes[by]))
    theme_names = list(dict.fromkeys(themes["name"]))
    shares = themes.pivot(index="name", columns=by, values="share").reindex(index=theme_names, columns=groups)
    sizes = themes.groupby(by, sort=False)["n_quotes"].first().reindex(groups)
    orgs = themes.groupby(by, sort=False)["n_organizations"].first().reindex(groups)
    with matplotlib.rc_context(STYLE):
        width = max(6.5, 1.0 * len(groups) + 3.2)
        fig = _figure(width, 1.0 + 0.75 * len(theme_names) + 1.4)
        ax = fig.add_subplot()
        values = shares.to_numpy(dtype=float)
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=max(0.5, float(np.nanmax(values)) if values.size else 1.0), aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            if np.isnan(value):
                continue
            r, g, b, _ = image.cmap(image.norm(value))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.55
            ax.text(j, i, f"{100 * value:.0f}%", ha="center", va="center", fontsize=10,
                    color="white" if dark else "black")
        ax.set_xticks(range(len(groups)), [f"{_pretty(g)}\n{sizes[g]} quotes · {orgs[g]} orgs" for g in groups],
                      rotation=35 if len(groups) > 5 else 0, ha="right" if len(groups) > 5 else "center", fontsize=9)
        ax.set_yticks(range(len(theme_names)), theme_names)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(title or f"Share of quotes using each theme, by {_pretty(by)}", loc="left")
        bar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
        bar.set_label("estimated share of the group's quotes")
        if mark:
            fig.text(0.99, 0.01, mark, ha="right", va="bottom", fontsize=10, fontweight="bold", color="#B00020")
        bar.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        bar.outline.set_visible(False)
    return fig


def program_bars(
    table: pd.DataFrame,
    by: str = "program",
    groups: Sequence[str] = ("CHP", "DASH"),
    level: str = "code",
    title: str | None = None,
    mark: str | None = None,
) -> Figure:
    """Horizontal grouped bars of each code's estimated share in ``groups`` with 95% error bars.

    ``table`` is :func:`pipeline.frequencies.frequencies` grouped by ``by`` alone. Codes are
    ordered by their overall frequency across every group in the table (most used on top).
    ``mark`` is printed inside the figure (e.g. that it rests on demonstration data).
    """
    rows = table[table["level"] == level]
    if rows.empty:
        raise InputError(f"bar chart needs a frequency table with {level} rows grouped by {by!r}")
    missing = [g for g in groups if by not in rows.columns or not (rows[by] == g).any()]
    if missing:
        raise InputError(f"bar chart: no group {', '.join(map(repr, missing))} in column {by!r}")
    overall = rows.groupby("id", sort=False)[["n_with", "n_quotes"]].sum()
    order = (overall["n_with"] / overall["n_quotes"]).sort_values(ascending=False, kind="stable").index.tolist()
    names = rows.drop_duplicates("id").set_index("id")["name"]
    with matplotlib.rc_context(STYLE):
        fig = _figure(8.5, 1.4 + 0.62 * len(order) * max(1, len(groups) / 2))
        ax = fig.add_subplot()
        height = 0.8 / len(groups)
        positions = np.arange(len(order))
        for k, group in enumerate(groups):
            part = rows[rows[by] == group].set_index("id").reindex(order)
            share = part["share"].to_numpy(float)
            errors = np.clip(np.vstack([share - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - share]), 0, None)
            y = positions - 0.4 + height * (k + 0.5)
            n = int(part["n_quotes"].iloc[0])
            ax.barh(y, share, height=height * 0.92, color=OKABE_ITO[k % len(OKABE_ITO)],
                    label=f"{group} ({n} quotes)", zorder=2)
            ax.errorbar(share, y, xerr=errors, fmt="none", ecolor="#333333", elinewidth=1, capsize=2.5, zorder=3)
        ax.set_yticks(positions, [f"{names[i]}\n({i})" for i in order], fontsize=9)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_xlim(0, min(1.0, max(0.1, float(rows[rows[by].isin(groups)]["ci_high"].max()) * 1.08)))
        ax.grid(axis="x", color="#dddddd", zorder=0)
        methods = ", ".join(sorted(set(rows.loc[rows[by].isin(groups), "method"]))) if "method" in rows else "raw"
        ax.set_xlabel(f"estimated share of the group's quotes (bars: 95% interval; method: {methods})")
        if mark:
            ax.text(0.99, 0.01, mark, transform=ax.transAxes, ha="right", va="bottom", fontsize=10,
                    fontweight="bold", color="#B00020", zorder=4)
        ax.tick_params(axis="y", length=0)
        fig.suptitle(title or f"{' vs '.join(groups)}: share of quotes using each {level}",
                     x=0.01, ha="left", fontsize=12, fontweight="bold")
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(groups), frameon=False)
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure rendered as ``png`` or ``svg`` bytes, without dates or version stamps."""
    buffer = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata, facecolor="white")
    return buffer.getvalue()


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> dict[str, Path]:
    """Write ``stem.png`` and ``stem.svg`` atomically; return the paths by format."""
    paths = {}
    for fmt in formats:
        path = Path(stem).with_suffix(f".{fmt}")
        atomic_write_bytes(path, figure_bytes(fig, fmt))
        paths[fmt] = path
    return paths
