"""Benchmark `tag`: the cost of one `framecode tag` call (a fresh process loading everything)
against tagging with the model kept loaded, as a batch does.

    .venv/bin/python benchmarks/tag.py [--quotes 50] [--calls 2]

"cold call" is the wall time of `framecode tag --json TEXT` in a new process (median of
``--calls``); "load" is, in this process, importing and loading everything a first quote
needs (codebook, staleness check, model folder, encoder); "warm" is each of ``--quotes``
real statements tagged with that loaded model (p50 and p95 per quote). The ratio is cold
call over warm p50: what keeping the model loaded saves per quote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold_call(text: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "tag", "--json", text], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=50)
    parser.add_argument("--calls", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    started = time.perf_counter()
    from pipeline.codebook import load_codebook
    from pipeline.coding import default_coder, tag

    codebook = load_codebook()
    coder = default_coder(codebook)
    coder.get_encoder()
    load_seconds = time.perf_counter() - started

    from pipeline.paths import LABELS_DIR

    rows = [json.loads(line) for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    # A suffix makes every text new to the embedding cache: each quote is really encoded.
    texts = [f"{rows[i * 7 % len(rows)]['text']} (benchmark {time.time_ns()} {i})" for i in range(args.quotes)]
    tag(texts[0], coder)  # first-call set-up inside the encoder
    warm = []
    for text in texts:
        clock = time.perf_counter()
        tag(text, coder)
        warm.append(time.perf_counter() - clock)
    p50 = statistics.median(warm)
    p95 = statistics.quantiles(warm, n=20)[-1]
    cold = statistics.median(cold_call(texts[0]) for _ in range(args.calls))

    results = [
        ("cold call: `framecode tag` in a new process", f"{cold:.2f} s", f"median of {args.calls}"),
        ("load: imports, model folder and encoder, once", f"{load_seconds:.2f} s", "paid once per batch"),
        ("warm: one quote, model loaded, p50", f"{p50 * 1000:.0f} ms", f"{args.quotes} quotes; target < 1 s"),
        ("warm: one quote, model loaded, p95", f"{p95 * 1000:.0f} ms", ""),
        ("cold call / warm p50", f"{cold / p50:.0f}x", "saved per quote by keeping the model loaded"),
    ]
    width = max(len(r[0]) for r in results)
    print(f"{'measure'.ljust(width)}  {'value'.ljust(10)} note")
    for name, value, note in results:
        print(f"{name.ljust(width)}  {value.ljust(10)} {note}")
    print(f"(encoder backend {coder.get_encoder().identity.backend})")


if __name__ == "__main__":
    main()
