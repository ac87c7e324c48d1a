"""Default locations of the shipped corpus, labels, models and outputs."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = PROJECT_ROOT / "corpus"
LABELS_DIR = PROJECT_ROOT / "labels"
MODELS_DIR = PROJECT_ROOT / "models"
DEFAULT_CODEBOOK = LABELS_DIR / "codebook.yaml"
DEFAULT_MODEL_DIR = MODELS_DIR / "default"


def model_dir_for(encoder: str) -> Path:
    """The model folder used when none is named: ``models/default``, or ``models/fast`` for
    the fast encoder."""
    return DEFAULT_MODEL_DIR if encoder == "default" else MODELS_DIR / encoder
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.toml"


def cache_dir() -> Path:
    """Folder for derived, rebuildable artifacts (embeddings, exported encoders)."""
    return Path(os.environ.get("FRAMECODE_CACHE", PROJECT_ROOT / ".framecode" / "cache"))
