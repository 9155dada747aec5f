"""Hypothesis fuzzing of the safetensors and GGUF header parsers.

Whatever the bytes, ``read_header`` either returns a consistent result or raises a
FingerprintError subclass: never another exception, never a hang, and it never asks its
ByteSource for more than a small multiple of the file's size (so no unbounded reads or
allocations driven by a length field). Inputs: arbitrary bytes, bytes behind a plausible
prefix, structured-but-wrong headers, and valid files mutated by bit flips, truncations,
insertions and length fields overwritten with huge values.

Deterministic (derandomize=True) so CI sees the same examples every run.
"""

from __future__ import annotations

import itertools
import json
import signal
import struct
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fingerprint.errors import CorruptFile, FingerprintError
from fingerprint.formats import gguf as gguf_format
from fingerprint.formats import safetensors as st_format
from fingerprint.formats import torch_zip
from fingerprint.formats.dtypes import SAFETENSORS_DTYPES
from fingerprint.sources.base import ByteSource

FUZZ = settings(
    max_examples=250,
    deadline=1000,  # ms per example
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TIME_LIMIT = 5.0  # seconds: an example still running after this is a hang


class MemorySource(ByteSource):
    """A ByteSource over bytes in memory that counts what the parser asks for."""

    def __init__(self, data: bytes, name: str = "fuzz.bin") -> None:
        super().__init__()
        self.data = bytes(data)
        self.size = len(self.data)
        self.name = name
        self.requested = 0
        self.calls = 0

    def fetch(self, offset: int, length: int) -> bytes:
        self.calls += 1
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptFile(f"{self.name}: read of {length} bytes at {offset} is beyond the end ({self.size} bytes)")
        self.requested += length
        return self.data[offset : offset + length]


@contextmanager
def time_limit(seconds: float):
    """Fail (rather than hang the suite) if the body runs longer than ``seconds`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"parser still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def parse(read_header, data: bytes):
    """Run one parser on ``data``; check the property; return the result or the FingerprintError."""
    src = MemorySource(data)
    try:
        with time_limit(TIME_LIMIT):
            result = read_header(src)
    except FingerprintError as exc:
        assert str(exc) and exc.fix  # a message and what to do
        result = exc
    # no unbounded reads: at most the whole file, plus a little slack, ever asked for
    assert src.requested <= 2 * len(data) + 64, (src.requested, len(data))
    assert src.calls <= 2 * len(data) + 16
    if not isinstance(result, FingerprintError):
        check_consistent(result, src)
    return result


def check_consistent(result, src: MemorySource) -> None:
    tensors, metadata, data_start = result
    assert isinstance(metadata, dict)
    assert 0 <= data_start <= src.size
    spans = []
    for t in tensors:
        assert isinstance(t.name, str)
        assert t.source is src
        assert data_start <= t.offset and t.nbytes >= 0
        assert t.offset + t.nbytes <= src.size, (t.name, t.offset, t.nbytes, src.size)
        assert all(isinstance(d, int) and d >= 0 for d in t.shape)
        if t.nbytes:
            spans.append((t.offset, t.offset + t.nbytes))
    spans.sort()
    for (_, e0), (b1, _) in itertools.pairwise(spans):
        assert b1 >= e0, "overlapping tensors accepted"


# ----------------------------------------------------------------------------------------------
# valid seed files


def st_file(tensors: dict[str, np.ndarray], metadata: dict | None = None, pad_to: int | None = None) -> bytes:
    header: dict = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    chunks, pos = [], 0
    names = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("uint8"): "U8"}
    for name, arr in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": names[arr.dtype], "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    raw = json.dumps(header).encode()
    if pad_to is not None:
        assert pad_to >= len(raw)
        raw += b" " * (pad_to - len(raw))
    else:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(chunks)


def llama(layers: int = 2, hidden: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for i in range(layers):
        for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[f"model.layers.{i}.self_attn.{p}.weight"] = rng.standard_normal((hidden, hidden)).astype(np.float16)
        out[f"model.layers.{i}.input_layernorm.weight"] = np.ones(hidden, np.float32)
    return out


ST_SEED = st_file(llama(), metadata={"format": "pt"})


def gguf_file(n_layers: int = 2, hidden: int = 32, vocab: int = 80) -> bytes:
    """A small llama GGUF with every kind of KV value: strings, bools, floats, small and large arrays, nested arrays."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_block_count(n_layers)
        w.add_embedding_length(hidden)
        w.add_head_count(4)
        w.add_head_count_kv(2)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_bool("general.fuzz_bool", True)
        w.add_float64("general.fuzz_f64", 0.5)
        w.add_array("general.fuzz_small", [1, 2, 3])
        w.add_array("general.fuzz_nested", [[1, 2], [3]])
        w.add_token_list([f"t{i}" for i in range(vocab)])  # the vocabulary: kept as strings
        w.add_token_scores([float(i) for i in range(vocab)])  # > KEEP_ARRAY_ITEMS floats: skipped path
        for i in range(n_layers):
            w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((hidden, hidden)).astype(np.float32))
            w.add_tensor(f"blk.{i}.attn_k.weight", rng.standard_normal((hidden // 2, hidden)).astype(np.float16))
            q8 = gguf.quants.quantize(
                rng.standard_normal((hidden // 2, hidden)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0
            )
            w.add_tensor(f"blk.{i}.attn_v.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


GGUF_SEED = gguf_file()


def test_seeds_parse():
    tensors, meta, _start = parse(st_format.read_header, ST_SEED)
    assert len(tensors) == 10 and meta == {"format": "pt"}
    tensors, meta, _start = parse(gguf_format.read_header, GGUF_SEED)
    assert len(tensors) == 8
    assert meta["llama.block_count"] == 2 and meta["general.fuzz_small"] == [1, 2, 3]
    assert meta["tokenizer.ggml.tokens"] == [f"t{i}" for i in range(80)]  # the vocabulary is kept (lineage signals)


def test_gguf_parser_agrees_with_gguf_reader(tmp_path):
    """On a valid file the range-based parser finds what gguf.GGUFReader (whole file, mmap) finds."""
    path = tmp_path / "m.gguf"
    path.write_bytes(GGUF_SEED)
    reader = gguf.GGUFReader(str(path))
    ours = {t.name: t for t in parse(gguf_format.read_header, GGUF_SEED)[0]}
    assert set(ours) == {t.name for t in reader.tensors}
    for rt in reader.tensors:
        t = ours[rt.name]
        assert t.offset == rt.data_offset
        assert t.nbytes == rt.n_bytes
        assert t.shape == tuple(int(d) for d in reversed(rt.shape.tolist()))
        assert t.dtype == rt.tensor_type.name


# ----------------------------------------------------------------------------------------------
# arbitrary bytes


@FUZZ
@given(st.binary(max_size=600))
def test_safetensors_arbitrary_bytes(data):
    parse(st_format.read_header, data)


@FUZZ
@given(st.binary(max_size=600))
def test_gguf_arbitrary_bytes(data):
    parse(gguf_format.read_header, data)


@FUZZ
@given(
    n=st.one_of(
        st.integers(0, 700), st.sampled_from([2**64 - 1, 2**63, 2**32, 100 * 1024 * 1024, 100 * 1024 * 1024 + 1])
    ),
    body=st.binary(max_size=600),
)
def test_safetensors_length_prefix_then_garbage(n, body):
    parse(st_format.read_header, struct.pack("<Q", n) + body)


@FUZZ
@given(
    version=st.sampled_from([2, 3, 1, 0, 4, 2**32 - 1]),
    n_tensors=st.one_of(st.integers(0, 8), st.sampled_from([2**64 - 1, 2**63, 2**40, 2**32])),
    n_kv=st.one_of(st.integers(0, 8), st.sampled_from([2**64 - 1, 2**63, 2**40, 2**32])),
    body=st.binary(max_size=600),
)
def test_gguf_plausible_prefix_then_garbage(version, n_tensors, n_kv, body):
    parse(gguf_format.read_header, b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + body)


# ----------------------------------------------------------------------------------------------
# structured safetensors headers: valid JSON objects whose entries are right, nearly right or wrong

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**66), 2**66), st.floats(allow_nan=False), st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8
)
dims = st.one_of(
    st.integers(0, 9), st.integers(-3, -1), st.sampled_from([2**31, 2**63, 2**64 + 5]), st.just(True), st.just(2.0)
)
entry = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.one_of(
            st.sampled_from(sorted(SAFETENSORS_DTYPES)), st.sampled_from(["F4_X", "", "f32"]), json_scalars
        ),
        "shape": st.one_of(st.lists(dims, max_size=4), json_values),
        "data_offsets": st.one_of(
            st.lists(st.one_of(st.integers(-5, 300), st.sampled_from([2**64, 2**70])), min_size=0, max_size=3),
            json_values,
        ),
    },
)
full_entry = st.fixed_dictionaries(  # all three keys present: gets past the "no dtype" check
    {
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "F4_X"]),
        "shape": st.lists(st.one_of(st.integers(0, 6), dims), max_size=3),
        "data_offsets": st.lists(
            st.one_of(st.integers(-2, 120), st.sampled_from([2**64, 2**70])), min_size=2, max_size=2
        ),
    }
)
names = st.one_of(
    st.sampled_from(["model.layers.0.self_attn.q_proj.weight", "__metadata__", "", "x"]), st.text(max_size=12)
)


