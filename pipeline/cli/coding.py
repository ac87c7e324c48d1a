"""Commands: train, code, tag, evaluate."""

from __future__ import annotations

import dataclasses
import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..codebook import load_codebook
from ..paths import PROJECT_ROOT, model_dir_for
from ..progress import progress_wanted, show_progress
from .exports import FormatOption, IndicatorsOption
from .options import (EncoderKind, EncoderOption, HumanOption, IdColumnOption, ModelOnlyOption, OrganizationColumnOption, ProgramColumnOption,
                      SectorColumnOption, SheetOption, SpeakerOption, TextColumnOption, read_options)


class Backend(str, Enum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"


CodebookOption = Annotated[
    Optional[Path],
    typer.Option("--codebook", exists=True, dir_okay=False, show_default=False,
                 help="Codebook YAML (default: labels/codebook.yaml)."),
]
LabelsOption = Annotated[
    Optional[Path],
    typer.Option("--labels", exists=True, file_okay=False, show_default=False,
                 help="Folder of labelled files (default: labels/)."),
]
ModelOption = Annotated[
    Optional[Path],
    typer.Option("--model", exists=True, file_okay=False, show_default=False,
                 help="Trained model folder (default: models/default, retrained with a notice when stale)."),
]
BackendOption = Annotated[
    Optional[Backend],
    typer.Option("--backend", show_default=False, help="Encoder backend (default: the config's, normally auto = onnx-int8 when available)."),
]
ModelPathOption = Annotated[
    Optional[str],
    typer.Option("--model-path", show_default=False,
                 help="Sentence-transformers model folder to embed with (default: the packaged all-MiniLM-L6-v2)."),
]


def _encoder(ctx: typer.Context, backend: Backend | None, model_path: str | None, kind: EncoderKind | None = None):
    from ..embed import load_encoder

    settings = ctx.obj.config.get("encoder", {})
    model = model_path or settings.get("model")
    return load_encoder(model, backend=(backend.value if backend else settings.get("backend", "auto")),
                        batch_size=int(settings.get("batch_size", 64)), kind=kind.value if kind else "default")


def _coder(ctx: typer.Context, codebook, model: Path | None, kind: EncoderKind | None = None):
    from ..coding import default_coder
    from ..model import load_coder

    wanted = kind.value if kind else None
    if model is not None:
        coder = load_coder(model, codebook=codebook)
        coder.require_encoder(wanted)
        return coder
    configured = ctx.obj.config.get("coder", {}).get("model_dir")
    folder = PROJECT_ROOT / configured if configured and wanted in (None, "default") else model_dir_for(wanted or "default")
    return default_coder(codebook, model_dir=folder, kind=wanted)


def train(
    ctx: typer.Context,
    out: Annotated[Optional[Path], typer.Option("--out", file_okay=False, show_default=False,
                                                help="Model folder to write (default: models/default, or models/fast with --encoder fast).")] = None,
    labels: LabelsOption = None,
    codebook: CodebookOption = None,
    backend: BackendOption = None,
    model_path: ModelPathOption = None,
    encoder: EncoderOption = None,
) -> None:
    """Fit the coder on the labelled quotes in labels/ and save it as a model folder."""
    from ..coding import train_default

    started = time.perf_counter()
    book = load_codebook(codebook)
    out = out or model_dir_for(encoder.value if encoder else "default")
    with show_progress(progress_wanted(ctx.obj.quiet)):
        coder = train_default(book, labels_dir=labels, model_dir=out, encoder=_encoder(ctx, backend, model_path, encoder))
    info = coder.config["labels"]
    typer.echo(f"trained {coder.model_id} on {info['n_quotes']} labelled quotes "
               f"({', '.join(f'{n} {o}' for o, n in info['by_origin'].items())}) in {time.perf_counter() - started:.1f} s")
    typer.echo(f"saved to {out}; judge it with `framecode evaluate`")


def code(
    ctx: typer.Context,
    input: Annotated[Path, typer.Argument(exists=True, dir_okay=False, show_default=False,
                                          help="Quotes file: CSV, TSV, XLSX, JSONL, or a TXT/Markdown/HTML/Word/PDF document.")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, show_default=False,
                                      help="Codings file to write: .csv, .jsonl, .xlsx, .sav (SPSS) or .dta (Stata).")],
    model: ModelOption = None,
    encoder: EncoderOption = None,
    codebook: CodebookOption = None,
    text_column: TextColumnOption = None,
    id_column: IdColumnOption = None,
    organization_column: OrganizationColumnOption = None,
    program_column: ProgramColumnOption = None,
    sector_column: SectorColumnOption = None,
    sheet: SheetOption = None,
    speaker: SpeakerOption = None,
    human: HumanOption = None,
    model_only: ModelOnlyOption = False,
    format: FormatOption = None,
    indicators: IndicatorsOption = False,
) -> None:
    """Code every quote of a file: one output row per quote, in input order, every input column
    carried through (blank and duplicate rows are skipped with a notice). A quote a
    reviewer decided (same id and text, in labels/human) gets the reviewer's codes and name."""
    from ..coding import code_file
    from ..exports import export_format
    from ..paths import LABELS_DIR
    from ..review import HUMAN_DIR, read_decisions

    export_format(out, format)  # a wrong --out is refused before the model loads
    book = load_codebook(codebook)
    human_dir = None if model_only else human or (LABELS_DIR / HUMAN_DIR)
    decisions = read_decisions(human_dir) if human_dir is not None and human_dir.is_dir() else {}
    with show_progress(progress_wanted(ctx.obj.quiet)):
        coder = _coder(ctx, book, model, encoder)
        started = time.perf_counter()
        options = read_options(text_column, id_column, organization_column, program_column, sector_column, sheet, speaker)
        n = code_file(input, out, coder, options=options, decisions=decisions, format=format, indicators=indicators)
    if not ctx.obj.quiet:
        typer.echo(f"coded {n} quotes with {coder.model_id} in {time.perf_counter() - started:.1f} s -> {out}")


