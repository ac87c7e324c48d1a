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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import compare as compare_module
from . import frequencies as frequencies_module
from .compare import compare
from .errors import InputError
from .files import atomic_write_text
from .frequencies import UNKNOWN, as_frame, frequencies, group_labels, organizations, wide
from .marks import indicators
from .plots import figure_bytes, program_bars, save_figure, theme_sector_heatmap
from .records import Codebook
from .tables import write_table, write_workbook

PROGRAMS: tuple[str, str] = ("CHP", "DASH")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx", ".json")
READABLE_NAMES: dict[str, str] = {**frequencies_module.READABLE_NAMES, **compare_module.READABLE_NAMES}
PERCENT_COLUMNS: frozenset[str] = frequencies_module.PERCENT_COLUMNS | compare_module.PERCENT_COLUMNS
PERCENT_FORMAT = "0.0%"


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
    names: Mapping[str, str] | None = None,
    percent: Collection[str] = (),
) -> Path:
    """Write tables by the suffix of ``path``, atomically.

    ``.csv`` takes exactly one table; ``.json`` holds a list of records (one table) or an
    object of them by table name (both keep column ids and fractions); ``.xlsx`` has one
    sheet per table with readable column names (``names`` adds to :data:`READABLE_NAMES`)
    and shares shown as percentages, headed "(%)" (:data:`PERCENT_COLUMNS` and ``percent``);
    ``timestamp`` fixes the workbook's dates.
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
        headers = _headers([str(c) for frame in tables.values() for c in frame.columns], names or {}, percent)
        sheets = {name[:31]: (_records(frame.rename(columns=lambda c: headers[str(c)])), [headers[str(c)] for c in frame.columns])
                  for name, frame in tables.items()}
        formats = {header: PERCENT_FORMAT for header in headers.values() if header.endswith(" (%)")}
        write_workbook(path, sheets, timestamp=timestamp, number_formats=formats)
    return path


def _headers(columns: Sequence[str], names: Mapping[str, str], percent: Collection[str]) -> dict[str, str]:
    """Column id -> XLSX header: its readable name, with " (%)" when it holds a share."""
    readable = {**READABLE_NAMES, **names}
    shares = PERCENT_COLUMNS | set(percent)
    return {c: readable.get(c, c) + (" (%)" if c in shares else "") for c in columns}


# --------------------------------------------------------------------------- analysis


DEMO_MARK = "demonstration data"
EXEMPLARS_PER_GROUP = 3


@dataclass(frozen=True)
class Reliability:
    """How far the codes can be trusted: the model's held-out agreement with people per code,
    beside two people's agreement with each other."""

    model_id: str
    model_kappa: dict[str, float]  # Cohen's kappa, model vs people, out of fold
    model_f1: dict[str, float]
    n_statements: int
    coders_alpha: dict[str, float]  # Krippendorff's alpha, coder A vs coder B, before adjudication
    n_coded_twice: int

    @classmethod
    def of(cls, errors, agreement: Mapping | None = None) -> Reliability:
        from sklearn.metrics import f1_score

        from .agreement import cohen_kappa

        kappa, f1 = {}, {}
        for k, code in enumerate(errors.code_ids):
            pair = np.vstack([errors.predicted[:, k], errors.truth[:, k]]).astype(int)
            kappa[code] = cohen_kappa(pair)
            f1[code] = float(f1_score(errors.truth[:, k], errors.predicted[:, k], zero_division=0))
        pooled = (agreement or {}).get(POOLED_AGREEMENT, {})
        return cls(errors.model_id, kappa, f1, len(errors.truth),
                   dict(pooled.get("krippendorff_alpha_nominal_per_code", {})), int(pooled.get("statements", 0)))


POOLED_AGREEMENT = "all statements coded twice"
"""Section of ``labels/agreement.json`` with the coders' agreement pooled over every batch."""


