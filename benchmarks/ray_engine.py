"""Benchmark `framecode recode --engine ray`: one worker against two on a local Ray cluster.

    .venv/bin/python benchmarks/ray_engine.py [--quotes 5000] [--workers 1 2] [--chunk-size 250] [--repeat 2] [--local]

Generates the synthetic corpus of ``benchmarks/recode.py`` and codes it with the trained
default model (models/default), each configuration in a fresh process with an empty embedding
cache (the verified ONNX exports shared): the Ray engine on a local cluster of N one-CPU
workers for each N of ``--workers``, and with ``--local`` the local engine too (this process's
threads, for reference). The outputs of the runs of each round are compared byte for byte.

Columns: wall seconds of the whole run (starting the cluster and loading the model in each
worker included) and its quotes/s; steady quotes/s (between the first and the last chunk
committed, so without the start); code: seconds in ``coder.code_rows`` summed over workers
(the encoder's, almost all of it); outside: wall minus code per worker (the driver's reading,
commits and outputs, Ray's start and scheduling); peak MB of the driver and of the largest
worker (VmHWM, sampled).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from recode import _fresh_cache, generate, in_fresh_process

from pipeline.paths import DEFAULT_CODEBOOK, DEFAULT_MODEL_DIR

OUTPUTS = ("codings.csv", "codings.parquet", "frequencies_by_program.csv", "frequencies_by_sector.csv", "rejected.csv")


def _worker_peaks(peaks: dict[int, int], stop: threading.Event) -> None:
    """Peak resident memory (kB) of this process's Ray Data workers, sampled until ``stop``."""
    while not stop.wait(0.5):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if b"MapWorker" not in Path(f"/proc/{entry}/cmdline").read_bytes() or not _descends(int(entry)):
                    continue
                for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[int(entry)] = max(peaks.get(int(entry), 0), int(line.split()[1]))
            except OSError:
                continue


def _descends(pid: int) -> bool:
    """Whether ``pid`` was started (through Ray's raylet) by this process."""
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        if pid == os.getpid():
            return True
    return False


def _phase(corpus: str, runs_dir: str, cache: str, chunk_size: int, workers: int, results) -> None:
    """One recode in this (fresh) process: the Ray engine with ``workers`` workers, or the
    local engine when ``workers`` is 0."""
    os.environ["FRAMECODE_CACHE"] = cache  # before Ray starts: its workers inherit it
    from pipeline.codebook import load_codebook
    from pipeline.model import load_coder
    from pipeline.runs import engine as run_engine
    from pipeline.runs import start_run

    codebook = load_codebook(DEFAULT_CODEBOOK)
    coder = load_coder(DEFAULT_MODEL_DIR, codebook=codebook)
    commits: list[float] = []
    commit = run_engine.ChunkWork.commit

    def timed_commit(self, chunk, payload):
        commit(self, chunk, payload)
        commits.append(time.perf_counter())

    run_engine.ChunkWork.commit = timed_commit
    peaks: dict[int, int] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_worker_peaks, args=(peaks, stop), daemon=True)
    sampler.start()
    engine = None
    if workers:
        from pipeline.runs.ray_engine import RayEngine

        engine = RayEngine(workers=workers)
    else:
        coder.get_encoder()
    clock = time.perf_counter()
    result = start_run([Path(corpus)], coder=coder, codebook=codebook, runs_dir=Path(runs_dir), codebook_path=DEFAULT_CODEBOOK,
                       model_dir=DEFAULT_MODEL_DIR, chunk_size=chunk_size, reuse=False, engine=engine)
    wall = time.perf_counter() - clock
    stop.set()
    sampler.join()
    quotes = result.manifest["counts"]["coded"]
    steady = quotes * (len(commits) - 1) / len(commits) / (commits[-1] - commits[0]) if len(commits) > 1 else None
    results.put({
        "wall": wall, "quotes": quotes, "steady": steady, "code": result.timings.code,
        "driver_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_mb": max(peaks.values()) / 1024 if peaks else None,
        "digests": {name: hashlib.sha256((result.run_dir / name).read_bytes()).hexdigest() for name in OUTPUTS},
    })


def run_phase(folder: Path, name: str, corpus: Path, chunk_size: int, workers: int) -> dict:
    cache = _fresh_cache(folder / f"cache-{name}")
    return in_fresh_process(_phase, str(corpus), str(folder / f"runs-{name}"), str(cache), chunk_size, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5_000, help="synthetic quotes to generate (default 5,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure (default: 1 2)")
    parser.add_argument("--chunk-size", type=int, default=250, help="records per chunk (default 250)")
    parser.add_argument("--local", action="store_true", help="also measure the local engine")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure the worker counts this many times, alternating (a shared machine's load shifts)")
    parser.add_argument("--keep", type=Path, help="keep the corpus and runs in this folder instead of a temporary one")
    args = parser.parse_args()

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="framecode-ray-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        corpus = folder / "corpus.csv"
        generate(corpus, args.quotes)
        print(f"corpus: {args.quotes:,} quotes; chunks of {args.chunk_size}; model: models/default; {os.cpu_count()} CPUs")
        print(f"\n{'engine':<16} {'wall s':>7} {'quotes/s':>9} {'steady q/s':>10} {'code s':>7} {'outside s':>9} "
              f"{'driver MB':>9} {'worker MB':>9}", flush=True)
        rounds, identical = [], True
        for attempt in range(args.repeat):
            measured = {}
            for workers in [*args.workers, *([0] if args.local and attempt == 0 else [])]:
                name = f"ray, {workers} worker{'s' if workers > 1 else ''}" if workers else "local engine"
                p = measured[workers] = run_phase(folder, f"{workers}-{attempt}", corpus, args.chunk_size, workers)
                worker_mb = f"{p['worker_mb']:.0f}" if p["worker_mb"] else "-"
                steady = f"{p['steady']:.1f}" if p["steady"] else "-"
                print(f"{name:<16} {p['wall']:>7.1f} {p['quotes'] / p['wall']:>9.1f} {steady:>10} {p['code']:>7.1f} "
                      f"{p['wall'] - p['code'] / max(workers, 1):>9.1f} {p['driver_mb']:>9.0f} {worker_mb:>9}", flush=True)
            rounds.append(measured)
            identical &= len({tuple(sorted(p["digests"].items())) for p in measured.values()}) == 1
        if len(args.workers) > 1:
            few, many = args.workers[0], args.workers[-1]
            ratios = sorted(r[few]["wall"] / r[many]["wall"] for r in rounds)
            steady = sorted(r[many]["steady"] / r[few]["steady"] for r in rounds)
            print(f"\nthroughput {many} workers / {few}, per round: {', '.join(f'{x:.2f}x' for x in ratios)} "
                  f"(median {statistics.median(ratios):.2f}x); steady: {', '.join(f'{x:.2f}x' for x in steady)}")
        print(f"outputs byte-identical across the engines of each round: {'yes' if identical else 'NO'}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
