"""Batch runs when something fails: inputs edited mid-run, disk full, read-only folders,
denied permissions, damaged work stores and manifests. Each failure is one line naming the
path and the cause, exit code 2, and the run's status ``failed`` whenever it can be written."""

from __future__ import annotations

import csv
import errno
import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.errors import RunError
from pipeline.paths import DEFAULT_CODEBOOK
from pipeline.runs import HashCoder, InputFile, iter_records, list_runs, read_manifest, resume_run, start_run

runner = CliRunner()
CAUSES = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(DEFAULT_CODEBOOK)


@pytest.fixture()
def hash_coder(monkeypatch):
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")


def write_corpus(path: Path, n: int, *, encoding: str = "utf-8", words: int = 1) -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "organization", "program"])
        writer.writerows([f"q{i}", f"testimonial {i} about sharing data" + " more" * (words - 1), f"Org {i % 5}", "CHP"]
                         for i in range(n))
    return path


def the_run(runs_dir: Path) -> Path:
    (folder,) = [f for f in runs_dir.iterdir() if f.is_dir()]
    return folder


def recode(corpus: Path, runs_dir: Path, *args: str):
    return runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(runs_dir), "--chunk-size", "10", *args])


class EditingCoder(HashCoder):
    """Edits (or appends to) the input while the run is coding its first chunk."""

    def __init__(self, codebook, path: Path, append: bool):
        super().__init__(codebook)
        self.path, self.append = path, append

    def code_rows(self, quotes):
        if not self.calls:
            if self.append:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write("q999,a row appended during the run,Org 1,CHP\n")
            else:
                self.path.write_text(self.path.read_text(encoding="utf-8").replace("testimonial 25", "testimonial XX"),
                                     encoding="utf-8")
        return super().code_rows(quotes)


@pytest.mark.parametrize("append", [False, True], ids=["edited", "appended"])
def test_input_changed_during_a_run_fails_it_naming_the_file(tmp_path, codebook, append):
    corpus = write_corpus(tmp_path / "quotes.csv", 30)
    with pytest.raises(RunError, match=r"quotes\.csv: input changed") as caught:
        start_run([corpus], coder=EditingCoder(codebook, corpus, append), codebook=codebook,
                  runs_dir=tmp_path / "runs", chunk_size=10)
    run_dir = the_run(tmp_path / "runs")
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "failed" and str(corpus) in manifest["error"] and str(caught.value) == manifest["error"]
    assert not (run_dir / "codings.csv").exists() and not (run_dir / "codings.parquet").exists()


def test_bytes_read_are_checked_against_the_pinned_hash(tmp_path):
    corpus = write_corpus(tmp_path / "big.csv", 2_000, words=120)  # over the 1 MiB read buffer
    pinned = InputFile.pin(corpus).sha256
    assert sum(1 for _ in iter_records(corpus, sha256=pinned)) == 2_000
    records = iter_records(corpus, sha256=pinned)
    next(records)
    with open(corpus, "r+b") as handle:  # edited behind the reader, in a part not read yet
        handle.seek(-40, os.SEEK_END)
        handle.write(b"X")
    with pytest.raises(RunError, match=r"big\.csv: input changed during the run"):
        list(records)


def test_manifest_records_the_encoding_ingest_detects(tmp_path, codebook):
    latin = write_corpus(tmp_path / "latin.csv", 5, encoding="cp1252")
    latin.write_bytes(latin.read_bytes().replace(b"Org 1", "Org caf\u00e9".encode("cp1252")))
    plain = write_corpus(tmp_path / "plain.csv", 5)
    result = start_run([latin, plain], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs")
    assert [e["encoding"] for e in result.manifest["inputs"]] == ["cp1252", "utf-8"]


class CrashingCoder(HashCoder):
    """Dies on its second chunk, as a coder killed mid-run would."""

    def code_rows(self, quotes):
        if self.calls:
            raise RuntimeError("simulated crash")
        return super().code_rows(quotes)


def count_fsyncs(monkeypatch, fail_at: int | None = None, error: int = errno.ENOSPC) -> list[int]:
    """Count the atomic writes (each fsyncs its file once); the ``fail_at``-th raises ``error``."""
    calls: list[int] = []
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):  # the folder's, after the rename
            return real_fsync(fd)
        calls.append(fd)
        if len(calls) == fail_at:
            raise OSError(error, os.strerror(error))
        real_fsync(fd)

    monkeypatch.setattr("pipeline.files.os.fsync", fsync)
    return calls


