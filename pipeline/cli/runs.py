"""Commands: recode, runs, diff.

Testing hook: with the environment variable ``FRAMECODE_TEST_CODER=hash`` (or
``hash:SECONDS`` to sleep that long per chunk) ``framecode recode`` codes with
:class:`pipeline.runs.HashCoder`, a deterministic stand-in that needs no trained model, instead
of loading ``--model``. It exists so tests and benchmarks can kill and resume real runs; its
codings mean nothing, and a warning says so on every run.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..codebook import load_codebook
from ..errors import InputError
from ..paths import DEFAULT_CODEBOOK, LABELS_DIR, model_dir_for
from ..progress import progress_wanted, show_progress
from ..records import Codebook
from ..review import HUMAN_DIR
from ..rundiff import diff_runs, write_diff
from ..runs import HashCoder, RunResult, find_run, list_runs, read_manifest, resume_run, start_run
from .options import (EncoderOption, HumanOption, IdColumnOption, ModelOnlyOption, OrganizationColumnOption, ProgramColumnOption,
                      SectorColumnOption, SheetOption, SpeakerOption, TextColumnOption, read_options)

log = logging.getLogger("framecode")

TEST_CODER_ENV = "FRAMECODE_TEST_CODER"
SHOWN_ROWS = 20


def load_run_coder(model_dir: Path | None, codebook: Codebook, kind: str | None = None):
    """The trained coder in ``model_dir`` (None: the one for the ``kind`` of encoder, trained
    first when stale), or the hash test coder when the testing hook is set. A model trained
    with another kind of encoder than ``kind`` is refused."""
    hook = os.environ.get(TEST_CODER_ENV, "")
    if hook:
        name, _, delay = hook.partition(":")
        if name != "hash":
            raise InputError(f"{TEST_CODER_ENV}={hook!r}: unknown test coder; expected 'hash' or 'hash:SECONDS'")
        log.warning("%s is set: coding with the hash test coder; these codings are not real", TEST_CODER_ENV)
        return HashCoder(codebook, delay=float(delay or 0))
    from ..coding import default_coder
    from ..model import load_coder

    if model_dir is None or Path(model_dir).resolve() == model_dir_for(kind or "default").resolve():
        return default_coder(codebook, kind=kind)
    coder = load_coder(model_dir, codebook=codebook)
    coder.require_encoder(kind)
    return coder


class EngineName(str, enum.Enum):
    """Where ``recode`` codes the chunks."""

    local = "local"
    ray = "ray"


def make_engine(engine: EngineName, address: str | None, workers: int | None, worker_cpus: int):
    """The run engine the options ask for (None: this process); Ray's options need --engine ray."""
    if engine is EngineName.local:
        if address is not None or workers is not None or worker_cpus != 1:
            raise InputError("recode: --address, --workers and --worker-cpus apply to --engine ray")
        return None
    from ..runs.ray_engine import RayEngine

    return RayEngine(address=address, workers=workers, worker_cpus=worker_cpus)


def _render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells)