def tag(
    ctx: typer.Context,
    text: Annotated[Optional[str], typer.Argument(
        show_default=False, help="The testimonial, in quotes; `-` reads testimonials from standard input, one per line.")] = None,
    file: Annotated[Optional[Path], typer.Option(
        "--file", exists=True, dir_okay=False, show_default=False,
        help="Tag every quote of a file (any file `ingest` reads, with the same column options).")] = None,
    model: ModelOption = None,
    encoder: EncoderOption = None,
    codebook: CodebookOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (one line per quote with --file or -).")] = False,
    text_column: TextColumnOption = None,
    id_column: IdColumnOption = None,
    organization_column: OrganizationColumnOption = None,
    program_column: ProgramColumnOption = None,
    sector_column: SectorColumnOption = None,
    sheet: SheetOption = None,
    speaker: SpeakerOption = None,
) -> None:
    """Code testimonials one by one: codes with probabilities, the sentence behind each, and
    the nearest human-coded quotes as evidence. The model is loaded once for all of them."""
    from ..coding import read_input, stdin_quotes
    from ..coding import tag as tag_text
    from ..errors import InputError

    if (text is None) == (file is None):
        raise InputError("tag: pass the testimonial in quotes, `-` for standard input, or --file FILE (one of them)")
    if file is not None:
        options = read_options(text_column, id_column, organization_column, program_column, sector_column, sheet, speaker)
        quotes = read_input(file, options)
    elif text == "-":
        quotes = stdin_quotes(typer.get_text_stream("stdin"))
    else:
        quotes = ()
    book = load_codebook(codebook)
    coder = _coder(ctx, book, model, encoder)
    if not quotes:
        _print_tag(tag_text(text or "", coder), as_json)
        return
    for quote in quotes:
        result = tag_text(quote.text, coder)
        if as_json:
            typer.echo(json.dumps({"id": quote.id, "source": quote.source, **result.to_dict()}, ensure_ascii=False))
        else:
            typer.echo(f"{quote.source} (id {quote.id})")
            _print_tag(result, as_json)


def _print_tag(result, as_json: bool) -> None:
    """One tag result as indented JSON, or as a table with the carrying sentences and evidence."""
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"codes ({result.model_id})")
    for column in ("code", "probability", "threshold", "applied"):
        table.add_column(column)
    for item in result.codes:
        table.add_row(item.code, f"{item.probability:.2f}", f"{item.threshold:.2f}",
                      Text("yes" if item.applied else f"no: denied by \u201c{item.denied_by}\u201d (coding rule 2)" if item.denied else ""))
    console = Console()
    console.print(table)
    if not result.applied:
        console.print("no code applies")
    for item in result.applied:
        console.print(f"[bold]{item.code}[/bold] ({item.name}): carried by the sentence")
        console.print(f"  {item.sentence}", markup=False)
        for example in item.examples:
            console.print(f"  nearest coded quote {example.id} (similarity {example.similarity:.2f}): {example.text}", markup=False)
    if result.needs_review:
        console.print(f"needs review: {result.review_reason}", markup=False)


