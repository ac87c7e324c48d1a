"""Commands: serve (the browser workbench)."""

from __future__ import annotations

import getpass
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..paths import PROJECT_ROOT


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("serve")
    def serve(
        ctx: typer.Context,
        project: Annotated[
            Optional[Path],
            typer.Argument(exists=True, file_okay=False, show_default=False,
                           help="Project folder holding labels/codebook.yaml and models/ (default: this framecode checkout)."),
        ] = None,
        host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs a coder account.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
        database: Annotated[
            Optional[str],
            typer.Option(show_default=False, help="SQLAlchemy URL, e.g. postgresql+psycopg://coder@db/framecode (default: PROJECT/workbench.sqlite)."),
        ] = None,
        coder: Annotated[
            Optional[str],
            typer.Option(show_default=False, help="Your name in solo mode (no accounts yet; default: your login name)."),
        ] = None,
        create_admin: Annotated[
            Optional[str],
            typer.Option(show_default=False, metavar="NAME", help="Create an admin account (password read from a prompt or stdin) and exit."),
        ] = None,
        upload_limit_mb: Annotated[float, typer.Option(min=0.01, help="Largest upload accepted, in MB.")] = 20.0,
        secure_cookies: Annotated[bool, typer.Option(help="Mark cookies HTTPS-only (when served behind an HTTPS proxy).")] = False,
    ) -> None:
        """Start the browser workbench: code quotes one at a time with the model beside you."""
        from ..web.accounts import create_coder, has_accounts
        from ..web.app import WebSettings, check_host
        from ..web.db import open_database, sqlite_url

        folder = (project or PROJECT_ROOT).resolve()
        url = database or sqlite_url(folder)
        engine = open_database(url)
        if create_admin is not None:
            password = typer.prompt(f"Password for {create_admin}", hide_input=True, confirmation_prompt=True)
            create_coder(engine, create_admin, password, admin=True)
            typer.echo(f"created admin {create_admin.strip()!r}; everyone signs in from now on")
            return
        accounts = has_accounts(engine)
        check_host(host, accounts)
        configured = ctx.obj.config.get("coder", {}).get("model_dir", "models/default")
        settings = WebSettings(database_url=url, labels_dir=folder / "labels", solo_coder=coder or _login_name(),
                               upload_limit=int(upload_limit_mb * 2**20), secure_cookies=secure_cookies,
                               model_dir=folder / configured)
        _run(folder, settings, host, port, accounts)


def _login_name() -> str:
    try:
        return getpass.getuser() or "me"
    except (KeyError, OSError):
        return "me"


def _run(folder: Path, settings, host: str, port: int, accounts: bool) -> None:
    """Load the model once, warm it, and serve until interrupted."""
    import uvicorn

    from ..codebook import load_codebook
    from ..coding import default_coder
    from ..web import ModelScorer, create_app

    codebook_path = folder / "labels" / "codebook.yaml"
    if not codebook_path.is_file():
        raise InputError(f"{folder}: no labels/codebook.yaml; pass a framecode project folder")
    scorer = ModelScorer(default_coder(load_codebook(codebook_path), labels_dir=settings.labels_dir,
                                       model_dir=settings.model_dir))
    scorer.warm()
    app = create_app(settings, scorer)
    logging.getLogger("framecode.web").setLevel(logging.INFO)
    mode = "sign-in required" if accounts else f"solo mode as {settings.solo_coder!r}"
    typer.echo(f"framecode workbench on http://{host}:{port}/ ({mode}; model {scorer.model_id}); Ctrl+C stops it")
    # access_log off: the app logs method, path and status itself (never a query or a body)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", server_header=False)