@FUZZ
@given(
    header=st.dictionaries(names, st.one_of(full_entry, entry, json_values), max_size=6),
    data_len=st.integers(0, 300),
)
def test_safetensors_structured_headers(header, data_len):
    raw = json.dumps(header).encode()
    result = parse(st_format.read_header, struct.pack("<Q", len(raw)) + raw + b"\0" * data_len)
    if not isinstance(result, FingerprintError):
        tensors, _, _ = result
        for t in tensors:  # sizes were checked for every dtype whose size is known
            spec = SAFETENSORS_DTYPES.get(t.dtype)
            if spec is not None:
                assert t.nbytes == int(np.prod(t.shape, dtype=object)) * spec[0]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["F32", "F16", "BF16", "I8"]), st.lists(st.integers(0, 6), max_size=3)), max_size=8
    ),
    st.data(),
)
def test_safetensors_valid_layouts_always_parse(specs, data):
    """Well-formed headers (any order, zero-size tensors, gaps) are accepted and give back what they say."""
    header, pos = {}, 0
    for i, (dtype, shape) in enumerate(specs):
        n = int(np.prod(shape, dtype=np.int64)) * SAFETENSORS_DTYPES[dtype][0]
        gap = data.draw(st.integers(0, 3))
        header[f"model.layers.{i}.self_attn.q_proj.weight"] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [pos + gap, pos + gap + n],
        }
        pos += gap + n
    keys = data.draw(st.permutations(list(header)))
    raw = json.dumps({k: header[k] for k in keys}).encode()
    blob = struct.pack("<Q", len(raw)) + raw + b"\x01" * pos
    tensors, _, start = parse(st_format.read_header, blob)
    assert start == 8 + len(raw)
    assert {t.name: (t.dtype, list(t.shape), t.offset - start, t.nbytes) for t in tensors} == {
        k: (v["dtype"], v["shape"], v["data_offsets"][0], v["data_offsets"][1] - v["data_offsets"][0])
        for k, v in header.items()
    }


