"""Benchmark the embedding stage: speed per backend, agreement, cache, peak memory.

    .venv/bin/python benchmarks/embed.py            # full: 100,000 quotes for peak memory
    .venv/bin/python benchmarks/embed.py --quick    # scaled down, about a minute
    .venv/bin/python benchmarks/embed.py --fast     # the fast encoder vs the default, real statements

All figures come from one run on the same synthetic testimonials (15-80 words each); ``--fast``
times both encoders in one run on the same 2,000 real statements (labels/real_statements.jsonl,
repeated from the start past its 1,452), with no embedding cache, through the same Encoder.
ONNX exports are reused from the framecode cache folder; embeddings go to a temporary cache.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pipeline.embed import Encoder, load_encoder  # noqa: E402
from pipeline.embedding_cache import EmbeddingCache  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

OPENERS = [
    "When we started sharing data with the county",
    "Our hospital partners told us that",
    "At first the housing authority was skeptical, but",
    "What convinced the school district was that",
    "For our community health workers,",
    "Once the dashboard went live,",
    "In the first year of the collaborative",
    "Talking with families in the neighborhood, we learned that",
    "Because the jail and the clinic now share records,",
    "Our board finally agreed when",
]
MIDDLES = [
    "case managers could see referrals in real time instead of waiting for faxes",
    "emergency department visits among our highest utilizers dropped by nearly a third",
    "we showed the map of overdose calls to the city council",
    "the Medicaid waiver gave everyone a reason to sit at the same table",
    "partners stopped entering the same intake data three different times",
    "a mother told us her son finally got his asthma medication on time",
    "other communities in the learning network had already solved the consent question",
    "the savings on avoided hospital stays paid for the data analyst",
    "residents helped decide which questions the data should answer",
    "shelter staff knew within hours when a client was discharged",
    "we could finally count how many people were falling through the cracks",
    "the health department and the food bank aligned their goals for the first time",
]
CLOSERS = [
    "and that story did more than any spreadsheet.",
    "which made the value obvious to people who never read reports.",
    "so the conversation shifted from risk to benefit.",
    "and now the partners ask for the data themselves.",
    "but it took two years of building trust before anyone would sign.",
    "and the numbers backed up what frontline staff already knew.",
]
FILLER = (
    "honestly the work was slow and we had many meetings about governance legal review "
    "privacy staffing budgets and the technical details of matching records across systems"
).split()


def testimonials(count: int, seed: int = 0) -> list[str]:
    """Varied, realistic testimonials of 15-80 words, all distinct."""
    rng = random.Random(seed)
    texts = []
    for index in range(count):
        words = f"{rng.choice(OPENERS)} {rng.choice(MIDDLES)} {rng.choice(CLOSERS)}".split()
        target = rng.randint(15, 80)
        while len(words) < target:
            words.extend(f"{rng.choice(MIDDLES)} {rng.choice(CLOSERS)}".split())
        words = words[:target]
        position = rng.randrange(len(words))
        words.insert(position, rng.choice(FILLER))
        words[-1] = words[-1].rstrip(".,") + f" (site {index})."
        texts.append(" ".join(words))
    return texts


def texts_per_second(encoders: list[Encoder], texts: list[str], runs: int) -> list[tuple[float, np.ndarray]]:
    """Median texts/s of each encoder; runs alternate between encoders so that load on a
    shared machine falls on all of them alike."""
    for encoder in encoders:
        encoder.encode(texts[: encoder.batch_size], progress=False)  # warm-up
    rates: list[list[float]] = [[] for _ in encoders]
    vectors: list[np.ndarray] = [np.empty(0)] * len(encoders)
    for _ in range(runs):
        for i, encoder in enumerate(encoders):
            start = time.perf_counter()
            vectors[i] = encoder.encode(texts, progress=False)
            rates[i].append(len(texts) / (time.perf_counter() - start))
    return [(statistics.median(r), v) for r, v in zip(rates, vectors)]


def peak_memory(count: int, backend: str) -> dict:
    """Embed ``count`` quotes in this process (with a fresh cache) and report peak RSS."""
    texts = testimonials(count, seed=2)
    with tempfile.TemporaryDirectory() as folder:
        encoder = load_encoder(backend=backend, use_cache=False)
        encoder.cache = EmbeddingCache(Path(folder) / "embeddings.sqlite3")
        start = time.perf_counter()
        vectors = encoder.encode(texts, progress=False)
        seconds = time.perf_counter() - start
        encoder.cache.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"count": len(vectors), "seconds": seconds, "peak_mb": peak_kib / 1024}


def real_statements(count: int) -> list[str]:
    """The first ``count`` real statements, starting over at the first past the last."""
    lines = (ROOT / "labels" / "real_statements.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return [texts[i % len(texts)] for i in range(count)]


def fast_encoder() -> tuple[Encoder, float]:
    """The fast encoder over the packaged model, and the seconds it took to load (distilling
    it first when the cache holds none)."""
    start = time.perf_counter()
    encoder = load_encoder(kind="fast", use_cache=False)
    return encoder, time.perf_counter() - start


def fast_versus_default(count: int, runs: int) -> None:
    """Texts/s of the fast encoder and of the default one on the same real statements."""
    texts = real_statements(count)
    fast, load_seconds = fast_encoder()
    default = load_encoder(use_cache=False)
    (fast_rate, _), (default_rate, _) = texts_per_second([fast, default], texts, runs)
    rows = [
        ("texts", f"{count:,} real statements (labels/real_statements.jsonl); {runs} runs, median"),
        ("CPU cores", f"{os.cpu_count()}"),
        (f"fast ({fast.identity.backend})", f"{fast_rate:,.0f} texts/s, dimension {fast.dimension}"),
        (f"default ({default.identity.backend})", f"{default_rate:,.0f} texts/s, dimension {default.dimension}"),
        ("speed-up fast / default", f"{fast_rate / default_rate:.1f}x  (target >= 20x)"),
        ("fast encoder load (distils on first use)", f"{load_seconds:.1f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per backend (median)")
    parser.add_argument("--peak", type=int, metavar="N", help="only measure peak memory embedding N quotes (prints JSON)")
    parser.add_argument("--backend", default="auto", help="default backend to compare with torch")
    parser.add_argument("--fast", action="store_true", help="time the fast encoder against the default on real statements")
    parser.add_argument("--count", type=int, default=2_000, help="statements for --fast")
    args = parser.parse_args()
    if args.fast:
        fast_versus_default(args.count, args.runs)
        return
    if args.peak:
        print(json.dumps(peak_memory(args.peak, args.backend)))
        return

    speed_n, cache_n, peak_n = (300, 2_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    texts = testimonials(speed_n)
    torch_encoder = load_encoder(backend="torch", use_cache=False)
    default_encoder = load_encoder(backend=args.backend, use_cache=False)
    (torch_rate, torch_vectors), (default_rate, default_vectors) = texts_per_second(
        [torch_encoder, default_encoder], texts, args.runs
    )
    cosine = float(np.mean(np.sum(torch_vectors * default_vectors, axis=1)))

    corpus = testimonials(cache_n, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        default_encoder.cache = EmbeddingCache(Path(folder) / "embeddings.sqlite3")
        start = time.perf_counter()
        cold_vectors = default_encoder.encode(corpus, progress=False)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        warm_vectors = default_encoder.encode(corpus, progress=False)
        warm = time.perf_counter() - start
        default_encoder.cache.close()
    assert np.array_equal(cold_vectors, warm_vectors), "warm vectors differ from cold ones"

    child = subprocess.run(
        [sys.executable, __file__, "--peak", str(peak_n), "--backend", args.backend],
        check=True,
        capture_output=True,
        text=True,
    )
    peak = json.loads(child.stdout.strip().splitlines()[-1])

    name = default_encoder.identity.backend
    rows = [
        ("texts", f"{speed_n} synthetic testimonials, 15-80 words; {args.runs} runs, median"),
        ("CPU threads", f"{os.cpu_count()} cores; torch threads {_torch_threads()}"),
        ("torch fp32", f"{torch_rate:,.0f} texts/s"),
        (f"default ({name})", f"{default_rate:,.0f} texts/s"),
        ("speed-up default / fp32", f"{default_rate / torch_rate:.2f}x  (target >= 2.0x)"),
        ("mean cosine default vs fp32", f"{cosine:.4f}  (target >= 0.99)"),
        (f"cold embed {cache_n:,} quotes", f"{cold:.2f} s"),
        (f"warm re-embed {cache_n:,} (cache)", f"{warm:.3f} s"),
        ("warm speed-up", f"{cold / warm:,.0f}x  (target >= 50x)"),
        (
            f"peak memory, {peak['count']:,} quotes",
            f"{peak['peak_mb']:,.0f} MB maxrss, {peak['seconds']:.0f} s  (target < 1,500 MB at 100,000)",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
