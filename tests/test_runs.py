"""Batch re-coding runs: provenance, crash-safe resume, reproducibility, concurrency."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.errors import InputError, RunError
from pipeline.files import sha256_file
from pipeline.paths import DEFAULT_CODEBOOK, PROJECT_ROOT
from pipeline.runs import (
    HashCoder,
    chunk_sessions,
    codings_count,
    list_runs,
    read_manifest,
    resume_run,
    start_run,
)
from pipeline.tables import read_table

runner = CliRunner()
PROGRAMS = ("CHP", "DASH")
SECTORS = ("public_health", "housing", "health_care", "")
SECRET = "Maria told us about her diabetes"


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(DEFAULT_CODEBOOK)


def write_corpus(path: Path, n: int, *, extra_rows: list[list[str]] = (), start: int = 0) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "organization", "program", "sector"])
        for i in range(start, start + n):
            writer.writerow([f"q{i}", corpus_text(i),
                             f"Org {i % 25}", PROGRAMS[i % 2], SECTORS[i % 4]])
        writer.writerows(extra_rows)
    return path


def read_codings(run_dir: Path) -> list[dict]:
    with open(run_dir / "codings.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class CrashingCoder(HashCoder):
    """Raises on its ``crash_on``-th call, as a coder that dies mid-run would."""

    def __init__(self, codebook, crash_on: int):
        super().__init__(codebook)
        self.crash_on = crash_on

    def code_rows(self, quotes):
        if len(self.calls) + 1 == self.crash_on:
            raise RuntimeError("simulated crash")
        return super().code_rows(quotes)


def test_run_writes_codings_manifest_and_frequencies(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 95, extra_rows=[
        ["q0", "a second row with an id already seen", "Org 1", "CHP", ""],
        ["q-empty", "   ", "Org 1", "CHP", ""],
        ["q-sector", "some text", "Org 1", "CHP", "Pubic Helth"],
        ["q-copy", "testimonial 1 about sharing data testimonial 1 about sharing data ", "Org  1", "DASH", ""],
        ["q-spelled", "another text", "Org 1", "chp", "Public Health"],
    ])
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs",
                       codebook_path=DEFAULT_CODEBOOK, chunk_size=10)
    manifest = read_manifest(result.run_dir)
    assert manifest["status"] == "complete" and result.run_dir.parent == tmp_path / "runs"
    assert manifest["inputs"][0]["sha256"] == sha256_file(corpus) and manifest["inputs"][0]["rows"] == 100
    assert manifest["codebook"]["content_hash"] == codebook.content_hash and manifest["codebook"]["version"] == "1"
    assert manifest["model"]["id"] == "hash-coder" and manifest["encoder"]["backend"] == "none"
    assert manifest["packages"]["pyarrow"] and manifest["parameters"]["chunk_size"] == 10
    # the reading policy of `ingest`: a blank text is skipped; the same text under another id is another record
    assert manifest["counts"] == {
        "coded": 97, "decided": 0, "skipped": 1, "rejected": 2, "noted": 0,
        "skipped_reasons": {"empty text; row skipped": 1},
        "rejected_reasons": {"duplicate id": 1, "unknown sector 'Pubic Helth'": 1},
    }
    rows = read_codings(result.run_dir)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(95)] + ["q-copy", "q-spelled"]
    assert (rows[-1]["program"], rows[-1]["sector"], rows[-1]["source"]) == ("CHP", "public_health", "corpus.csv:row 101")
    assert set(rows[0]) >= {"id", "text", "organization", "program", "sector", "codes", "needs_review",
                            *(f"p_{c}" for c in codebook.code_ids)}
    parquet = pq.read_table(result.run_dir / "codings.parquet")
    assert parquet.column("id").to_pylist() == [r["id"] for r in rows]
    assert parquet.column("codes").to_pylist() == [r["codes"] for r in rows]
    by_program = list(csv.DictReader(open(result.run_dir / "frequencies_by_program.csv", encoding="utf-8")))
    chp = next(r for r in by_program if r["program"] == "CHP" and r["id"] == "impact_stories")
    assert int(chp["n_quotes"]) == 49
    assert int(chp["n_with"]) == sum(1 for r in rows if r["program"] == "CHP" and "impact_stories" in r["codes"].split(";"))
    assert (result.run_dir / "frequencies_by_sector.csv").is_file()
    rejected = list(csv.DictReader(open(result.run_dir / "rejected.csv", encoding="utf-8")))
    assert [(r["row"], r["outcome"]) for r in rejected] == [  # rows as the spreadsheet shows them
        ("97", "rejected"), ("98", "skipped"), ("99", "rejected")]
    assert json.loads((result.run_dir / "codebook.json").read_text())["version"] == "1"


def test_frequency_tables_equal_those_of_the_frequencies_stage(tmp_path, codebook):
    from pipeline.frequencies import frequencies
    from pipeline.tables import write_table

    corpus = write_corpus(tmp_path / "corpus.csv", 150, extra_rows=[["q-anon", "no organization here", "", "", ""]])
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=40)
    frame = pq.read_table(result.run_dir / "codings.parquet").to_pandas()
    for by in ("program", "sector"):
        expected = frequencies(frame, codebook, by=(by,))
        write_table(tmp_path / "expected.csv", expected.to_dict("records"), list(expected.columns))
        written = (result.run_dir / f"frequencies_by_{by}.csv").read_bytes()
        assert written == (tmp_path / "expected.csv").read_bytes()
        assert b"unknown," in written


def test_codings_csv_has_the_dialect_of_write_table(tmp_path, codebook):
    from pipeline.tables import write_table

    corpus = write_corpus(tmp_path / "corpus.csv", 30, extra_rows=[["q-odd", 'a "quoted", multi\nline text', "Org 2", "CHP", ""],
                                                                ["q-formula", '=HYPERLINK("http://x","y")', "@Org", "CHP", ""]])
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=7)
    table = pq.read_table(result.run_dir / "codings.parquet")

    def cell(value):
        return ("true" if value else "false") if isinstance(value, bool) else repr(value) if isinstance(value, float) else value

    write_table(tmp_path / "expected.csv", ({k: cell(v) for k, v in row.items()} for row in table.to_pylist()), table.column_names)
    assert (result.run_dir / "codings.csv").read_bytes() == (tmp_path / "expected.csv").read_bytes()
    formula = next(r for r in read_codings(result.run_dir) if r["id"] == "q-formula")
    assert (formula["text"][:2], formula["organization"]) == ("'=", "'@Org")  # neutralised for spreadsheets


def test_text_is_kept_exactly(tmp_path, codebook):
    texts = ["None", "NA", "=1+1", "line one\nline two", 'she said "yes", then left', "café ✓"]
    corpus = tmp_path / "corpus.csv"
    with open(corpus, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "program"])
        writer.writerows([t, "CHP"] for t in texts)
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs")
    assert [r["text"] for r in read_table(result.run_dir / "codings.csv").rows] == texts
    assert "'=1+1" in [r["text"] for r in read_codings(result.run_dir)]  # a spreadsheet shows it, never runs it
    assert pq.read_table(result.run_dir / "codings.parquet").column("text").to_pylist() == texts


def test_jsonl_input_is_streamed_like_csv(tmp_path, codebook):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"j{i}", "text": f"quote {i}", "program": "DASH"}) + "\n" for i in range(7))
                      + "not json\n", encoding="utf-8")
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=3)
    assert [r["id"] for r in read_codings(result.run_dir)] == [f"j{i}" for i in range(7)]
    assert result.manifest["counts"]["rejected_reasons"] == {"not valid JSON": 1}


def test_same_inputs_give_byte_identical_codings(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 120)
    first = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=25, reuse=False)
    second = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=7, reuse=False)
    assert first.run_id != second.run_id
    for name in ("codings.parquet", "codings.csv", "frequencies_by_program.csv", "frequencies_by_sector.csv"):
        assert (first.run_dir / name).read_bytes() == (second.run_dir / name).read_bytes(), name


def test_rerun_of_unchanged_corpus_reuses_finished_chunks(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 100)
    first = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=10)
    warm = HashCoder(codebook)
    second = start_run([corpus], coder=warm, codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=10)
    assert warm.calls == [] and second.chunks_reused == 10
    assert (first.run_dir / "codings.parquet").read_bytes() == (second.run_dir / "codings.parquet").read_bytes()
    write_corpus(corpus, 100, extra_rows=[["q-new", "one more quote", "Org 3", "DASH", "housing"]])
    third_coder = HashCoder(codebook)
    third = start_run([corpus], coder=third_coder, codebook=codebook, runs_dir=tmp_path / "runs", chunk_size=10)
    assert third_coder.calls == [1] and third.chunks_reused == 10


def test_crash_inside_a_chunk_then_resume_codes_each_quote_once(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 100)
    with pytest.raises(RuntimeError):
        start_run([corpus], coder=CrashingCoder(codebook, crash_on=4), codebook=codebook,
                  runs_dir=tmp_path / "runs", chunk_size=10)
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "failed" and manifest["error"] == "RuntimeError"
    assert not (run_dir / "codings.csv").exists()
    assert codings_count(run_dir) == (30, 30)
    coder = HashCoder(codebook)
    result = resume_run(run_dir, coder=coder, codebook=codebook)
    assert sum(coder.calls) == 70 and result.chunks_skipped == 3
    assert read_manifest(run_dir)["status"] == "complete"
    assert [r["id"] for r in read_codings(run_dir)] == [f"q{i}" for i in range(100)]
    assert chunk_sessions(run_dir) == {**{i: 1 for i in range(3)}, **{i: 2 for i in range(3, 10)}}


def test_resume_refuses_when_an_input_or_the_model_changed(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 30)
    with pytest.raises(RuntimeError):
        start_run([corpus], coder=CrashingCoder(codebook, crash_on=2), codebook=codebook,
                  runs_dir=tmp_path / "runs", chunk_size=10)
    (run_dir,) = (tmp_path / "runs").iterdir()

    class OtherModel(HashCoder):
        model_hash = "0" * 64

    with pytest.raises(RunError, match="model changed"):
        resume_run(run_dir, coder=OtherModel(codebook), codebook=codebook)
    write_corpus(corpus, 31)
    with pytest.raises(RunError, match=f"{corpus}: input changed"):
        resume_run(run_dir, coder=HashCoder(codebook), codebook=codebook)


def test_resume_refuses_when_the_codebook_file_changed(tmp_path, codebook):
    book = tmp_path / "codebook.yaml"
    book.write_bytes(DEFAULT_CODEBOOK.read_bytes())
    corpus = write_corpus(tmp_path / "corpus.csv", 30)
    with pytest.raises(RuntimeError):
        start_run([corpus], coder=CrashingCoder(codebook, crash_on=2), codebook=codebook,
                  runs_dir=tmp_path / "runs", codebook_path=book, chunk_size=10)
    (run_dir,) = (tmp_path / "runs").iterdir()
    book.write_bytes(DEFAULT_CODEBOOK.read_bytes() + b"\n# edited\n")
    with pytest.raises(RunError, match=f"{book}: codebook changed"):
        resume_run(run_dir, coder=HashCoder(codebook), codebook=codebook)


def test_complete_run_cannot_be_resumed_and_locked_run_is_refused(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 20)
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs")
    with pytest.raises(RunError, match="already complete"):
        resume_run(result.run_dir, coder=HashCoder(codebook), codebook=codebook)
    with open(result.run_dir / "run.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunError, match="another process"):
            resume_run(result.run_dir, coder=HashCoder(codebook), codebook=codebook)
        assert list_runs(tmp_path / "runs")[0].status == "complete"


def test_two_runs_started_at_once_do_not_collide(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 200)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(start_run([corpus], coder=HashCoder(codebook, delay=0.01), codebook=codebook,
                                     runs_dir=tmp_path / "runs", chunk_size=20, reuse=False, now=lambda: moment))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    names = sorted(r.run_id for r in results)
    assert len(set(names)) == 2 and names[1] == names[0] + "-2" and names[0].startswith("20260102T030405Z-")
    first, second = (tmp_path / "runs" / n for n in names)
    assert (first / "codings.csv").read_bytes() == (second / "codings.csv").read_bytes()
    assert all(s.status == "complete" and s.quotes == 200 for s in list_runs(tmp_path / "runs"))


def test_recode_cli_runs_and_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    corpus = write_corpus(tmp_path / "corpus.csv", 30)
    runs_dir = tmp_path / "runs"
    result = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(runs_dir), "--chunk-size", "8"])
    assert result.exit_code == 0, result.output
    assert "30 quotes coded" in result.output
    listing = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir)])
    assert listing.exit_code == 0
    (line,) = [ln for ln in listing.output.splitlines() if "complete" in ln]
    assert line.split()[4:7] == ["30", "0", "4"]  # quotes, rejected, chunks


def test_recode_cli_errors_are_one_line_and_hold_no_text(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    no_text = tmp_path / "notext.csv"
    no_text.write_text(f"id,words\n1,{SECRET}\n", encoding="utf-8")
    result = runner.invoke(app, ["recode", str(no_text), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "no text column" in result.output and str(no_text) in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("framecode: error:")]
    assert len(errors) == 1 and SECRET not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    neither = runner.invoke(app, ["recode", "--runs-dir", str(tmp_path / "runs")])
    assert neither.exit_code == 2 and "--resume" in neither.output


def test_non_utf8_input_is_read_whole_by_ingest(tmp_path, codebook):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,program\nthe caf\xe9 data,DASH\n".encode("cp1252"))
    result = start_run([latin], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs")
    assert result.manifest["inputs"][0]["streamed"] is False
    assert [r["text"] for r in read_codings(result.run_dir)] == ["the café data"]


def test_resume_via_cli_refuses_unknown_run(tmp_path):
    result = runner.invoke(app, ["recode", "--resume", "nope", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'nope'" in result.output


@pytest.mark.slow
def test_sigkilled_run_resumes_without_recomputing_finished_chunks(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus.csv", 300)
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "FRAMECODE_TEST_CODER": "hash:0.1", "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "recode", str(corpus), "--runs-dir", str(runs_dir), "--chunk-size", "10"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            work = list(runs_dir.glob("*/work.sqlite"))
            if work and _committed(work[0].parent) >= 4:
                break
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    (run_dir,) = runs_dir.iterdir()
    before = chunk_sessions(run_dir)
    assert 4 <= len(before) < 30, "the run was not killed mid-way"
    assert read_manifest(run_dir)["status"] == "running"
    assert [s.status for s in list_runs(runs_dir)] == ["interrupted"]

    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    result = runner.invoke(app, ["recode", "--resume", run_dir.name, "--runs-dir", str(runs_dir)])
    assert result.exit_code == 0, result.output
    after = chunk_sessions(run_dir)
    assert len(after) == 30
    assert {k: v for k, v in after.items() if k in before} == before  # finished chunks kept as they were
    assert all(v == 2 for k, v in after.items() if k not in before)
    assert codings_count(run_dir) == (300, 300)
    assert [r["id"] for r in read_codings(run_dir)] == [f"q{i}" for i in range(300)]
    assert read_manifest(run_dir)["status"] == "complete"
    fresh = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(tmp_path / "fresh"), "--no-reuse"])
    assert fresh.exit_code == 0
    (fresh_dir,) = (tmp_path / "fresh").iterdir()
    assert (fresh_dir / "codings.parquet").read_bytes() == (run_dir / "codings.parquet").read_bytes()


def _committed(run_dir: Path) -> int:
    try:
        return len(chunk_sessions(run_dir))
    except Exception:  # noqa: BLE001 - the store may not have its tables yet
        return 0


def test_missing_input_is_named(tmp_path, codebook):
    with pytest.raises(InputError, match="missing.csv: input file not found"):
        start_run([tmp_path / "missing.csv"], coder=HashCoder(codebook), codebook=codebook, runs_dir=tmp_path / "runs")


# --------------------------------------------------------------------------- reviewers' decisions


def write_decisions(folder: Path, coder: str, decisions: list[tuple[str, str, list[str]]]) -> Path:
    """``labels/human/<coder>.jsonl`` with one (id, text, codes) decision per line."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{coder}.jsonl"
    path.write_text("".join(json.dumps({"id": q, "text": t, "codes": c, "coder": coder}) + "\n" for q, t, c in decisions),
                    encoding="utf-8")
    return path