# ----------------------------------------------------------------------------------------------
# mutated valid files

HUGE = st.sampled_from([2**64 - 1, 2**63, 2**62 + 1, 2**32, 2**32 - 1, 2**31, 100 * 1024 * 1024 + 1])


@st.composite
def mutated(draw, seed: bytes, length_fields: list[int], regions: list[tuple[int, int]] = ()):
    """``seed`` with 1-4 mutations; ``length_fields`` are offsets of uint64 counts/lengths worth hitting,
    ``regions`` (start, end) byte ranges mutations should mostly land in (hypothesis favours small
    integers, which would otherwise mostly break the magic)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "u64", "u64-field", "u32", "byte", "insert", "delete"]))
        if not data:
            break
        lo, hi = draw(st.sampled_from([*regions, (0, len(data))]))
        hi = min(hi, len(data))
        if lo >= hi:
            lo, hi = 0, len(data)
        pos = draw(st.integers(lo, hi - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op in ("u64", "u64-field"):
            if op == "u64-field" and length_fields:
                pos = draw(st.sampled_from(length_fields))
            if pos + 8 <= len(data):
                value = draw(st.one_of(HUGE, st.integers(0, 2 * len(data))))
                struct.pack_into("<Q", data, pos, value)
        elif op == "u32":
            if pos + 4 <= len(data):
                struct.pack_into("<I", data, pos, draw(st.one_of(st.integers(0, 40), st.just(2**32 - 1))))
        elif op == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


def _gguf_length_fields(blob: bytes) -> list[int]:
    """Offsets of the counts and string/array lengths in the GGUF header (found by walking it with gguf.GGUFReader)."""
    out = [8, 16]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.gguf"
        p.write_bytes(blob)
        reader = gguf.GGUFReader(str(p))
        for field in list(reader.fields.values()) + [t.field for t in reader.tensors]:
            out.append(field.offset)  # the key's / name's string length
            if field.types and field.types[0] == gguf.GGUFValueType.ARRAY:
                out.append(field.offset + 8 + len(field.name.encode()) + 4 + 4)  # the item count
        # tensor data offsets: the last 8 bytes of each tensor-info record
        for t in reader.tensors:
            f = t.field
            out.append(f.offset + sum(int(p.nbytes) for p in f.parts) - 8)
    return sorted(set(out))


def _gguf_regions(blob: bytes) -> list[tuple[int, int]]:
    """(KV section), (tensor-info section) of a valid GGUF."""
    tensors, _, data_start = gguf_format.read_header(MemorySource(blob))
    ti_start = blob.index(struct.pack("<Q", len(tensors[0].name)) + tensors[0].name.encode())
    return [(24, ti_start), (ti_start, data_start)]


GGUF_FIELDS = _gguf_length_fields(GGUF_SEED)
GGUF_REGIONS = _gguf_regions(GGUF_SEED)
ST_FIELDS = [0]
ST_REGIONS = [(8, 8 + struct.unpack_from("<Q", ST_SEED)[0])]  # the JSON


def test_gguf_length_fields_found():
    assert len(GGUF_FIELDS) > 20
    for pos in GGUF_FIELDS[2:]:
        assert struct.unpack_from("<Q", GGUF_SEED, pos)[0] < len(GGUF_SEED)


@settings(FUZZ, max_examples=400)
@given(mutated(ST_SEED, ST_FIELDS, ST_REGIONS))
def test_safetensors_mutated(data):
    parse(st_format.read_header, data)


@settings(FUZZ, max_examples=600)
@given(mutated(GGUF_SEED, GGUF_FIELDS, GGUF_REGIONS))
def test_gguf_mutated(data):
    parse(gguf_format.read_header, data)


@settings(FUZZ, max_examples=200)
@given(pos=st.sampled_from(GGUF_FIELDS), value=st.one_of(HUGE, st.integers(0, 2**16)))
def test_gguf_each_length_field_overwritten(pos, value):
    data = bytearray(GGUF_SEED)
    struct.pack_into("<Q", data, pos, value)
    parse(gguf_format.read_header, bytes(data))


@settings(FUZZ, max_examples=100)
@given(cut=st.integers(0, len(GGUF_SEED)))
def test_gguf_every_truncation(cut):
    result = parse(gguf_format.read_header, GGUF_SEED[:cut])
    if cut < len(GGUF_SEED):
        assert isinstance(result, CorruptFile)


@settings(FUZZ, max_examples=100)
@given(cut=st.integers(0, len(ST_SEED)))
def test_safetensors_every_truncation(cut):
    result = parse(st_format.read_header, ST_SEED[:cut])
    if cut < len(ST_SEED):
        assert isinstance(result, CorruptFile)


# ----------------------------------------------------------------------------------------------
# large headers (huggingface_hub once read safetensors headers with an off-by-7 at its 100 kB first read)


def many_tensors(n: int) -> dict[str, np.ndarray]:
    out = {}
    for i in range(n):
        layer, proj = divmod(i, 4)
        out[f"model.layers.{layer}.self_attn.{('q', 'k', 'v', 'o')[proj]}_proj.weight"] = np.full((2, 2), i, np.float16)
    return out


@pytest.mark.parametrize(
    "header_total", [100_000 - 8, 100_000 - 7, 100_000 - 1, 100_000, 100_001, 100_007, 100_008, 102_400, 300_000]
)
def test_safetensors_header_around_and_beyond_100kb(header_total):
    """8 + header length = ``header_total`` exactly (space padding): parsed with two exact reads."""
    tensors = many_tensors(1200)  # ~75 kB of JSON
    raw_len = header_total - 8
    n_needed = len(st_file(tensors)) - 8 - 1200 * 8
    if raw_len < n_needed:
        tensors = many_tensors(int(1200 * raw_len / n_needed) - 20)
    json_len = len(json.dumps(_header_of(tensors)).encode())
    blob = st_file(tensors, pad_to=raw_len)
    assert struct.unpack_from("<Q", blob)[0] == raw_len and json_len <= raw_len
    src = MemorySource(blob)
    found, _meta, start = st_format.read_header(src)
    assert start == header_total
    assert src.calls == 2 and src.requested == header_total  # no byte wasted
    assert len(found) == len(tensors)
    by_name = {t.name: t for t in found}
    for _i, (name, arr) in enumerate(tensors.items()):
        t = by_name[name]
        assert t.shape == (2, 2) and t.dtype == "F16"
        assert blob[t.offset : t.offset + t.nbytes] == arr.tobytes()


def _header_of(tensors):
    header, pos = {}, 0
    for name, arr in tensors.items():
        header[name] = {"dtype": "F16", "shape": list(arr.shape), "data_offsets": [pos, pos + arr.nbytes]}
        pos += arr.nbytes
    return header


def test_safetensors_large_header_agrees_with_the_safetensors_library(tmp_path):
    from safetensors import safe_open

    tensors = {
        f"model.layers.{i // 4}.self_attn.{'qkvo'[i % 4]}_proj.weight": np.full((3, 5), i, np.float32)
        for i in range(2400)
    }
    blob = st_file(tensors, metadata={"format": "pt", "note": "x" * 50_000})
    assert struct.unpack_from("<Q", blob)[0] > 200_000
    path = tmp_path / "big.safetensors"
    path.write_bytes(blob)
    found, meta, _start = parse(st_format.read_header, blob)
    with safe_open(str(path), framework="numpy") as f:
        assert set(f.keys()) == {t.name for t in found}
        assert f.metadata() == meta
        for t in found[::97]:
            np.testing.assert_array_equal(
                f.get_tensor(t.name), np.frombuffer(blob[t.offset : t.offset + t.nbytes], np.float32).reshape(t.shape)
            )


def test_gguf_header_larger_than_the_first_read_chunk():
    """A header far beyond the parser's 64 kB first read (a big vocabulary) is walked across chunk boundaries."""
    blob = gguf_file(n_layers=3, hidden=32, vocab=30_000)
    src = MemorySource(blob)
    tensors, meta, start = gguf_format.read_header(src)
    assert start > 200_000
    assert len(meta["tokenizer.ggml.tokens"]) == 30_000 and meta["tokenizer.ggml.tokens"][-1] == "t29999"
    assert len(tensors) == 12
    assert src.requested <= len(blob)
    assert src.calls < 10  # doubling chunks, not one read per field


