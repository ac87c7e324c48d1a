"""Progress on long work: bars with rate and time left on a terminal, nothing in pipes or tests."""

from __future__ import annotations

import io
import logging
import re

import numpy as np
from rich.console import Console

from pipeline import progress
from pipeline.classify import SupervisedCoder
from pipeline.progress import progress_wanted, show_progress, task, track


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=140), buffer


def test_a_shown_task_draws_a_bar_with_count_rate_and_time_left():
    console, buffer = _terminal()
    with show_progress(True, console=console):
        with task("coding", total=4, unit="quotes") as bar:
            bar.advance(2)
            progress._display.get().refresh()  # draw a frame now rather than on the display's timer
    drawn = buffer.getvalue()
    assert "coding" in drawn
    assert "2/4" in drawn
    assert "quotes/s" in drawn
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert re.search(r"\d:\d\d:\d\d elapsed, +(\d+:\d\d:\d\d|-:--:--) left", plain)  # each time says which it is


def test_work_outside_a_shown_display_prints_nothing_and_logs_steps_at_debug(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="pipeline.progress"):
        assert list(track(iter([[1, 2], [3]]), "recoding", 3, size=len)) == [[1, 2], [3]]
        with show_progress(False), task("coding", total=2) as bar:
            bar.advance(2)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "━" not in captured.err and "quotes/s" not in captured.err  # at most the log lines, when a handler prints them
    assert [r.getMessage() for r in caplog.records] == ["recoding (3 quotes)", "coding (2 quotes)"]


def test_bars_only_on_an_interactive_stderr_and_never_with_quiet(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert progress_wanted(quiet=False)
    assert not progress_wanted(quiet=True)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert not progress_wanted(quiet=False)


def test_training_reports_each_fold_and_code_as_it_fits(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = (X[:, :2] > 0).astype(int)
    seen = []
    original = progress.Task.describe
    monkeypatch.setattr(progress.Task, "describe", lambda self, text: (seen.append(text), original(self, text)))
    with show_progress(True, console=_terminal()[0]):
        SupervisedCoder(cv=2).fit(X, Y, groups=np.arange(40) % 4)
    assert seen[:2] == ["fitting: fold 1/2, code 1/2", "fitting: fold 1/2, code 2/2"]
    assert "calibrating on out-of-fold scores" in seen
    assert seen[-1] == "fitting: all quotes, code 2/2"


def _csv(path, n: int):
    path.write_text("id,text\n" + "".join(f"q{i},Quote number {i} about shared care plans.\n" for i in range(n)), encoding="utf-8")
    return path


def test_recode_counts_its_rows_first_and_advances_to_them_chunk_by_chunk(tmp_path, monkeypatch):
    from rich.progress import Progress

    from pipeline.codebook import load_codebook
    from pipeline.runs import HashCoder, start_run

    bars = {}
    add_task, advance = Progress.add_task, Progress.advance

    def recording_add(self, description, *args, total=None, **fields):
        task_id = add_task(self, description, *args, total=total, **fields)
        bars[task_id] = [description, total, 0]
        return task_id

    def recording_advance(self, task_id, amount):
        bars[task_id][2] += amount
        advance(self, task_id, amount)

    monkeypatch.setattr(Progress, "add_task", recording_add)
    monkeypatch.setattr(Progress, "advance", recording_advance)
    book = load_codebook()
    with show_progress(True, console=_terminal()[0]):
        start_run([_csv(tmp_path / "corpus.csv", 7)], coder=HashCoder(book), codebook=book,
                  runs_dir=tmp_path / "runs", chunk_size=3)
    assert ["recoding", 7, 7] in bars.values()


def test_recode_in_a_pipe_prints_its_summary_and_no_bar(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    result = CliRunner().invoke(app, ["recode", str(_csv(tmp_path / "corpus.csv", 5)), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("run ") and "5 quotes coded" in result.stdout
    assert "quotes/s" not in result.output and "━" not in result.output
    assert [line for line in result.stderr.splitlines() if "hash test coder" not in line] == []


def test_verbose_logs_the_steps_never_a_quote(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    secret = "Patient Jane Roe, HIV positive, shared care plans"
    corpus = tmp_path / "corpus.csv"
    corpus.write_text(f"id,text\nq1,{secret}\nq2,Another quote about timely data.\n", encoding="utf-8")
    monkeypatch.setenv("FRAMECODE_TEST_CODER", "hash")
    result = CliRunner().invoke(app, ["--verbose", "recode", str(corpus), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "recoding (2 quotes)" not in result.stderr  # the total is counted only for a shown bar
    assert "recoding" in result.stderr
    assert "Jane Roe" not in result.output
