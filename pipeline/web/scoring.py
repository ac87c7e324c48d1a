"""The model behind the workbench, loaded once and kept warm.

:class:`ModelScorer` wraps a :class:`pipeline.model.TrainedCoder`. The app only needs the
small :class:`Scorer` interface, so tests can stand in a fake.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..coding import TagResult, tag
from ..model import TrainedCoder, load_coder
from ..records import Codebook
from ..review import uncertainty

CHUNK_SIZE = 256
TAG_CACHE_SIZE = 2048  # quote pages remembered: a team codes the same quotes in the same order


@dataclass(frozen=True)
class QuoteScore:
    """What the model says about a quote when it enters the workbench."""

    suggested: tuple[str, ...]
    needs_review: bool
    uncertainty: float


class Scorer(Protocol):
    codebook: Codebook
    model_id: str

    def score(self, texts: Sequence[str]) -> list[QuoteScore]: ...

    def tag(self, text: str) -> TagResult: ...

    def reload(self, model_dir: str | Path) -> str: ...

    def likely(self, texts: Sequence[str], code_ids: Sequence[str]) -> np.ndarray: ...


class ModelScorer:
    """Scores and tags with a trained coder; :meth:`warm` loads the encoder up front.

    Every call runs on one worker thread: the encoder's embedding cache is a SQLite
    connection that must stay in the thread that opened it, and one warm model serves
    a team's requests one after another (~10 ms each).
    """

    def __init__(self, coder: TrainedCoder):
        self.coder = coder
        self.codebook = coder.codebook
        self.model_id = coder.model_id
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="framecode-model")
        self._tagged: OrderedDict[str, TagResult] = OrderedDict()  # used on the worker thread only

    def warm(self) -> None:
        self.tag("Shared data helped us. It saved money.")

    def reload(self, model_dir: str | Path) -> str:
        """Swap in the model saved in ``model_dir`` (same encoder, loaded on the worker thread,
        between two requests); returns its id. A model that fails its checks leaves the old one."""
        return self._worker.submit(self._reload, Path(model_dir)).result()

    def _reload(self, model_dir: Path) -> str:
        coder = load_coder(model_dir, codebook=self.codebook, encoder=self.coder.encoder)
        tag("Shared data helped us. It saved money.", coder)  # warm before it serves
        self.coder, self.model_id = coder, coder.model_id
        self._tagged.clear()
        return coder.model_id

    def score(self, texts: Sequence[str]) -> list[QuoteScore]:
        return self._worker.submit(self._score, texts).result()

    def tag(self, text: str) -> TagResult:
        """The quote's codes, carrying sentences and evidence; a text tagged lately (another
        coder's page for the same quote) is answered from memory."""
        return self._worker.submit(self._tag, text).result()

    def _tag(self, text: str) -> TagResult:
        result = self._tagged.get(text)
        if result is None:
            result = self._tagged[text] = tag(text, self.coder)
            if len(self._tagged) > TAG_CACHE_SIZE:
                self._tagged.popitem(last=False)
        else:
            self._tagged.move_to_end(text)
        return result

    def likely(self, texts: Sequence[str], code_ids: Sequence[str]) -> np.ndarray:
        """How likely each text carries each code (:func:`.growing.likely_scores`)."""
        from .growing import likely_scores

        return self._worker.submit(likely_scores, self.coder, self.codebook, texts, code_ids).result()

    def _score(self, texts: Sequence[str]) -> list[QuoteScore]:
        scores: list[QuoteScore] = []
        for start in range(0, len(texts), CHUNK_SIZE):
            chunk = list(texts[start:start + CHUNK_SIZE])
            proba = self.coder.predict_proba(chunk)
            applied = self.coder.decide(proba, chunk)
            spread = uncertainty(proba, self.coder.thresholds)
            for i in range(len(chunk)):
                suggested = tuple(sorted(c for c, a in zip(self.coder.code_ids, applied[i]) if a))
                scores.append(QuoteScore(suggested, self.coder.needs_review(proba[i]), float(np.round(spread[i], 6))))
        return scores