# ----------------------------------------------------------------------------------------------
# regressions: work bounded by the header, not by what a damaged length field claims


class SparseSource(MemorySource):
    """``prefix`` followed by zeros up to ``size`` (a huge file never held in memory); one read over 64 MiB fails."""

    def __init__(self, prefix: bytes, size: int) -> None:
        super().__init__(prefix)
        self.size = size

    def fetch(self, offset: int, length: int) -> bytes:
        assert length <= 64 << 20, f"read of {length} bytes asked for"
        self.calls += 1
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptFile("beyond the end")
        self.requested += length
        chunk = self.data[offset : offset + length]
        return chunk + b"\0" * (length - len(chunk))


@pytest.mark.parametrize("where", ["key", "tensor-name"])
def test_gguf_huge_name_length_inside_a_huge_file_is_not_read(where):
    """A length field that fits a 100 GB file must not make the parser read (and hold) gigabytes."""
    if where == "key":
        prefix = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 30 << 30)
    else:
        prefix = b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", 30 << 30)
    src = SparseSource(prefix, 100 << 30)
    with pytest.raises(CorruptFile, match="name of"):
        gguf_format.read_header(src)
    assert src.requested <= 1 << 20


def test_gguf_long_string_value_is_skipped_not_read():
    """A 50 GB string value claimed by the header (never needed) is skipped, its length kept."""
    key = b"tokenizer.chat_template"
    prefix = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    prefix += struct.pack("<Q", len(key)) + key + struct.pack("<IQ", int(gguf.GGUFValueType.STRING), 50 << 30)
    src = SparseSource(prefix, 60 << 30)
    tensors, meta, _ = gguf_format.read_header(src)
    assert tensors == [] and meta == {"tokenizer.chat_template": 50 << 30}
    assert src.requested <= 1 << 20


