"""Retraining from the workbench: export the decisions, train in a child process, swap the model.

An admin's "Retrain" writes every coder's decisions to ``labels/human/`` and starts
``python -m pipeline.web.retrain`` (the same training as ``framecode train``) in a child
process, so the server keeps answering with the old model meanwhile and a crash in training
cannot take it down. The child prints one JSON line per progress step; the page polls
``/retrain/status``. When the child succeeds the served model is swapped for the new one;
when it fails the old model stays and the page shows the child's one-line reason.

    python -m pipeline.web.retrain CODEBOOK LABELS_DIR MODEL_DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ..errors import FramecodeError, InputError

STATES = ("idle", "running", "done", "failed")


@dataclass(frozen=True)
class RetrainStatus:
    """What the retraining page shows; ``message`` never holds a quote's text."""

    state: str = "idle"
    step: str = ""
    done: int = 0
    total: int | None = None
    message: str = ""
    model_id: str = ""
    started_at: float | None = None
    finished_at: float | None = None


class Retrainer:
    """Runs one retraining at a time in a child process and swaps the model when it succeeds.

    ``command``: the child's argv (default: :func:`training_command`); ``swap``: called with
    no argument after a successful run, loads the new model and returns its id.
    """

    def __init__(self, command: Sequence[str], swap: Callable[[], str]):
        self.command = list(command)
        self.swap = swap
        self._lock = threading.Lock()
        self._status = RetrainStatus()

    @property
    def status(self) -> RetrainStatus:
        with self._lock:
            return self._status

    def _set(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def start(self) -> bool:
        """Start retraining in the background; False when one is already running."""
        with self._lock:
            if self._status.state == "running":
                return False
            self._status = RetrainStatus(state="running", step="starting", started_at=time.time())
        threading.Thread(target=self._run, name="framecode-retrain", daemon=True).start()
        return True

    def wait(self, timeout: float | None = None) -> RetrainStatus:
        """The status once the running retraining has finished (for tests and scripts)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status.state == "running" and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)
        return self.status

    def _run(self) -> None:
        try:
            child = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError as exc:
            self._set(state="failed", message=f"training could not start ({exc.strerror})", finished_at=time.time())
            return
        error = ""
        for line in child.stdout:
            event = _event(line)
            if "error" in event:
                error = str(event["error"])
            elif "step" in event:
                self._set(step=str(event["step"]), done=int(event.get("done", 0)), total=event.get("total"))
        code = child.wait()
        if code != 0:
            reason = error or f"training stopped with exit status {code}"
            self._set(state="failed", message=f"{reason}; the current model keeps serving", finished_at=time.time())
            return
        try:
            self._set(step="loading the new model", done=0, total=None)
            model_id = self.swap()
        except FramecodeError as exc:
            self._set(state="failed", message=f"the new model could not be loaded ({exc}); the current model keeps serving",
                      finished_at=time.time())
            return
        self._set(state="done", step="", model_id=model_id, message=f"now serving model {model_id}", finished_at=time.time())


def _event(line: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def training_command(codebook: Path, labels_dir: Path, model_dir: Path) -> list[str]:
    """The child process that trains into ``model_dir`` (replaced atomically on success)."""
    return [sys.executable, "-m", "pipeline.web.retrain", str(codebook), str(labels_dir), str(model_dir)]


def main(argv: Sequence[str]) -> int:
    """The child: train as ``framecode train`` does, one JSON line per progress step on stdout."""
    from ..codebook import load_codebook
    from ..coding import train_default
    from ..progress import report_to

    codebook_path, labels_dir, model_dir = (Path(a) for a in argv)
    last = [0.0, ""]

    def report(step: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if step != last[1] or now - last[0] > 0.2 or done == total:  # a few lines a second at most
            last[:] = [now, step]
            print(json.dumps({"step": step, "done": done, "total": total}), flush=True)

    try:
        with report_to(report):
            coder = train_default(load_codebook(codebook_path), labels_dir=labels_dir, model_dir=model_dir)
    except FramecodeError as exc:  # one line naming the file and row, as the CLI prints it
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the type only: a message could hold quote text
        print(json.dumps({"error": f"training failed ({type(exc).__name__}); run `framecode train` to see why"}), flush=True)
        return 1
    print(json.dumps({"step": "saved", "model_id": coder.model_id}), flush=True)
    return 0


# --- pages -------------------------------------------------------------------------------------

router = APIRouter()


def _admin_user(request: Request):
    from .accounts import has_accounts
    from .pages import current

    user = current(request)
    if not user.is_admin and has_accounts(request.app.state.engine):
        raise HTTPException(403, "Only an admin can retrain the model.")
    return user


def _retrainer(request: Request) -> Retrainer:
    retrainer = request.app.state.retrainer
    if retrainer is None:
        raise InputError("Retraining is off: this workbench was started without a model folder.")
    return retrainer


@router.get("/retrain")
def retrain_page(request: Request, user=Depends(_admin_user)) -> HTMLResponse:
    from .app import templates

    return templates.TemplateResponse(request, "retrain.html", {
        "user": user, "solo": not user.is_admin, "status": _retrainer(request).status,
        "model_id": request.app.state.scorer.model_id,
    })


@router.get("/retrain/status")
def retrain_status(request: Request, _user=Depends(_admin_user)) -> JSONResponse:
    return JSONResponse({**asdict(_retrainer(request).status), "serving": request.app.state.scorer.model_id})


@router.post("/retrain")
def start_retraining(request: Request, csrf_token: Annotated[str, Form()], user=Depends(_admin_user)) -> RedirectResponse:
    """Export everyone's decisions and the adjudications to labels/human/, then train in the background."""
    from . import store, team
    from .pages import check_csrf

    check_csrf(user, csrf_token)
    retrainer = _retrainer(request)
    if retrainer.status.state != "running":
        engine, labels_dir = request.app.state.engine, request.app.state.settings.labels_dir
        store.export_decisions(engine, labels_dir)
        team.export_adjudications(engine, labels_dir)  # the final codes win in training
        retrainer.start()
    return RedirectResponse("/retrain", status_code=303)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
