"""Options shared by every command that reads quotes (``ingest``, ``code``, ``tag``, ``recode``), and
by those that apply reviewers' decisions (``code``, ``recode``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..columns import ReadOptions

class EncoderKind(str, Enum):
    default = "default"
    fast = "fast"


EncoderOption = Annotated[Optional[EncoderKind], typer.Option(
    "--encoder", show_default=False,
    help="Sentence encoder: default (all-MiniLM-L6-v2) or fast (static embeddings distilled from it: many times faster, "
         "lower macro-F1, see the README). Without --model the coder is models/<encoder>, trained on first use; a model "
         "trained with the other encoder is refused.")]

TextColumnOption = Annotated[Optional[str], typer.Option(
    "--text-column", show_default=False,
    help="Column holding the quote (default: text, quote, testimonial, statement, comment, response or answer; any case).")]
IdColumnOption = Annotated[Optional[str], typer.Option(
    "--id-column", show_default=False, help="Column holding each quote's id (default: id, Respondent ID, Response ID, ...).")]
OrganizationColumnOption = Annotated[Optional[str], typer.Option(
    "--organization-column", show_default=False,
    help="Column naming the organization (default: organization, organisation, Organization Name, org, agency).")]
ProgramColumnOption = Annotated[Optional[str], typer.Option(
    "--program-column", show_default=False, help="Column naming the program (default: program, programme).")]
SectorColumnOption = Annotated[Optional[str], typer.Option(
    "--sector-column", show_default=False, help="Column naming the sector (default: sector).")]
SheetOption = Annotated[Optional[str], typer.Option(
    "--sheet", show_default=False, help="Read only this XLSX worksheet (default: every sheet with a text column).")]
SpeakerOption = Annotated[Optional[list[str]], typer.Option(
    "--speaker", show_default=False,
    help="Read documents as speaker-turn transcripts and keep this speaker's turns (repeat for several).")]
HumanOption = Annotated[Optional[Path], typer.Option(
    "--human", exists=True, file_okay=False, show_default=False,
    help="Folder of reviewers' decisions to apply (default: labels/human when it exists).")]
ModelOnlyOption = Annotated[bool, typer.Option("--model-only", help="Ignore reviewers' decisions: every row is the model's coding.")]


def read_options(text_column: str | None = None, id_column: str | None = None, organization_column: str | None = None,
                 program_column: str | None = None, sector_column: str | None = None, sheet: str | None = None,
                 speaker: list[str] | None = None) -> ReadOptions:
    """The command's reading options as the library's record."""
    return ReadOptions(text_column, id_column, organization_column, program_column, sector_column, sheet,
                       tuple(speaker or ()))
