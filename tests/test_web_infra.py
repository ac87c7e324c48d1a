"""The workbench's infrastructure: retraining from the app, PostgreSQL (a real server started
here), many coders at once over loopback, and sign-in throttling."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.progress import report_to, task
from pipeline.web import WebSettings, create_app
from pipeline.web.accounts import create_coder
from pipeline.web.db import Coder, DecisionRow
from pipeline.web.retrain import Retrainer
from test_web import FakeScorer, csrf, decide, fast_hashing, quotes_csv, sign_in, upload  # noqa: F401 - fixture

# --- a throwaway PostgreSQL server -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster in a temporary folder (Debian's postgresql; as user postgres when
    run as root); yields its base URL. Skipped, with the reason, where it cannot start."""
    if os.environ.get("FRAMECODE_TEST_POSTGRES"):
        yield os.environ["FRAMECODE_TEST_POSTGRES"].rsplit("/", 1)[0]
        return
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not binaries:
        pytest.skip("PostgreSQL test skipped: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
    bin_dir = binaries[-1].parent
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="framecode-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    port = _free_port()
    data = folder / "data"
    try:
        subprocess.run([*as_user, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True, timeout=60)
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-w", "-l", folder / "server.log", "-o",
                        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL test skipped: the server could not start ({type(exc).__name__}: {exc})")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_postgres_database(server_url: str) -> str:
    import psycopg

    name = f"framecode_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workbench.sqlite'}"
    return fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture()
def project(tmp_path):
    (tmp_path / "labels").mkdir()
    return tmp_path


def test_a_team_codes_exports_and_agrees_on_either_database(database_url, project):
    app = create_app(WebSettings(database_url=database_url, labels_dir=project / "labels", solo_coder="ana"), FakeScorer())
    assert app.state.engine.dialect.name == database_url.split(":")[0].split("+")[0]
    upload(TestClient(app), quotes_csv(project))
    create_coder(app.state.engine, "Ana", "correct horse", admin=True)
    create_coder(app.state.engine, "Ben", "correct horse")
    (ana, _), (ben, _) = sign_in(app, "Ana"), sign_in(app, "Ben")
    assert [decide(ana), decide(ana, codes=["timely_data"])] == ["q-review", "q-uncertain"]
    assert decide(ben, codes=["care_coordination"]) == "q-review"
    decide(ben)  # a second decision on the same quote replaces the first, never another coder's
    ben.post("/quote", data={"csrf_token": csrf(ben.get("/").text), "id": "q-review", "codes": ["timely_data"]})
    with Session(app.state.engine) as session:
        rows = session.execute(select(Coder.name, DecisionRow.codes).join(Coder, Coder.id == DecisionRow.coder_id)
                               .order_by(Coder.name, DecisionRow.quote_pk)).all()
    assert [tuple(r) for r in rows] == [("Ana", "cost_savings"), ("Ana", "timely_data"), ("Ben", "timely_data"), ("Ben", "timely_data")]
    assert "Between coders (Ana, Ben)" in ana.get("/agreement").text
    ana.post("/export", data={"csrf_token": csrf(ana.get("/").text)})
    assert sorted(p.name for p in (project / "labels" / "human").iterdir()) == ["Ana.jsonl", "Ben.jsonl"]


# --- retraining from the app -------------------------------------------------------------------


def fake_training(lines: list[dict], exit_code: int = 0, until: Path | None = None) -> list[str]:
    """A child process that prints these progress lines, waits for ``until`` to exist, and
    exits like training would."""
    script = ("import json, os, sys, time\nfor line in json.loads(sys.argv[1]): print(json.dumps(line), flush=True)\n"
              "while sys.argv[3] and not os.path.exists(sys.argv[3]): time.sleep(0.02)\nsys.exit(int(sys.argv[2]))")
    return [sys.executable, "-c", script, json.dumps(lines), str(exit_code), str(until or "")]


def retraining_app(project, command):
    scorer = FakeScorer()
    swapped = []

    def swap() -> str:
        swapped.append(True)
        scorer.model_id = "fake-model-2"
        return scorer.model_id

    app = create_app(WebSettings(database_url=f"sqlite:///{project / 'workbench.sqlite'}", labels_dir=project / "labels",
                                 solo_coder="ana"), scorer, Retrainer(command, swap))
    create_coder(app.state.engine, "Ana", "correct horse", admin=True)
    create_coder(app.state.engine, "Ben", "correct horse")
    return app, swapped


def test_retrain_exports_decisions_trains_in_the_background_and_swaps_the_model(project):
    steps = [{"step": "embedding", "done": 0, "total": 40}, {"step": "fitting", "done": 12, "total": 30}]
    finish = project / "finish"
    app, swapped = retraining_app(project, fake_training(steps, until=finish))
    ana, _ = sign_in(app, "Ana")
    upload(ana, quotes_csv(project))
    decide(ana)
    ben, _ = sign_in(app, "Ben")
    decide(ben, codes=["timely_data"])
    assert ben.get("/retrain").status_code == 403  # only an admin retrains
    page = ana.get("/retrain")
    assert "Serving model <code id=\"serving\">fake-model-1" in page.text and "Not started" in page.text

    response = ana.post("/retrain", data={"csrf_token": csrf(page.text)})
    assert response.url.path == "/retrain" and "Training" in response.text
    for _ in range(500):  # progress shows while the old model serves
        polled = ana.get("/retrain/status").json()
        if polled["step"] == "fitting":
            break
    assert (polled["state"], polled["done"], polled["total"], polled["serving"]) == ("running", 12, 30, "fake-model-1")
    assert decide(ana) == "q-uncertain"
    finish.touch()
    status = app.state.retrainer.wait(timeout=30)
    assert status.state == "done" and status.model_id == "fake-model-2" and swapped == [True]
    polled = ana.get("/retrain/status").json()
    assert polled["state"] == "done" and polled["serving"] == "fake-model-2"
    assert "now serving model fake-model-2" in ana.get("/retrain").text
    exported = {p.name: [json.loads(line)["codes"] for line in p.read_text().splitlines()]
                for p in (project / "labels" / "human").iterdir()}
    assert exported == {"Ana.jsonl": [["cost_savings"]], "Ben.jsonl": [["timely_data"]]}  # everyone's, before training
    decide(ana)
    with Session(app.state.engine) as session:  # decisions record the model that served them
        assert list(session.scalars(select(DecisionRow.model_id).order_by(DecisionRow.id))) == ["fake-model-1"] * 3 + ["fake-model-2"]


def test_a_failed_retraining_keeps_the_old_model_and_says_why(project):
    reason = "labels/human/Ana.jsonl, row 3: unknown code 'costs'; fix the code id"
    app, swapped = retraining_app(project, fake_training([{"step": "reading labels"}, {"error": reason}], exit_code=2))
    ana, _ = sign_in(app, "Ana")
    ana.post("/retrain", data={"csrf_token": csrf(ana.get("/retrain").text)})
    status = app.state.retrainer.wait(timeout=30)
    assert status.state == "failed" and swapped == []
    assert reason in status.message and "current model keeps serving" in status.message
    page = ana.get("/retrain").text
    assert "Failed" in page and reason.replace("'", "&#39;") in page and "fake-model-1" in page
    assert ana.post("/retrain", data={"csrf_token": "forged"}).status_code == 403


def test_retrain_trains_on_the_adjudications_made_since_the_last_export(project):
    app, _ = retraining_app(project, fake_training([]))
    (ana, _), (ben, _) = sign_in(app, "Ana"), sign_in(app, "Ben")
    upload(ana, quotes_csv(project))
    decide(ana, codes=["cost_savings"])
    decide(ben, codes=["timely_data"])
    page = ana.get("/adjudicate/next")
    ana.post("/adjudicate", data={"csrf_token": csrf(page.text), "id": "q-review", "codes": ["timely_data"]})
    ana.post("/retrain", data={"csrf_token": csrf(ana.get("/retrain").text)})
    assert app.state.retrainer.wait(timeout=30).state == "done"
    final = (project / "labels" / "human" / "adjudicated.jsonl").read_text().splitlines()
    assert [(json.loads(r)["id"], json.loads(r)["codes"]) for r in final] == [("q-review", ["timely_data"])]


def test_the_training_child_reports_a_bad_label_file_in_one_line(tmp_path):
    (tmp_path / "codebook.yaml").write_text("codes: [")
    result = subprocess.run([sys.executable, "-m", "pipeline.web.retrain", str(tmp_path / "codebook.yaml"),
                             str(tmp_path), str(tmp_path / "model")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1 and "codebook.yaml" in lines[0]["error"]
    assert not (tmp_path / "model").exists()


def test_progress_can_be_reported_to_a_callback():
    seen = []
    with report_to(lambda *event: seen.append(event)):
        with task("embedding", total=3, unit="texts") as bar:
            bar.advance(2)
            bar.describe("embedding sentences")
    assert seen == [("embedding", 0, 3), ("embedding", 2, 3), ("embedding sentences", 2, 3)]


# --- many coders at once ------------------------------------------------------------------------


def test_coders_at_once_over_loopback_lose_and_duplicate_no_decision(project):
    """benchmarks/web_load.py in small: 4 coders for 3 s against a real uvicorn server."""
    import threading

    import uvicorn

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import web_load

    url = f"sqlite:///{project / 'workbench.sqlite'}"
    app = create_app(WebSettings(database_url=url, labels_dir=project / "labels", solo_coder="ana"), FakeScorer())
    upload(TestClient(app), quotes_csv(project, rows=[(f"q{i}", f"Shared data saved money, time {i}.") for i in range(2000)]))
    names = [f"coder{i}" for i in range(4)]
    for name in names:
        create_coder(app.state.engine, name, web_load.PASSWORD)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        runs = web_load.run_load(f"http://127.0.0.1:{port}", names, seconds=3)
    finally:
        server.should_exit = True
        thread.join(10)
    result = web_load.summary(runs, 3)
    assert result["errors"] == 0 and result["ran_out"] == 0 and result["decisions"] >= 8, result
    assert all(len(r.saved) >= 2 for r in runs)  # every coder got through
    assert web_load.check_database(url, runs) == []
    with Session(app.state.engine) as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == result["decisions"]


# --- sign-in throttling -------------------------------------------------------------------------


def test_sign_in_is_refused_for_a_minute_after_a_few_wrong_passwords(project):
    from pipeline.web.throttle import SignInThrottle

    app = create_app(WebSettings(database_url=f"sqlite:///{project / 'workbench.sqlite'}", labels_dir=project / "labels"),
                     FakeScorer())
    now = [1000.0]
    app.state.throttle = SignInThrottle(per_account=3, per_address=5, clock=lambda: now[0])
    create_coder(app.state.engine, "Ana", "correct horse", admin=True)
    create_coder(app.state.engine, "Ben", "correct horse")
    assert [sign_in(app, "Ana", "wrong horse!")[1].status_code for _ in range(3)] == [401, 401, 401]
    _, response = sign_in(app, "Ana")  # even the right password waits: a guesser learns nothing
    assert response.status_code == 429 and "try again in 61 s" in response.text
    assert sign_in(app, "Ben")[1].status_code == 200  # another account from this address still signs in
    assert [sign_in(app, "Ben", "wrong horse!")[1].status_code for _ in range(3)] == [401, 401, 429]  # address: 5
    now[0] += 61
    assert sign_in(app, "Ana")[1].url.path == "/"
