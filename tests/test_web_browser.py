"""End to end in a real browser: Debian's chromium driven by Playwright, the shipped model
served by uvicorn on loopback. Two coders sign in, code quotes with the keyboard alone,
double-code a quote, and export; the database and labels/human/ are checked afterwards.

Screenshots go to a temporary folder, or to docs/screenshots/ when FRAMECODE_SCREENSHOTS=docs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.codebook import load_codebook
from pipeline.coding import default_coder
from pipeline.paths import PROJECT_ROOT
from pipeline.tables import write_table
from pipeline.web import ModelScorer, WebSettings, accounts, create_app
from pipeline.web.db import Coder, DecisionRow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow
QUOTES = [
    ("w1", "We were skeptical at first. Then we showed the county commissioners a map of overdose calls "
           "next to our treatment beds, and they funded two new sites."),
    ("w2", "Shared care plans keep every provider in the loop, so nobody repeats an intake."),
    ("w3", "Our board asked what it would cost. We showed the avoided emergency visits and the savings paid for the staff."),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The workbench with the shipped model, served on a free loopback port in a thread."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    import uvicorn

    project = tmp_path_factory.mktemp("project")
    (project / "labels").mkdir()
    settings = WebSettings(database_url=f"sqlite:///{project / 'workbench.sqlite'}", labels_dir=project / "labels")
    scorer = ModelScorer(default_coder(load_codebook()))
    scorer.warm()
    app = create_app(settings, scorer)
    hasher, accounts._hasher = accounts._hasher, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # fast test
    accounts.create_coder(app.state.engine, "Ana", "correct horse", admin=True)
    accounts.create_coder(app.state.engine, "Ben", "battery staple")
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield {"url": f"http://127.0.0.1:{port}", "app": app, "project": project, "browser": browser}
        browser.close()
    uv.should_exit = True
    thread.join(timeout=10)
    accounts._hasher = hasher


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("FRAMECODE_SCREENSHOTS") == "docs":
        folder = PROJECT_ROOT / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def sign_in(server, name, password):
    context = server["browser"].new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server["url"] + "/")
    assert page.url.endswith("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_url(server["url"] + "/")
    return page


def test_two_coders_code_with_the_keyboard_and_export(server, shots):
    quotes = server["project"] / "testimonials.csv"
    write_table(quotes, [{"id": i, "text": t, "organization": "Org A"} for i, t in QUOTES], ["id", "text", "organization"])

    ana = sign_in(server, "Ana", "correct horse")
    ana.screenshot(path=shots / "home.png", full_page=True)
    ana.set_input_files("input[name=file]", str(quotes))
    ana.click("text=Upload and score")
    ana.wait_for_selector("text=Added 3 quote(s)")

    ana.click("text=Code the next quote")
    ana.wait_for_selector("#decide")
    first = ana.input_value("input[name=id]")
    assert ana.locator(".queue").inner_text().startswith("Queue:")
    assert ana.locator("blockquote mark").count() >= 1  # the carrying sentence is highlighted
    assert ana.locator(".codes tr").count() == 1 + len(load_codebook().codes)
    ana.screenshot(path=shots / "quote.png", full_page=True)
    ana.keyboard.press("d")
    assert ana.locator("#definitions").is_visible()
    ana.screenshot(path=shots / "definitions.png", full_page=True)
    ana.keyboard.press("d")
    ana.keyboard.press("Enter")  # accept the suggestion: one keystroke
    ana.wait_for_function(f"document.querySelector('input[name=id]') && document.querySelector('input[name=id]').value !== '{first}'")
    second = ana.input_value("input[name=id]")
    box = ana.locator('input[data-key="2"]')
    before = box.is_checked()
    ana.keyboard.press("2")  # toggle code 2
    assert box.is_checked() != before
    ana.keyboard.press("n")
    ana.keyboard.type("second code is a stretch")
    ana.keyboard.press("Enter")  # Enter in the memo saves too
    ana.wait_for_function(f"document.querySelector('input[name=id]') && document.querySelector('input[name=id]').value !== '{second}'")
    ana.keyboard.press("s")  # skip the third
    ana.wait_for_selector("text=You have decided every quote")

    ben = sign_in(server, "Ben", "battery staple")
    ben.click("text=Code the next quote")
    ben.wait_for_selector("#decide")
    assert ben.input_value("input[name=id]") == first  # same queue order: double coding
    ben.keyboard.press("Enter")
    ben.wait_for_function(f"document.querySelector('input[name=id]').value !== '{first}'")

    ana.goto(server["url"] + "/agreement")
    assert "Between coders (Ana, Ben)" in ana.content()
    ana.screenshot(path=shots / "agreement.png", full_page=True)
    ana.goto(server["url"] + "/")
    ana.click("text=Export decisions")
    ana.wait_for_selector("text=Exported 3 decision(s)")

    with Session(server["app"].state.engine) as session:
        rows = session.execute(select(Coder.name, DecisionRow.action, DecisionRow.memo, DecisionRow.model_id)
                               .join(Coder, Coder.id == DecisionRow.coder_id).order_by(DecisionRow.id)).all()
    assert [(r.name, r.action) for r in rows][:3] == [("Ana", "accept"), ("Ana", "change"), ("Ana", "skip")]
    assert rows[1].memo == "second code is a stretch" and rows[3].name == "Ben"
    assert {r.model_id for r in rows} == {server["app"].state.scorer.model_id}
    human = server["project"] / "labels" / "human"
    ana_rows = [json.loads(line) for line in (human / "Ana.jsonl").read_text().splitlines()]
    assert {r["id"]: r["decision"] for r in ana_rows} == {first: "accept", second: "change"}
    assert [json.loads(line)["id"] for line in (human / "Ben.jsonl").read_text().splitlines()] == [first]


def test_adjudicate_where_coders_differ_and_assign_with_an_overlap(server, shots):
    """Continues from the test above: Ben accepts the suggestion on the quote Ana changed."""
    ben = sign_in(server, "Ben", "battery staple")
    ben.click("text=Code the next quote")
    ben.wait_for_selector("#decide")
    differ = ben.input_value("input[name=id]")
    ben.keyboard.press("Enter")
    ben.wait_for_function(f"!document.querySelector('input[name=id]') || document.querySelector('input[name=id]').value !== '{differ}'")

    ana = sign_in(server, "Ana", "correct horse")
    ana.click("text=Adjudicate")
    ana.click("text=Adjudicate the next quote")
    ana.wait_for_selector("#decide")
    assert ana.input_value("input[name=id]") == differ
    assert ana.locator(".side .coder").count() == 3  # Ana, Ben and the model side by side
    ana.screenshot(path=shots / "adjudicate.png", full_page=True)
    ana.keyboard.press("1")  # toggle the first code, then save with Enter
    ana.keyboard.press("Enter")
    ana.wait_for_selector("text=0 still open")
    ana.goto(server["url"] + "/")
    ana.click("text=Export decisions")
    ana.wait_for_selector("text=1 adjudication(s)")
    [row] = [json.loads(line) for line in (server["project"] / "labels" / "human" / "adjudicated.jsonl").read_text().splitlines()]
    assert (row["id"], row["coder"], row["adjudicator"], row["coders"]) == (differ, "adjudicated", "Ana", ["Ana", "Ben"])

    ana.goto(server["url"] + "/assign")
    ana.fill("input[name=overlap_percent]", "34")
    ana.click("button:text('Assign')")
    ana.wait_for_selector("text=Assigned 3 quote(s), 1 of them to two coders")
    ana.screenshot(path=shots / "assign.png", full_page=True)


def test_retrain_shows_progress_and_swaps_the_served_model(server, shots):
    """Continues from the tests above (Ana has decisions to export). A stand-in training child
    (the real one takes ~40 s), the real model reload."""
    from pipeline.paths import DEFAULT_MODEL_DIR
    from pipeline.web.retrain import Retrainer
    from test_web_infra import fake_training

    app, finish = server["app"], server["project"] / "finish-training"
    steps = [{"step": "embedding", "done": 300, "total": 1452}, {"step": "fitting: fold 2/5", "done": 12, "total": 54}]
    app.state.retrainer = Retrainer(fake_training(steps, until=finish), swap=lambda: app.state.scorer.reload(DEFAULT_MODEL_DIR))
    ana = sign_in(server, "Ana", "correct horse")
    ana.click("nav >> text=Retrain")
    ana.click("text=Export decisions and retrain")
    ana.wait_for_selector("text=fitting: fold 2/5 (12 of 54)")  # the page follows the child's progress
    ana.screenshot(path=shots / "retrain.png", full_page=True)
    finish.touch()
    ana.wait_for_selector("text=now serving model", timeout=60_000)
    assert ana.locator("#state").inner_text() == "Done"
    assert ana.locator("#serving").inner_text() == app.state.scorer.model_id
    assert (server["project"] / "labels" / "human" / "Ana.jsonl").exists()  # exported before training
