"""One exception tree for framecode.

Every error a user can cause is a :class:`FramecodeError`. Its message is one line that
names the place (file, row, field), what was expected and how to fix it, and never the
text of a quote. The command-line layer prints ``str(error)`` and exits with code 2.
"""

from __future__ import annotations

from dataclasses import dataclass


class FramecodeError(Exception):
    """Base class of every error framecode raises on purpose."""

    exit_code = 2


class InputError(FramecodeError):
    """An input file, row, cell or argument is not what was expected."""


@dataclass(frozen=True)
class Problem:
    """One problem found while validating an input; never holds a quote's text."""

    file: str
    rule: str
    row: int | None = None  # 1-based data row (header excluded) or document position
    column: str | None = None
    sheet: str | None = None

    def __str__(self) -> str:
        place = [self.file]
        if self.sheet:
            place.append(f"sheet {self.sheet}")
        if self.row is not None:
            place.append(f"row {self.row}")
        if self.column:
            place.append(f"column {self.column!r}")
        return f"{', '.join(place)}: {self.rule}"


class ValidationError(InputError):
    """Several problems found at once; the message lists all of them, one per line."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], summary: str = ""):
        self.problems = tuple(problems)
        head = summary or f"{len(self.problems)} problem(s) found; nothing was written"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class CodebookError(FramecodeError):
    """The codebook is invalid or does not match what a model or run expects."""


class ModelError(FramecodeError):
    """A model folder is missing, unsafe, tampered with or incompatible."""


class EncoderError(ModelError):
    """The sentence encoder cannot be loaded or verified."""


class RunError(FramecodeError):
    """A batch run cannot start, resume or be read."""