def corpus_text(i: int) -> str:
    """The text of quote ``q{i}`` of :func:`write_corpus` (read exactly)."""
    return (f"testimonial {i} about sharing data " * (1 + i % 4)).strip()


def test_decisions_override_the_model_in_every_output_and_chunks_are_still_reused(tmp_path, codebook):
    from pipeline.coding import PERSON_COLUMNS

    corpus = write_corpus(tmp_path / "corpus.csv", 30)
    runs_dir = tmp_path / "runs"
    model_only = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir, chunk_size=10)
    model_rows = {r["id"]: r for r in read_codings(model_only.run_dir)}
    human = tmp_path / "human"
    decision_file = write_decisions(human, "Ana", [
        ("q1", corpus_text(1), ["impact_stories"]),
        ("q2", "a different text under the same id", []),  # text changed since: not applied
        ("q3", corpus_text(3), []),
    ])
    result = start_run([corpus], coder=HashCoder(codebook), codebook=codebook, runs_dir=runs_dir, chunk_size=10,
                       human_dir=human)
    assert result.chunks_reused == 3 and result.chunks_coded == 0  # the work store holds the model's codings
    manifest = read_manifest(result.run_dir)
    assert manifest["decisions"]["files"] == [{"path": str(decision_file.resolve()), "sha256": sha256_file(decision_file)}]
    assert manifest["counts"]["decided"] == 2 and model_only.manifest["counts"]["decided"] == 0
    rows = {r["id"]: r for r in read_codings(result.run_dir)}
    assert list(rows["q1"])[-len(PERSON_COLUMNS):] == list(PERSON_COLUMNS)
    assert (rows["q1"]["codes"], rows["q1"]["coder"], rows["q1"]["coded_by"]) == ("impact_stories", "Ana", "person")
    assert rows["q1"]["model_codes"] == model_rows["q1"]["codes"] and rows["q1"]["needs_review"] == "false"
    assert (rows["q3"]["codes"], rows["q3"]["coded_by"]) == ("", "person")
    for quote in ("q2", "q4"):
        assert (rows[quote]["codes"], rows[quote]["coder"], rows[quote]["coded_by"]) == (
            model_rows[quote]["codes"], "hash-coder", "model")
    parquet = pq.read_table(result.run_dir / "codings.parquet")
    assert parquet.column("codes").to_pylist() == [r["codes"] for r in rows.values()]
    assert parquet.column("coded_by").to_pylist().count("person") == 2
    def dash_with(run_dir: Path, code: str) -> int:
        by_program = csv.DictReader(open(run_dir / "frequencies_by_program.csv", encoding="utf-8"))
        return int(next(r for r in by_program if r["program"] == "DASH" and r["id"] == code)["n_with"])

    # the model gives q1 and q3 (both DASH) care_coordination; Ana removed it from both
    assert all("care_coordination" in model_rows[q]["codes"] for q in ("q1", "q3"))
    assert dash_with(result.run_dir, "care_coordination") == dash_with(model_only.run_dir, "care_coordination") - 2
    diff = runner.invoke(app, ["diff", model_only.run_id, result.run_id, "--runs-dir", str(runs_dir)])
    assert diff.exit_code == 0, diff.output
    changed = {q for q in ("q1", "q3") if model_rows[q]["codes"] != rows[q]["codes"]}
    assert f"quotes: {len(changed)} with changed codes" in diff.output and changed
    assert f"inputs: added {decision_file.resolve()} (decisions)" in diff.output


