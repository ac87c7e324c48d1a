"""Commands: codebook validate, export, import."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..codebook import export_qdc, import_qdc, load_codebook, validate_codebook, write_codebook_yaml
from ..errors import InputError
from ..files import atomic_write_bytes
from ..paths import DEFAULT_CODEBOOK


class ExportFormat(str, Enum):
    qdc = "qdc"


codebook_app = typer.Typer(help="Check the codebook and exchange it with other QDA tools (REFI-QDA).",
                           no_args_is_help=True)

CodebookFile = Annotated[
    Path,
    typer.Option("--codebook", exists=True, dir_okay=False, show_default=False,
                 help="Codebook YAML file (default: labels/codebook.yaml)."),
]


@codebook_app.command("validate")
def validate(
    file: Annotated[
        Optional[Path],
        typer.Argument(exists=True, dir_okay=False, show_default=False,
                       help="Codebook YAML file (default: labels/codebook.yaml)."),
    ] = None,
) -> None:
    """Check a codebook; print its version, size and content hash, or every problem (exit 2)."""
    path = file or DEFAULT_CODEBOOK
    codebook = load_codebook(path)
    typer.echo(f"{path}: valid codebook version {codebook.version}: "
               f"{len(codebook.themes)} themes, {len(codebook.codes)} codes")
    typer.echo(f"content hash: {codebook.content_hash}")


@codebook_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="File to write, e.g. codebook.qdc.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Exchange format.")] = ExportFormat.qdc,
    codebook: CodebookFile = DEFAULT_CODEBOOK,
) -> None:
    """Write the codebook as a REFI-QDA codebook (.qdc) for MAXQDA, NVivo, ATLAS.ti and others."""
    data = export_qdc(load_codebook(codebook))
    atomic_write_bytes(out, data)
    typer.echo(f"wrote {out}")


@codebook_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="REFI-QDA codebook (.qdc) to read.")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Codebook YAML file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Read a REFI-QDA codebook (.qdc) written by any tool into a codebook YAML file."""
    if out.exists() and not force:
        raise InputError(f"{out}: already exists; choose another --out or pass --force to overwrite it")
    codebook = import_qdc(file)
    write_codebook_yaml(codebook, out)
    typer.echo(f"wrote {out}: {len(codebook.themes)} themes, {len(codebook.codes)} codes")
    problems = validate_codebook(codebook, file=str(out))
    if problems:
        typer.echo(f"{out}: edit it before use ({len(problems)} problem(s)); then run "
                   f"`framecode codebook validate {out}`", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(codebook_app, name="codebook")
