"""Commands: ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError

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
                help="CSV, TSV, XLSX or JSONL tables, TXT/Markdown/HTML documents, or folders of them.",
            ),
        ],
        out: Annotated[
            Path,
            typer.Option("--out", "-o", dir_okay=False, help="Where to write the quotes: a .csv or .jsonl file."),
        ],
        text_column: Annotated[
            Optional[str],
            typer.Option(help="Column holding the quote text (default: text, quote, testimonial, statement, comment or response)."),
        ] = None,
        redact: Annotated[
            bool, typer.Option("--redact", help="Mask personal details (names, phone numbers, e-mail addresses, ...) in the text.")
        ] = False,
    ) -> None:
        """Read quotes from tables and documents, check them all, and write one quotes file."""
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
        result = read_quotes(paths, text_column=text_column, redact=redactor)
        write_table(out, (q.to_row() for q in result.quotes), result.columns)
        for line in summarize(result):
            typer.echo(line)
        typer.echo(f"wrote {out}")
