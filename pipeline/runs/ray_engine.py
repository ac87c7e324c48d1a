"""The Ray engine: a run's pending chunks coded by workers on a Ray cluster with Ray Data.

The driver (the process running ``framecode recode``) pins the inputs, writes the manifest,
reads the inputs in the same fixed chunks as the local engine (:func:`.engine.read_chunks`),
skips the chunks already done or reusable and sends the others to the workers. Each worker
loads the coder once and returns each chunk's codings; the driver commits every returned
chunk in one SQLite transaction, then merges the chunks in order (:func:`.outputs.write_outputs`),
so the outputs are byte-identical to the local engine's.

A killed worker is restarted by Ray and only the chunk it held is coded again; a killed
driver leaves the run ``running`` (``framecode runs`` shows it interrupted) and
``framecode recode --resume RUN`` completes it with either engine.

Ray is imported only here, and only when this engine codes a run (``pip install 'framecode[ray]'``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import FramecodeError, InputError, RunError
from ..onnx_encoder import THREADS_VARIABLE
from ..progress import task
from ..records import Codebook, Quote
from .coder import HashCoder
from .engine import Chunk, ChunkWork, code_chunk

# A worker's threads, each set to its CPUs: the encoder's, OpenMP/BLAS, the tokenizer's (Rayon).
THREAD_VARIABLES = (THREADS_VARIABLE, "OMP_NUM_THREADS", "RAYON_NUM_THREADS", "RAYON_RS_NUM_CPUS")
INSTALL_HINT = "pip install 'framecode[ray]'"
CONNECT_SECONDS = 5


def require_ray() -> None:
    """Refuse, in one line, when Ray is not installed."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(f"--engine ray: Ray is not installed; install it with `{INSTALL_HINT}`") from None


@dataclass(frozen=True)
class WorkerCoder:
    """What a worker needs to load the driver's coder: the model folder (the same path on every
    machine) or the hash test coder, the codebook, and the model hash it must match."""

    model_dir: str | None
    codebook: dict
    model_hash: str
    columns: tuple[str, ...]
    hash_delay: float | None = None  # the hash test coder, sleeping this long per chunk

    @classmethod
    def of(cls, work: ChunkWork) -> WorkerCoder:
        coder = work.coder
        model_dir = work.manifest["model"].get("path")
        if not isinstance(coder, HashCoder) and not model_dir:
            raise RunError(f"{work.run_dir}: the run recorded no model folder; Ray workers load the model from one")
        return cls(model_dir, work.codebook.to_dict(), coder.model_hash, tuple(work.columns),
                   coder.delay if isinstance(coder, HashCoder) else None)

    def load(self):
        codebook = Codebook.from_dict(self.codebook)
        if self.hash_delay is not None:
            return HashCoder(codebook, delay=self.hash_delay)
        from ..model import load_coder

        coder = load_coder(Path(self.model_dir), codebook=codebook)
        if coder.model_hash != self.model_hash:
            raise RunError(f"{self.model_dir} on {socket.gethostname()}: model differs from the driver's; "
                           "copy the same model folder to every machine")
        return coder


class ChunkCoder:
    """A Ray Data worker: loads the coder once, then codes one chunk per call. ``worker`` (a
    :class:`WorkerCoder`) is set on a subclass made per run."""

    worker: WorkerCoder

    def __init__(self):
        self.coder = self.worker.load()

    def __call__(self, batch: dict) -> dict:
        numbers, blobs, seconds = [], [], []
        for number, payload in zip(batch["chunk"], batch["quotes"]):
            quotes = quotes_from_json(payload)
            clock = time.perf_counter()
            blobs.append(code_chunk(self.coder, quotes, self.worker.columns))
            seconds.append(time.perf_counter() - clock)
            numbers.append(int(number))
        threads = int(os.environ.get(THREADS_VARIABLE) or 0)  # 0: not set, the encoder uses every core
        return {"chunk": numbers, "codings": blobs, "seconds": seconds, "threads": [threads] * len(numbers)}


def quotes_to_json(quotes: tuple[Quote, ...]) -> bytes:
    return json.dumps([asdict(q) for q in quotes], ensure_ascii=False).encode("utf-8")


def quotes_from_json(payload: bytes) -> list[Quote]:
    return [Quote(**{**fields, "extra": tuple(tuple(pair) for pair in fields["extra"])})
            for fields in json.loads(bytes(payload).decode("utf-8"))]


