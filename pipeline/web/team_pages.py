"""The workbench's team and growth pages: pasting testimonials, assignments (admin),
adjudication (admin or adjudicator) and the likely-positives queue of a growing code."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote as urlquote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..errors import FramecodeError, InputError
from ..ingest import read_quotes
from . import growing, store, team
from .pages import Csrf, User, _redirect, check_csrf, page

router = APIRouter()
PASTE_SOURCE = "pasted in the workbench"
PASTE_LIMIT = 5000  # testimonials per paste


def split_pasted(text: str) -> list[str]:
    """Testimonials in pasted text: blank-line separated paragraphs (lines within one joined
    by a space) when the text has a blank line, else one per line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if re.search(r"\n[ \t]*\n", text.strip()):
        parts = [" ".join(line.strip() for line in block.splitlines()) for block in re.split(r"\n[ \t]*\n", text)]
    else:
        parts = text.split("\n")
    return [p.strip() for p in parts if p.strip()]


@router.post("/paste")
def paste(request: Request, user: User, csrf_token: Csrf, text: Annotated[str, Form()] = "",
          organization: Annotated[str, Form()] = "") -> RedirectResponse:
    """Pasted testimonials go through the same reader and checks as an upload (row N is the
    Nth testimonial); the id is derived from the text, so pasting a quote again adds nothing."""
    check_csrf(user, csrf_token)
    pieces = split_pasted(text)
    if not pieces:
        raise InputError("paste: no testimonial found; paste one per line, or separate them with a blank line")
    if len(pieces) > PASTE_LIMIT:
        raise InputError(f"paste: {len(pieces)} testimonials; paste at most {PASTE_LIMIT} at once, or upload a file")
    with tempfile.TemporaryDirectory(prefix="framecode-paste-") as folder:
        path = Path(folder) / "pasted.jsonl"
        path.write_text("".join(json.dumps({"text": t, "organization": organization.strip(), "source": PASTE_SOURCE},
                                           ensure_ascii=False) + "\n" for t in pieces), encoding="utf-8")
        try:
            quotes = read_quotes([path]).quotes
        except FramecodeError as exc:  # name the paste, not the temporary file
            raise InputError(str(exc).replace(str(path), "pasted text")) from None
    scorer = request.app.state.scorer
    result = store.add_quotes(request.app.state.engine, quotes, scorer.score([q.text for q in quotes]), scorer.model_id)
    return _redirect(f"/?added={result.added}&known={result.already_there}")


# --- a growing code's likely positives --------------------------------------------------------------


@router.get("/likely")
def likely_next(request: Request, user: User, code: str) -> RedirectResponse:
    """The next quote of ``code``'s likely-positives queue (scoring any quote not yet scored)."""
    scorer = request.app.state.scorer
    if code not in scorer.codebook.code_ids:
        raise InputError(f"likely positives: no code {code!r} in the codebook")
    engine = request.app.state.engine
    growing.fill_likely(engine, scorer, code)
    quote_id = growing.next_likely(engine, user.coder_id, code)
    if quote_id is None:
        return _redirect("/?likely_done=1")
    return _redirect(f"/quote?id={urlquote(quote_id, safe='')}&code={urlquote(code, safe='')}")


# --- assignments -------------------------------------------------------------------------------


@router.get("/assign")
def assign_page(request: Request, user: User, assigned: int | None = None, double: int | None = None) -> HTMLResponse:
    _admin(user)
    from . import accounts

    engine = request.app.state.engine
    return page(request, "assign.html", user, coders=[c[0] for c in accounts.list_coders(engine)],
                summary=team.assignment_summary(engine), assigned=assigned, double=double)


@router.post("/assign")
def assign(request: Request, user: User, csrf_token: Csrf, coders: Annotated[list[str], Form()] = [],  # noqa: B006
           overlap_percent: Annotated[float, Form()] = 20) -> RedirectResponse:
    _admin(user)
    check_csrf(user, csrf_token)
    result = team.assign_quotes(request.app.state.engine, coders, overlap_percent / 100)
    return _redirect(f"/assign?assigned={result.quotes}&double={result.double}")


# --- adjudication --------------------------------------------------------------------------------


@router.get("/adjudicate")
def adjudicate_list(request: Request, user: User) -> HTMLResponse:
    _adjudicator(user)
    items = team.disagreements(request.app.state.engine)
    return page(request, "adjudicate_list.html", user, items=items, open=sum(d.final is None for d in items),
                names={c.id: c.name for c in request.app.state.scorer.codebook.codes})


@router.get("/adjudicate/next")
def adjudicate_next(request: Request, user: User) -> RedirectResponse:
    _adjudicator(user)
    open_items = [d for d in team.disagreements(request.app.state.engine) if d.final is None]
    if not open_items:
        return _redirect("/adjudicate")
    return _redirect(f"/adjudicate/quote?id={urlquote(open_items[0].quote_id, safe='')}")


@router.get("/adjudicate/quote")
def adjudicate_quote(request: Request, user: User, id: str) -> HTMLResponse:
    _adjudicator(user)
    found = team.disagreements(request.app.state.engine, id)
    if not found:
        raise HTTPException(404, f"The coders do not disagree on quote {id!r} (or it is not in the workbench).")
    item = found[0]
    scorer = request.app.state.scorer
    result = scorer.tag(item.text)
    by_code = {c.code: c for c in result.codes}
    chosen = item.final if item.final is not None else _majority(item)
    rows = [{"key": str(i + 1) if i < 9 else "", "id": c.id, "name": c.name, "probability": by_code[c.id].probability,
             "threshold": by_code[c.id].threshold, "model": by_code[c.id].applied, "checked": c.id in chosen,
             "coders": [c.id in d.codes for d in item.decisions]}
            for i, c in enumerate(scorer.codebook.codes)]
    return page(request, "adjudicate.html", user, item=item, rows=rows, model_id=result.model_id)


@router.post("/adjudicate")
def adjudicate(request: Request, user: User, csrf_token: Csrf, id: Annotated[str, Form()],
               codes: Annotated[list[str], Form()] = [], memo: Annotated[str, Form()] = "") -> RedirectResponse:  # noqa: B006
    """Store the final codes (one transaction) and go to the next open disagreement."""
    _adjudicator(user)
    check_csrf(user, csrf_token)
    scorer = request.app.state.scorer
    team.record_adjudication(request.app.state.engine, id, user.coder_id, codes=codes, memo=memo,
                             model_id=scorer.model_id, known_codes=scorer.codebook.code_ids)
    return _redirect("/adjudicate/next")


@router.post("/coders/adjudicator")
def set_adjudicator(request: Request, user: User, csrf_token: Csrf, name: Annotated[str, Form()],
                    allowed: Annotated[bool, Form()] = False) -> RedirectResponse:
    _admin(user)
    check_csrf(user, csrf_token)
    team.set_adjudicator(request.app.state.engine, name, allowed)
    return _redirect("/coders")


def _majority(item: team.Disagreement) -> set[str]:
    """Codes more than half the coders chose: the starting point the adjudicator edits."""
    counts: dict[str, int] = {}
    for d in item.decisions:
        for code in d.codes:
            counts[code] = counts.get(code, 0) + 1
    return {c for c, n in counts.items() if 2 * n > len(item.decisions)}


def _admin(user) -> None:
    if not user.is_admin:
        raise HTTPException(403, "Only an admin can assign quotes and grant roles.")


def _adjudicator(user) -> None:
    if not user.may_adjudicate:
        raise HTTPException(403, "Only an admin or a coder with the adjudicator role can adjudicate; ask an admin.")
