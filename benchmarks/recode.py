"""Benchmark `framecode recode`: throughput, peak memory, warm re-run ratio, where the time goes.

    .venv/bin/python benchmarks/recode.py [--quotes 1000000] [--chunk-size 1000] [--keep DIR] [--encoder fast] [--cold-only]

Generates a synthetic corpus (varied lengths, 25 organizations in CHP and DASH, several
sectors) as CSV in a temporary folder, then runs three recodes of it in fresh processes, each
measured on its own:

1. cold: a new run with an empty embedding cache;
2. warm: the same corpus again, reusing the chunks of run 1 (the default);
3. warm, no reuse: the same again with ``--no-reuse``, so only the embedding cache helps.

``--encoder fast`` codes with the fast encoder's model (``models/fast``, trained first when
missing); ``--cold-only`` runs phase 1 alone. The coder is the trained default model when
``models/default`` exists; otherwise the hash
test coder, and the output says so in capitals: its figures then show the pipeline around
the model, not the model, and the packaged encoder is timed on ``--encoder-sample`` quotes
(cold, then from its cache) to project the real run.

Columns: seconds per stage of ``pipeline.runs`` (read: parse, validate and hash the input;
code: ``coder.code_rows``, of which encoder: the encoder's ``encode``; reuse: look-ups in
earlier runs; commit: SQLite transactions; outputs: Parquet, CSV and frequency tables;
other: pinning the inputs' sha256, manifest writes, imports). Peak memory is the phase
process's ``getrusage`` maxrss.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from pipeline.paths import DEFAULT_CODEBOOK, DEFAULT_MODEL_DIR, model_dir_for

ORGANIZATIONS = [
    *[(f"{place} Community Health Collaborative", "CHP", sector) for place, sector in zip(
        ("Adams", "Baker", "Clark", "Dover", "Essex", "Fulton", "Grant", "Hamilton", "Iron", "Jasper",
         "Knox", "Lake", "Marion", "Noble", "Orange"),
        ("public_health", "health_care", "social_services", "community_organization", "housing") * 3)],
    *[(f"{place} Data Across Sectors Partnership", "DASH", sector) for place, sector in zip(
        ("Pike", "Quincy", "Ross", "Scott", "Troy", "Union", "Vance", "Wayne", "York", "Zion"),
        ("government", "data_intermediary", "criminal_justice", "academic_research", "behavioral_health") * 2)],
]
OPENINGS = ("Sharing data across sectors", "Our data-sharing work", "Linking records with our partners",
            "The shared dashboard", "Bringing hospital and housing data together", "Our collaborative")
CLAIMS = (
    "helped a family find stable housing after repeated emergency visits",
    "showed partners which neighborhoods needed services first",
    "cut duplicate paperwork for every agency that contributed",
    "let case managers see referrals in real time instead of faxes",
    "made the case for a Medicaid waiver that now funds the work",
    "lowered jail bookings among the highest utilizers",
    "drew on the model another community had already proven",
    "gave residents a voice in how their information is used",
    "put a working map in front of the county board",
)
DETAILS = ("within the first year", "after months of negotiation", "once trust was in place",
           "with support from a learning network", "despite staff turnover", "across three counties")


def generate(path: Path, quotes: int, seed: int = 0) -> None:
    """A CSV of ``quotes`` distinct testimonials of 1 to 12 sentences."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "organization", "program", "sector"])
        for i in range(quotes):
            organization, program, sector = ORGANIZATIONS[rng.randrange(len(ORGANIZATIONS))]
            sentences = [f"{rng.choice(OPENINGS)} {rng.choice(CLAIMS)} {rng.choice(DETAILS)}."
                         for _ in range(min(12, 1 + int(rng.expovariate(0.5))))]
            sentences.append(f"That was case {i}.")
            writer.writerow([f"b{i}", " ".join(sentences), organization, program, sector])