def test_gguf_real_long_string_value_parses():
    """A GGUF with a 3 MB string value (past KEEP_STRING_BYTES) still parses, the value kept as its length."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_block_count(1)
        w.add_string("tokenizer.chat_template", "x" * (3 << 20))
        w.add_head_count(4)
        w.add_tensor("blk.0.attn_q.weight", np.ones((4, 32), np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        blob = path.read_bytes()
    tensors, meta, start = parse(gguf_format.read_header, blob)
    assert meta["tokenizer.chat_template"] == 3 << 20
    assert meta["llama.attention.head_count"] == 4 and [t.name for t in tensors] == ["blk.0.attn_q.weight"]
    assert start == len(blob) - 4 * 32 * 4


def test_safetensors_shape_of_many_huge_dims_is_rejected_fast():
    """A shape product with millions of digits would take minutes; the message stays short."""
    import time

    header = {
        "model.layers.0.self_attn.q_proj.weight": {
            "dtype": "F32",
            "shape": [2**64 - 1] * 200_000,
            "data_offsets": [0, 4],
        }
    }
    raw = json.dumps(header).encode()
    blob = struct.pack("<Q", len(raw)) + raw + b"\0" * 4
    t0 = time.process_time()  # CPU seconds: what other work on the machine does not change
    with pytest.raises(CorruptFile) as info:
        st_format.read_header(MemorySource(blob))
    assert time.process_time() - t0 < 1.0
    assert len(str(info.value)) < 400


# ----------------------------------------------------------------------------------------------
# PyTorch zip checkpoints: the zip directory and data.pkl mutated (views of one storage may overlap: not checked)


def torch_seed() -> bytes:
    from layouts.torch_files import torch_zip_bytes

    return torch_zip_bytes(llama(), archive="pytorch_model")


TORCH_SEED = torch_seed()
TORCH_REGIONS = [
    (64, 64 + struct.unpack_from("<I", TORCH_SEED, 18)[0]),  # data.pkl (its data starts at 64, as torch aligns)
    (TORCH_SEED.find(b"PK\x01\x02"), len(TORCH_SEED)),  # the central directory and end record
]


def parse_torch(data: bytes):
    src = MemorySource(data)
    try:
        with time_limit(TIME_LIMIT):
            tensors, metadata, _ = torch_zip.read_header(src)
    except FingerprintError as exc:
        assert str(exc) and exc.fix
        return exc
    assert src.requested <= 3 * len(data) + 64, (src.requested, len(data))
    assert isinstance(metadata, dict)
    for t in tensors:
        assert t.source is src and t.nbytes >= 0 and 0 <= t.offset and t.offset + t.nbytes <= src.size
        assert all(isinstance(d, int) and d >= 0 for d in t.shape)
    return tensors


def test_torch_seed_parses():
    tensors = parse_torch(TORCH_SEED)
    assert not isinstance(tensors, FingerprintError) and len(tensors) == len(llama())


@settings(FUZZ, max_examples=400)
@given(mutated(TORCH_SEED, [], TORCH_REGIONS))
def test_torch_zip_mutated(data):
    parse_torch(data)


@settings(FUZZ, max_examples=100)
@given(cut=st.integers(0, len(TORCH_SEED) - 1))
def test_torch_zip_every_truncation(cut):
    assert isinstance(parse_torch(TORCH_SEED[:cut]), FingerprintError)
