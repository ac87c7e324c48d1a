"""Quotes in, decisions out: the workbench's queues, decisions, export and agreement.

Queues, in the order a coder sees them: ``needs_review`` (flagged by the model's review band,
most uncertain first), ``uncertain`` (some code's probability within half the way of its
threshold) and ``random`` (every other quote in a fixed pseudo-random order: the sample the
corrected shares and agreement need). Each decision is one transaction; a coder's second
decision on a quote replaces their first, never another coder's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..agreement import AgreementReport, CoderCodings, compute_agreement, split_codes
from ..errors import InputError
from ..records import Quote
from ..review import write_person_codings
from .db import QUEUES, Coder, DecisionRow, QuoteRow
from .scoring import QuoteScore
from .team import served_to

UNCERTAIN_FROM = 0.5
ACTIONS = ("accept", "change", "skip")
MODEL_CODER = "model"


@dataclass(frozen=True)
class AddResult:
    added: int
    already_there: int


def queue_of(score: QuoteScore, quote_id: str) -> tuple[str, float]:
    """The queue a quote joins and its order key within it (smallest first)."""
    if score.needs_review:
        return "needs_review", -score.uncertainty
    if score.uncertainty >= UNCERTAIN_FROM:
        return "uncertain", -score.uncertainty
    return "random", int(hashlib.sha256(quote_id.encode()).hexdigest()[:12], 16) / 16**12


def add_quotes(engine: Engine, quotes: Sequence[Quote], scores: Sequence[QuoteScore], model_id: str) -> AddResult:
    """Store new quotes with their queue; a quote id already in the workbench is kept as it was."""
    with Session(engine) as session, session.begin():
        ids = [q.id for q in quotes]
        known = set(session.scalars(select(QuoteRow.quote_id).where(QuoteRow.quote_id.in_(ids))))
        added = 0
        for quote, score in zip(quotes, scores):
            if quote.id in known:
                continue
            known.add(quote.id)
            queue, priority = queue_of(score, quote.id)
            session.add(QuoteRow(
                quote_id=quote.id, text=quote.text, organization=quote.organization, program=quote.program,
                sector=quote.sector, source=quote.source, suggested=";".join(score.suggested),
                needs_review=score.needs_review, uncertainty=score.uncertainty, queue=queue,
                queue_rank=QUEUES.index(queue), priority=priority, model_id=model_id,
            ))
            added += 1
    return AddResult(added, len(quotes) - added)


def next_quote_id(engine: Engine, coder_id: int) -> str | None:
    """The first quote in queue order, among those served to this coder (their assignment,
    once quotes are assigned), that they have not decided or skipped."""
    decided = exists().where(and_(DecisionRow.quote_pk == QuoteRow.id, DecisionRow.coder_id == coder_id))
    with Session(engine) as session:
        return session.scalar(
            select(QuoteRow.quote_id).where(~decided, served_to(coder_id)).order_by(QuoteRow.queue_rank, QuoteRow.priority, QuoteRow.id).limit(1)
        )


@dataclass(frozen=True)
class QuoteView:
    """A stored quote with this coder's earlier decision, if any."""

    quote_id: str
    text: str
    organization: str
    program: str
    source: str
    queue: str
    suggested: tuple[str, ...]
    decision: str | None
    decided_codes: tuple[str, ...]
    memo: str


def get_quote(engine: Engine, quote_id: str, coder_id: int) -> QuoteView | None:
    with Session(engine) as session:
        quote = session.scalar(select(QuoteRow).where(QuoteRow.quote_id == quote_id))
        if quote is None:
            return None
        mine = session.scalar(select(DecisionRow).where(DecisionRow.quote_pk == quote.id, DecisionRow.coder_id == coder_id))
        return QuoteView(
            quote.quote_id, quote.text, quote.organization, quote.program, quote.source, quote.queue,
            split_codes(quote.suggested), mine.action if mine else None,
            split_codes(mine.codes) if mine else (), mine.memo if mine else "",
        )