def read_agreement(path: str | Path | None = None) -> dict:
    """``labels/agreement.json`` (the coders' agreement), or nothing when it is absent."""
    from .paths import LABELS_DIR

    path = Path(path) if path is not None else LABELS_DIR / "agreement.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows, computed once from the codings."""

    by_sector: pd.DataFrame | None
    by_program: pd.DataFrame
    comparison: pd.DataFrame
    groups: tuple[str, str]
    n_quotes: int
    n_organizations: int
    origins: dict[str, int]
    organizations: pd.DataFrame
    by: str = "program"
    n_human: int = 0
    coders: dict[str, int] | None = None
    exemplars: dict[str, dict[str, list[tuple[str, str, str]]]] | None = None
    reliability: Reliability | None = None
    written_groups: tuple[str, ...] = ()

    @classmethod
    def of(cls, codings, codebook: Codebook, groups: Sequence[str] = PROGRAMS, *, by: str = "program",
           estimator=None, reliability: Reliability | None = None) -> Analysis:
        from .shares import coded_by

        frame = as_frame(codings)
        orgs = organizations(frame)
        origin = frame["origin"].fillna("").map(str).str.strip() if "origin" in frame.columns else None
        origins = (
            {UNKNOWN if not k else k: int(v) for k, v in origin.value_counts().sort_index().items()}
            if origin is not None
            else {}
        )
        labels = group_labels(frame, by)
        roster = pd.DataFrame(
            {
                "organization": orgs.where(orgs != "", "(no organization)"),
                by: labels,
                "sector": group_labels(frame, "sector") if "sector" in frame.columns else UNKNOWN,
            }
        )
        roster = roster.groupby([by, "organization", "sector"], sort=True).size().rename("quotes").reset_index()
        who = coded_by(frame)
        coder_names = frame["coder"].fillna("").map(str) if "coder" in frame.columns else pd.Series("", index=frame.index)
        coders = {("people: " if w == "person" else "model: ") + (c or "unnamed"): n
                  for (w, c), n in pd.Series(list(zip(who, coder_names))).value_counts().sort_index().items()}
        written = tuple(sorted(set(labels[origin == "written"]))) if origin is not None else ()
        return cls(
            by_sector=frequencies(frame, codebook, by=["sector"], level="both", estimator=estimator)
            if "sector" in frame.columns else None,
            by_program=frequencies(frame, codebook, by=[by], level="both", estimator=estimator),
            comparison=compare(frame, codebook, by=by, groups=groups, estimator=estimator),
            groups=(str(groups[0]), str(groups[1])),
            n_quotes=len(frame),
            n_organizations=int(orgs[orgs != ""].nunique()),
            origins=origins,
            organizations=roster,
            by=by,
            n_human=int((who == "person").sum()),
            coders=coders,
            exemplars=exemplars(frame, codebook, labels, groups),
            reliability=reliability,
            written_groups=written,
        )

    @property
    def mark(self) -> str | None:
        """The mark every figure and finding carries when written rows are among the quotes."""
        return DEMO_MARK if self.origins.get("written") else None

    def figures(self) -> dict[str, object]:
        """Figure name -> matplotlib Figure."""
        figures = {
            "codes_by_program": program_bars(self.by_program, by=self.by, groups=self.groups, level="code", mark=self.mark),
            "themes_by_program": program_bars(self.by_program, by=self.by, groups=self.groups, level="theme", mark=self.mark),
        }
        if self.by_sector is not None:
            figures["themes_by_sector"] = theme_sector_heatmap(self.by_sector, mark=self.mark)
        return figures


def exemplars(frame: pd.DataFrame, codebook: Codebook, labels: pd.Series, groups: Sequence[str],
              per_group: int = EXEMPLARS_PER_GROUP) -> dict[str, dict[str, list[tuple[str, str, str]]]]:
    """Per code and group, up to ``per_group`` quotes carrying it as ``(text, carrying sentence,
    organization)``: quotes coded by people first, then the model's most probable; real before written."""
    from .shares import coded_by

    marks = indicators(frame, codebook, "code")
    person = (coded_by(frame) == "person").to_numpy()
    written = (frame["origin"].fillna("").map(str) == "written").to_numpy() if "origin" in frame.columns else np.zeros(len(frame), bool)
    evidence = [_evidence(cell) for cell in (frame["evidence"] if "evidence" in frame.columns else [""] * len(frame))]
    texts = frame["text"].fillna("").map(str).tolist() if "text" in frame.columns else [""] * len(frame)
    orgs = organizations(frame).tolist()
    chosen: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    for code in codebook.code_ids:
        column = marks[("code", code)].to_numpy()
        proba = pd.to_numeric(frame.get(f"p_{code}", pd.Series(0.0, index=frame.index)), errors="coerce").fillna(0).to_numpy()
        for group in groups:
            rows = np.flatnonzero(column & (labels == group).to_numpy() & np.array([bool(t.strip()) for t in texts]))
            order = sorted(rows, key=lambda i: (written[i], not person[i], -proba[i], i))[:per_group]
            chosen.setdefault(code, {})[group] = [(texts[i], evidence[i].get(code, ""), orgs[i]) for i in order]
    return chosen


