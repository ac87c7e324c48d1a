"""The workbench app factory, its settings and its safety middleware.

``create_app(settings, scorer)`` returns a FastAPI app; ``framecode serve`` runs it with
uvicorn. The server log holds one line per request (method, path without query, status,
milliseconds): never a body, never a quote's text, never a traceback.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import FramecodeError, InputError
from .db import open_database
from .retrain import Retrainer, training_command
from .scoring import Scorer
from .throttle import SignInThrottle

log = logging.getLogger("framecode.web")

HERE = Path(__file__).parent
DEFAULT_UPLOAD_LIMIT = 20 * 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    """Where the workbench keeps its data and how it behaves."""

    database_url: str
    labels_dir: Path
    solo_coder: str = "me"  # the coder's name while no account exists (local solo mode)
    upload_limit: int = DEFAULT_UPLOAD_LIMIT  # bytes per request body
    secure_cookies: bool = False  # set when served behind HTTPS
    model_dir: Path | None = None  # the served model's folder; "Retrain" replaces it (None: no retraining)


def is_local(host: str) -> bool:
    """Whether ``host`` binds to this machine only (loopback)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, accounts: bool) -> None:
    """Refuse a non-local host while sign-in is not configured (solo mode has no password)."""
    if not is_local(host) and not accounts:
        raise InputError(
            f"--host {host}: other machines could reach the workbench, but no coder account exists; "
            "create one first with `framecode serve --create-admin NAME`, or keep the default 127.0.0.1"
        )


templates = Jinja2Templates(directory=HERE / "templates")


def create_app(settings: WebSettings, scorer: Scorer, retrainer: Retrainer | None = None) -> FastAPI:
    """The workbench: pages, the database engine, the warm scorer and the retrainer on ``app.state``
    (default retrainer: ``framecode train``'s training in a child process, when ``settings.model_dir`` is set)."""
    from . import pages, retrain, team_pages

    app = FastAPI(title="framecode workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.scorer = scorer
    app.state.engine = open_database(settings.database_url)
    if retrainer is None and settings.model_dir is not None:
        model_dir = settings.model_dir
        retrainer = Retrainer(training_command(settings.labels_dir / "codebook.yaml", settings.labels_dir, model_dir),
                              swap=lambda: scorer.reload(model_dir))
    app.state.retrainer = retrainer
    app.state.throttle = SignInThrottle()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(retrain.router)
    app.include_router(team_pages.router)

    @app.exception_handler(FramecodeError)
    async def framecode_error(request: Request, exc: FramecodeError) -> HTMLResponse:
        return error_page(request, str(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 303:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        return error_page(request, str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        # a page naming the fields, never FastAPI's JSON (it echoes the submitted values)
        fields = sorted({str(error["loc"][-1]) for error in exc.errors()})
        if "csrf_token" in fields:
            return error_page(request, "The form expired or came from another site; reload the page and try again.", 403)
        return error_page(request, f"Missing or invalid {', '.join(fields)}; go back, check the form and send it again.", 400)

    app.add_middleware(BodyLimit, limit=settings.upload_limit)
    app.add_middleware(PathOnlyLog)
    return app


def error_page(request: Request, message: str, status: int) -> HTMLResponse:
    return templates.TemplateResponse(request, "error.html", {"message": message, "user": None}, status_code=status)


class PathOnlyLog:
    """Logs method, path, status and time of each request; turns an unexpected error into a
    plain 500 page with one log line (no traceback: it could hold quote text)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # noqa: BLE001 - last line of defence, see docstring
            log.error("internal error (%s) on %s %s", type(exc).__name__, scope["method"], scope["path"])
            log.debug("traceback of that error (may hold quote text)", exc_info=True)
            if status[0] == 500:
                await _plain(send, 500, "Internal error; the server log names the request. Nothing was saved by it.")
        log.info("%s %s %d %.0fms", scope["method"], scope["path"], status[0], 1000 * (time.perf_counter() - started))


class BodyLimit:
    """Answers 413 to a request body larger than ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            return await _plain(send, 413, self._message())
        received, started = [0], [False]

        async def counted() -> Message:
            message = await receive()
            received[0] += len(message.get("body", b""))
            if received[0] > self.limit:
                raise _TooLarge
            return message

        async def watch(message: Message) -> None:
            started[0] = started[0] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except _TooLarge:
            if not started[0]:
                await _plain(send, 413, self._message())

    def _message(self) -> str:
        size = f"{self.limit / 2**20:g} MB" if self.limit >= 2**20 else f"{self.limit} bytes"
        return f"Upload too large: the limit is {size} (framecode serve --upload-limit-mb); split the file."


class _TooLarge(Exception):
    pass


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
