"""Benchmark the browser workbench: server time from saving a decision to the next quote's
page (the save, the redirect to /next and the quote page with live suggestions), warm model.

    .venv/bin/python benchmarks/web.py [--quotes 200]

Quotes are real statements from labels/real_statements.jsonl with a suffix that makes every
text new; the app runs in-process (no network), its database in a temporary folder.
Target (issue 17): under 300 ms per quote.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from pipeline.codebook import load_codebook
from pipeline.coding import default_coder
from pipeline.paths import DEFAULT_MODEL_DIR, LABELS_DIR
from pipeline.tables import write_table
from pipeline.web import ModelScorer, WebSettings, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=200)
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "labels").mkdir()
        table = folder / "quotes.csv"
        write_table(table, [{"id": f"b{i}", "text": f"{rows[i % len(rows)]['text']} (bench {i})"} for i in range(args.quotes)],
                    ["id", "text"])
        started = time.perf_counter()
        scorer = ModelScorer(default_coder(load_codebook()))
        scorer.warm()
        print(f"model loaded and warm in {time.perf_counter() - started:.1f} s")
        app = create_app(WebSettings(database_url=f"sqlite:///{folder / 'workbench.sqlite'}", labels_dir=folder / "labels",
                                     solo_coder="bench"), scorer)
        client = TestClient(app)
        home = client.get("/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)
        started = time.perf_counter()
        with open(table, "rb") as handle:
            client.post("/upload", data={"csrf_token": token}, files={"file": (table.name, handle)})
        print(f"upload and scoring of {args.quotes} quotes: {time.perf_counter() - started:.2f} s")
        page = client.get("/next")
        timings = []
        for _ in range(args.quotes):
            quote_id = re.search(r'name="id" value="([^"]+)"', page.text).group(1)
            suggested = re.search(r'name="suggested" value="([^"]*)"', page.text).group(1)
            started = time.perf_counter()
            page = client.post("/quote", data={"csrf_token": token, "id": quote_id, "suggested": suggested,
                                               "codes": suggested.split(";") if suggested else []})
            timings.append(1000 * (time.perf_counter() - started))
            assert page.status_code == 200
        timings.sort()
        p95 = timings[int(0.95 * (len(timings) - 1))]
        print(f"save -> next quote over {len(timings)} quotes: median {statistics.median(timings):.0f} ms, "
              f"p95 {p95:.0f} ms, max {timings[-1]:.0f} ms (target < 300 ms)")
        run = time.time_ns()  # every sentence new (marked before its full stop): nothing comes from the embedding cache
        new_texts = [re.sub(r"([.!?])(\s|$)", rf" [{run} {i}]\1\2", rows[i]["text"]) for i in range(50)]
        passes = (("new quotes", None), ("the same quotes, embeddings cached (a quote page)", DEFAULT_MODEL_DIR),
                  ("the same quotes once more (another coder's page: remembered)", None))
        for label, reload_from in passes:
            if reload_from is not None:
                scorer.reload(reload_from)  # the same model again: forgets the remembered pages, keeps the embeddings
            texts, tags = new_texts, []
            for text in texts:
                started = time.perf_counter()
                scorer.tag(text)
                tags.append(1000 * (time.perf_counter() - started))
            tags.sort()
            print(f"warm tag latency, {label}, 50 real statements (mean {statistics.mean(map(len, texts)):.0f} chars): "
                  f"median {statistics.median(tags):.0f} ms, p95 {tags[int(0.95 * 49)]:.0f} ms (target < 150 ms)")


if __name__ == "__main__":
    main()
