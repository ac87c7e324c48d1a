"""Growing a new code: a queue of the quotes most likely to carry a code that has few labels.

A code is *growing* while ``labels/`` holds fewer than :data:`GROWING_BELOW` quotes coded with
it (a code just added to the codebook has none). Its queue ranks the workbench's quotes by the
model's probability for it, or, when the model has no column for it (trained before the code
existed), by the cosine similarity of the quote's embedding to the code's definition, include
notes and examples. Scores are computed when the queue is first opened and for quotes added
since, and kept in the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import and_, delete, exists, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..errors import InputError, ValidationError
from ..labels import load_labels
from ..model import TrainedCoder
from ..records import Codebook
from .db import DecisionRow, LikelyScore, QuoteRow
from .team import served_to

GROWING_BELOW = 20
CHUNK_SIZE = 256


def growing_codes(codebook: Codebook, labels_dir: str | Path) -> dict[str, int]:
    """Codes with fewer than :data:`GROWING_BELOW` positive labels, with their count, in
    codebook order; none while the labels cannot be read (``framecode train`` says why)."""
    try:
        labels = load_labels(codebook, labels_dir)
    except ValidationError:
        return {}
    except InputError:  # no labelled file yet: every code starts from zero
        labels = None
    counts = Counter(code for quote in (labels.quotes if labels else ()) for code in quote.codes)
    return {code: counts[code] for code in codebook.code_ids if counts[code] < GROWING_BELOW}


def likely_scores(coder: TrainedCoder, codebook: Codebook, texts: Sequence[str], code_ids: Sequence[str]) -> np.ndarray:
    """Shape (texts, codes): the model's probability where it has the code, else the cosine
    similarity to the code's definition, include notes and examples (best match)."""
    scores = np.zeros((len(texts), len(code_ids)), dtype=np.float64)
    modelled = [i for i, c in enumerate(code_ids) if c in coder.code_ids]
    if modelled:
        proba = coder.predict_proba(list(texts))
        for i in modelled:
            scores[:, i] = proba[:, coder.code_ids.index(code_ids[i])]
    new = [i for i, c in enumerate(code_ids) if c not in coder.code_ids]
    if new:
        encoder = coder.get_encoder()
        vectors = _unit(encoder.encode(list(texts)))
        for i in new:
            code = codebook.code(code_ids[i])
            prototypes = _unit(encoder.encode([code.definition or code.name, *code.include, *code.examples]))
            scores[:, i] = (vectors @ prototypes.T).max(axis=1)
    return scores


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def fill_likely(engine: Engine, scorer, code: str) -> int:
    """Score, for ``code``, every quote the served model has not scored for it yet (after a
    retrain, all again); returns how many were scored."""
    missing = ~exists().where(and_(LikelyScore.quote_pk == QuoteRow.id, LikelyScore.code == code))
    with Session(engine) as session, session.begin():
        session.execute(delete(LikelyScore).where(LikelyScore.code == code, LikelyScore.model_id != scorer.model_id))
    with Session(engine) as session:
        rows = session.execute(select(QuoteRow.id, QuoteRow.text).where(missing).order_by(QuoteRow.id)).all()
    for start in range(0, len(rows), CHUNK_SIZE):
        chunk = rows[start:start + CHUNK_SIZE]
        scores = scorer.likely([r.text for r in chunk], [code])[:, 0]
        with Session(engine) as session, session.begin():
            known = set(session.scalars(select(LikelyScore.quote_pk).where(
                LikelyScore.code == code, LikelyScore.quote_pk.in_([r.id for r in chunk]))))
            session.add_all(LikelyScore(quote_pk=r.id, code=code, score=float(s), model_id=scorer.model_id)
                            for r, s in zip(chunk, scores) if r.id not in known)
    return len(rows)


def next_likely(engine: Engine, coder_id: int, code: str) -> str | None:
    """The quote most likely to carry ``code`` that this coder has not decided or skipped."""
    decided = exists().where(and_(DecisionRow.quote_pk == QuoteRow.id, DecisionRow.coder_id == coder_id))
    with Session(engine) as session:
        return session.scalar(
            select(QuoteRow.quote_id).join(LikelyScore, and_(LikelyScore.quote_pk == QuoteRow.id, LikelyScore.code == code))
            .where(~decided, served_to(coder_id)).order_by(LikelyScore.score.desc(), QuoteRow.id).limit(1)
        )
