"""What a run needs from a coder, and the deterministic hash coder for tests and benchmarks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Protocol

from ..records import Codebook, Quote


class Coder(Protocol):
    """What a run needs from a coder (``pipeline.classify.load_coder`` returns one)."""

    model_id: str
    model_hash: str
    codebook_hash: str
    encoder_identity: dict
    code_ids: tuple[str, ...]

    def code_rows(self, quotes: Sequence[Quote]) -> list[dict]: ...



class HashCoder:
    """A deterministic stand-in for a trained coder, for tests and benchmarks only.

    Each code's probability is derived from a hash of the code id and the quote's text, so
    adding a code to the codebook leaves every other code's codings unchanged. ``delay``
    seconds are slept per call (to let a test kill a run mid-way); ``calls`` records the
    number of quotes of each call.
    """

    model_id = "hash-coder"
    model_hash = hashlib.sha256(b"framecode hash-coder v1").hexdigest()
    encoder_identity = {"name": "none (hash coder)", "weights_sha256": "", "backend": "none", "dimension": 0}

    def __init__(self, codebook: Codebook, *, delay: float = 0.0):
        self.codebook = codebook
        self.delay = delay
        self.codebook_hash = codebook.content_hash
        self.code_ids = codebook.code_ids
        self.calls: list[int] = []

    def code_rows(self, quotes: Sequence[Quote]) -> list[dict]:
        self.calls.append(len(quotes))
        if self.delay:
            time.sleep(self.delay)
        rows = []
        for quote in quotes:
            probabilities = {c: _unit_hash(c, quote.text) for c in self.code_ids}
            rows.append({
                "id": quote.id, "text": quote.text, "organization": quote.organization,
                "program": quote.program, "sector": quote.sector,
                "codes": ";".join(sorted(c for c, p in probabilities.items() if p >= 0.5)),
                "needs_review": any(abs(p - 0.5) < 0.05 for p in probabilities.values()),
                **{f"p_{c}": p for c, p in probabilities.items()},
            })
        return rows


def _unit_hash(code_id: str, text: str) -> float:
    digest = hashlib.sha256(f"{code_id}\x00{text}".encode("utf-8")).digest()
    return round(int.from_bytes(digest[:4], "big") / 0xFFFFFFFF, 4)

