"""LLM weight fingerprints: per-layer statistics of attention weights, read with as few bytes as possible.

Python API::

    from fingerprint import compute, compute_many, inspect, compare_pair, similarity_matrix, Options
"""

__version__ = "0.1.0"

from .compare import PairComparison, compare_pair, similarity_matrix
from .errors import FingerprintError
from .fingerprinting import Inspection, Options, Outcome, Progress, compute, compute_many, inspect
from .result import SCHEMA_VERSION, Fingerprint
from .store import Store

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