def _phase(corpus: str, runs_dir: str, chunk_size: int, reuse: bool, real: bool, kind: str, results) -> None:
    """One recode in this (fresh) process; reports its timings and peak memory."""
    from pipeline.codebook import load_codebook
    from pipeline.runs import HashCoder, start_run

    codebook = load_codebook(DEFAULT_CODEBOOK)
    clock = time.perf_counter()
    if real:
        from pipeline.coding import default_coder

        coder = default_coder(codebook, kind=kind)
        coder.get_encoder()
    else:
        coder = HashCoder(codebook)
    load_seconds = time.perf_counter() - clock
    encoder_seconds = _time_encoder(coder)
    clock = time.perf_counter()
    result = start_run([Path(corpus)], coder=coder, codebook=codebook, runs_dir=Path(runs_dir),
                       codebook_path=DEFAULT_CODEBOOK, model_dir=model_dir_for(kind) if real else None,
                       chunk_size=chunk_size, reuse=reuse)
    results.put({
        "wall": time.perf_counter() - clock,
        "load": load_seconds,
        "encoder": encoder_seconds[0] if encoder_seconds else None,
        "stages": result.timings.as_dict(),
        "quotes": result.manifest["counts"]["coded"],
        "chunks_coded": result.chunks_coded,
        "chunks_reused": result.chunks_reused,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })


def _time_encoder(coder) -> list[float] | None:
    """Wrap the coder's encoder (``pipeline.embed.Encoder``, if the coder exposes one) so the
    time spent in ``encode`` and ``encode_in_context`` (model and embedding cache together) is
    counted."""
    for name in ("encoder", "encoder_", "_encoder"):
        encoder = getattr(coder, name, None)
        if callable(getattr(encoder, "encode", None)):
            spent = [0.0]
            for method in ("encode", "encode_in_context"):
                setattr(encoder, method, _timed(getattr(encoder, method), spent))
            return spent
    return None


def _timed(original, spent: list[float]):
    def timed(*args, **kwargs):
        clock = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - clock
    return timed


def encoder_rates(corpus: Path, sample: int, cache: Path) -> tuple[float, float]:
    """Quotes per second of the packaged encoder on ``sample`` corpus texts: cold, then cached."""
    from pipeline.embed import load_encoder

    with open(corpus, encoding="utf-8", newline="") as handle:
        texts = [row["text"] for _, row in zip(range(sample), csv.DictReader(handle))]
    encoder = load_encoder(cache_dir=cache)
    rates = []
    for _ in range(2):
        clock = time.perf_counter()
        encoder.encode(texts, progress=False)
        rates.append(len(texts) / (time.perf_counter() - clock))
    return rates[0], rates[1]


def _fresh_cache(folder: Path) -> Path:
    """An empty embedding cache that shares the project's verified ONNX exports (built once)."""
    from pipeline.paths import cache_dir

    folder.mkdir(parents=True, exist_ok=True)
    exports = cache_dir() / "encoders"
    if exports.is_dir() and not (folder / "encoders").exists():
        (folder / "encoders").symlink_to(exports.resolve(), target_is_directory=True)
    return folder


def run_phase(corpus: Path, runs_dir: Path, chunk_size: int, reuse: bool, real: bool, kind: str = "default") -> dict:
    return in_fresh_process(_phase, str(corpus), str(runs_dir), chunk_size, reuse, real, kind)


