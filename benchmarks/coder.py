"""Benchmark the coding stage: training time with cached embeddings, and coding throughput
with a warm (loaded) model, with and without cached embeddings.

    .venv/bin/python benchmarks/coder.py [--quotes 300] [--runs 3]

Quotes are real statements from labels/real_statements.jsonl with a suffix that makes every
text new to the cache. Each timing is the median of ``--runs``; "cold" embeds every text
(the embedding cache is off), "warm" codes the same quotes again from the cache. Uncached
coding is timed twice in each run, on new texts each time: with one encoder pass per quote
(sentence vectors pooled from it, the default) and with each sentence encoded again alone
(the path before it, ``sentence_vectors = "alone"``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

from pipeline.codebook import load_codebook
from pipeline.coding import code_quotes
from pipeline.embed import load_encoder
from pipeline.labels import load_labels
from pipeline.model import load_coder, train_coder
from pipeline.paths import DEFAULT_MODEL_DIR, LABELS_DIR
from pipeline.records import Quote


def sample_quotes(n: int, tag: str) -> list[Quote]:
    rows = [json.loads(line) for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    return [Quote.from_row({"id": f"b{i}", "text": f"{rows[i % len(rows)]['text']} ({tag} {i})"}) for i in range(n)]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    codebook = load_codebook()
    labels = load_labels(codebook)
    encoder = load_encoder()
    train_coder(codebook, labels, encoder)  # makes sure every training embedding is cached
    train_seconds = statistics.median(timed(lambda: train_coder(codebook, labels, encoder)) for _ in range(args.runs))

    coder = load_coder(DEFAULT_MODEL_DIR, codebook=codebook)
    one_pass = dataclasses.replace(coder.spec, sentence_vectors="in-context")
    alone = dataclasses.replace(coder.spec, sentence_vectors="alone")
    uncached = load_encoder(use_cache=False)
    cold, cold_alone, warm = [], [], []
    for run in range(args.runs):
        quotes = sample_quotes(args.quotes, f"run {run}")
        coder.encoder = uncached
        coder.code_rows(quotes[:8])  # first-call set-up of the model and spaCy
        coder.spec = alone
        others = sample_quotes(args.quotes, f"alone {run}")
        cold_alone.append(timed(lambda: list(code_quotes(others, coder))))
        coder.spec = one_pass
        cold.append(timed(lambda: list(code_quotes(quotes, coder))))
        coder.encoder = encoder
        list(code_quotes(quotes, coder))  # fills the embedding cache
        warm.append(timed(lambda: list(code_quotes(quotes, coder))))
    rows = [
        (f"training on {len(labels)} labelled quotes (cached embeddings)", f"{train_seconds:.1f} s", "target < 60 s"),
        ("coding, warm model, every text embedded, sentences encoded alone", f"{args.quotes / statistics.median(cold_alone):.1f} quotes/s", "the path before one pass"),
        ("coding, warm model, every text embedded, one pass per quote", f"{args.quotes / statistics.median(cold):.1f} quotes/s",
         f"{statistics.median(cold_alone) / statistics.median(cold):.2f}x; target >= 1.8x"),
        ("coding, warm model, embeddings cached", f"{args.quotes / statistics.median(warm):.0f} quotes/s", "target >= 200 quotes/s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value'.ljust(14)} note")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value.ljust(14)} {note}")
    print(f"(median of {args.runs} runs, {args.quotes} quotes each, encoder backend {encoder.identity.backend})")


if __name__ == "__main__":
    main()
