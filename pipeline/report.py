"""Write the analysis: frequency and comparison tables, figures, and one self-contained HTML report.

Everything written here is atomic and deterministic: the same codings, codebook and
provenance give byte-identical files (the date comes from the caller, never the clock).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import compare as compare_module
from . import frequencies as frequencies_module
from .compare import compare
from .errors import InputError
from .files import atomic_write_text
from .frequencies import UNKNOWN, as_frame, frequencies, group_labels, organizations, wide
from .plots import figure_bytes, program_bars, save_figure, theme_sector_heatmap
from .records import Codebook
from .tables import write_table, write_workbook

PROGRAMS: tuple[str, str] = ("CHP", "DASH")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx", ".json")
READABLE_NAMES: dict[str, str] = {**frequencies_module.READABLE_NAMES, **compare_module.READABLE_NAMES}


# --------------------------------------------------------------------------- tables


def _cell(value: object) -> object:
    """A table cell for CSV/JSON: floats to 6 significant digits, NaN as None."""
    if isinstance(value, bool):
        return value
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [{c: _cell(v) for c, v in zip(frame.columns, row)} for row in frame.itertuples(index=False, name=None)]


def _csv_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_tables(
    path: str | Path,
    tables: Mapping[str, pd.DataFrame],
    *,
    timestamp: dt.datetime | None = None,
) -> Path:
    """Write tables by the suffix of ``path``, atomically.

    ``.csv`` takes exactly one table; ``.json`` holds a list of records (one table) or an
    object of them by table name; ``.xlsx`` has one sheet per table with readable column
    names (``timestamp`` fixes the workbook's dates).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: cannot write {path.suffix or 'a file without suffix'!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    if suffix == ".csv":
        if len(tables) != 1:
            raise InputError(f"{path}: CSV holds one table, got {len(tables)}; write .xlsx or .json instead")
        (frame,) = tables.values()
        rows = [{c: _csv_text(v) for c, v in row.items()} for row in _records(frame)]
        write_table(path, rows, [str(c) for c in frame.columns])
    elif suffix == ".json":
        data = {name: _records(frame) for name, frame in tables.items()}
        payload = next(iter(data.values())) if len(data) == 1 else data
        atomic_write_text(path, json.dumps(payload, ensure_ascii=False, indent=1, allow_nan=False) + "\n")
    else:
        sheets = {}
        for name, frame in tables.items():
            readable = frame.rename(columns=lambda c: READABLE_NAMES.get(str(c), str(c)))
            sheets[name[:31]] = (_records(readable), [str(c) for c in readable.columns])
        write_workbook(path, sheets, timestamp=timestamp)
    return path


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows, computed once from the codings."""

    by_sector: pd.DataFrame
    by_program: pd.DataFrame
    comparison: pd.DataFrame
    groups: tuple[str, str]
    n_quotes: int
    n_organizations: int
    origins: dict[str, int]
    organizations: pd.DataFrame

    @classmethod
    def of(cls, codings, codebook: Codebook, groups: Sequence[str] = PROGRAMS) -> Analysis:
        frame = as_frame(codings)
        orgs = organizations(frame)
        origins = (
            {UNKNOWN if not k else k: int(v) for k, v in frame["origin"].fillna("").map(str).str.strip().value_counts().sort_index().items()}
            if "origin" in frame.columns
            else {}
        )
        roster = pd.DataFrame(
            {
                "organization": orgs.where(orgs != "", "(no organization)"),
                "program": group_labels(frame, "program") if "program" in frame.columns else UNKNOWN,
                "sector": group_labels(frame, "sector") if "sector" in frame.columns else UNKNOWN,
            }
        )
        roster = roster.groupby(["program", "organization", "sector"], sort=True).size().rename("quotes").reset_index()
        return cls(
            by_sector=frequencies(frame, codebook, by=["sector"], level="both"),
            by_program=frequencies(frame, codebook, by=["program"], level="both"),
            comparison=compare(frame, codebook, by="program", groups=groups),
            groups=(str(groups[0]), str(groups[1])),
            n_quotes=len(frame),
            n_organizations=int(orgs[orgs != ""].nunique()),
            origins=origins,
            organizations=roster,
        )

    def figures(self) -> dict[str, object]:
        """Figure name -> matplotlib Figure."""
        return {
            "codes_by_program": program_bars(self.by_program, groups=self.groups, level="code"),
            "themes_by_program": program_bars(self.by_program, groups=self.groups, level="theme"),
            "themes_by_sector": theme_sector_heatmap(self.by_sector),
        }


def write_analysis(codings, codebook: Codebook, out_dir: str | Path, provenance: Mapping[str, object]) -> dict[str, Path]:
    """Write the frequency and comparison tables, figures and ``report.html`` under ``out_dir``.

    Returns the written paths by name: ``frequencies_by_sector``, ``frequencies_by_program``,
    ``comparison_program``, ``figures/<name>.png|svg`` and ``report``. The same input gives
    byte-identical files.
    """
    return write_analysis_of(Analysis.of(codings, codebook), codebook, out_dir, provenance)


def write_analysis_of(analysis: Analysis, codebook: Codebook, out_dir: str | Path, provenance: Mapping[str, object]) -> dict[str, Path]:
    """:func:`write_analysis` for an analysis already computed (its comparison is reused)."""
    out = Path(out_dir)
    paths: dict[str, Path] = {
        "frequencies_by_sector": write_tables(out / "frequencies_by_sector.csv", {"by sector": analysis.by_sector}),
        "frequencies_by_program": write_tables(out / "frequencies_by_program.csv", {"by program": analysis.by_program}),
        "comparison_program": write_tables(out / "comparison_program.csv", {"comparison": analysis.comparison}),
    }
    pngs = {}
    for name, fig in analysis.figures().items():
        written = save_figure(fig, out / "figures" / name)
        pngs[name] = written["png"].read_bytes()
        paths.update({f"figures/{name}.{fmt}": p for fmt, p in written.items()})
    paths["report"] = write_report(out / "report.html", analysis, codebook, provenance, figures=pngs)
    return paths


# --------------------------------------------------------------------------- HTML

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a1a1a; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
     border-bottom: 1px solid #ccc; padding-bottom: .2rem; } h3 { font-size: 1.05rem; }
.notice { border-left: 4px solid #E69F00; background: #fff7e6; padding: .6rem .9rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .85rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-size: .8rem; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.sig td { background: #eef6fb; } code { font-size: .85em; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .85rem; color: #444; } .muted { color: #555; font-size: .85rem; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2 { break-after: avoid; } figure, table, .notice { break-inside: avoid; }
  tr { break-inside: avoid; } a { color: inherit; text-decoration: none; }
}
"""

METHODS = (
    "Shares are the fraction of a group's quotes carrying a code; a theme counts a quote once however "
    "many of its codes the quote carries. Intervals on shares are Wilson 95% score intervals. The "
    "difference between programs (first minus second) has a Newcombe hybrid-score 95% interval. Each "
    "code and theme is tested with Fisher's exact test when any expected count of its 2×2 table is "
    "below 5, else Pearson's chi-square without continuity correction; p-values are adjusted with "
    "Benjamini–Hochberg separately across codes and across themes, and a difference is called "
    "significant when the adjusted p is below 0.05. Quotes are nested in organizations, so the table "
    "also gives the share of each program's organizations using the framing and a cluster bootstrap "
    f"({compare_module.BOOTSTRAP_RESAMPLES} resamples of organizations within each program, seed "
    f"{compare_module.BOOTSTRAP_SEED}; a quote without an organization is its own cluster): a "
    "difference holds for organizations when that interval excludes zero. With few organizations per "
    "program the bootstrap interval is itself uncertain; read it as a check, not a proof."
)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[bool] = (), row_class: Sequence[str] = ()) -> str:
    numeric = list(numeric) or [False] * len(header)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_e(row_class[i])}"' if row_class and row_class[i] else ""
        cells = "".join(f'<td class="num">{_e(v)}</td>' if numeric[j] else f"<td>{_e(v)}</td>" for j, v in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(png: bytes | None, alt: str, caption: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _origin_notice(analysis: Analysis) -> str:
    if not analysis.origins:
        return (
            '<p class="notice">These codings carry no <code>origin</code> column, so rows written to '
            "demonstrate the tool cannot be told apart from real testimonials; check where the quotes "
            "came from before reading any result as a finding.</p>"
        )
    written = analysis.origins.get("written", 0)
    counts = ", ".join(f"{_e(k)}: {v}" for k, v in analysis.origins.items())
    if written:
        sentence = (
            f"{written} of the {analysis.n_quotes} quotes have <code>origin=written</code>: they were written "
            "to demonstrate the tool, so results on them demonstrate the tool and are not findings."
        )
    else:
        sentence = "No quote has <code>origin=written</code>."
    return f'<p class="notice">{sentence} Quotes by origin: {counts}.</p>'


def _comparison_table(comparison: pd.DataFrame, groups: tuple[str, str]) -> str:
    a, b = groups
    header = [
        "Framing", f"{a} share (n)", f"{b} share (n)", f"Difference {a} − {b} [95% CI]", "Test", "p", "Adjusted p",
        f"{a} orgs using", f"{b} orgs using", "Cluster-bootstrap 95% CI", "Holds for orgs",
    ]
    rows, classes = [], []
    for r in comparison.itertuples(index=False):
        label = f"{r.name} ({r.id})" if r.level == "code" else f"Theme: {r.name}"
        rows.append([
            label,
            f"{_pct(r.share_a)} ({r.count_a}/{r.n_a})",
            f"{_pct(r.share_b)} ({r.count_b}/{r.n_b})",
            f"{100 * r.difference:+.1f} [{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]",
            "Fisher exact" if r.test == "fisher" else "chi-square",
            f"{r.p_value:.3g}",
            f"{r.p_adjusted:.3g}",
            f"{r.organizations_with_a}/{r.organizations_a}",
            f"{r.organizations_with_b}/{r.organizations_b}",
            f"[{100 * r.bootstrap_ci_low:+.1f}, {100 * r.bootstrap_ci_high:+.1f}]",
            "yes" if r.holds_for_organizations else "no",
        ])
        classes.append("sig" if r.significant else "")
    return _table(header, rows, [False, True, True, True, False, True, True, True, True, True, False], classes)


def _shares_table(table: pd.DataFrame, by: str, level: str) -> str:
    part = table[table["level"] == level]
    layout = wide(part)
    ids = [c for c in layout.columns if c not in (by, "n_quotes", "n_organizations")]
    names = dict(zip(part["id"], part["name"]))
    header = [by.capitalize(), "Quotes", "Organizations", *(names.get(i, i) for i in ids)]
    rows = [
        [row[by], int(row["n_quotes"]), int(row["n_organizations"]), *(_pct(row[i], 0) for i in ids)]
        for _, row in layout.iterrows()
    ]
    return _table(header, rows, [False, True, True, *([True] * len(ids))])


def _provenance(provenance: Mapping[str, object], codebook: Codebook) -> str:
    info = dict(provenance)
    info.setdefault("codebook_version", codebook.version)
    info.setdefault("codebook_hash", codebook.content_hash)
    order = ["date", "corpus", "codebook_version", "codebook_hash", "model", "encoder"]
    keys = [k for k in order if k in info] + sorted(k for k in info if k not in order)
    rows = []
    for key in keys:
        value = info[key]
        if isinstance(value, Mapping):
            shown = "; ".join(f"{k} (sha256 {v})" if key == "corpus" else f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            shown = "; ".join(" ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value)
        else:
            shown = value
        rows.append([key.replace("_", " "), shown])
    return _table(["Item", "Value"], rows)


def render_report(
    analysis: Analysis,
    codebook: Codebook,
    provenance: Mapping[str, object],
    figures: Mapping[str, bytes] | None = None,
) -> str:
    """The report as one self-contained HTML document (figures are embedded PNGs)."""
    figures = dict(figures or {})
    a, b = analysis.groups
    lines = [line for line in analysis.comparison["summary"] if line]
    findings = (
        "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>"
        if lines
        else f"<p>No difference between {_e(a)} and {_e(b)} is significant after Benjamini–Hochberg adjustment (adjusted p &lt; 0.05).</p>"
    )
    codes = analysis.comparison[analysis.comparison["level"] == "code"]
    themes = analysis.comparison[analysis.comparison["level"] == "theme"]
    roster = analysis.organizations
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>framecode report: {_e(a)} vs {_e(b)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>How {_e(a)} and {_e(b)} collaborations frame the value of sharing data</h1>",
        f'<p class="muted">{_e(codebook.title)}, version {_e(codebook.version)}; '
        f"{analysis.n_quotes} quotes from {analysis.n_organizations} organizations; date {_e(provenance.get('date', ''))}.</p>",
        _origin_notice(analysis),
        f"<h2>Differences between {_e(a)} and {_e(b)}</h2>",
        findings,
        _figure(figures.get("codes_by_program"), f"Bar chart of code shares, {a} vs {b}",
                "Share of each program's quotes carrying each code, most used code first; bars show 95% Wilson intervals."),
        "<h3>Codes</h3>",
        _comparison_table(codes, analysis.groups),
        _figure(figures.get("themes_by_program"), f"Bar chart of theme shares, {a} vs {b}",
                "Share of each program's quotes carrying each theme (a quote counts once per theme)."),
        "<h3>Themes</h3>",
        _comparison_table(themes, analysis.groups),
        '<p class="muted">Shaded rows are significant after adjustment. Differences and intervals are in percentage points.</p>',
        "<h2>Frequencies by program</h2>",
        _shares_table(analysis.by_program, "program", "theme"),
        _shares_table(analysis.by_program, "program", "code"),
        "<h2>Frequencies by sector</h2>",
        _figure(figures.get("themes_by_sector"), "Heatmap of theme shares by sector",
                "Share of each sector's quotes carrying each theme; quotes without a sector form the group 'unknown'."),
        _shares_table(analysis.by_sector, "sector", "theme"),
        _shares_table(analysis.by_sector, "sector", "code"),
        "<h2>Organizations</h2>",
        _table(["Program", "Organization", "Sector", "Quotes"],
               [[r.program, r.organization, r.sector, r.quotes] for r in roster.itertuples(index=False)],
               [False, False, False, True]),
        "<h2>Methods</h2>",
        f"<p>{_e(METHODS)}</p>",
        "<h2>Provenance</h2>",
        _provenance(provenance, codebook),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(
    path: str | Path,
    analysis: Analysis,
    codebook: Codebook,
    provenance: Mapping[str, object],
    figures: Mapping[str, bytes] | None = None,
) -> Path:
    """Write :func:`render_report` to ``path`` atomically. Without ``figures`` they are drawn here."""
    if figures is None:
        figures = {name: figure_bytes(fig, "png") for name, fig in analysis.figures().items()}
    atomic_write_text(path, render_report(analysis, codebook, provenance, figures))
    return Path(path)
