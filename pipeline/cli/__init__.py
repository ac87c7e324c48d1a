"""framecode's command line: a thin typer layer over the library functions.

Each module in this package registers one group of commands. Library errors
(:class:`pipeline.errors.FramecodeError`) become a one-line message on stderr and exit
code 2; anything unexpected becomes a one-line notice (the traceback, which could hold
quote text, is shown only with ``--debug``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from ..config import load_config
from ..errors import FramecodeError
from ..files import os_error_message

log = logging.getLogger("framecode")


@dataclass(frozen=True)
class Context:
    """Global options, available to every command as ``ctx.obj``."""

    config: dict
    quiet: bool = False
    debug: bool = False


class FramecodeGroup(TyperGroup):
    """Turns library errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except FramecodeError as exc:
            if _debug(ctx):
                raise
            typer.echo(f"framecode: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # `framecode diff ... | head` closed the pipe: nothing is wrong
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as Python's docs advise for SIGPIPE
            raise typer.Exit(0) from None
        except OSError as exc:  # disk full, read-only, permission denied...: a user's problem, said in words
            if _debug(ctx):
                raise
            typer.echo(f"framecode: error: {os_error_message(exc)}", err=True)
            raise typer.Exit(2) from None
        except sqlite3.DatabaseError as exc:
            if _debug(ctx):
                raise
            typer.echo(f"framecode: error: a database could not be read or written ({exc}); "
                       "a damaged work.sqlite belongs to a damaged run: start a new run", err=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            if _is_cli_control_flow(exc):
                raise
            return self._unexpected(ctx, exc)
        except KeyboardInterrupt:
            typer.echo("framecode: interrupted; outputs were left as they were", err=True)
            raise typer.Exit(130) from None

    @staticmethod
    def _unexpected(ctx, exc: Exception):
        """Last line of defence: one line, no traceback (it could hold quote text)."""
        if _debug(ctx):
            raise exc
        typer.echo(
            f"framecode: internal error ({type(exc).__name__}); rerun with --debug for details",
            err=True,
        )
        raise typer.Exit(1) from None


def _is_cli_control_flow(exc: Exception) -> bool:
    """Exit, Abort and usage errors belong to typer/click, which report them themselves."""
    return type(exc).__module__.split(".")[0] in {"typer", "click"}


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (test runners swap it between commands)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _debug(ctx: typer.Context) -> bool:
    obj = ctx.find_object(Context)
    return bool(obj and obj.debug)


app = typer.Typer(
    name="framecode",
    cls=FramecodeGroup,
    help="Code testimonials about cross-sector data sharing into value framings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path],
        typer.Option(exists=True, dir_okay=False, help="TOML file overriding configs/default.toml."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print debug messages (may include ids, never quote text above debug).")] = False,
    debug: Annotated[bool, typer.Option(help="Show full tracebacks on errors (may include quote text).")] = False,
) -> None:
    """Global options shared by every command."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=max(level, logging.WARNING), handlers=[handler], force=True)
    for name in ("pipeline", "framecode"):
        logging.getLogger(name).setLevel(level)
    ctx.obj = Context(config=load_config(config), quiet=quiet, debug=debug)


def _register_commands() -> None:
    from . import analysis, codebook, coding, exports, ingest, review, runs, serve

    for module in (ingest, codebook, coding, analysis, runs, review, exports, serve):
        module.register(app)


_register_commands()


def main() -> None:
    app(prog_name="framecode")
