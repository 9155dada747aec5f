"""Mutated real headers through the whole pipeline (parse, roles, plan, read, statistics), bounded in time and memory.

The header parsers are fuzzed on their own in test_fuzz_headers.py; here a real trained model's safetensors
header gets hostile values where they hurt most downstream - dimensions, offsets, dtypes, layer numbers - and
``compute`` must end quickly, in a fingerprint or in a typed error that is not "a bug in the tool", without
allocating more than a real model of that file's size would. Deterministic (derandomize=True).
"""

from __future__ import annotations

import json
import struct
import tracemalloc

from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_headers import time_limit

from fingerprint import Options, compute
from fingerprint.errors import FingerprintError, InternalError

MODEL = FIXTURES / "stories260k" / "model.safetensors"
RAW = MODEL.read_bytes()
(N,) = struct.unpack("<Q", RAW[:8])
HEADER = json.loads(RAW[8 : 8 + N])
NAMES = sorted(k for k in HEADER if k != "__metadata__")
HUGE = [0, 1, 7, 2**31 - 1, 2**31, 2**32, 2**60, 2**63, 2**64 + 3, 10**30]

PIPELINE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def mutation(draw):
    header = json.loads(json.dumps(HEADER))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(NAMES))
        entry = header.get(name)
        if entry is None:
            continue
        what = draw(st.sampled_from(["shape", "zero-size", "offsets", "dtype", "rename"]))
        if what == "zero-size":  # consistent with its (empty) bytes, so only the shape itself can be judged
            entry["shape"] = draw(st.permutations([draw(st.sampled_from(HUGE)), 0]))
            entry["data_offsets"] = [0, 0]
        elif what == "shape":
            entry["shape"] = draw(st.lists(st.sampled_from(HUGE), min_size=0, max_size=4))
        elif what == "offsets":
            entry["data_offsets"] = [draw(st.sampled_from(HUGE)), draw(st.sampled_from(HUGE))]
        elif what == "dtype":
            entry["dtype"] = draw(st.sampled_from(["F32", "BF16", "F8_E4M3", "I64", "BOOL", "F4", "", "F32\n"]))
        else:
            layer = draw(st.sampled_from(["0", "1000000000000", "9" * 4400, "-1", "٣", "00000001"]))
            parts = name.split(".")
            digits = [i for i, p in enumerate(parts) if p.isdigit()]
            if digits:
                parts[digits[0]] = layer
                header[".".join(parts)] = header.pop(name)
    return header


@given(header=mutation())
@PIPELINE
def test_mutated_real_header_ends_fast_in_a_result_or_a_typed_error(tmp_path_factory, header):
    folder = tmp_path_factory.mktemp("m")
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + RAW[8 + N :])
    (folder / "config.json").write_bytes((FIXTURES / "stories260k" / "config.json").read_bytes())
    tracemalloc.start()
    try:
        with time_limit(10.0):
            out = compute(str(folder), Options(use_cache=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if out.error is not None:
        assert isinstance(out.error, FingerprintError) and not isinstance(out.error, InternalError), repr(out.error)
        assert "\n" not in str(out.error)
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB for a {len(RAW) / 1e6:.1f} MB model"
