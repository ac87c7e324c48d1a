"""The workbench's team and growth features through its HTTP pages (stand-in model): pasting
testimonials, assignments with an overlap share, adjudication and its export, and the
likely-positives queue of a code with few labels."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.labels import load_labels
from pipeline.review import write_person_codings
from pipeline.web import WebSettings, create_app
from pipeline.web.accounts import create_coder
from pipeline.web.db import Adjudication, Coder
from pipeline.web.growing import likely_scores
from pipeline.web.team_pages import split_pasted
from test_web import CODEBOOK, FakeScorer, csrf, decide, fast_hashing, project, quotes_csv, sign_in, upload  # noqa: F401 - fixtures


class GrowingScorer(FakeScorer):
    """The stand-in model, plus how likely each text carries a code (its keyword probability)."""

    def likely(self, texts, code_ids):
        return np.array([[self.probabilities(t)[c] + 0.01 * len(t) / 1000 for c in code_ids] for t in texts])


@pytest.fixture()
def workbench(project):
    settings = WebSettings(database_url=f"sqlite:///{project / 'workbench.sqlite'}", labels_dir=project / "labels",
                           solo_coder="solo")
    return create_app(settings, GrowingScorer())


def paste(client, text, organization=""):
    return client.post("/paste", data={"csrf_token": csrf(client.get("/").text), "text": text,
                                       "organization": organization})


def test_pasted_testimonials_are_split_checked_and_queued_once(workbench):
    assert split_pasted("First one.\n\nSecond,\nwrapped line.\n  \n\nThird.") == [
        "First one.", "Second, wrapped line.", "Third."]
    assert split_pasted("One per line.\r\nAnother.\n\n") == ["One per line.", "Another."]

    client = TestClient(workbench)
    assert "Added 2 quote(s)" in paste(client, "Shared data saved money.\nRecords arrive on time now.", "Org P").text
    again = paste(client, "Shared data saved money.\nA third testimonial.")
    assert "Added 1 quote(s); 1 were already here" in again.text  # the id comes from the text
    page = client.get("/next", follow_redirects=True)
    assert "Org P" in page.text and "Queue:" in page.text
    empty = paste(client, "  \n \n")
    assert empty.status_code == 400 and "no testimonial found" in empty.text


def two_coders(workbench, project, rows):
    solo = TestClient(workbench)
    upload(solo, quotes_csv(project, rows=rows))
    create_coder(workbench.state.engine, "ana", "correct horse", admin=True)
    create_coder(workbench.state.engine, "ben", "correct horse")
    create_coder(workbench.state.engine, "cleo", "correct horse")
    return sign_in(workbench, "ana")[0], sign_in(workbench, "ben")[0], sign_in(workbench, "cleo")[0]


def test_assignments_split_the_quotes_with_an_overlap_share_and_each_queue_serves_its_own(workbench, project):
    rows = [(f"q{i:02d}", f"Testimonial number {i} about shared data.") for i in range(10)]
    ana, ben, cleo = two_coders(workbench, project, rows)
    page = ana.get("/assign")
    refused = ana.post("/assign", data={"csrf_token": csrf(page.text), "coders": ["ben"], "overlap_percent": "20"})
    assert refused.status_code == 400 and "needs two or more coders" in refused.text
    assert ben.get("/assign").status_code == 403

    done = ana.post("/assign", data={"csrf_token": csrf(page.text), "coders": ["ben", "cleo"], "overlap_percent": "20"})
    assert "Assigned 10 quote(s), 2 of them to two coders" in done.text
    assert re.search(r"<td>ben</td><td class=\"num\">6</td><td class=\"num\">2</td>", done.text)
    assert "0 decided, 0 skipped, of 6 quote(s) assigned to you" in ben.get("/").text
    assert "none to you yet" in ana.get("/").text  # the admin has no assignment

    served = {}
    for name, client in (("ben", ben), ("cleo", cleo)):
        notes = []
        while (page := client.get("/next", follow_redirects=True)) and 'name="id"' in page.text:
            notes.append(re.search(r"assigned to you[^<·]*", page.text).group(0).strip())
            served.setdefault(name, set()).add(decide(client))
        assert sorted(set(notes)) == ["assigned to you alone", f"assigned to you and {'cleo' if name == 'ben' else 'ben'} (double coding)"]
    assert len(served["ben"]) == len(served["cleo"]) == 6 and len(served["ben"] & served["cleo"]) == 2
    assert served["ben"] | served["cleo"] == {r[0] for r in rows}

    upload(ana, quotes_csv(project, rows=[("q-late", "Added after the assignment.")], name="late.csv"))
    assert "1 quote(s) are not assigned to anyone yet" in ana.get("/").text
    assert "You have decided every quote" in ben.get("/next", follow_redirects=True).text  # not served until assigned


def test_an_adjudicator_picks_final_codes_where_coders_differ_and_they_win_in_training(workbench, project):
    ana, ben, cleo = two_coders(workbench, project, [("q-review", "Shared data saved money. Maybe it did."),
                                                     ("q-same", "Records arrive on time now.")])
    for client, codes, memo in ((ben, ["cost_savings"], "clear saving"), (cleo, ["timely_data"], "about speed")):
        decide(client, codes=codes, memo=memo)  # q-review: they differ
        decide(client)  # q-same: both accept the suggestion
    assert ben.get("/adjudicate").status_code == 403

    listing = ana.get("/adjudicate")
    assert "1 still open" in listing.text and "q-same" not in listing.text
    page = ana.get("/adjudicate/next", follow_redirects=True)
    assert "clear saving" in page.text and "about speed" in page.text and "<h3>model</h3>" in page.text
    assert not re.search(r'value="cost_savings"[^>]*checked', page.text)  # no majority: nothing pre-ticked
    ana.post("/adjudicate", data={"csrf_token": csrf(page.text), "id": "q-review",
                                  "codes": ["cost_savings", "timely_data"], "memo": "both hold"})
    assert "0 still open" in ana.get("/adjudicate").text
    with Session(workbench.state.engine) as session:
        stored = session.execute(select(Adjudication, Coder.name).join(Coder, Coder.id == Adjudication.coder_id)).one()
    assert (stored[1], stored[0].codes, stored[0].model_id) == ("ana", "cost_savings;timely_data", "fake-model-1")

    coders = ana.get("/coders")  # an admin grants the adjudicator role
    ana.post("/coders/adjudicator", data={"csrf_token": csrf(coders.text), "name": "ben", "allowed": "true"})
    ben = sign_in(workbench, "ben")[0]
    assert "both hold" in ben.get("/adjudicate/quote", params={"id": "q-review"}).text
    assert ben.get("/adjudicate/quote", params={"id": "q-same"}).status_code == 404

    exported = ana.post("/export", data={"csrf_token": csrf(ana.get("/").text)})
    assert "Exported 4 decision(s) and 1 adjudication(s)" in exported.text
    human = project / "labels" / "human"
    [row] = [json.loads(line) for line in (human / "adjudicated.jsonl").read_text().splitlines()]
    assert (row["id"], row["codes"], row["coder"], row["adjudicator"], row["coders"], row["model_id"]) == (
        "q-review", ["cost_savings", "timely_data"], "adjudicated", "ana", ["ben", "cleo"], "fake-model-1")
    # "adjudicated.jsonl" sorts before "ben.jsonl" and "cleo.jsonl", yet the adjudication wins
    trained_on = {q.id: (q.codes, q.coder) for q in load_labels(CODEBOOK, project / "labels").quotes}
    assert trained_on["q-review"] == (("cost_savings", "timely_data"), "adjudicated")


def test_a_code_with_few_labels_gets_a_queue_of_its_likely_positives(workbench, project):
    others = [c for c in CODEBOOK.code_ids if c != "care_coordination"]
    (project / "labels" / "real_statements.jsonl").write_text("".join(
        json.dumps({"id": f"l{i}", "text": f"labelled {i}", "labels": others, "source_url": "s"}) + "\n" for i in range(20)
    ) + json.dumps({"id": "l-cc", "text": "a care plan", "labels": ["care_coordination"], "source_url": "s"}) + "\n")
    client = TestClient(workbench)
    upload(client, quotes_csv(project, rows=[("plain", "The weather was fine that year."),
                                             ("short", "A shared care plan."),
                                             ("long", "Every provider follows one care plan, so nobody repeats an intake.")]))
    home = client.get("/")
    growing = home.text[home.text.index('id="growing"'):]
    assert "/likely?code=care_coordination" in growing and "cost_savings" not in growing
    assert re.search(r"<code>care_coordination</code></td><td class=\"num\">1</td>", growing)

    first = client.get("/likely", params={"code": "care_coordination"}, follow_redirects=True)
    assert "Queue: <strong>likely positives: " in first.text and 'name="from_code" value="care_coordination"' in first.text
    ids = [decide_likely(client, first.text)]
    while (page := client.get("/likely", params={"code": "care_coordination"}, follow_redirects=True)) and 'name="id"' in page.text:
        ids.append(decide_likely(client, page.text))
    assert ids == ["long", "short", "plain"]  # most likely first
    assert "every quote in that likely-positives queue" in page.text
    assert client.get("/likely", params={"code": "no_such_code"}).status_code == 400


def decide_likely(client, page_text):
    quote_id = re.search(r'name="id" value="([^"]+)"', page_text).group(1)
    response = client.post("/quote", data={"csrf_token": csrf(page_text), "id": quote_id, "codes": ["care_coordination"],
                                           "from_code": "care_coordination"}, follow_redirects=False)
    assert response.headers["location"] == "/likely?code=care_coordination"  # stays in the same queue
    return quote_id


def test_a_code_the_model_lacks_is_ranked_by_similarity_to_its_definition():
    topics = {"teamwork": [0.9, 0.1], "weather": [0.0, 1.0]}  # anything else (the code's text): [1, 0]

    class Encoder:
        def encode(self, texts):
            return np.array([next((v for k, v in topics.items() if k in t), [1.0, 0.0]) for t in texts], dtype=np.float32)

    old_model = SimpleNamespace(code_ids=("cost_savings",), get_encoder=lambda: Encoder(),
                                predict_proba=lambda texts: np.full((len(texts), 1), 0.3))
    scores = likely_scores(old_model, CODEBOOK, ["rainy weather", "teamwork across clinics"], ["care_coordination", "cost_savings"])
    assert scores[1, 0] > 0.9 > 0.1 > scores[0, 0]  # similarity where the model has no column
    assert scores[:, 1].tolist() == [0.3, 0.3]  # the model's probability where it has one


def test_the_workbench_export_and_the_review_import_share_one_writer(tmp_path):
    labels = tmp_path / "labels"
    first = write_person_codings(labels, "Ana", [{"id": "q1", "codes": ["a"], "coder": "Ana"},
                                                 {"id": "q2", "codes": [], "coder": "Ana"}])
    second = write_person_codings(labels, "Ana", [{"id": "q2", "codes": ["b"], "coder": "Ana"},
                                                  {"id": "q3", "codes": [], "coder": "Ana"}])
    assert (first.added, second.added, second.updated, second.kept) == (2, 1, 1, 1)
    rows = [json.loads(line) for line in second.path.read_text().splitlines()]
    assert [(r["id"], r["codes"]) for r in rows] == [("q1", ["a"]), ("q2", ["b"]), ("q3", [])]
    (labels / "human" / "Ben.jsonl").write_text('{"id": "q1", "codes": [], "coder": "Bea"}\n')
    with pytest.raises(Exception, match="holds codings by Bea"):
        write_person_codings(labels, "Ben", [{"id": "q9", "codes": [], "coder": "Ben"}])
