"""framecode: code testimonials about cross-sector data sharing into value framings."""

from .errors import (
    CodebookError,
    EncoderError,
    FramecodeError,
    InputError,
    ModelError,
    Problem,
    RunError,
    ValidationError,
)
from .records import SECTORS, Code, Codebook, Coding, Quote, Theme, quote_id

__version__ = "0.1.0"

__all__ = [
    "SECTORS",
    "Code",
    "Codebook",
    "CodebookError",
    "Coding",
    "EncoderError",
    "FramecodeError",
    "InputError",
    "ModelError",
    "Problem",
    "Quote",
    "RunError",
    "Theme",
    "ValidationError",
    "quote_id",
]
