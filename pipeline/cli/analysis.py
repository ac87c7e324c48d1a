"""Commands: frequencies, compare."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer

from ..codebook import load_codebook
from ..errors import InputError
from ..frequencies import frequencies as frequency_table
from ..frequencies import read_codings, wide, wide_names
from ..paths import DEFAULT_CODEBOOK
from ..shares import prepare

# scipy, statsmodels and matplotlib are imported by the commands that need them, so that
# `framecode --help` and unrelated commands start quickly.


class Level(str, Enum):
    code = "code"
    theme = "theme"
    both = "both"


class Layout(str, Enum):
    long = "long"
    wide = "wide"


CodingsFile = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, show_default=False,
                   help="Codings file (output of `framecode code`: CSV, TSV, XLSX or JSONL with a `codes` column)."),
]
CodebookFile = Annotated[
    Path,
    typer.Option("--codebook", exists=True, dir_okay=False, show_default=False,
                 help="Codebook YAML the codings were made with (default: labels/codebook.yaml)."),
]
HumanOption = Annotated[
    Optional[Path],
    typer.Option("--human", exists=True, show_default=False,
                 help="People's codings of a RANDOM sample of the same quotes (a file or folder, e.g. labels/human/ "
                      "from `framecode review import`): their codes win, and shares become prediction-powered "
                      "estimates."),
]
ModelOption = Annotated[
    Optional[Path],
    typer.Option("--model", exists=True, file_okay=False, show_default=False,
                 help="Model folder that made the codings; its measured error rates correct the shares "
                      "(default: models/default)."),
]
CompareBy = Annotated[str, typer.Option("--by", help="Column whose values are compared.")]
GroupsOption = Annotated[
    tuple[str, str],
    typer.Option("--groups", help="The two groups to compare (A then B; differences are A − B)."),
]
OutFile = Annotated[
    Optional[Path],
    typer.Option("--out", dir_okay=False, show_default=False,
                 help="File to write: .csv, .xlsx (one sheet per level, readable column names) or .json. "
                      "Without it a table is printed."),
]


def _stamp(path: Path) -> dt.datetime:
    """Workbook date: the codings file's modification time, so the same input gives the same bytes."""
    return dt.datetime.fromtimestamp(int(path.stat().st_mtime), tz=dt.timezone.utc)


def _by_level(table: pd.DataFrame, names: dict[str, str]) -> dict[str, pd.DataFrame]:
    return {names[level]: part.reset_index(drop=True) for level, part in table.groupby("level", sort=False)}


def _print_table(title: str, frame: pd.DataFrame) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.itertuples(index=False, name=None):
        table.add_row(*(str(v) for v in row))
    Console(soft_wrap=False).print(table)


def _pct(value: float) -> str:
    return "–" if pd.isna(value) else f"{100 * value:.1f}%"