def writes_of_a_run(tmp_path: Path, monkeypatch, corpus: Path) -> int:
    with monkeypatch.context() as patch:
        calls = count_fsyncs(patch)
        assert recode(corpus, tmp_path / "count").exit_code == 0
    return len(calls)


def test_a_failed_write_at_any_point_of_a_run_is_one_line_with_path_and_cause(tmp_path, monkeypatch, hash_coder):
    corpus = write_corpus(tmp_path / "quotes.csv", 25)
    total = writes_of_a_run(tmp_path, monkeypatch, corpus)
    assert total >= 9  # manifest (x3), codebook snapshot, parquet, csv, 2 frequency tables, rejected.csv
    disk_full = [(fail_at, errno.ENOSPC) for fail_at in range(1, total + 1)]  # every write
    denied = [(fail_at, error) for error in (errno.EROFS, errno.EACCES) for fail_at in (total // 2, total)]
    for fail_at, error in disk_full + denied:
        runs_dir = tmp_path / f"runs-{fail_at}-{error}"
        with monkeypatch.context() as patch:
            count_fsyncs(patch, fail_at, error)
            result = recode(corpus, runs_dir)
        lines = [line for line in result.output.splitlines() if not line.startswith("FRAMECODE_TEST_CODER")]
        assert result.exit_code == 2, (fail_at, result.output)
        assert len(lines) == 1 and lines[0].startswith(f"framecode: error: {runs_dir}"), (fail_at, lines)
        assert CAUSES[error] in lines[0] and "internal error" not in lines[0]
        manifest_file = the_run(runs_dir) / "manifest.json"
        if fail_at > 1:  # the first write is the manifest itself: nothing to record a status in
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
            assert manifest["status"] == "failed" and CAUSES[error] in manifest["error"], fail_at
        assert not list(the_run(runs_dir).glob(".*.tmp"))


def test_disk_full_in_the_work_store_names_it_and_fails_the_run(tmp_path, monkeypatch, hash_coder):
    corpus = write_corpus(tmp_path / "quotes.csv", 25)

    def full(*_args):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("pipeline.runs.engine.commit_chunk", full)
    result = recode(corpus, tmp_path / "runs")
    run_dir = the_run(tmp_path / "runs")
    assert result.exit_code == 2
    assert f"framecode: error: {run_dir / 'work.sqlite'}: no space left on device; free some space" in result.output
    assert read_manifest(run_dir)["status"] == "failed"


class FullDisk:
    """A binary file handle whose writes fail as on a full disk."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, _data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)


def test_parquet_write_failure_names_the_parquet_file(tmp_path, monkeypatch, hash_coder):
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(handle) if ".codings.parquet." in os.readlink(f"/proc/self/fd/{fd}") else handle

    monkeypatch.setattr("pipeline.files.os.fdopen", fdopen)
    result = recode(write_corpus(tmp_path / "quotes.csv", 25), tmp_path / "runs")
    run_dir = the_run(tmp_path / "runs")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"framecode: error: {run_dir / 'codings.parquet'}: no space left on device" in result.output
    assert read_manifest(run_dir)["status"] == "failed" and not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))


def test_damaged_work_store_on_resume_is_named(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "quotes.csv", 25)
    with pytest.raises(RuntimeError):
        start_run([corpus], coder=CrashingCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=10,
                  codebook_path=DEFAULT_CODEBOOK)
    run_dir = the_run(tmp_path / "runs")
    (run_dir / "work.sqlite").write_bytes(b"not a database" * 100)
    result = runner.invoke(app, ["recode", "--resume", str(run_dir)], env={"FRAMECODE_TEST_CODER": "hash"})
    assert result.exit_code == 2
    assert f"{run_dir / 'work.sqlite'}: damaged database" in result.output and "internal error" not in result.output
    assert read_manifest(run_dir)["status"] == "failed"


def test_a_damaged_earlier_run_is_skipped_by_recode_and_runs(tmp_path, codebook, hash_coder):
    corpus = write_corpus(tmp_path / "quotes.csv", 25)
    runs_dir = tmp_path / "runs"
    damaged_store = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir, chunk_size=10,
                              codebook_path=DEFAULT_CODEBOOK, model_dir=None)
    (damaged_store.run_dir / "work.sqlite").write_bytes(b"garbage" * 1000)
    result = recode(corpus, runs_dir, "--codebook", str(DEFAULT_CODEBOOK))
    assert result.exit_code == 0, result.output
    assert f"run {damaged_store.run_id} is damaged" in result.output or f"run {damaged_store.run_id} skipped" in result.output
    (damaged_store.run_dir / "manifest.json").write_text('{"run_id": "x", "status": "comp', encoding="utf-8")
    result = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir)])
    assert result.exit_code == 0
    assert f"run {damaged_store.run_id} skipped: {damaged_store.run_dir / 'manifest.json'}: damaged manifest" in result.output
    assert len(list_runs(runs_dir)) == 1 and "complete" in result.output
    again = recode(corpus, runs_dir, "--codebook", str(DEFAULT_CODEBOOK))
    assert again.exit_code == 0 and "1 reused" not in again.output  # the damaged run gave nothing


def test_changed_registry_is_refused_naming_the_registry(tmp_path, codebook, monkeypatch):
    from pipeline import sectors

    registry = tmp_path / "organizations.csv"
    registry.write_text("organization,aliases,sector\nOrg 1,,housing\n", encoding="utf-8")
    monkeypatch.setattr(sectors, "REGISTRY_FILE", registry)
    sectors.default_registry.cache_clear()
    corpus = write_corpus(tmp_path / "quotes.csv", 25)
    try:
        with pytest.raises(RuntimeError):
            start_run([corpus], coder=CrashingCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=10)
        registry.write_text("organization,aliases,sector\nOrg 1,,health_care\n", encoding="utf-8")
        sectors.default_registry.cache_clear()
        with pytest.raises(RunError, match=rf"^{registry}: organization registry changed since run"):
            resume_run(the_run(tmp_path / "runs"), coder=HashCoder(codebook), codebook=codebook)
    finally:
        sectors.default_registry.cache_clear()


def test_resume_removes_the_temp_files_of_an_interrupted_session(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "quotes.csv", 25)
    with pytest.raises(RuntimeError):
        start_run([corpus], coder=CrashingCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=10)
    run_dir = the_run(tmp_path / "runs")
    leftovers = [run_dir / ".codings.parquet.k2j3h4.tmp", run_dir / ".codings.csv.a8d7f6.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"x" * 1000)
    result = resume_run(run_dir, coder=HashCoder(codebook), codebook=codebook)
    assert result.manifest["status"] == "complete" and not any(p.exists() for p in leftovers)


@pytest.fixture()
def small_tmpfs(tmp_path):
    """Mount a tmpfs of a given size (root only; skipped where none can be mounted)."""
    mounted: list[Path] = []

    def mount(size_kib: int) -> Path:
        folder = tmp_path / f"tmpfs-{size_kib}k"
        folder.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_fails_the_run_with_path_cause_and_status(tmp_path, small_tmpfs, hash_coder):
    corpus = write_corpus(tmp_path / "quotes.csv", 3000, words=20)
    for size_kib in (128, 1024, 3072):  # full while reserving, committing chunks, writing the outputs
        runs_dir = small_tmpfs(size_kib) / "runs"
        result = recode(corpus, runs_dir, "--chunk-size", "200")
        lines = [line for line in result.output.splitlines() if not line.startswith("FRAMECODE_TEST_CODER")]
        assert result.exit_code == 2 and len(lines) == 1, (size_kib, result.output)
        assert lines[0].startswith(f"framecode: error: {runs_dir}") and "no space left on device" in lines[0]
        assert read_manifest(the_run(runs_dir))["status"] == "failed"
        assert not list(the_run(runs_dir).glob(".*.tmp"))
        codings = the_run(runs_dir) / "codings.csv"
        assert not codings.exists() or len(codings.read_text(encoding="utf-8").splitlines()) == 3001  # never partial
