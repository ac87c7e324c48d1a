"""The browser workbench (``framecode serve``): code testimonials with the model beside you.

:func:`create_app` builds the FastAPI app from :class:`WebSettings` and a warm scorer
(:class:`ModelScorer`); decisions live in the database (:mod:`.db`) and are exported to
``labels/human/<coder>.jsonl`` (:func:`.store.export_decisions`).
"""

from .app import WebSettings, check_host, create_app
from .scoring import ModelScorer

__all__ = ["ModelScorer", "WebSettings", "check_host", "create_app"]
