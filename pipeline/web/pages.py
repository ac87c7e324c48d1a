"""The workbench's pages: sign-in, home (upload, progress, export), coding a quote,
agreement, and coders (admin). Every form carries a CSRF token checked on POST."""

from __future__ import annotations

import hmac
import secrets
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote as urlquote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from ..coding import TagResult
from ..columns import ReadOptions
from ..errors import FramecodeError, InputError
from ..ingest import read_quotes
from . import accounts, growing, store, team
from .accounts import SignedIn
from .app import error_page, templates
from .db import QUEUES

router = APIRouter()
SESSION_COOKIE = "framecode_session"
LOGIN_COOKIE = "framecode_login"
QUEUE_LABELS = {
    "needs_review": "needs review: the model is unsure about at least one code",
    "uncertain": "most uncertain: a code's probability is close to its threshold",
    "random": "random sample: keeps the corrected shares and agreement unbiased",
}
LIKELY_LABEL = "a new code with few labels: the quotes most likely to carry it first"
DIGIT_KEYS = 9


def current(request: Request) -> SignedIn:
    """The signed-in coder, or a redirect to the sign-in page."""
    user = accounts.signed_in(request.app.state.engine, request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise HTTPException(303, headers={"Location": "/login"})
    return user


User = Annotated[SignedIn, Depends(current)]
Csrf = Annotated[str, Form()]


def check_csrf(user: SignedIn, token: str) -> None:
    if not hmac.compare_digest(user.csrf, token):
        raise HTTPException(403, "The form expired or came from another site; reload the page and try again.")


def page(request: Request, name: str, user: SignedIn | None, status: int = 200, **context) -> HTMLResponse:
    """A page for ``user``; ``solo`` (no accounts: the Retrain link for everyone) unless given."""
    context.setdefault("solo", user is not None and not accounts.has_accounts(request.app.state.engine))
    return templates.TemplateResponse(request, name, {"user": user, **context}, status_code=status)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _signed_in_redirect(request: Request, coder_id: int, to: str = "/") -> RedirectResponse:
    response = _redirect(to)
    token = accounts.start_sign_in(request.app.state.engine, coder_id)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.app.state.settings.secure_cookies)
    response.delete_cookie(LOGIN_COOKIE)
    return response


# --- sign-in -----------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    engine = request.app.state.engine
    if not accounts.has_accounts(engine):  # solo mode: local only, checked at start-up
        return _signed_in_redirect(request, accounts.solo_coder_id(engine, request.app.state.settings.solo_coder))
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, login_csrf=token)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.settings.secure_cookies)
    return response


@router.post("/login")
def login(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()], csrf_token: Csrf):
    if not hmac.compare_digest(request.cookies.get(LOGIN_COOKIE, ""), csrf_token):
        raise HTTPException(403, "The sign-in form expired; reload the page and try again.")
    throttle, address = request.app.state.throttle, request.client.host if request.client else ""
    throttle.check(name, address)  # 429 after a few failures a minute for this account or address
    coder_id = accounts.authenticate(request.app.state.engine, name, password)
    if coder_id is None:
        throttle.failed(name, address)
        return page(request, "login.html", None, 401, login_csrf=csrf_token, failed=True, entered_name=name)
    throttle.succeeded(name)
    return _signed_in_redirect(request, coder_id)


@router.post("/logout")
def logout(request: Request, user: User, csrf_token: Csrf) -> RedirectResponse:
    check_csrf(user, csrf_token)
    accounts.end_sign_in(request.app.state.engine, request.cookies.get(SESSION_COOKIE))
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- home: progress, upload, export ----------------------------------------------------------


