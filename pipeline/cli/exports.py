"""Command: export table (codings as XLSX, SPSS, Stata or R), and the output options `code` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..exports import ExportFormat
from ..paths import DEFAULT_CODEBOOK

FormatOption = Annotated[
    Optional[ExportFormat],
    typer.Option("--format", show_default=False,
                 help="Output format (default: by the suffix of --out: .csv, .jsonl, .xlsx, .sav = spss, "
                      ".dta = stata); r writes an R-ready .csv (snake_case names, NA, 0/1 code columns)."),
]
IndicatorsOption = Annotated[
    bool,
    typer.Option("--indicators", help="Add one 0/1 column code_<id> per code after `codes` "
                                      "(always there in spss, stata and r)."),
]


def export_table(
    codings: Annotated[Path, typer.Argument(exists=True, dir_okay=False, show_default=False,
                                            help="Codings file from `framecode code` or a run's codings.csv (CSV, TSV, XLSX or JSONL).")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, show_default=False,
                                      help="File to write: .xlsx, .sav (SPSS), .dta (Stata), .csv or .jsonl.")],
    format: FormatOption = None,
    indicators: IndicatorsOption = False,
    codebook: Annotated[Path, typer.Option("--codebook", exists=True, dir_okay=False, show_default=False,
                                           help="Codebook the codings were made with (default: labels/codebook.yaml).")] = DEFAULT_CODEBOOK,
) -> None:
    """Write codings in a format an analyst opens: XLSX with readable column names, SPSS or Stata with
    variable and value labels, or an R-ready CSV; one 0/1 column per code."""
    from ..codebook import load_codebook
    from ..errors import InputError
    from ..exports import file_time, read_codings_table, write_codings

    if codings.resolve() == out.resolve():
        raise InputError(f"{out}: output would overwrite the input; choose another --out")
    table = read_codings_table(codings)
    written = write_codings(out, table.rows, table.columns, load_codebook(codebook), format=format, indicators=indicators,
                            timestamp=file_time(codings))
    typer.echo(f"wrote {len(table.rows)} codings as {written.value} -> {out}")


def register(app: typer.Typer) -> None:
    """Add `export table` to the `export` group."""
    from .review import export_app

    export_app.command("table")(export_table)
