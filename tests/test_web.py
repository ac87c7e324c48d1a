"""The browser workbench (`framecode serve`) through its HTTP pages, with a fast stand-in model.

The real model and a real browser are exercised in tests/test_web_browser.py.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pipeline.codebook import load_codebook
from pipeline.coding import CodeResult, Example, TagResult
from pipeline.errors import InputError
from pipeline.tables import write_table
from pipeline.web import WebSettings, accounts, check_host, create_app
from pipeline.web.accounts import create_coder
from pipeline.web.db import Coder, DecisionRow
from pipeline.web.scoring import QuoteScore

runner = CliRunner()
CODEBOOK = load_codebook()
SECRET = "Maria told us about her diagnosis"
KEYWORDS = {"cost_savings": "money", "timely_data": "on time", "care_coordination": "care plan"}
QUOTES = [  # id, text: one quote per queue (random, needs review, uncertain)
    ("q-random", "The weather was fine that year."),
    ("q-review", f"{SECRET}. Shared data saved money. Maybe it did."),
    ("q-uncertain", "Records arrive on time now, somewhat."),
]


class FakeScorer:
    """Keyword coder: a code's keyword gives 0.9; 'maybe' puts cost_savings on its threshold."""

    codebook = CODEBOOK
    model_id = "fake-model-1"
    threshold = 0.5

    def probabilities(self, text: str) -> dict[str, float]:
        lower = text.lower()
        proba = {c: 0.9 if KEYWORDS.get(c, "\0") in lower else 0.05 for c in CODEBOOK.code_ids}
        if "maybe" in lower:
            proba["cost_savings"] = 0.52
        if "somewhat" in lower:
            proba["timely_data"] = 0.7
        return proba

    def score(self, texts):
        scores = []
        for text in texts:
            proba = self.probabilities(text)
            spread = max(1 - abs(p - self.threshold) / self.threshold for p in proba.values())
            scores.append(QuoteScore(tuple(sorted(c for c, p in proba.items() if p >= self.threshold)),
                                     any(abs(p - self.threshold) < 0.05 for p in proba.values()), spread))
        return scores

    def tag(self, text):
        proba = self.probabilities(text)
        sentences = [s.strip() + "." for s in text.split(".") if s.strip()]
        codes = []
        for code, p in sorted(proba.items(), key=lambda kv: -kv[1]):
            carrying = next((s for s in sentences if KEYWORDS.get(code, "\0") in s.lower()), sentences[0])
            applied = p >= self.threshold
            codes.append(CodeResult(code, CODEBOOK.code(code).name, p, self.threshold, applied, False, carrying,
                                    (Example("ev1", "An earlier coded quote about the same thing.", 0.61),) if applied else ()))
        return TagResult(tuple(codes), any(abs(p - self.threshold) < 0.05 for p in proba.values()), self.model_id)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    """Cheap argon2 parameters: the tests check the flows, not the hash's cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture()
def project(tmp_path):
    (tmp_path / "labels").mkdir()
    return tmp_path


@pytest.fixture()
def workbench(project):
    settings = WebSettings(database_url=f"sqlite:///{project / 'workbench.sqlite'}", labels_dir=project / "labels",
                           solo_coder="ana", upload_limit=200_000)
    return create_app(settings, FakeScorer())


def quotes_csv(folder, rows=QUOTES, name="quotes.csv"):
    path = folder / name
    write_table(path, [{"id": i, "text": t, "organization": "Org A"} for i, t in rows], ["id", "text", "organization"])
    return path


def csrf(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def upload(client, path):
    home = client.get("/")
    with open(path, "rb") as handle:
        return client.post("/upload", data={"csrf_token": csrf(home.text)}, files={"file": (path.name, handle)})


def decide(client, *, codes=None, action="save", memo=""):
    """Decide the next quote as the page proposes (or with ``codes``); returns its id."""
    page = client.get("/next")
    quote_id = re.search(r'name="id" value="([^"]+)"', page.text).group(1)
    suggested = re.search(r'name="suggested" value="([^"]*)"', page.text).group(1)
    ticked = re.findall(r'name="codes" value="([^"]+)"[^>]*checked', page.text)
    data = {"csrf_token": csrf(page.text), "id": quote_id, "suggested": suggested, "action": action, "memo": memo,
            "codes": ticked if codes is None else codes}
    response = client.post("/quote", data=data)
    assert response.status_code == 200, response.text  # followed the redirect to the next quote
    return quote_id


def test_solo_coder_codes_quotes_in_queue_order_and_exports_decisions(workbench, project):
    client = TestClient(workbench)
    response = upload(client, quotes_csv(project))
    assert "Added 3 quote(s)" in response.text

    page = client.get("/next")
    assert "Queue: <strong>needs_review</strong>" in page.text
    assert 'href="/retrain"' in page.text  # solo mode: every page links to Retrain, not only home
    assert '<mark title="carries: Savings and return on investment">Shared data saved money.' in page.text
    assert re.search(r'value="cost_savings"[^>]*checked', page.text)  # suggested code pre-ticked
    assert re.search(r'data-key="1"', page.text) and "Probability" in page.text and "0.52" in page.text
    assert "An earlier coded quote" in page.text  # nearest human-coded quotes
    assert CODEBOOK.rules[0][:40] in page.text  # definitions and rules one key away

    assert decide(client, memo="hedged claim") == "q-review"  # accepted as suggested
    assert "Queue: <strong>uncertain</strong>" in client.get("/next").text
    assert decide(client, codes=["timely_data", "care_coordination"]) == "q-uncertain"  # changed
    assert decide(client, action="skip") == "q-random"
    assert "You have decided every quote" in client.get("/next", follow_redirects=True).text

    home = client.get("/")
    assert "2 decided, 1 skipped, of 3 quote(s)" in home.text
    assert "Exported 2 decision(s)" in client.post("/export", data={"csrf_token": csrf(home.text)}).text
    rows = [json.loads(line) for line in (project / "labels" / "human" / "ana.jsonl").read_text().splitlines()]
    assert [(r["id"], r["codes"], r["decision"]) for r in rows] == [
        ("q-review", ["cost_savings"], "accept"),
        ("q-uncertain", ["care_coordination", "timely_data"], "change"),
    ]
    assert rows[0]["coder"] == "ana" and rows[0]["origin"] == "reviewed" and rows[0]["reviewer_note"] == "hedged claim"
    assert rows[0]["text"].startswith(SECRET) and rows[0]["reviewed_at"]
    with Session(workbench.state.engine) as session:
        assert {d.model_id for d in session.scalars(select(DecisionRow))} == {"fake-model-1"}


def test_a_form_without_the_csrf_token_is_refused_and_nothing_is_stored(workbench, project):
    client = TestClient(workbench)
    upload(client, quotes_csv(project))
    response = client.post("/quote", data={"csrf_token": "forged", "id": "q-review", "codes": ["cost_savings"]})
    assert response.status_code == 403 and "reload the page" in response.text
    assert client.post("/export", data={}).status_code in (403, 422)
    with Session(workbench.state.engine) as session:
        assert session.scalars(select(DecisionRow)).all() == []


def test_upload_problems_name_the_file_and_row_but_never_the_text(workbench, project):
    client = TestClient(workbench)
    response = upload(client, quotes_csv(project, rows=[("a", SECRET), ("a", "Another quote.")], name="interviews.csv"))
    assert response.status_code == 400
    assert re.search(r"interviews\.csv, row \d+, column &#39;id&#39;: duplicate id", response.text)
    assert SECRET not in response.text and "framecode-upload-" not in response.text
    assert "0 decided, 0 skipped, of 0 quote(s)" in client.get("/").text  # nothing was added


def test_an_upload_over_the_limit_is_refused(workbench, project):
    client = TestClient(workbench)
    response = upload(client, quotes_csv(project, rows=[(f"q{i}", "word " * 100) for i in range(500)]))
    assert response.status_code == 413 and "limit is 200000 bytes" in response.text


def test_the_server_log_names_paths_but_never_quote_text(workbench, project, caplog):
    client = TestClient(workbench)
    with caplog.at_level(logging.INFO, logger="framecode.web"):
        upload(client, quotes_csv(project))
        decide(client, memo="a private memo")
    assert "POST /upload 303" in caplog.text and "GET /quote 200" in caplog.text
    assert SECRET not in caplog.text and "private memo" not in caplog.text and "q-review" not in caplog.text


def sign_in(app, name, password="correct horse"):
    client = TestClient(app)
    form = client.get("/login")
    response = client.post("/login", data={"name": name, "password": password, "csrf_token": csrf(form.text)})
    return client, response


def test_two_coders_deciding_the_same_quote_at_once_both_keep_their_decision(workbench, project):
    solo = TestClient(workbench)
    upload(solo, quotes_csv(project))
    create_coder(workbench.state.engine, "Ana Diaz", "correct horse", admin=True)
    create_coder(workbench.state.engine, "Ben", "correct horse")
    assert solo.get("/").url.path == "/login"  # solo mode ended with the first account

    (ana, _), (ben, _) = sign_in(workbench, "Ana Diaz"), sign_in(workbench, "Ben")
    pages = {name: client.get("/next").text for name, client in (("ana", ana), ("ben", ben))}
    barrier = threading.Barrier(2)

    def post(client, page, codes):
        barrier.wait()
        return client.post("/quote", data={"csrf_token": csrf(page), "id": "q-review", "codes": codes,
                                           "suggested": "cost_savings"}).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(post, (ana, ben), (pages["ana"], pages["ben"]), (["cost_savings"], ["timely_data"])))
    assert statuses == [200, 200]
    with Session(workbench.state.engine) as session:
        decisions = session.execute(select(Coder.name, DecisionRow.codes, DecisionRow.action)
                                    .join(Coder, Coder.id == DecisionRow.coder_id).order_by(Coder.name)).all()
    assert [tuple(d) for d in decisions] == [("Ana Diaz", "cost_savings", "accept"), ("Ben", "timely_data", "change")]

    agreement = ana.get("/agreement")
    assert "Between coders (Ana Diaz, Ben)" in agreement.text and "Ana Diaz versus the model" in agreement.text
    ana.post("/export", data={"csrf_token": csrf(ana.get("/").text)})  # an admin exports everyone
    assert {p.name for p in (project / "labels" / "human").iterdir()} == {"Ana_Diaz.jsonl", "Ben.jsonl"}


def test_sign_in_rejects_a_wrong_password_and_only_admins_add_coders(workbench):
    create_coder(workbench.state.engine, "Ana", "correct horse", admin=True)
    create_coder(workbench.state.engine, "Ben", "correct horse")
    _, response = sign_in(workbench, "Ana", "wrong horse!")
    assert response.status_code == 401 and "wrong password" in response.text
    ben, response = sign_in(workbench, "Ben")
    assert response.url.path == "/" and "Ben" in response.text
    assert ben.get("/coders").status_code == 403
    ana, _ = sign_in(workbench, "Ana")
    page = ana.get("/coders")
    ana.post("/coders", data={"csrf_token": csrf(page.text), "name": "Cleo", "password": "another pass"})
    assert "Cleo" in ana.get("/coders").text
    with Session(workbench.state.engine) as session:
        stored = session.scalar(select(Coder.password_hash).where(Coder.name == "Cleo"))
    assert stored.startswith("$argon2") and "another pass" not in stored


def test_serve_refuses_a_non_local_host_until_an_admin_exists(project):
    from pipeline.cli import app as cli

    (project / "labels" / "codebook.yaml").write_text("placeholder")
    result = runner.invoke(cli, ["serve", str(project), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "no coder account exists" in result.output and "--create-admin" in result.output
    result = runner.invoke(cli, ["serve", str(project), "--create-admin", "Ana"], input="short\nshort\n")
    assert result.exit_code == 2 and "at least 8 characters" in result.output
    result = runner.invoke(cli, ["serve", str(project), "--create-admin", "Ana"], input="correct horse\ncorrect horse\n")
    assert result.exit_code == 0 and "created admin 'Ana'" in result.output
    assert (project / "workbench.sqlite").exists()
    check_host("0.0.0.0", accounts=True)  # allowed now: everyone signs in
    check_host("::1", accounts=False)


def test_a_form_without_its_token_or_with_a_bad_value_gets_a_page_not_json(workbench, project):
    client = TestClient(workbench)
    upload(client, quotes_csv(project))
    no_token = client.post("/quote", data={"id": "q-review", "codes": ["timely_data"]})
    assert no_token.status_code == 403 and "reload the page" in no_token.text and "text/html" in no_token.headers["content-type"]
    bad = client.post("/assign", data={"csrf_token": csrf(client.get("/").text), "overlap_percent": SECRET})
    assert bad.status_code == 400 and "overlap_percent" in bad.text and SECRET not in bad.text  # never echoed
    assert client.get("/quote").status_code == 400


def test_an_upload_named_dot_dot_is_refused_in_one_line(workbench, project):
    client = TestClient(workbench)
    response = client.post("/upload", data={"csrf_token": csrf(client.get("/").text)},
                           files={"file": ("..", b"id,text\nq1,Shared data saved money.\n")})
    assert response.status_code == 400 and "choose a file first" in response.text


def test_coder_names_differing_only_in_case_are_refused(workbench):
    create_coder(workbench.state.engine, "Ben", "correct horse")
    with pytest.raises(InputError, match="taken"):
        create_coder(workbench.state.engine, "ben", "correct horse")


def test_the_agreement_page_shows_the_intervals_it_promises(workbench, project):
    client = TestClient(workbench)
    upload(client, quotes_csv(project))
    for codes in (None, ["timely_data"], ["cost_savings"]):
        decide(client, codes=codes)
    page = client.get("/agreement").text
    assert "95% interval" in page and re.search(r'<span class="ci">\[-?\d\.\d\d, -?\d\.\d\d\]</span>', page)