def in_fresh_process(target, *args) -> dict:
    """What ``target(*args, results)`` puts on its queue, run in a fresh (spawned) process."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    outcome = results.get()
    process.join()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=1_000_000, help="synthetic quotes to generate (default 1,000,000)")
    parser.add_argument("--chunk-size", type=int, default=1000, help="records per committed chunk")
    parser.add_argument("--keep", type=Path, help="keep the corpus and runs in this folder instead of a temporary one")
    parser.add_argument("--encoder-sample", type=int, default=500,
                        help="with the fake coder: quotes to time the real encoder on, for a projection (0: skip)")
    parser.add_argument("--encoder", choices=("default", "fast"), default="default",
                        help="the encoder whose model codes (models/default or models/fast, trained first when missing)")
    parser.add_argument("--cold-only", action="store_true", help="run the cold phase only")
    args = parser.parse_args()

    real = DEFAULT_MODEL_DIR.is_dir() or args.encoder == "fast"
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="framecode-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["FRAMECODE_CACHE"] = str(_fresh_cache(folder / "cache"))  # cold embeddings for the first run
    try:
        corpus = folder / "corpus.csv"
        clock = time.perf_counter()
        generate(corpus, args.quotes)
        print(f"corpus: {args.quotes:,} quotes, {corpus.stat().st_size / 1e6:.1f} MB, generated in {time.perf_counter() - clock:.1f} s")
        print(f"coder: trained model for the {args.encoder} encoder ({model_dir_for(args.encoder)})" if real else
              "coder: FAKE (hash test coder; models/default is missing) - figures exclude the encoder and classifier")
        phases = {"cold": run_phase(corpus, folder / "runs", args.chunk_size, True, real, args.encoder)}
        if not args.cold_only:
            phases["warm (reuse)"] = run_phase(corpus, folder / "runs", args.chunk_size, True, real, args.encoder)
            phases["warm (no reuse)"] = run_phase(corpus, folder / "runs-noreuse", args.chunk_size, False, real, args.encoder)
        print(f"\n{'phase':<16} {'seconds':>8} {'quotes/s':>10} {'peak MB':>8}  chunks coded/reused  "
              "read   code  (encoder)  reuse  commit  outputs  other")
        for name, p in phases.items():
            s = p["stages"]
            encoder = f"{p['encoder']:.1f}" if p["encoder"] is not None else "n/a"
            print(f"{name:<16} {p['wall']:>8.1f} {p['quotes'] / p['wall']:>10,.0f} {p['maxrss_mb']:>8.0f}  "
                  f"{p['chunks_coded']:>6}/{p['chunks_reused']:<6}        {s['read']:>5.1f} {s['code']:>6.1f} "
                  f"{encoder:>9} {s['reuse']:>6.1f} {s['commit']:>7.1f} {s['outputs']:>8.1f} {p['wall'] - sum(s.values()):>6.1f}")
        cold = phases["cold"]
        rest = cold["wall"] - (cold["encoder"] if cold["encoder"] is not None else cold["stages"]["code"])
        if not args.cold_only:
            print(f"\nwarm re-run ratio (cold / warm with reuse): {cold['wall'] / phases['warm (reuse)']['wall']:.1f}x")
            print(f"warm re-run ratio (cold / warm, embedding cache only): {cold['wall'] / phases['warm (no reuse)']['wall']:.1f}x")
        label = "encoder" if cold["encoder"] is not None else "coder (code_rows)"
        print(f"cold run: {label} {100 * (cold['wall'] - rest) / cold['wall']:.0f}% of the time, "
              f"the rest of the pipeline {100 * rest / cold['wall']:.0f}%")
        print(f"peak memory (max over phases): {max(p['maxrss_mb'] for p in phases.values()):.0f} MB")
        if not real and args.encoder_sample and not args.cold_only:
            cold_rate, cached_rate = encoder_rates(corpus, min(args.encoder_sample, args.quotes), _fresh_cache(folder / "encoder-cache"))
            rest = cold["wall"] - cold["stages"]["code"]
            projected = args.quotes / cold_rate + rest
            print(f"\nPROJECTION (the fake coder stood in for the model): the packaged encoder "
                  f"(all-MiniLM-L6-v2) codes {cold_rate:,.0f} quotes/s cold and {cached_rate:,.0f} quotes/s "
                  f"from its embedding cache on {min(args.encoder_sample, args.quotes)} of these quotes;")
            print(f"  a real cold run of {args.quotes:,} quotes would take about {projected:,.0f} s, "
                  f"{100 * (projected - rest) / projected:.1f}% of it in the encoder, "
                  f"{100 * rest / projected:.1f}% in the rest of the pipeline;")
            print(f"  warm re-run ratio with chunk reuse about {projected / phases['warm (reuse)']['wall']:,.0f}x, "
                  f"with the embedding cache alone about "
                  f"{projected / (args.quotes / cached_rate + phases['warm (no reuse)']['wall'] - phases['warm (no reuse)']['stages']['code']):,.0f}x "
                  "(before the classifier's own time)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
