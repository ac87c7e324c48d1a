"""The workbench database: coders, sign-in sessions, quotes with their queue, decisions.

SQLite by default (one file in the project, WAL journal, a busy timeout so concurrent
writers wait instead of failing), PostgreSQL when a ``postgresql+psycopg://`` URL is given.
Each coder's decision on a quote is its own row (unique per quote and coder), so two coders
deciding the same quote at once both keep their decision.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..errors import InputError

DATABASE_FILE = "workbench.sqlite"
QUEUES: tuple[str, ...] = ("needs_review", "uncertain", "random")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Coder(Base):
    """A named person who codes; ``password_hash`` is empty for the solo (local) coder."""

    __tablename__ = "coders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_adjudicator: Mapped[bool] = mapped_column(Boolean, default=False)  # may adjudicate (admins always may)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignIn(Base):
    """A signed-in browser: the sha256 of its cookie token and its CSRF token."""

    __tablename__ = "sign_ins"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuoteRow(Base):
    """A quote to code, scored by the model when it was added, and the queue it sits in."""

    __tablename__ = "quotes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quote_id: Mapped[str] = mapped_column(String(200), unique=True)
    text: Mapped[str] = mapped_column(Text)
    organization: Mapped[str] = mapped_column(String(300), default="")
    program: Mapped[str] = mapped_column(String(100), default="")
    sector: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(String(500), default="")
    suggested: Mapped[str] = mapped_column(Text, default="")  # code ids joined by ';'
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    uncertainty: Mapped[float] = mapped_column(Float, default=0.0)
    queue: Mapped[str] = mapped_column(String(20))
    queue_rank: Mapped[int] = mapped_column(Integer)  # position of ``queue`` in QUEUES
    priority: Mapped[float] = mapped_column(Float)  # order within the queue, smallest first
    model_id: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_quotes_queue_order", "queue_rank", "priority", "id"),)


class DecisionRow(Base):
    """One coder's decision on one quote: accept, change or skip, with codes and a memo."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quote_pk: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"))
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(10))
    codes: Mapped[str] = mapped_column(Text, default="")  # code ids joined by ';'
    memo: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("quote_pk", "coder_id", name="uq_decision_quote_coder"),)


class Assignment(Base):
    """A quote assigned to a coder; ``overlap`` marks a quote assigned to two coders (double coding)."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quote_pk: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"))
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id", ondelete="CASCADE"))
    overlap: Mapped[bool] = mapped_column(Boolean, default=False)
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("quote_pk", "coder_id", name="uq_assignment_quote_coder"),
                      Index("ix_assignments_coder", "coder_id", "quote_pk"))


class Adjudication(Base):
    """The final codes of a quote the coders decided differently, chosen by an adjudicator."""

    __tablename__ = "adjudications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quote_pk: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"), unique=True)
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id", ondelete="CASCADE"))  # the adjudicator
    codes: Mapped[str] = mapped_column(Text, default="")  # code ids joined by ';'
    memo: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LikelyScore(Base):
    """How likely a quote carries a code that is new in the codebook (its likely-positives queue)."""

    __tablename__ = "likely_scores"
    quote_pk: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    model_id: Mapped[str] = mapped_column(String(200), default="")  # the model that scored it

    __table_args__ = (Index("ix_likely_code_score", "code", "score"),)


def sqlite_url(project: str | Path) -> str:
    """The default database: ``workbench.sqlite`` in the project folder."""
    return f"sqlite:///{Path(project).resolve() / DATABASE_FILE}"


def open_database(url: str) -> Engine:
    """An engine with every table created; SQLite gets WAL, foreign keys and a busy timeout."""
    if not url.startswith(("sqlite:", "postgresql")):
        raise InputError(f"--database: unsupported URL scheme in {url.split(':', 1)[0]!r}; use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB")
    try:
        engine = create_engine(url, pool_pre_ping=url.startswith("postgresql"))
    except ImportError as exc:
        raise InputError(f"--database: the driver for this URL is not installed ({exc.name}); install it, e.g. pip install psycopg") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