def test_resume_refuses_a_changed_decision_file_and_applies_the_pinned_one(tmp_path, codebook):
    corpus = write_corpus(tmp_path / "corpus.csv", 30)
    decision_file = write_decisions(tmp_path / "human", "Ana", [("q25", corpus_text(25), ["shared_goals"])])
    with pytest.raises(RuntimeError):
        start_run([corpus], coder=CrashingCoder(codebook, crash_on=2), codebook=codebook, runs_dir=tmp_path / "runs",
                  chunk_size=10, human_dir=tmp_path / "human")
    (run_dir,) = (tmp_path / "runs").iterdir()
    pinned = decision_file.read_bytes()
    write_decisions(tmp_path / "human", "Ana", [("q25", corpus_text(25), ["peer_learning"])])
    with pytest.raises(RunError, match="Ana.jsonl: decisions changed"):
        resume_run(run_dir, coder=HashCoder(codebook), codebook=codebook)
    decision_file.write_bytes(pinned)
    write_decisions(tmp_path / "human", "Zoe", [("q26", corpus_text(26), [])])  # not pinned: not applied
    resume_run(run_dir, coder=HashCoder(codebook), codebook=codebook)
    rows = {r["id"]: r for r in read_codings(run_dir)}
    assert (rows["q25"]["codes"], rows["q25"]["coder"]) == ("shared_goals", "Ana")
    assert rows["q26"]["coded_by"] == "model" and read_manifest(run_dir)["counts"]["decided"] == 1


