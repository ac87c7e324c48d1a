"""Commands: agreement, review export/import, export qdpx."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..files import atomic_write_text
from ..paths import DEFAULT_CODEBOOK, LABELS_DIR
from ..review import Strategy

review_app = typer.Typer(help="Send quotes to human reviewers and bring their codings back.", no_args_is_help=True)
export_app = typer.Typer(help="Export codings to other tools.", no_args_is_help=True)

CodebookFile = Annotated[
    Path,
    typer.Option("--codebook", exists=True, dir_okay=False, show_default=False,
                 help="Codebook YAML file (default: labels/codebook.yaml)."),
]


def _timestamp(value: Optional[str]) -> Optional[dt.datetime]:
    if value is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--timestamp: {value!r} is not an ISO date-time; use e.g. 2024-05-01T12:00:00Z") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


Timestamp = Annotated[
    Optional[str],
    typer.Option("--timestamp", help="ISO date-time stamped into the file (default: the run's or the codings file's time)."),
]


def agreement(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, show_default=False,
                                                help="Two or more codings files (id and codes columns), one per coder.")],
    out: Annotated[Optional[Path], typer.Option("--out", dir_okay=False, help="Also write the full report as JSON.")] = None,
    codebook: CodebookFile = DEFAULT_CODEBOOK,
    rounds: Annotated[int, typer.Option(min=100, help="Bootstrap resamples for the 95% intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (fixed: same files, same intervals).")] = 0,
) -> None:
    """Agreement between coders per code and overall (% agreement, Cohen, Fleiss, Krippendorff, Gwet AC1) with 95% intervals."""
    from rich.console import Console
    from rich.table import Table

    from ..agreement import LABELS, STATISTICS, compute_agreement, format_value, read_coder_file
    from ..codebook import load_codebook

    if len(files) < 2:
        raise InputError("agreement needs at least two codings files; pass FILE_A FILE_B [FILE...]")
    report = compute_agreement([read_coder_file(f) for f in files], load_codebook(codebook).code_ids,
                               rounds=rounds, seed=seed)
    console = Console(highlight=False, width=max(Console().width, 110))
    console.print(f"coders: {', '.join(report.coders)}; shared quotes: {report.shared_quotes}; "
                  f"quotes missing from some file: {report.quotes_with_missing}")
    table = Table(title="Agreement: value, then its 95% bootstrap interval")
    table.add_column("code", no_wrap=True)
    table.add_column("n", justify="right")
    for name in STATISTICS:
        table.add_column(LABELS[name], justify="right")
    table.add_column("differ", justify="right")
    for row in [*report.per_code, report.overall]:
        if row is report.overall:
            table.add_section()
        cells = []
        for name in STATISTICS:
            est = row.estimates[name]
            interval = "" if est.low is None else f"\n{est.low:.2f}–{est.high:.2f}"
            cells.append(format_value(est.value) + interval)
        table.add_row(row.code, str(row.quotes), *cells, str(len(row.disagreements)))
    console.print(table)
    reasons = sorted({f"{name}: {est.reason}" for row in [*report.per_code, report.overall]
                      for name, est in row.estimates.items() if est.reason})
    for reason in reasons:
        console.print(f"n/a — {reason}")
    for excluded in report.excluded_codes:
        console.print(f"excluded code {excluded['code']}: {excluded['reason']} ({excluded['files']})")
    if report.excluded_quotes:
        console.print(f"{len(report.excluded_quotes)} quote id(s) not shared by every file (listed with --out)")
    if out is not None:
        atomic_write_text(out, json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
        console.print(f"wrote {out}")


@review_app.command("export")
def review_export(
    codings: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Codings file from `framecode code` or a run's codings.csv.")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Review workbook to write (.xlsx).")],
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many quotes (default: every flagged quote; 50 for uncertain).")] = None,
    strategy: Annotated[Strategy, typer.Option(help="needs-review: quotes flagged needs_review; uncertain: the model's least certain quotes, spread out.")] = Strategy.needs_review,
    timestamp: Timestamp = None,
) -> None:
    """Write a spreadsheet of quotes for a person to decide: a decision dropdown (accept /
    change / skip) and one 0/1 dropdown per code."""
    from ..review import export_review

    count = export_review(codings, out, strategy=strategy, limit=limit, timestamp=_timestamp(timestamp))
    typer.echo(f"wrote {out}: {count} quote(s) to review")


@review_app.command("import")
def review_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Reviewed workbook (.xlsx) from `framecode review export`.")],
    coder: Annotated[str, typer.Option("--coder", help="The reviewer's name; codings are stored under it.")],
    labels_dir: Annotated[Path, typer.Option("--labels", "--labels-dir", file_okay=False, help="Labels folder (as for train); decisions go to <labels>/human/<coder>.jsonl.")] = LABELS_DIR,
) -> None:
    """Check every cell of a reviewed sheet and store the rows the reviewer decided (accept or
    change) as the coder's codings; skipped and undecided rows are not stored."""
    from ..review import import_review

    result = import_review(file, coder, labels_dir)
    typer.echo(str(result.summary))
    typer.echo(f"wrote {result.path}: {result.added} new, {result.updated} updated, {result.kept} kept")
    typer.echo("retrain with `framecode train` (it learns from labels/human/*.jsonl at full weight)")


@export_app.command("qdpx")
def export_qdpx(
    codings: Annotated[Path, typer.Argument(exists=True, help="Codings file from `framecode code`, or a run folder.")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="REFI-QDA project to write (.qdpx).")],
    human: Annotated[Optional[Path], typer.Option("--human", file_okay=False, show_default=False,
                                                  help="Folder of human codings (default: labels/human when it exists).")] = None,
    model_id: Annotated[Optional[str], typer.Option("--model-id", help="Name of the model coder (default: the codings' coder column or the run's model id).")] = None,
    codebook: CodebookFile = DEFAULT_CODEBOOK,
    timestamp: Timestamp = None,
) -> None:
    """Write a REFI-QDA project (.qdpx) for MAXQDA, NVivo, ATLAS.ti and others."""
    from ..codebook import load_codebook
    from ..qdpx import export_qdpx as export

    default_human = LABELS_DIR / "human"
    human_dir = human if human is not None else default_human if default_human.is_dir() else None
    summary = export(codings, out, load_codebook(codebook), human_dir=human_dir, model_id=model_id,
                     created=_timestamp(timestamp))
    typer.echo(f"wrote {out}: {summary.sources} quotes, {summary.cases} cases, {summary.model_codings} model codings, "
               f"{summary.human_codings} human codings by {len(summary.human_coders)} coder(s)")
    if summary.skipped_human:
        typer.echo(f"{summary.skipped_human} human coding row(s) left out: their ids are not in {codings}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("agreement")(agreement)
    app.add_typer(review_app, name="review")
    app.add_typer(export_app, name="export")