@router.get("/")
def home(request: Request, user: User, added: int | None = None, known: int | None = None,
         exported: int | None = None, adjudicated: int = 0) -> HTMLResponse:
    engine, scorer = request.app.state.engine, request.app.state.scorer
    summary = team.assignment_summary(engine)
    growing_codes = growing.growing_codes(scorer.codebook, request.app.state.settings.labels_dir)
    return page(request, "home.html", user, progress=store.progress(engine, user.coder_id), queues=QUEUES,
                queue_labels=QUEUE_LABELS, added=added, known=known, exported=exported, adjudicated=adjudicated,
                model_id=scorer.model_id, solo=not accounts.has_accounts(engine), assignments=summary,
                growing=[(c, scorer.codebook.code(c).name, n) for c, n in growing_codes.items()],
                growing_below=growing.GROWING_BELOW,
                open_disagreements=sum(d.final is None for d in team.disagreements(engine)) if user.may_adjudicate else 0)


Column = Annotated[str, Form()]


@router.post("/upload")
def upload(request: Request, user: User, file: UploadFile, csrf_token: Csrf, text_column: Column = "",
           id_column: Column = "", organization_column: Column = "", program_column: Column = "",
           sector_column: Column = "", sheet: Column = "") -> HTMLResponse:
    """Read a table or document with the CLI's readers, options and validation; score and queue it."""
    check_csrf(user, csrf_token)
    options = ReadOptions(text_column=text_column.strip() or None, id_column=id_column.strip() or None,
                          organization_column=organization_column.strip() or None,
                          program_column=program_column.strip() or None, sector_column=sector_column.strip() or None,
                          sheet=sheet.strip() or None)
    name = Path(file.filename or "").name
    if name in {"", ".."}:  # ".." would name the temporary folder's parent
        raise InputError("upload: choose a file first (CSV, TSV, XLSX, JSONL, TXT, Markdown or HTML)")
    scorer = request.app.state.scorer
    with tempfile.TemporaryDirectory(prefix="framecode-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(file.file.read())
        try:
            quotes = read_quotes([path], options=options).quotes
        except FramecodeError as exc:  # name the file as the user knows it, not the temporary copy
            raise InputError(str(exc).replace(str(path), name)) from None
    result = store.add_quotes(request.app.state.engine, quotes, scorer.score([q.text for q in quotes]), scorer.model_id)
    return _redirect(f"/?added={result.added}&known={result.already_there}")


@router.post("/export")
def export(request: Request, user: User, csrf_token: Csrf) -> RedirectResponse:
    """Write decisions to labels/human/<coder>.jsonl: everyone's for an admin, else one's own;
    an admin's or adjudicator's export adds the adjudications (labels/human/adjudicated.jsonl)."""
    check_csrf(user, csrf_token)
    engine, labels_dir = request.app.state.engine, request.app.state.settings.labels_dir
    written = store.export_decisions(engine, labels_dir, None if user.is_admin else user.name)
    adjudicated = team.export_adjudications(engine, labels_dir) if user.may_adjudicate else 0
    return _redirect(f"/?exported={sum(written.values())}&adjudicated={adjudicated}")


# --- coding a quote ----------------------------------------------------------------------------


@router.get("/next")
def next_quote(request: Request, user: User) -> RedirectResponse:
    quote_id = store.next_quote_id(request.app.state.engine, user.coder_id)
    return _redirect("/?done=1" if quote_id is None else f"/quote?id={urlquote(quote_id, safe='')}")


@router.get("/quote")
def quote_page(request: Request, user: User, id: str, code: str = "") -> HTMLResponse:
    """A quote to code; ``code``: it came from that growing code's likely-positives queue."""
    view = store.get_quote(request.app.state.engine, id, user.coder_id)
    if view is None:
        return error_page(request, f"No quote {id!r} in the workbench; go to the next quote.", 404)
    scorer = request.app.state.scorer
    result = scorer.tag(view.text)
    codes = code_rows(scorer.codebook, result, view)
    growing_name = scorer.codebook.code(code).name if code in scorer.codebook.code_ids else ""
    queue, queue_label = (f"likely positives: {growing_name}", LIKELY_LABEL) if growing_name else (view.queue, QUEUE_LABELS[view.queue])
    return page(request, "quote.html", user, quote=view, codes=codes, queue=queue, queue_label=queue_label,
                from_code=code if growing_name else "", assignment=team.assignment_note(request.app.state.engine, id, user.coder_id),
                segments=highlight(view.text, result), evidence=evidence(result),
                suggested=";".join(sorted(c.code for c in result.applied)), rules=scorer.codebook.rules,
                model_id=result.model_id, needs_review=result.needs_review)


@router.post("/quote")
def decide(request: Request, user: User, csrf_token: Csrf, id: Annotated[str, Form()],
           action: Annotated[str, Form()] = "save", codes: Annotated[list[str], Form()] = [],  # noqa: B006
           memo: Annotated[str, Form()] = "", suggested: Annotated[str, Form()] = "",
           from_code: Annotated[str, Form()] = "") -> RedirectResponse:
    """Store this coder's decision (one transaction) and go to the next quote of the same queue."""
    check_csrf(user, csrf_token)
    scorer = request.app.state.scorer
    store.record_decision(request.app.state.engine, id, user.coder_id, skip=action == "skip", codes=codes,
                          memo=memo, model_id=scorer.model_id, known_codes=scorer.codebook.code_ids,
                          suggested=suggested.split(";") if suggested else ())
    return _redirect(f"/likely?code={urlquote(from_code, safe='')}" if from_code else "/next")


def code_rows(codebook, result: TagResult, view: store.QuoteView) -> list[dict]:
    """Every code in codebook order (stable digit keys) with probability, threshold, tick."""
    by_code = {c.code: c for c in result.codes}
    ticked = set(view.decided_codes) if view.decision and view.decision != "skip" else {c.code for c in result.applied}
    rows = []
    for i, code in enumerate(codebook.codes):
        scored = by_code[code.id]
        rows.append({"key": str(i + 1) if i < DIGIT_KEYS else "", "id": code.id, "name": code.name,
                     "probability": scored.probability, "threshold": scored.threshold, "suggested": scored.applied,
                     "checked": code.id in ticked, "definition": code.definition, "include": code.include,
                     "exclude": code.exclude})
    return rows


def highlight(text: str, result: TagResult) -> list[tuple[str, str]]:
    """The text cut into (piece, code names) with each suggested code's carrying sentence marked."""
    names: dict[str, list[str]] = {}
    for code in result.applied:
        if code.sentence and code.sentence in text:
            names.setdefault(code.sentence, []).append(code.name)
    spans = sorted((text.index(s), text.index(s) + len(s), ", ".join(n)) for s, n in names.items())
    pieces, at = [], 0
    for start, end, label in spans:
        if start < at:  # overlaps a sentence already marked
            continue
        pieces += [(text[at:start], ""), (text[start:end], label)]
        at = end
    return [p for p in [*pieces, (text[at:], "")] if p[0]]


def evidence(result: TagResult) -> list[dict]:
    """Nearest human-coded quotes for each suggested code."""
    return [{"code": c.name, "examples": c.examples} for c in result.applied if c.examples]


# --- team ----------------------------------------------------------------------------------------


@router.get("/agreement")
def agreement_page(request: Request, user: User) -> HTMLResponse:
    scorer = request.app.state.scorer
    reports = store.agreement(request.app.state.engine, scorer.codebook.code_ids)
    return page(request, "agreement.html", user, reports=reports, names={c.id: c.name for c in scorer.codebook.codes})


@router.get("/coders")
def coders_page(request: Request, user: User) -> HTMLResponse:
    _admin(user)
    return page(request, "coders.html", user, coders=accounts.list_coders(request.app.state.engine))


@router.post("/coders")
def add_coder(request: Request, user: User, csrf_token: Csrf, name: Annotated[str, Form()],
              password: Annotated[str, Form()], admin: Annotated[bool, Form()] = False) -> RedirectResponse:
    _admin(user)
    check_csrf(user, csrf_token)
    accounts.create_coder(request.app.state.engine, name, password, admin=admin)
    return _redirect("/coders")


def _admin(user: SignedIn) -> None:
    if not user.is_admin:
        raise HTTPException(403, "Only an admin can manage coders.")
