"""Team coding: assignments with an overlap share, and adjudication where coders differ.

Assignments: an admin splits the quotes not yet assigned among named coders; a share of
them (``overlap``) goes to two coders each, for agreement, the rest to one. Once any quote
is assigned, each coder's queues serve only the quotes assigned to them.

Adjudication: a quote that two or more coders decided (accept or change) with different codes
is a disagreement; an admin or a coder with the adjudicator role picks its final codes, stored
with adjudicator, time and model id, and exported to ``labels/human/adjudicated.jsonl``
(coder ``adjudicated``), which training and ``framecode code`` let win over the coders' rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..agreement import split_codes
from ..errors import InputError
from ..review import ADJUDICATED, write_person_codings
from .db import Adjudication, Assignment, Coder, DecisionRow, QuoteRow

# --- assignments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignResult:
    quotes: int  # quotes assigned now
    double: int  # of which assigned to two coders
    per_coder: dict[str, int]


def served_to(coder_id: int) -> ColumnElement[bool]:
    """The quotes a coder's queues serve: all of them until assignments exist, then their own."""
    assigned = exists().where(and_(Assignment.quote_pk == QuoteRow.id, Assignment.coder_id == coder_id))
    return or_(~exists(select(Assignment.id)), assigned)


def assign_quotes(engine: Engine, coder_names: Sequence[str], overlap: float) -> AssignResult:
    """Assign every quote not yet assigned: a share ``overlap`` (0-1) of them to two coders
    each, the rest to one, keeping the coders' loads even. Which quotes overlap is a fixed
    pseudo-random choice (by quote id), so the double-coded sample is unbiased."""
    names = list(dict.fromkeys(n.strip() for n in coder_names if n.strip()))
    if not 0 <= overlap <= 1:
        raise InputError(f"overlap: {overlap:g} is not a share between 0 and 1 (e.g. 0.2 for 20%)")
    if not names:
        raise InputError("assign: name at least one coder")
    if overlap > 0 and len(names) < 2:
        raise InputError("assign: double coding needs two or more coders; add a coder or set the overlap to 0")
    with Session(engine) as session, session.begin():
        coders = dict(session.execute(select(Coder.name, Coder.id).where(Coder.name.in_(names))).all())
        unknown = [n for n in names if n not in coders]
        if unknown:
            raise InputError(f"assign: no coder named {', '.join(map(repr, unknown))}; add them on the Coders page first")
        taken = exists().where(Assignment.quote_pk == QuoteRow.id)
        quotes = session.execute(select(QuoteRow.id, QuoteRow.quote_id).where(~taken)).all()
        quotes.sort(key=lambda q: hashlib.sha256(q.quote_id.encode()).hexdigest())
        double = round(overlap * len(quotes))
        load = {n: 0 for n in names}
        for position, quote in enumerate(quotes):
            # fewest quotes first; ties in the coders' order, rotated so pairs vary
            order = sorted(names, key=lambda n: (load[n], (names.index(n) - position) % len(names)))
            chosen = order[:2] if position < double else order[:1]
            for name in chosen:
                load[name] += 1
                session.add(Assignment(quote_pk=quote.id, coder_id=coders[name], overlap=position < double))
    return AssignResult(len(quotes), double, load)


@dataclass(frozen=True)
class AssignmentSummary:
    unassigned: int
    per_coder: list[tuple[str, int, int, int]]  # name, assigned, of which double-coded, decided


def assignment_summary(engine: Engine) -> AssignmentSummary:
    decided = exists().where(and_(DecisionRow.quote_pk == Assignment.quote_pk, DecisionRow.coder_id == Assignment.coder_id))
    with Session(engine) as session:
        unassigned = session.scalar(select(func.count()).select_from(QuoteRow)
                                    .where(~exists().where(Assignment.quote_pk == QuoteRow.id))) or 0
        rows = session.execute(
            select(Coder.name, func.count(), func.sum(case((Assignment.overlap, 1), else_=0)),
                   func.sum(case((decided, 1), else_=0)))
            .join(Coder, Coder.id == Assignment.coder_id).group_by(Coder.name).order_by(Coder.name)
        ).all()
    return AssignmentSummary(unassigned, [(r[0], r[1], int(r[2] or 0), int(r[3] or 0)) for r in rows])


def assignment_note(engine: Engine, quote_id: str, coder_id: int) -> str:
    """How this quote reached this coder: '' without assignments, else who shares it."""
    with Session(engine) as session:
        mine = session.scalar(select(Assignment).join(QuoteRow, QuoteRow.id == Assignment.quote_pk)
                              .where(QuoteRow.quote_id == quote_id, Assignment.coder_id == coder_id))
        if mine is None:
            return ""
        others = session.scalars(select(Coder.name).join(Assignment, Assignment.coder_id == Coder.id)
                                 .where(Assignment.quote_pk == mine.quote_pk, Assignment.coder_id != coder_id)).all()
    return f"assigned to you and {', '.join(others)} (double coding)" if others else "assigned to you alone"


# --- adjudication ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoderDecision:
    coder: str
    codes: tuple[str, ...]
    memo: str
    decided_at: dt.datetime


