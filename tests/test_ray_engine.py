"""The Ray engine on a local two-CPU Ray cluster started by these tests: the same bytes as the
local engine, a killed worker costing only its chunk, a killed driver resumed."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.paths import DEFAULT_CODEBOOK, DEFAULT_MODEL_DIR, PROJECT_ROOT
from pipeline.runs import HashCoder, chunk_sessions, list_runs, read_manifest, resume_run, start_run
from pipeline.runs.ray_engine import RayEngine

runner = CliRunner()
OUTPUTS = ("codings.csv", "codings.parquet", "frequencies_by_program.csv", "frequencies_by_sector.csv",
           "rejected.csv", "codebook.json")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPUs; its address lets other processes connect."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(DEFAULT_CODEBOOK)


def write_corpus(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "organization", "program", "sector", "county"])
        writer.writerows([f"q{i}", f"testimonial {i} about sharing data", f"Org {i % 5}", ("CHP", "DASH")[i % 2],
                          ("housing", "")[i % 2], f"county {i % 3}"] for i in range(n))
        writer.writerow(["q3", "another text under an id already seen", "Org 1", "CHP", "", ""])
        writer.writerow(["q-blank", "  ", "Org 1", "CHP", "", ""])
        writer.writerow(["q-sector", "some text", "Org 1", "CHP", "Pubic Helth", ""])
    return path


def local_run(corpus: Path, runs_dir: Path, codebook, chunk_size: int = 10) -> Path:
    return start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir,
                     codebook_path=DEFAULT_CODEBOOK, chunk_size=chunk_size, reuse=False).run_dir


def assert_same_outputs(run_a: Path, run_b: Path) -> None:
    for name in OUTPUTS:
        assert (run_a / name).read_bytes() == (run_b / name).read_bytes(), name
    manifest_a, manifest_b = read_manifest(run_a), read_manifest(run_b)
    for key in ("status", "inputs", "codebook", "encoder", "parameters", "columns", "quotes", "counts"):
        assert manifest_a[key] == manifest_b[key], key
    assert manifest_a["model"]["hash"] == manifest_b["model"]["hash"]


def committed_chunks(run_dir: Path) -> int:
    try:
        return len(chunk_sessions(run_dir))
    except sqlite3.Error:  # not created yet
        return 0


def wait_for(condition, timeout: float = 240.0) -> None:  # workers start slowly on a busy 2-core machine
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def map_workers() -> set[int]:
    """Pids of this cluster's Ray Data workers alive now (their process title names the map;
    they descend from this process, which started the cluster)."""
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and b"MapWorker" in Path(f"/proc/{entry}/cmdline").read_bytes() and descends(int(entry)):
                pids.add(int(entry))
        except OSError:
            continue
    return pids


def descends(pid: int) -> bool:
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        if pid == os.getpid():
            return True
    return False


def test_ray_engine_writes_the_same_bytes_as_the_local_engine(tmp_path, cluster, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 95)
    local = local_run(corpus, tmp_path / "local", codebook)
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "ray",
                       codebook_path=DEFAULT_CODEBOOK, chunk_size=10, reuse=False, engine=RayEngine(workers=2))
    assert result.chunks_coded == 10
    assert_same_outputs(local, result.run_dir)
    session = read_manifest(result.run_dir)["sessions"][0]
    # each worker encodes with the threads of the CPUs it was given
    assert (session["engine"], session["workers"], session["worker_cpus"], session["encoder_threads"]) == ("ray", 2, 1, [1])
    assert read_manifest(local)["sessions"][0]["engine"] == "local"


@pytest.mark.slow
def test_ray_engine_with_the_real_model_writes_the_same_bytes(tmp_path, cluster, codebook):
    from pipeline.model import load_coder

    with open(PROJECT_ROOT / "corpus" / "program_statements.csv", encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(40), csv.DictReader(handle))]
    corpus = tmp_path / "statements.csv"
    with open(corpus, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "text", "organization", "program", "sector"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    coder = load_coder(DEFAULT_MODEL_DIR, codebook=codebook)
    runs = [start_run([corpus], coder=coder, codebook=codebook, runs_dir=tmp_path / name, codebook_path=DEFAULT_CODEBOOK,
                      model_dir=DEFAULT_MODEL_DIR, chunk_size=15, reuse=False, engine=engine).run_dir
            for name, engine in (("local", None), ("ray", RayEngine(workers=1)))]
    assert read_manifest(runs[1])["counts"]["coded"] == 40
    assert_same_outputs(*runs)


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_chunk(tmp_path, cluster, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 200)
    before = map_workers()
    killed: list[int] = []

    def kill_a_worker():
        wait_for(lambda: committed_chunks(tmp_path / "ray" / run_dir()) >= 2 if run_dir() else False)
        pid = min(map_workers() - before)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def run_dir():
        folders = list((tmp_path / "ray").glob("*/work.sqlite"))
        return folders[0].parent.name if folders else None

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    # 1 s a chunk: the run outlasts the wait for the first chunks, however slowly its workers start
    result = start_run([corpus], coder=HashCoder(codebook, delay=1.0), codebook=codebook, runs_dir=tmp_path / "ray",
                       codebook_path=DEFAULT_CODEBOOK, chunk_size=10, reuse=False, engine=RayEngine(workers=2))
    killer.join(timeout=60)
    assert killed and not Path(f"/proc/{killed[0]}").exists()
    assert result.manifest["status"] == "complete" and result.chunks_coded == 21
    assert_same_outputs(local_run(corpus, tmp_path / "local", codebook), result.run_dir)


@pytest.mark.slow
def test_a_killed_driver_leaves_a_run_that_resume_completes(tmp_path, cluster, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 150)
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "FRAMECODE_TEST_CODER": "hash:1"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "recode", str(corpus), "--runs-dir", str(runs_dir), "--chunk-size", "10",
         "--no-reuse", "--engine", "ray", "--address", cluster, "--workers", "2"],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: any(committed_chunks(f) >= 3 for f in runs_dir.glob("*")) if runs_dir.is_dir() else False)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    (run,) = list_runs(runs_dir)
    assert run.status == "interrupted" and 3 <= run.chunks_done < 16
    done_before = run.chunks_done
    result = runner.invoke(app, ["recode", "--resume", run.run_id, "--runs-dir", str(runs_dir), "--engine", "ray",
                                 "--address", cluster], env={"FRAMECODE_TEST_CODER": "hash"})
    assert result.exit_code == 0, result.output
    assert f"{16 - done_before} coded, 0 reused, {done_before} already done" in result.output
    assert_same_outputs(local_run(corpus, tmp_path / "local", codebook), runs_dir / run.run_id)
    sessions = read_manifest(runs_dir / run.run_id)["sessions"]
    assert [(s["engine"], s["address"]) for s in sessions] == [("ray", cluster)] * 2


def test_a_run_started_on_ray_can_be_resumed_locally(tmp_path, cluster, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 60)
    local = local_run(corpus, tmp_path / "local", codebook)
    runs_dir = tmp_path / "runs"
    with pytest.raises(RuntimeError, match="driver died"):
        start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir, codebook_path=DEFAULT_CODEBOOK,
                  chunk_size=10, reuse=False, engine=_FailingAfter(3))
    (run_dir,) = runs_dir.iterdir()
    assert read_manifest(run_dir)["status"] == "failed" and committed_chunks(run_dir) == 3
    result = resume_run(run_dir, coder=HashCoder(codebook), codebook=codebook)
    assert (result.chunks_coded, result.chunks_skipped) == (4, 3)
    assert_same_outputs(local, run_dir)


class _FailingAfter(RayEngine):
    """A Ray engine whose driver dies (RuntimeError) after committing ``limit`` chunks."""

    def __init__(self, limit: int):
        super().__init__(workers=2)
        object.__setattr__(self, "limit", limit)

    def code(self, chunks, work):
        commit = work.commit

        def commit_then_fail(chunk, payload):
            if work.coded == self.limit:
                raise RuntimeError("driver died")
            commit(chunk, payload)

        work.commit = commit_then_fail
        super().code(chunks, work)


def test_ray_options_need_the_ray_engine(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.csv", 5)
    result = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(tmp_path / "runs"), "--workers", "2"])
    assert result.exit_code == 2 and "--workers" in result.output and "--engine ray" in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus.csv", 5)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    result = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(tmp_path / "runs"), "--engine", "ray"],
                           env={"FRAMECODE_TEST_CODER": "hash"})
    assert result.exit_code == 2
    assert "Ray is not installed" in result.output and "pip install 'framecode[ray]'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


def test_a_worker_that_cannot_load_the_model_is_one_line_naming_the_folder():
    from ray.exceptions import ActorDiedError

    from pipeline.runs.ray_engine import _worker_error

    died = ActorDiedError()  # as Ray reports a worker whose model failed to load: the error only as text
    died.error_msg = ("The actor died because of an error raised in its creation task\nTraceback (most recent call last):\n"
                      "pipeline.errors.ModelError: /srv/models/default: model folder not found; train one with `framecode train`\n")
    assert str(_worker_error(RuntimeError("wrapped"))).startswith("Ray worker failed: RuntimeError: wrapped")
    failure = RuntimeError("execution failed")
    failure.__cause__ = died
    assert str(_worker_error(failure)) == "/srv/models/default: model folder not found; train one with `framecode train`"


def test_an_address_nothing_answers_on_is_one_line(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.csv", 5)
    result = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(tmp_path / "runs"), "--engine", "ray",
                                 "--address", "127.0.0.1:9"], env={"FRAMECODE_TEST_CODER": "hash"})
    assert result.exit_code == 2 and "--address 127.0.0.1:9: no Ray cluster answers" in result.output
