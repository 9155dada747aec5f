"""LLM weight fingerprints: per-layer statistics of attention weights, read with as few bytes as possible.

Python API::

    from fingerprint import compute, compute_many, inspect, compare_pair, similarity_matrix, Options
"""

__version__ = "0.1.0"

from .compare import PairComparison, compare_pair, similarity_matrix  # noqa: E402
from .compute import Inspection, Options, Outcome, Progress, compute, compute_many, inspect  # noqa: E402
from .errors import FingerprintError  # noqa: E402
from .result import SCHEMA_VERSION, Fingerprint  # noqa: E402
from .store import Store  # noqa: E402

__all__ = [
    "SCHEMA_VERSION",
    "Fingerprint",
    "FingerprintError",
    "Inspection",
    "Options",
    "Outcome",
    "PairComparison",
    "Progress",
    "Store",
    "compare_pair",
    "compute",
    "compute_many",
    "inspect",
    "similarity_matrix",
]