@dataclass(frozen=True)
class Disagreement:
    """A quote that coders decided differently, with every coder's decision and any adjudication."""

    quote_id: str
    text: str
    suggested: tuple[str, ...]  # the model's codes when the quote was added
    decisions: tuple[CoderDecision, ...]
    final: tuple[str, ...] | None  # the adjudicated codes, if adjudicated
    adjudicator: str
    memo: str


def disagreements(engine: Engine, quote_id: str | None = None) -> list[Disagreement]:
    """Quotes two or more coders decided (accept or change) with different codes, in queue order."""
    query = (
        select(QuoteRow.id, QuoteRow.quote_id, QuoteRow.text, QuoteRow.suggested, Coder.name, DecisionRow.codes,
               DecisionRow.memo, DecisionRow.decided_at)
        .join(DecisionRow, DecisionRow.quote_pk == QuoteRow.id).join(Coder, Coder.id == DecisionRow.coder_id)
        .where(DecisionRow.action != "skip").order_by(QuoteRow.queue_rank, QuoteRow.priority, QuoteRow.id, Coder.name)
    )
    if quote_id is not None:
        query = query.where(QuoteRow.quote_id == quote_id)
    with Session(engine) as session:
        rows = session.execute(query).all()
        final = {a.quote_pk: (a.codes, name, a.memo) for a, name in session.execute(
            select(Adjudication, Coder.name).join(Coder, Coder.id == Adjudication.coder_id)).all()}
    by_quote: dict[int, list] = {}
    for r in rows:
        by_quote.setdefault(r.id, []).append(r)
    found = []
    for pk, group in by_quote.items():
        decisions = tuple(CoderDecision(r.name, split_codes(r.codes), r.memo, r.decided_at) for r in group)
        if len(decisions) < 2 or len({d.codes for d in decisions}) < 2:
            continue
        codes, adjudicator, memo = final.get(pk, (None, "", ""))
        found.append(Disagreement(group[0].quote_id, group[0].text, split_codes(group[0].suggested), decisions,
                                  None if codes is None else split_codes(codes), adjudicator, memo))
    return found


def record_adjudication(engine: Engine, quote_id: str, coder_id: int, *, codes: Sequence[str], memo: str,
                        model_id: str, known_codes: Sequence[str]) -> None:
    """Store (or replace) the final codes of a disagreement, in one transaction."""
    unknown = sorted(set(codes) - set(known_codes))
    if unknown:
        raise InputError(f"adjudication: unknown code id(s) {', '.join(unknown)}; known: {', '.join(known_codes)}")
    if not disagreements(engine, quote_id):
        raise InputError(f"adjudication: the coders do not disagree on quote {quote_id!r}; nothing to adjudicate")
    with Session(engine) as session, session.begin():
        pk = session.scalar(select(QuoteRow.id).where(QuoteRow.quote_id == quote_id))
        row = session.scalar(select(Adjudication).where(Adjudication.quote_pk == pk))
        if row is None:
            row = Adjudication(quote_pk=pk)
            session.add(row)
        row.coder_id, row.codes, row.memo = coder_id, ";".join(sorted(set(codes))), memo.strip()
        row.model_id, row.decided_at = model_id, dt.datetime.now(dt.timezone.utc)


def export_adjudications(engine: Engine, labels_dir: str | Path) -> int:
    """Write every adjudication to ``labels/human/adjudicated.jsonl`` (coder ``adjudicated``;
    ``adjudicator`` names the person, ``coders`` those who disagreed). Returns rows written."""
    with Session(engine) as session:
        rows = session.execute(
            select(QuoteRow.quote_id, QuoteRow.text, Adjudication.codes, Adjudication.memo, Adjudication.model_id,
                   Adjudication.decided_at, Coder.name)
            .join(QuoteRow, QuoteRow.id == Adjudication.quote_pk).join(Coder, Coder.id == Adjudication.coder_id)
            .order_by(QuoteRow.id)
        ).all()
        coders = {}
        for quote_id, name in session.execute(
            select(QuoteRow.quote_id, Coder.name).join(DecisionRow, DecisionRow.quote_pk == QuoteRow.id)
            .join(Coder, Coder.id == DecisionRow.coder_id).where(DecisionRow.action != "skip").order_by(Coder.name)
        ).all():
            coders.setdefault(quote_id, []).append(name)
    if not rows:
        return 0
    write_person_codings(labels_dir, ADJUDICATED, [{
        "id": r.quote_id, "text": r.text, "codes": sorted(split_codes(r.codes)), "coder": ADJUDICATED,
        "decision": "adjudicated", "reviewed_at": _utc(r.decided_at).isoformat(), "reviewer_note": r.memo,
        "origin": "reviewed", "adjudicator": r.name, "coders": coders.get(r.quote_id, []), "model_id": r.model_id,
    } for r in rows])
    return len(rows)


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def set_adjudicator(engine: Engine, name: str, allowed: bool) -> None:
    with Session(engine) as session, session.begin():
        coder = session.scalar(select(Coder).where(Coder.name == name))
        if coder is None:
            raise InputError(f"no coder named {name!r}")
        coder.is_adjudicator = allowed


def may_adjudicate(engine: Engine, coder_id: int) -> bool:
    with Session(engine) as session:
        coder = session.get(Coder, coder_id)
        return bool(coder and (coder.is_admin or coder.is_adjudicator))