def evaluate(
    ctx: typer.Context,
    out: Annotated[Optional[Path], typer.Option("--out", dir_okay=False, show_default=False, help="Write the full report as JSON.")] = None,
    labels: LabelsOption = None,
    codebook: CodebookOption = None,
    backend: BackendOption = None,
    encoder: EncoderOption = None,
    quick: Annotated[bool, typer.Option("--quick", help="Skip the variant systems, the other encoder and the learning curve.")] = False,
) -> None:
    """Judge the coder on real statements held out by source page, beside baselines, the
    other encoder and sentences encoded alone; and coding rule 2 on contrast pairs."""
    from ..evaluate import evaluate as run_evaluation
    from ..features import FeatureSpec
    from ..files import atomic_write_text
    from ..labels import load_external_denials, load_labels

    book = load_codebook(codebook)
    kind = encoder or EncoderKind.default
    with show_progress(progress_wanted(ctx.obj.quiet)):
        chosen = _encoder(ctx, backend, None, kind)
        alternatives = {}
        if not quick:
            spec = FeatureSpec.from_cue_file()
            other = EncoderKind.fast if kind is EncoderKind.default else EncoderKind.default
            alternatives = {f"default coder, {other.value} encoder": (_encoder(ctx, backend, None, other), spec),
                            "default coder, sentences encoded alone (before one pass per quote)":
                                (chosen, dataclasses.replace(spec, sentence_vectors="alone"))}
        report = run_evaluation(load_labels(book, labels), book, chosen, variants=not quick, learning_curve=not quick,
                                external=load_external_denials(book, labels), alternatives=alternatives)
    print_report(report)
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
        typer.echo(f"report written to {out}")


def print_report(report: dict) -> None:
    """The evaluation report as terminal tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = report["headline"]
    lo, hi = head["macro_f1_ci95"]
    console.print(f"[bold]Default coder on {head['n_quotes']} real statements from {head['n_pages']} source pages, "
                  f"held out by page[/bold]: macro-F1 {head['macro_f1']:.3f} (95% CI {lo:.3f}-{hi:.3f}), "
                  f"Brier {head['calibration']['brier']:.3f}, ECE {head['calibration']['ece']:.3f}")
    table = Table()
    columns = ("code", "support", "predicted", "precision", "recall", "f1", "cohen_kappa", "krippendorff_alpha", "brier")
    for column in columns:
        table.add_column(column.replace("krippendorff_alpha", "alpha").replace("cohen_kappa", "kappa"))
    for row in head["per_code"]:
        table.add_row(*("n/a" if row[c] is None else str(row[c]) for c in columns))
    console.print(table)
    compared = Table(title="systems compared (same folds)")
    for column in ("system", "macro-F1", "95% CI"):
        compared.add_column(column)
    for row in report["compared"]:
        compared.add_row(row["system"], f"{row['macro_f1']:.3f}", "{:.3f}-{:.3f}".format(*row["macro_f1_ci95"]))
    console.print(compared)
    if "written" in report:
        written = report["written"]
        for part in ("cross_validation", "transfer_to_real"):
            console.print(f"{written[part]['system']}: macro-F1 {written[part]['macro_f1']:.3f} on {written[part]['n_quotes']} quotes")
    for part, title in (("contrast", "contrast pairs held out by pair"), ("external_denials", "denial pairs written outside the repository")):
        if part in report:
            scores = report[part]
            console.print(f"coding rule 2, {title} ({scores['pairs']} pairs): denied framings left uncoded "
                          f"{scores['denied_left_uncoded']:.3f}, affirmed framings still coded {scores['affirmed_still_coded']:.3f}")
    if "learning_curve" in report:
        console.print("learning curve (real training statements -> macro-F1): " +
                      ", ".join(f"{p['real_train_quotes']} -> {p['macro_f1']:.3f}" for p in report["learning_curve"]))
    review = Table(title="routing quotes near a threshold to a person")
    for column in ("band", "flagged", "macro-F1 all", "macro-F1 rest", "alpha all", "alpha rest"):
        review.add_column(column)
    for row in report["review"]:
        review.add_row(*(str(row[c]) for c in ("band", "flagged_share", "macro_f1_all", "macro_f1_rest", "alpha_all", "alpha_rest")))
    console.print(review)
    console.print(f"targets: {json.dumps(report['targets'])}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("train")(train)
    app.command("code")(code)
    app.command("tag")(tag)
    app.command("evaluate")(evaluate)