def test_recode_cli_human_model_only_and_bad_decisions(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    corpus = write_corpus(tmp_path / "corpus.csv", 12)
    human = tmp_path / "human"
    write_decisions(human, "Ana", [("q0", corpus_text(0), ["cost_savings"])])
    runs_dir = tmp_path / "runs"
    for flag, decided in (("--model-only", "0"), ("--human", "1")):
        args = ["recode", str(corpus), "--runs-dir", str(runs_dir), "--human", str(human)]
        result = runner.invoke(app, args + (["--model-only"] if flag == "--model-only" else []))
        assert result.exit_code == 0, result.output
        assert f"12 quotes coded ({decided} decided by a person)" in result.output
    resumed = runner.invoke(app, ["recode", "--resume", "x", "--runs-dir", str(runs_dir), "--model-only"])
    assert resumed.exit_code == 2 and "--resume keeps the decisions" in resumed.output
    write_decisions(human, "Bo", [("q1", SECRET, ["no_such_code"])])
    bad = runner.invoke(app, ["recode", str(corpus), "--runs-dir", str(runs_dir), "--human", str(human)])
    assert bad.exit_code == 2 and "Bo.jsonl: quote q1: code 'no_such_code' is not in codebook" in bad.output
    assert SECRET not in bad.output and len(list(runs_dir.iterdir())) == 2
