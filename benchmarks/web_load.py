"""Many coders at once: simulated coders over loopback against a real uvicorn server.

    .venv/bin/python benchmarks/web_load.py [--coders 20] [--seconds 60] [--quotes 400]

The benchmark starts the workbench (warm model, SQLite in a temporary folder) with uvicorn
on a free loopback port in a child process, signs in ``--coders`` coders, and runs each in
its own thread for ``--seconds``: fetch the next quote, decide it (accept the suggestion,
or change it on every third quote), repeat. It reports requests, errors (target: 0) and
the median and p95 page time as the coders saw it, then checks the database: every
decision a coder saw saved is there once, with the codes sent (no lost or duplicated
decision).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.web.db import Coder, DecisionRow, QuoteRow  # noqa: E402

PASSWORD = "load test passphrase"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ID = re.compile(r'name="id" value="([^"]+)"')
_SUGGESTED = re.compile(r'name="suggested" value="([^"]*)"')


@dataclass
class CoderRun:
    """What one simulated coder did and saw."""

    name: str
    timings_ms: dict[str, list[float]] = field(default_factory=dict)  # by request kind
    errors: list[str] = field(default_factory=list)
    saved: dict[str, str] = field(default_factory=dict)  # quote id -> codes sent, for each save answered 303
    ran_out: bool = False


def code_for(base_url: str, name: str, seconds: float, run: CoderRun) -> None:
    """Sign in and code until ``seconds`` have passed or no quote is left for this coder."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        def timed(method: str, url: str, kind: str = "sign-in", **kwargs) -> httpx.Response:
            started = time.perf_counter()
            response = client.request(method, url, **kwargs)
            run.timings_ms.setdefault(kind, []).append(1000 * (time.perf_counter() - started))
            if response.status_code >= 400:
                run.errors.append(f"{method} {url.split('?')[0]} {response.status_code}")
            return response

        form = timed("GET", "/login")
        timed("POST", "/login", data={"name": name, "password": PASSWORD, "csrf_token": _CSRF.search(form.text).group(1)})
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            step = timed("GET", "/next", "next")
            if step.status_code != 303:
                break
            location = step.headers["location"]
            if location.startswith("/?done"):
                run.ran_out = True
                break
            page = timed("GET", location, "quote page")
            if page.status_code != 200:
                break
            quote_id, suggested = _ID.search(page.text).group(1), _SUGGESTED.search(page.text).group(1)
            codes = suggested.split(";") if suggested else []
            n += 1
            if n % 3 == 0:
                codes = sorted(set(codes) ^ {"cost_savings"})
            saved = timed("POST", "/quote", "save", data={"csrf_token": _CSRF.search(page.text).group(1), "id": quote_id,
                                                  "suggested": suggested, "codes": codes})
            if saved.status_code == 303:
                run.saved[quote_id] = ";".join(sorted(codes))


def run_load(base_url: str, names: list[str], seconds: float) -> list[CoderRun]:
    runs = [CoderRun(name) for name in names]
    threads = [threading.Thread(target=code_for, args=(base_url, r.name, seconds, r)) for r in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


def check_database(database_url: str, runs: list[CoderRun]) -> list[str]:
    """Problems found: a saved decision missing or changed, one stored twice, or one nobody saved."""
    engine = create_engine(database_url)
    problems = []
    with Session(engine) as session:
        stored = session.execute(select(Coder.name, QuoteRow.quote_id, DecisionRow.codes)
                                 .join(Coder, Coder.id == DecisionRow.coder_id)
                                 .join(QuoteRow, QuoteRow.id == DecisionRow.quote_pk)).all()
        duplicated = session.execute(select(DecisionRow.quote_pk, DecisionRow.coder_id).group_by(
            DecisionRow.quote_pk, DecisionRow.coder_id).having(func.count() > 1)).all()
    engine.dispose()
    by_key = {(r.name, r.quote_id): r.codes for r in stored}
    expected = {(run.name, q): codes for run in runs for q, codes in run.saved.items()}
    problems += [f"lost: {k}" for k in expected if k not in by_key]
    problems += [f"changed: {k}" for k in expected if k in by_key and by_key[k] != expected[k]]
    problems += [f"unexpected: {k}" for k in by_key if k not in expected]
    problems += [f"duplicated: {tuple(d)}" for d in duplicated]
    if len(stored) != len(by_key):
        problems.append(f"{len(stored) - len(by_key)} decision(s) stored twice")
    return problems


def summary(runs: list[CoderRun], seconds: float) -> dict:
    """Counts, and p50/p95/max page time over all requests and by kind (next, quote page, save)."""
    kinds = sorted({k for r in runs for k in r.timings_ms})
    every = [t for r in runs for times in r.timings_ms.values() for t in times]
    return {
        "coders": len(runs), "seconds": seconds, "requests": len(every),
        "errors": sum(len(r.errors) for r in runs), "decisions": sum(len(r.saved) for r in runs),
        "ran_out": sum(r.ran_out for r in runs), **_percentiles(every),
        "by_kind": {k: _percentiles([t for r in runs for t in r.timings_ms.get(k, [])]) for k in kinds},
    }


def _percentiles(timings: list[float]) -> dict:
    timings = sorted(timings)
    if not timings:
        return {}
    return {"p50_ms": round(statistics.median(timings), 1), "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            "max_ms": round(timings[-1], 1)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(database_url: str, port: int, quotes: int) -> None:
    """The server process: the real model, the first ``quotes`` real statements queued."""
    import uvicorn

    from pipeline.codebook import load_codebook
    from pipeline.coding import default_coder
    from pipeline.paths import LABELS_DIR
    from pipeline.records import Quote
    from pipeline.web import ModelScorer, WebSettings, create_app
    from pipeline.web.store import add_quotes

    scorer = ModelScorer(default_coder(load_codebook()))
    scorer.warm()
    rows = [json.loads(line) for line in open(LABELS_DIR / "real_statements.jsonl", encoding="utf-8")][:quotes]
    batch = [Quote(f"load-{i}", row["text"]) for i, row in enumerate(rows)]
    app = create_app(WebSettings(database_url=database_url, labels_dir=Path(tempfile.mkdtemp())), scorer)
    add_quotes(app.state.engine, batch, scorer.score([q.text for q in batch]), scorer.model_id)
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coders", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--quotes", type=int, default=400, help="real statements queued (each coder codes them all in order)")
    parser.add_argument("--serve", nargs=2, metavar=("DATABASE_URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.quotes)
        return
    from argon2 import PasswordHasher

    from pipeline.web import accounts
    from pipeline.web.db import open_database

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'workbench.sqlite'}"
        engine = open_database(url)
        accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024)  # sign-in is not what is measured
        names = [f"coder{i:02d}" for i in range(args.coders)]
        for name in names:
            accounts.create_coder(engine, name, PASSWORD)
        engine.dispose()
        port = _free_port()
        server = subprocess.Popen([sys.executable, __file__, "--quotes", str(args.quotes), "--serve", url, str(port)], cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            started = time.monotonic()
            while True:
                try:
                    httpx.get(f"{base}/login", timeout=2)
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() - started > 600:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.5)
            print(f"server up in {time.monotonic() - started:.1f} s (model warm, {args.quotes} quotes queued)")
            runs = run_load(base, names, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=60)
        result = summary(runs, args.seconds)
        problems = check_database(url, runs)
    print(json.dumps(result))
    print("database: " + ("every saved decision stored once, as sent" if not problems else "; ".join(problems[:10])))
    if problems or result["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
