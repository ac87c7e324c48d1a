"""Plain-text (TOML) configuration, one section per stage."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError
from .paths import DEFAULT_CONFIG


def load_config(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Read a TOML config; sections missing from ``path`` fall back to the shipped defaults."""
    config = _read(DEFAULT_CONFIG)
    if path is not None:
        for section, values in _read(Path(path)).items():
            config.setdefault(section, {}).update(values if isinstance(values, Mapping) else {})
    return config


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found; pass an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