def _report(result: RunResult) -> None:
    counts = result.manifest["counts"]
    typer.echo(
        f"run {result.run_id}: {result.manifest['status']}; {counts['coded']} quotes coded "
        f"({counts.get('decided', 0)} decided by a person), "
        f"{counts['skipped']} skipped, {counts['rejected']} rejected, {counts.get('noted', 0)} noted "
        f"(chunks: {result.chunks_coded} coded, {result.chunks_reused} reused, {result.chunks_skipped} already done)"
    )
    typer.echo(f"outputs: {result.run_dir}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command()
    def recode(
        ctx: typer.Context,
        corpus: Annotated[
            Optional[list[Path]],
            typer.Argument(exists=True, dir_okay=False, help="Quote files to code (CSV, TSV, JSONL streamed; XLSX and documents read whole; "
                                                             "the organization registry organizations.csv is skipped)."),
        ] = None,
        model: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Trained model folder (default: models/default, or models/fast with --encoder fast).")] = None,
        encoder: EncoderOption = None,
        codebook: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="Codebook YAML (default: labels/codebook.yaml).")] = None,
        runs_dir: Annotated[Path, typer.Option(file_okay=False, help="Folder holding the run folders.")] = Path("runs"),
        chunk_size: Annotated[int, typer.Option(min=1, help="Records coded and committed together; a crash loses at most one chunk of work.")] = 1000,
        resume: Annotated[Optional[str], typer.Option(help="Continue this interrupted or failed run (id or folder) instead of starting one.")] = None,
        reuse: Annotated[bool, typer.Option(help="Copy chunks identical to an earlier complete run's instead of coding them again.")] = True,
        text_column: TextColumnOption = None,
        id_column: IdColumnOption = None,
        organization_column: OrganizationColumnOption = None,
        program_column: ProgramColumnOption = None,
        sector_column: SectorColumnOption = None,
        sheet: SheetOption = None,
        speaker: SpeakerOption = None,
        human: HumanOption = None,
        model_only: ModelOnlyOption = False,
        engine: Annotated[EngineName, typer.Option(help="Code in this process (local) or on a Ray cluster (ray; "
                                                    "needs the ray extra). Same outputs either way.")] = EngineName.local,
        address: Annotated[Optional[str], typer.Option(help="With --engine ray: the cluster to run on (auto, or HEAD:6379 of "
                                                            "`ray start --head`); default: a local cluster started for this run.")] = None,
        workers: Annotated[Optional[int], typer.Option(min=1, help="With --engine ray: workers, each loading the model once "
                                                                   "(default: one per CPU of the cluster).")] = None,
        worker_cpus: Annotated[int, typer.Option(min=1, help="With --engine ray: CPUs (encoder threads) per worker.")] = 1,
    ) -> None:
        """Code a whole corpus into a new run folder, with provenance, resumable after a crash.
        A quote a reviewer decided (same id and text, in labels/human) gets the reviewer's codes and name."""
        run_engine = make_engine(engine, address, workers, worker_cpus)
        if resume:
            if corpus:
                raise InputError("recode: pass either CORPUS files or --resume RUN_ID, not both")
            if human is not None or model_only:
                raise InputError("recode: --human and --model-only apply to a new run; --resume keeps the decisions the run started with")
            run_dir = find_run(resume, runs_dir)
            manifest = read_manifest(run_dir, complete=True)
            book = load_codebook(manifest["codebook"]["path"]) if manifest["codebook"]["path"] else None
            if book is None:
                raise InputError(f"{run_dir}: the run recorded no codebook file; start a new run instead")
            model_path = manifest["model"]["path"]
            with show_progress(progress_wanted(ctx.obj.quiet)):
                coder = load_run_coder(Path(model_path) if model_path else None, book)
                result = resume_run(run_dir, coder=coder, codebook=book, engine=run_engine)
            _report(result)
            return
        if not corpus:
            raise InputError("recode: no CORPUS files; pass one or more quote files, or --resume RUN_ID")
        codebook_path = codebook or DEFAULT_CODEBOOK
        book = load_codebook(codebook_path)
        model_dir = model or model_dir_for(encoder.value if encoder else "default")
        with show_progress(progress_wanted(ctx.obj.quiet)):
            coder = load_run_coder(model_dir, book, encoder.value if encoder else None)
            result = start_run(
                corpus, coder=coder, codebook=book, runs_dir=runs_dir, codebook_path=codebook_path,
                model_dir=model_dir, chunk_size=chunk_size, reuse=reuse,
                options=read_options(text_column, id_column, organization_column, program_column, sector_column, sheet, speaker),
                human_dir=None if model_only else human or (LABELS_DIR / HUMAN_DIR), engine=run_engine,
            )
        _report(result)

    @app.command()
    def runs(
        runs_dir: Annotated[Path, typer.Option(file_okay=False, help="Folder holding the run folders.")] = Path("runs"),
    ) -> None:
        """List runs, oldest first, with their status and key figures."""
        summaries = list_runs(runs_dir)
        if not summaries:
            typer.echo(f"no runs in {runs_dir}")
            return
        typer.echo(_render(
            ("run", "status", "started", "ended", "quotes", "rejected", "chunks", "codebook", "model"),
            [(s.run_id, s.status, s.started_at, s.ended_at, s.quotes, s.rejected, s.chunks_done, s.codebook_version, s.model_id)
             for s in summaries],
        ))

    @app.command()
    def diff(
        run_a: Annotated[str, typer.Argument(help="The earlier run (id in --runs-dir, or its folder).")],
        run_b: Annotated[str, typer.Argument(help="The later run (id in --runs-dir, or its folder).")],
        runs_dir: Annotated[Path, typer.Option(file_okay=False, help="Folder holding the run folders.")] = Path("runs"),
        out: Annotated[Optional[Path], typer.Option(dir_okay=False, help="Also write the full diff to FILE.csv or FILE.json.")] = None,
    ) -> None:
        """What changed between two runs: codebook, model, inputs, quotes' codes, frequencies."""
        result = diff_runs(find_run(run_a, runs_dir), find_run(run_b, runs_dir))
        if out is not None:
            write_diff(result, out)
        typer.echo(f"diff {result.run_a} -> {result.run_b}")
        typer.echo("codebook: " + ("; ".join(
            f"{c.change} {c.code_id}" + (f" ({', '.join(c.fields)})" if c.fields else "") for c in result.codebook) or "unchanged"))
        typer.echo("model: " + (f"{result.model['a']['id']} -> {result.model['b']['id']}" if result.model else "unchanged"))
        typer.echo("inputs: " + ("; ".join(f"{i.change} {i.path}" for i in result.inputs) or "unchanged"))
        typer.echo(f"quotes: {len({q.quote_id for q in result.quotes})} with changed codes, "
                   f"{result.quotes_only_in_a} only in A, {result.quotes_only_in_b} only in B")
        if result.quotes:
            typer.echo(_render(("quote", "code", "change", "excerpt"),
                               [(q.quote_id, q.code_id, q.change, q.excerpt) for q in result.quotes[:SHOWN_ROWS]]))
        shifts = sorted((f for f in result.frequencies if f.shift != 0), key=lambda f: -abs(f.shift or 1))
        typer.echo(f"frequency shifts: {len(shifts)} (code or theme, group) pairs changed")
        if shifts:
            typer.echo(_render(("by", "group", "level", "id", "share A", "share B", "shift"),
                               [(f.by, f.group, f.level, f.id, _pct(f.share_a), _pct(f.share_b), _pct(f.shift, signed=True))
                                for f in shifts[:SHOWN_ROWS]]))
        hidden = max(len(result.quotes), len(shifts)) > SHOWN_ROWS
        if hidden:
            typer.echo(f"(first {SHOWN_ROWS} rows shown{'' if out else '; pass --out FILE.csv for all'})")
        if out is not None:
            typer.echo(f"wrote {out}")


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"