def _frequency_view(table: pd.DataFrame, by: list[str], layout: Layout) -> pd.DataFrame:
    if layout is Layout.wide:
        view = wide(table)
        fixed = [*by, "n_quotes", "n_organizations"]
        return view.assign(**{c: view[c].map(_pct) for c in view.columns if c not in fixed})
    return pd.DataFrame({
        **{c: table[c] for c in by},
        "level": table["level"],
        "id": table["id"],
        "share": table["share"].map(_pct),
        "95% CI": [f"{_pct(lo)}–{_pct(hi)}" for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "as given": table["n_with"].astype(str) + "/" + table["n_quotes"].astype(str),
        "orgs": table["n_organizations_with"].astype(str) + "/" + table["n_organizations"].astype(str),
    })


def _p_value(p: float) -> str:
    return "–" if pd.isna(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def _methods_line(methods) -> str:
    from ..shares import describe

    return "shares: " + describe(list(methods))


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("frequencies")
    def frequencies(
        codings: CodingsFile,
        by: Annotated[
            Optional[list[str]],
            typer.Option("--by", help="Column to group by (repeat for a cross-tabulation, e.g. --by sector "
                                      "--by program). Empty values form the group 'unknown'. Default: all quotes."),
        ] = None,
        level: Annotated[Level, typer.Option("--level", help="Count codes, themes (rolled up: a quote counts "
                                                              "once per theme) or both.")] = Level.both,
        layout: Annotated[Layout, typer.Option("--layout", help="long: one row per group and code (tidy); "
                                                                 "wide: one row per group, a share column per code.")] = Layout.long,
        out: OutFile = None,
        codebook: CodebookFile = DEFAULT_CODEBOOK,
        human: HumanOption = None,
        model: ModelOption = None,
    ) -> None:
        """How often each code and theme appears per group: shares corrected for the coder's error, with 95%
        intervals, the count of the codes as given, and organizations using it."""
        from ..report import write_tables

        book = load_codebook(codebook)
        frame, estimator = prepare(read_codings(codings), human=human, model_dir=model, codebook=book)
        groups = list(by or [])
        table = frequency_table(frame, book, by=groups, level=level.value, estimator=estimator)
        if out is None:
            _print_table(f"Frequencies in {codings.name}", _frequency_view(table, groups, layout))
            typer.echo(_methods_line(table["method"]))
            return
        if out.suffix.lower() == ".xlsx":
            parts = _by_level(table, {"code": "Codes", "theme": "Themes"})
            tables = {name: wide(part) if layout is Layout.wide else part for name, part in parts.items()}
            shares = wide_names(book) if layout is Layout.wide else {}
            write_tables(out, tables, timestamp=_stamp(codings), names=shares, percent=shares)
        else:
            write_tables(out, {"frequencies": wide(table) if layout is Layout.wide else table})
        typer.echo(_methods_line(table["method"]))
        typer.echo(f"wrote {out}")

    @app.command("compare")
    def compare(
        codings: CodingsFile,
        by: CompareBy = "program",
        groups: GroupsOption = ("CHP", "DASH"),
        out: OutFile = None,
        codebook: CodebookFile = DEFAULT_CODEBOOK,
        human: HumanOption = None,
        model: ModelOption = None,
    ) -> None:
        """Compare two groups per code and theme: shares corrected for the coder's error, difference with 95% CI,
        test, BH-adjusted p, organization check, and the same comparison of the codes as given."""
        from ..compare import compare as compare_groups
        from ..compare import summaries
        from ..report import write_tables

        book = load_codebook(codebook)
        frame, estimator = prepare(read_codings(codings), human=human, model_dir=model, codebook=book)
        table = compare_groups(frame, book, by=by, groups=groups, estimator=estimator)
        lines = summaries(table)
        if out is None:
            a, b = groups
            view = pd.DataFrame({
                "level": table["level"],
                "id": table["id"],
                a: [f"{_pct(s)} ({c}/{n})" for s, c, n in zip(table["share_a"], table["count_a"], table["n_a"])],
                b: [f"{_pct(s)} ({c}/{n})" for s, c, n in zip(table["share_b"], table["count_b"], table["n_b"])],
                "difference [95% CI]": [f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
                                        for d, lo, hi in zip(table["difference"], table["ci_low"], table["ci_high"])],
                "test": table["test"],
                "adj. p": table["p_adjusted"].map(_p_value),
                "method": table["method"],
                "as given: diff, adj. p": [f"{100 * d:+.1f}, {_p_value(p)}" for d, p in
                                           zip(table["raw_difference"], table["raw_p_adjusted"])],
                "holds for orgs": table["holds_for_organizations"].map({True: "yes", False: "no"}),
            })
            _print_table(f"{a} vs {b} by {by} in {codings.name}", view)
        elif out.suffix.lower() == ".xlsx":
            write_tables(out, _by_level(table, {"code": "Codes", "theme": "Themes"}), timestamp=_stamp(codings))
        else:
            write_tables(out, {"comparison": table})
        for line in lines or [f"No difference between {groups[0]} and {groups[1]} is significant "
                              "after Benjamini–Hochberg adjustment (p < 0.05)."]:
            typer.echo(line)
        typer.echo(_methods_line(table["method"].str.split("/").explode()))
        if out is not None:
            typer.echo(f"wrote {out}")

    @app.command("report")
    def report(
        codings: CodingsFile,
        out: Annotated[Path, typer.Option("--out", dir_okay=False, help="HTML file to write (self-contained, opens offline).")],
        by: CompareBy = "program",
        groups: GroupsOption = ("CHP", "DASH"),
        codebook: CodebookFile = DEFAULT_CODEBOOK,
        human: HumanOption = None,
        model: ModelOption = None,
    ) -> None:
        """An HTML report of any coded file: how its codes were made and how reliable they are, shares corrected
        for the coder's error, the comparison of two groups, exemplar quotes, figures and methods."""
        from ..files import sha256_file
        from ..report import Analysis, Reliability, read_agreement, write_report

        if out.suffix.lower() not in (".html", ".htm"):
            raise InputError(f"--out {out}: the report is HTML; name a file ending in .html")
        book = load_codebook(codebook)
        frame, estimator = prepare(read_codings(codings), human=human, model_dir=model, codebook=book)
        reliability = Reliability.of(estimator.errors, read_agreement()) if estimator.errors is not None else None
        analysis = Analysis.of(frame, book, groups, by=by, estimator=estimator, reliability=reliability)
        provenance = {"date": _stamp(codings).isoformat(), "codings": {codings.name: sha256_file(codings)}}
        if estimator.errors is not None:
            provenance["model"] = estimator.errors.model_id
        if human is not None:
            provenance["human codings"] = str(human)
        write_report(out, analysis, book, provenance)
        typer.echo(_methods_line(analysis.by_program["method"]))
        typer.echo(f"wrote {out}")

    @app.command("run")
    def run(
        ctx: typer.Context,
        out_dir: Annotated[Path, typer.Option("--out-dir", file_okay=False,
                                              help="Folder for codings, tables, figures and report.html.")] = Path("out"),
    ) -> None:
        """The main job: ingest corpus/, load (or train) the default model, code every quote,
        and write frequencies, the CHP vs DASH comparison, figures and the report."""
        from ..jobs import run_main_job

        result = run_main_job(out_dir)
        if ctx.obj.quiet:
            return
        typer.echo(f"coded {result.quotes} quotes: " + ", ".join(f"{n} {o}" for o, n in sorted(result.by_origin.items()))
                   + "; by program: " + ", ".join(f"{n} {p}" for p, n in sorted(result.by_program.items())))
        if result.by_origin.get("written"):
            typer.echo("results on written rows demonstrate the tool and are not findings")
        for line in result.summaries or ["no CHP vs DASH difference is significant after Benjamini-Hochberg adjustment"]:
            typer.echo(f"  {line}")
        typer.echo(f"report: {result.paths['report']}")
