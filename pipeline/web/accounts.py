"""Coders and sign-in: argon2 password hashes, random session tokens stored only as sha256.

With no coder account in the database the workbench runs in solo mode (local only): the one
person using it is the solo coder, named on the command line. Once an account exists,
everyone signs in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import InputError
from ..review import ADJUDICATED
from .db import Coder, SignIn

MIN_PASSWORD = 8
RESERVED_NAMES = frozenset({ADJUDICATED, "model"})
_NAME = re.compile(r"^[\w][\w .'@-]{0,79}$")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class SignedIn:
    """Who is using the workbench in this request."""

    coder_id: int
    name: str
    is_admin: bool
    csrf: str
    is_adjudicator: bool = False

    @property
    def may_adjudicate(self) -> bool:
        return self.is_admin or self.is_adjudicator


def check_name(name: str) -> str:
    """A coder name that is also a safe ``labels/human/<name>.jsonl`` file name."""
    name = name.strip()
    if not _NAME.match(name) or name in {".", ".."}:
        raise InputError("coder name: use 1-80 letters, digits, spaces, '.', '_', '-', \"'\" or '@'; no slashes")
    if name.casefold() in RESERVED_NAMES:
        raise InputError(f"coder name {name!r} is reserved (labels/human/{name}.jsonl holds other codings); choose another")
    return name


def create_coder(engine: Engine, name: str, password: str, *, admin: bool = False) -> None:
    """Add a coder with a password (argon2-hashed); raises InputError if the name is taken."""
    name = check_name(name)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: use at least {MIN_PASSWORD} characters")
    try:
        with Session(engine) as session, session.begin():
            # "ben" next to "Ben" would share labels/human/ben.jsonl on a case-insensitive disk
            same = session.scalar(select(Coder.name).where(func.lower(Coder.name) == name.lower(), Coder.password_hash != ""))
            if same is not None:
                raise InputError(f"coder name {name!r} is taken (by {same!r}); choose another")
            session.add(Coder(name=name, password_hash=_hasher.hash(password), is_admin=admin))
            # Sign-in is configured from now on: solo-mode browsers must sign in.
            solo = select(Coder.id).where(Coder.password_hash == "")
            session.execute(delete(SignIn).where(SignIn.coder_id.in_(solo)))
    except IntegrityError:
        raise InputError(f"coder name {name!r} is taken; choose another") from None


def has_accounts(engine: Engine) -> bool:
    """Whether sign-in is configured (some coder has a password)."""
    with Session(engine) as session:
        return bool(session.scalar(select(func.count()).select_from(Coder).where(Coder.password_hash != "")))


def authenticate(engine: Engine, name: str, password: str) -> int | None:
    """The coder's id when ``password`` is theirs, else None."""
    with Session(engine) as session:
        coder = session.scalar(select(Coder).where(Coder.name == name.strip()))
        if coder is None or not coder.password_hash:
            _hasher.hash(password)  # same work either way: no timing hint that the name exists
            return None
        try:
            _hasher.verify(coder.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return coder.id


def solo_coder_id(engine: Engine, name: str) -> int:
    """The solo coder's id, created on first use (no password: solo mode only)."""
    name = check_name(name)
    with Session(engine) as session, session.begin():
        coder = session.scalar(select(Coder).where(Coder.name == name))
        if coder is None:
            coder = Coder(name=name, password_hash="")
            session.add(coder)
            session.flush()
        return coder.id


def start_sign_in(engine: Engine, coder_id: int) -> str:
    """A new session token for ``coder_id`` (the cookie value; only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    with Session(engine) as session, session.begin():
        session.add(SignIn(token_hash=_digest(token), coder_id=coder_id, csrf=secrets.token_urlsafe(32)))
    return token


def signed_in(engine: Engine, token: str | None) -> SignedIn | None:
    if not token:
        return None
    with Session(engine) as session:
        row = session.execute(
            select(SignIn.csrf, Coder.id, Coder.name, Coder.is_admin, Coder.is_adjudicator)
            .join(Coder, Coder.id == SignIn.coder_id)
            .where(SignIn.token_hash == _digest(token))
        ).first()
    return SignedIn(coder_id=row.id, name=row.name, is_admin=row.is_admin, csrf=row.csrf,
                    is_adjudicator=row.is_adjudicator) if row else None


def end_sign_in(engine: Engine, token: str | None) -> None:
    if token:
        with Session(engine) as session, session.begin():
            session.execute(delete(SignIn).where(SignIn.token_hash == _digest(token)))


def list_coders(engine: Engine) -> list[tuple[str, bool, bool, bool]]:
    """(name, is_admin, has_password, is_adjudicator) of every coder, by name."""
    with Session(engine) as session:
        return [(c.name, c.is_admin, bool(c.password_hash), c.is_adjudicator)
                for c in session.scalars(select(Coder).order_by(Coder.name))]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
