"""Commands: ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from .options import (IdColumnOption, OrganizationColumnOption, ProgramColumnOption, SectorColumnOption, SheetOption,
                      SpeakerOption, TextColumnOption, read_options)

OUT_SUFFIXES = (".csv", ".jsonl")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("ingest")
    def ingest(
        paths: Annotated[
            list[Path],
            typer.Argument(
                exists=True,
                readable=True,
                help="CSV, TSV, XLSX or JSONL tables, TXT/Markdown/HTML/Word/PDF documents, or folders of them.",
            ),
        ],
        out: Annotated[
            Path,
            typer.Option("--out", "-o", dir_okay=False, help="Where to write the quotes: a .csv or .jsonl file."),
        ],
        text_column: TextColumnOption = None,
        id_column: IdColumnOption = None,
        organization_column: OrganizationColumnOption = None,
        program_column: ProgramColumnOption = None,
        sector_column: SectorColumnOption = None,
        sheet: SheetOption = None,
        speaker: SpeakerOption = None,
        redact: Annotated[
            bool, typer.Option("--redact", help="Mask personal details (names, phone numbers, e-mail addresses, ...) in the text.")
        ] = False,
    ) -> None:
        """Read quotes from tables and documents, check them all, and write one quotes file
        (every input column carried through)."""
        from ..ingest import read_quotes, summarize
        from ..tables import write_table

        if out.suffix.lower() not in OUT_SUFFIXES:
            raise InputError(f"{out}: --out must end in {' or '.join(OUT_SUFFIXES)}")
        resolved = out.resolve()
        if any(p.resolve() == resolved for p in paths):
            raise InputError(f"{out}: --out names one of the inputs; inputs are never overwritten, choose another file")
        redactor = None
        if redact:
            from ..redact import redact_text

            redactor = redact_text
        options = read_options(text_column, id_column, organization_column, program_column, sector_column, sheet, speaker)
        result = read_quotes(paths, options, redact=redactor)
        write_table(out, (q.to_row() for q in result.quotes), result.columns)
        for line in summarize(result):
            typer.echo(line)
        typer.echo(f"wrote {out}")