def record_decision(engine: Engine, quote_id: str, coder_id: int, *, skip: bool, codes: Sequence[str],
                    memo: str, model_id: str, known_codes: Sequence[str], suggested: Sequence[str] | None = None) -> str:
    """Store this coder's decision in one transaction; returns accept, change or skip.

    ``suggested``: the codes the page proposed (default: those stored when the quote was
    added); ticking exactly those is an accept, anything else a change."""
    unknown = sorted(set(codes) - set(known_codes))
    if unknown:
        raise InputError(f"decision: unknown code id(s) {', '.join(unknown)}; known: {', '.join(known_codes)}")
    for attempt in range(2):
        try:
            with Session(engine) as session, session.begin():
                quote = session.scalar(select(QuoteRow).where(QuoteRow.quote_id == quote_id))
                if quote is None:
                    raise InputError(f"decision: no quote {quote_id!r} in the workbench; go to the next quote")
                chosen = tuple(sorted(set(codes)))
                proposed = tuple(sorted(set(split_codes(quote.suggested) if suggested is None else suggested)))
                action = "skip" if skip else "accept" if chosen == proposed else "change"
                row = session.scalar(select(DecisionRow).where(DecisionRow.quote_pk == quote.id, DecisionRow.coder_id == coder_id))
                if row is None:
                    row = DecisionRow(quote_pk=quote.id, coder_id=coder_id)
                    session.add(row)
                row.action, row.codes, row.memo = action, ";".join(chosen), memo.strip()
                row.model_id, row.decided_at = model_id, dt.datetime.now(dt.timezone.utc)
            return action
        except IntegrityError:  # the same coder decided twice at once: the retry updates
            if attempt:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Progress:
    total: int
    decided: int
    skipped: int
    per_queue: dict[str, int]  # quotes in each queue not yet decided or skipped by this coder


def progress(engine: Engine, coder_id: int) -> Progress:
    decided = exists().where(and_(DecisionRow.quote_pk == QuoteRow.id, DecisionRow.coder_id == coder_id))
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(QuoteRow).where(served_to(coder_id))) or 0
        left = dict(session.execute(select(QuoteRow.queue, func.count()).where(~decided, served_to(coder_id))
                                    .group_by(QuoteRow.queue)).all())
        actions = dict(session.execute(
            select(DecisionRow.action, func.count()).where(DecisionRow.coder_id == coder_id).group_by(DecisionRow.action)
        ).all())
    return Progress(total, actions.get("accept", 0) + actions.get("change", 0), actions.get("skip", 0),
                    {q: left.get(q, 0) for q in QUEUES})


def _decided_rows(session: Session, coder_name: str | None = None):
    query = (
        select(Coder.name, QuoteRow.quote_id, QuoteRow.text, QuoteRow.suggested, DecisionRow.action,
               DecisionRow.codes, DecisionRow.memo, DecisionRow.decided_at)
        .join(QuoteRow, QuoteRow.id == DecisionRow.quote_pk)
        .join(Coder, Coder.id == DecisionRow.coder_id)
        .where(DecisionRow.action != "skip")
        .order_by(Coder.name, QuoteRow.id)
    )
    if coder_name is not None:
        query = query.where(Coder.name == coder_name)
    return session.execute(query).all()


def export_decisions(engine: Engine, labels_dir: str | Path, coder_name: str | None = None) -> dict[str, int]:
    """Write each coder's decided quotes (accept or change; skips are left out) to
    ``labels/human/<coder>.jsonl`` in the review import's format. Rows for other quotes in
    that file are kept; a file holding another coder's rows is refused. Returns rows per file."""
    with Session(engine) as session:
        rows = _decided_rows(session, coder_name)
    by_coder: dict[str, list[dict]] = {}
    for r in rows:
        when = r.decided_at if r.decided_at.tzinfo else r.decided_at.replace(tzinfo=dt.timezone.utc)
        by_coder.setdefault(r.name, []).append({
            "id": r.quote_id, "text": r.text, "codes": sorted(split_codes(r.codes)), "coder": r.name,
            "decision": r.action, "reviewed_at": when.isoformat(), "reviewer_note": r.memo, "origin": "reviewed",
        })
    return {str(write_person_codings(labels_dir, name, rows).path): len(rows) for name, rows in by_coder.items()}


def agreement(engine: Engine, code_ids: Sequence[str], rounds: int = 200) -> dict[str, AgreementReport]:
    """Agreement between the coders (key ``coders``, when two or more decided quotes) and of
    each coder with the model's suggestions (key: the coder's name)."""
    with Session(engine) as session:
        rows = _decided_rows(session)
    people: dict[str, list[dict]] = {}
    model: dict[str, dict] = {}
    for r in rows:
        people.setdefault(r.name, []).append({"id": r.quote_id, "codes": r.codes})
        model[r.quote_id] = {"id": r.quote_id, "codes": r.suggested}
    codings = {name: CoderCodings.from_rows(items, name=name, source=name) for name, items in people.items()}
    reports = {}
    if len(codings) >= 2:
        reports["coders"] = compute_agreement(list(codings.values()), code_ids, rounds=rounds)
    for name, coding in codings.items():
        versus = CoderCodings.from_rows([model[q] for q in coding.codes], name=MODEL_CODER, source=MODEL_CODER)
        reports[name] = compute_agreement([coding, versus], code_ids, rounds=rounds)
    return reports