def _evidence(cell) -> dict[str, str]:
    text = "" if cell is None or cell != cell else str(cell).strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


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
    by = analysis.by
    paths: dict[str, Path] = {
        f"frequencies_by_{by}": write_tables(out / f"frequencies_by_{by}.csv", {f"by {by}": analysis.by_program}),
        f"comparison_{by}": write_tables(out / f"comparison_{by}.csv", {"comparison": analysis.comparison}),
    }
    if analysis.by_sector is not None:
        paths["frequencies_by_sector"] = write_tables(out / "frequencies_by_sector.csv", {"by sector": analysis.by_sector})
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
.demo { color: #B00020; font-weight: bold; font-size: .8rem; white-space: nowrap; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .8rem; max-width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .4rem; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f3f3f3; font-size: .75rem; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.sig td { background: #eef6fb; } code { font-size: .85em; }
blockquote { margin: .4rem 0 .8rem; padding: .3rem .8rem; border-left: 3px solid #bbb; font-size: .9rem; }
blockquote cite { display: block; font-size: .8rem; color: #555; font-style: normal; }
mark { background: #fff1a8; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .85rem; color: #444; } .muted { color: #555; font-size: .85rem; }
details summary { cursor: pointer; font-weight: bold; margin: .5rem 0; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2 { break-after: avoid; } figure, table, .notice, blockquote { break-inside: avoid; }
  tr { break-inside: avoid; } a { color: inherit; text-decoration: none; }
  details > * { display: block; }
}
"""

METHODS = (
    "Shares are the fraction of a group's quotes carrying a code; a theme counts a quote once however "
    "many of its codes the quote carries. A quote a person coded carries that person's codes. Each "
    "share is estimated by the method named beside it: 'human' (every quote coded by people; Wilson "
    "95% interval), 'ppi' (prediction-powered inference with PPI++ power tuning, Angelopoulos et al. "
    "2023: the model's codes on every quote corrected by a random human-coded sample; normal 95% "
    "interval), 'adjusted' (adjusted classify-and-count, Forman 2008: (q - fpr)/(tpr - fpr) with the "
    "model's true and false positive rates measured on real statements held out by source page; 95% "
    "percentile bootstrap interval that resamples the quotes and, jointly, the pages the rates were "
    "measured on, so it includes the uncertainty of the rates) or 'raw' (the model's codes counted as "
    "true; sampling error only). Where every quote is counted as given, the difference between "
    "programs (first minus second) has a Newcombe hybrid-score 95% interval and each code and theme is "
    "tested with Fisher's exact test when any expected count of its 2x2 table is below 5, else "
    "Pearson's chi-square; where shares are corrected, the difference, its interval and a two-sided "
    "p-value come from paired bootstrap draws. p-values are adjusted with Benjamini-Hochberg "
    "separately across codes and across themes, and a difference is called significant when the "
    "adjusted p is below 0.05. Quotes are nested in organizations, so the table also gives the share "
    "of each program's organizations using the framing and a cluster bootstrap "
    f"({compare_module.BOOTSTRAP_RESAMPLES} resamples of organizations within each program, seed "
    f"{compare_module.BOOTSTRAP_SEED}; a quote without an organization is its own cluster): a "
    "difference holds for organizations when that interval excludes zero. With few organizations per "
    "program the bootstrap interval is itself uncertain; read it as a check, not a proof."
)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def readable_p(p: float) -> str:
    """A p-value as a reader expects it: ``<0.001``, else three decimals."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[bool] = (), row_class: Sequence[str] = ()) -> str:
    numeric = list(numeric) or [False] * len(header)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_e(row_class[i])}"' if row_class and row_class[i] else ""
        cells = "".join(f'<td class="num">{_e(v)}</td>' if numeric[j] else f"<td>{_e(v)}</td>" for j, v in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(png: bytes | None, alt: str, caption: str, mark: str | None = None) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    flag = f' <span class="demo">[{_e(mark)}]</span>' if mark else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}"><figcaption>{_e(caption)}{flag}</figcaption></figure>'


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
            f"to demonstrate the tool, so results on them demonstrate the tool and are not findings; every figure "
            f"and finding resting on them is marked "
            f'<span class="demo">[{DEMO_MARK}]</span>.'
        )
    else:
        sentence = "Every quote is a real statement or a seed quote; none was written for a demonstration."
    return f'<p class="notice">{sentence} Quotes by origin: {counts}.</p>'


def _how_coded(analysis: Analysis) -> str:
    from .shares import METHODS as METHOD_WORDS

    coders = analysis.coders or {}
    share = analysis.n_human / analysis.n_quotes if analysis.n_quotes else 0.0
    who = "; ".join(f"{_e(name)}: {n} quotes" for name, n in coders.items()) or "no coder column"
    methods = sorted(set(analysis.by_program["method"]))
    parts = [
        "<h2>How these codes were made</h2>",
        f"<p>{analysis.n_human} of {analysis.n_quotes} quotes ({_pct(share, 0)}) carry codes given by people; "
        f"the rest carry the model's codes. Coders: {who}.</p>",
        "<p>Shares in this report: " + "; ".join(f"<b>{_e(m)}</b>: {_e(METHOD_WORDS[m])}" for m in methods) + ".</p>",
    ]
    rel = analysis.reliability
    if rel is not None:
        rows = [
            [code, f"{rel.model_kappa[code]:.2f}", f"{rel.model_f1[code]:.2f}",
             f"{rel.coders_alpha[code]:.2f}" if code in rel.coders_alpha else "–"]
            for code in rel.model_kappa
        ]
        parts += [
            f"<p>How reliable the codes are: the model ({_e(rel.model_id)}) against people on {rel.n_statements} real "
            "statements it was not trained on (out of fold, folds grouped by source page; thresholds were chosen on "
            "the same predictions, so slightly optimistic), beside two people coding blind before adjudication"
            + (f" ({rel.n_coded_twice} statements)" if rel.n_coded_twice else "") + ".</p>",
            _table(["Code", "Model vs people: Cohen's κ", "Model F1", "Coder vs coder: Krippendorff's α"], rows,
                   [False, True, True, True]),
        ]
    return "\n".join(parts)


def _comparison_table(comparison: pd.DataFrame, groups: tuple[str, str], mark: str | None) -> str:
    a, b = groups
    header = [
        "Framing", f"{a} share (count as given)", f"{b} share (count as given)", f"{a} − {b}, points [95% CI]", "Adjusted p",
        "Method", f"Orgs using: {a} / {b}", "Holds for orgs", "Codes as given: difference, adjusted p",
    ]
    rows, classes = [], []
    for r in comparison.itertuples(index=False):
        label = f"{r.name} ({r.id})" if r.level == "code" else f"Theme: {r.name}"
        rows.append([
            label + (f" [{mark}]" if mark else ""),
            f"{_pct(r.share_a)} ({r.count_a}/{r.n_a})",
            f"{_pct(r.share_b)} ({r.count_b}/{r.n_b})",
            f"{100 * r.difference:+.1f} [{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]",
            readable_p(r.p_adjusted),
            r.method,
            f"{r.organizations_with_a}/{r.organizations_a} · {r.organizations_with_b}/{r.organizations_b}",
            "yes" if r.holds_for_organizations else "no",
            f"{100 * r.raw_difference:+.1f}, p {readable_p(r.raw_p_adjusted)}",
        ])
        classes.append("sig" if r.significant else "")
    return _table(header, rows, [False, True, True, True, True, False, True, False, True], classes)


def _shares_table(table: pd.DataFrame, by: str, level: str) -> str:
    part = table[table["level"] == level]
    layout = wide(part)
    ids = [c for c in layout.columns if c not in (by, "n_quotes", "n_organizations")]
    header = [by.capitalize(), "Quotes", "Orgs", *ids]
    rows = [
        [row[by], int(row["n_quotes"]), int(row["n_organizations"]), *(_pct(row[i], 0) for i in ids)]
        for _, row in layout.iterrows()
    ]
    methods = ", ".join(sorted(set(part["method"])))
    return _table(header, rows, [False, True, True, *([True] * len(ids))]) + \
        f'<p class="muted">Estimated shares (method: {_e(methods)}); intervals are in the CSV tables.</p>'


def _marked(text: str, sentence: str) -> str:
    """The quote escaped, with the carrying sentence highlighted where it occurs."""
    if sentence and sentence in text:
        before, _, after = text.partition(sentence)
        return f"{_e(before)}<mark>{_e(sentence)}</mark>{_e(after)}"
    return _e(text)


def _exemplars(analysis: Analysis, codebook: Codebook) -> str:
    if not analysis.exemplars:
        return ""
    parts = ["<h2>What the codes look like: exemplar quotes</h2>",
             f"<p class='muted'>Up to {EXEMPLARS_PER_GROUP} quotes per code and {_e(analysis.by)}, quotes coded by people "
             "first; the highlighted sentence is the one that carries the code in the model's reading.</p>"]
    names = {c.id: c.name for c in codebook.codes}
    for code, by_group in analysis.exemplars.items():
        parts.append(f"<h3>{_e(names.get(code, code))} <code>{_e(code)}</code></h3>")
        for group, quotes in by_group.items():
            if not quotes:
                parts.append(f"<p class='muted'>{_e(group)}: no quote carries this code.</p>")
                continue
            flag = f' <span class="demo">[{DEMO_MARK}]</span>' if group in analysis.written_groups else ""
            parts.append(f"<p><b>{_e(group)}</b>{flag}</p>")
            parts += [f"<blockquote>{_marked(text, sentence)}<cite>— {_e(org or 'organization not given')}</cite></blockquote>"
                      for text, sentence, org in quotes]
    return "\n".join(parts)


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
    mark = analysis.mark
    flag = f' <span class="demo">[{DEMO_MARK}]</span>' if mark else ""
    lines = [line for line in analysis.comparison["summary"] if line]
    findings = (
        "<ul>" + "".join(f"<li>{_e(line)}{flag}</li>" for line in lines) + "</ul>"
        if lines
        else f"<p>No difference between {_e(a)} and {_e(b)} is significant after Benjamini–Hochberg adjustment "
             f"(adjusted p &lt; 0.05).{flag}</p>"
    )
    codes = analysis.comparison[analysis.comparison["level"] == "code"]
    themes = analysis.comparison[analysis.comparison["level"] == "theme"]
    roster = analysis.organizations
    by = analysis.by
    sector_part = [
        "<h2>Frequencies by sector</h2>",
        _figure(figures.get("themes_by_sector"), "Heatmap of theme shares by sector",
                "Estimated share of each sector's quotes carrying each theme; quotes without a sector form the group "
                "'unknown'.", mark),
        _shares_table(analysis.by_sector, "sector", "theme"),
        _shares_table(analysis.by_sector, "sector", "code"),
    ] if analysis.by_sector is not None else []
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>framecode report: {_e(a)} vs {_e(b)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>How {_e(a)} and {_e(b)} frame the value of sharing data</h1>",
        f'<p class="muted">{_e(codebook.title)}, version {_e(codebook.version)}; '
        f"{analysis.n_quotes} quotes from {analysis.n_organizations} organizations; date {_e(provenance.get('date', ''))}.</p>",
        _origin_notice(analysis),
        _how_coded(analysis),
        f"<h2>Differences between {_e(a)} and {_e(b)}</h2>",
        findings,
        _figure(figures.get("codes_by_program"), f"Bar chart of code shares, {a} vs {b}",
                f"Estimated share of each {by}'s quotes carrying each code, most used code first; bars show 95% "
                "intervals of the method named on the axis.", mark),
        "<h3>Codes</h3>",
        _comparison_table(codes, analysis.groups, mark),
        _figure(figures.get("themes_by_program"), f"Bar chart of theme shares, {a} vs {b}",
                f"Estimated share of each {by}'s quotes carrying each theme (a quote counts once per theme).", mark),
        "<h3>Themes</h3>",
        _comparison_table(themes, analysis.groups, mark),
        '<p class="muted">Shaded rows are significant after adjustment. Differences and intervals are in percentage '
        "points; 'codes as given' counts the codes without correcting for the coder's error.</p>",
        _exemplars(analysis, codebook),
        f"<h2>Frequencies by {_e(by)}</h2>",
        _shares_table(analysis.by_program, by, "theme"),
        _shares_table(analysis.by_program, by, "code"),
        *sector_part,
        "<h2>Methods</h2>",
        f"<p>{_e(METHODS)}</p>",
        "<h2>Appendix</h2>",
        f"<details><summary>Organizations ({len(roster)} rows)</summary>",
        _table([by.capitalize(), "Organization", "Sector", "Quotes"],
               [[getattr(r, by), r.organization, r.sector, r.quotes] for r in roster.itertuples(index=False)],
               [False, False, False, True]),
        "</details>",
        "<h3>Provenance</h3>",
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