@dataclass(frozen=True)
class RayEngine:
    """Code a run's chunks on a Ray cluster: ``address`` (``auto``, ``HOST:PORT``; None starts
    a local one with ``workers * worker_cpus`` CPUs), ``workers`` each loading the model once
    and encoding with ``worker_cpus`` threads (None: as many workers as the cluster has CPUs
    for). A Ray session already started in this process (``ray.init``) is used as it is."""

    address: str | None = None
    workers: int | None = None
    worker_cpus: int = 1

    def __post_init__(self):
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers: expected a positive number of workers, got {self.workers}")
        if self.worker_cpus < 1:
            raise InputError(f"--worker-cpus: expected a positive number of CPUs, got {self.worker_cpus}")
        require_ray()

    def describe(self) -> dict:
        return {"engine": "ray", "address": self.address, "workers": self.workers, "worker_cpus": self.worker_cpus}

    def code(self, chunks: Iterator[Chunk], work: ChunkWork) -> None:
        pending: dict[int, Chunk] = {}
        items, total, settled = [], 0, 0
        for chunk in chunks:
            total += chunk.records
            if work.pending(chunk):
                items.append({"chunk": chunk.number, "quotes": quotes_to_json(chunk.quotes)})
                pending[chunk.number] = chunk
            else:
                settled += chunk.records
        with task("recoding", total) as bar:
            bar.advance(settled)
            if not items:
                return
            worker = WorkerCoder.of(work)
            started = self._connect()
            try:
                workers = self._workers()
                work.manifest["sessions"][-1]["workers"] = workers
                threads = set()
                for row in _worker_errors(iter(self._dataset(items, worker, workers).iter_rows())):
                    chunk = pending.pop(int(row["chunk"]), None)
                    if chunk is None:  # returned twice (a retried task): committed already
                        continue
                    threads.add(int(row["threads"]))
                    work.timings.code += float(row["seconds"])  # summed over workers
                    work.commit(chunk, bytes(row["codings"]))
                    bar.advance(chunk.records)
                work.manifest["sessions"][-1]["encoder_threads"] = sorted(threads)
            finally:
                if started:
                    import ray

                    ray.shutdown()
        if pending:
            raise RunError(f"{work.run_dir}: Ray returned no codings for chunks {sorted(pending)}; resume the run")

    def _connect(self) -> bool:
        """Connect to the cluster, or start a local one; True when this call started Ray."""
        import ray

        if self.address not in (None, "auto"):
            _check_reachable(self.address)
        if ray.is_initialized():
            return False
        _quiet_ray()
        options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=(self.workers or os.cpu_count() or 1) * self.worker_cpus, **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--address {self.address}" if self.address else "a local Ray cluster"
            raise RunError(f"{where}: cannot connect ({_first_line(exc)}); start the cluster with `ray start --head` "
                           "or check the address") from None
        return True

    def _workers(self) -> int:
        """``workers``, or as many as the cluster has CPUs for."""
        import ray

        return self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.worker_cpus)

    def _dataset(self, items: list[dict], worker: WorkerCoder, workers: int):
        import ray.data

        _quiet_ray()
        coder_class = type("ChunkCoder", (ChunkCoder,), {"worker": worker})
        # one block per chunk: a worker holds one chunk at a time, and a retry redoes only that one
        return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            coder_class, batch_size=1, batch_format="numpy", num_cpus=self.worker_cpus,
            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
            runtime_env={"env_vars": {name: str(self.worker_cpus) for name in THREAD_VARIABLES}},
        )


def _check_reachable(address: str) -> None:
    """Refuse an address nothing answers on (Ray itself would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RunError(f"--address {address}: expected auto or HOST:PORT (the head's `ray start --head --port`)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise RunError(f"--address {address}: no Ray cluster answers ({exc.strerror or exc}); start one with "
                       "`ray start --head --port PORT` on the head machine, or check the address") from None


def _quiet_ray() -> None:
    """Ray's own messages go to its log folder, not the terminal (progress is framecode's bar)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # a failure reaches the user as framecode's one line


def _worker_errors(rows: Iterator[dict]) -> Iterator[dict]:
    """``rows`` with a failure inside Ray made one line: a worker's own :class:`FramecodeError`
    (a missing model folder...) as it is, anything else with its type and first line."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:
            raise _worker_error(exc) from None
        yield row


def _worker_error(exc: Exception) -> FramecodeError:
    chain, seen = [exc], set()
    while chain:
        error = chain.pop(0)
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, FramecodeError):
            return RunError(str(error))
        # a worker's error that killed it (its model failed to load) only survives as text
        found = _FRAMECODE_ERROR.findall(f"{error}\n{getattr(error, 'error_msg', '')}")
        if found:
            return RunError(found[-1])
        chain += [getattr(error, "cause", None), error.__cause__, error.__context__]
    return RunError(f"Ray worker failed: {type(exc).__name__}: {_first_line(exc)}; fix the cause, then resume the run")


_FRAMECODE_ERROR = re.compile(r"^pipeline\.errors\.\w+: (.+)$", re.MULTILINE)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
