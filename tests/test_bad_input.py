"""Bad input ends in a typed, one-line error naming the model and what to do; other models carry on.

Every damaged file here is built by hand (safetensors: 8-byte little-endian header length,
JSON, data; GGUF: gguf.GGUFWriter, then bytes overwritten) from a small but realistic Llama
checkpoint, so that it gets as far as the stage under test.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import time
import types
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import FIXTURES

import fingerprint
from fingerprint import cli, stats
from fingerprint.errors import (
    BadReference,
    CorruptFile,
    FileNotInRepo,
    FingerprintError,
    NetworkError,
    NoAttentionTensors,
    NonFiniteWeights,
    NoWeights,
    PickleRefused,
    UnknownArchitecture,
    UnsupportedFormat,
)
from fingerprint.fingerprinting import Options, compute, compute_many
from fingerprint.sources.local import LocalFile

GOOD = str(FIXTURES / "stories260k")

NO_CACHE = Options(use_cache=False)

# ----------------------------------------------------------------------------------------------
# helpers: a tiny Llama, written by hand

HIDDEN, HEADS, KV_HEADS, LAYERS, INTER, VOCAB = 16, 4, 2, 2, 24, 32
HEAD_DIM = HIDDEN // HEADS

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": HIDDEN,
    "intermediate_size": INTER,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "vocab_size": VOCAB,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "float32",
}

ST_DTYPE = {
    np.dtype("<f4"): "F32",
    np.dtype("<f2"): "F16",
    np.dtype("int8"): "I8",
    np.dtype("<i4"): "I32",
    np.dtype("uint8"): "U8",
}


def llama_tensors(seed: int = 0, layers: int = LAYERS) -> dict[str, np.ndarray]:
    """The full state dict of a Llama, HF names, float32."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    out = {"model.embed_tokens.weight": w(VOCAB, HIDDEN)}
    for i in range(layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        out[p + "self_attn.q_proj.weight"] = w(HEADS * HEAD_DIM, HIDDEN)
        out[p + "self_attn.k_proj.weight"] = w(KV_HEADS * HEAD_DIM, HIDDEN)
        out[p + "self_attn.v_proj.weight"] = w(KV_HEADS * HEAD_DIM, HIDDEN)
        out[p + "self_attn.o_proj.weight"] = w(HIDDEN, HEADS * HEAD_DIM)
        out[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        out[p + "mlp.gate_proj.weight"] = w(INTER, HIDDEN)
        out[p + "mlp.up_proj.weight"] = w(INTER, HIDDEN)
        out[p + "mlp.down_proj.weight"] = w(HIDDEN, INTER)
    out["model.norm.weight"] = np.ones(HIDDEN, np.float32)
    out["lm_head.weight"] = w(VOCAB, HIDDEN)
    return out


def st_layout(tensors: dict[str, np.ndarray]) -> tuple[dict, bytes]:
    """(header dict, data bytes) of a safetensors file, tensors in the given order."""
    header, chunks, pos = {}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": ST_DTYPE[arr.dtype], "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    return header, b"".join(chunks)


def st_pack(header: dict | list | str | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    """8-byte little-endian header length + header + data; ``header`` may be raw bytes."""
    if isinstance(header, bytes):
        raw = header
    else:
        raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the safetensors library pads the header to 8 bytes with spaces
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + data


def st_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    return st_pack(*st_layout(tensors))


def write_model(
    root: Path, payload: bytes, config: dict | None = LLAMA_CONFIG, name: str = "model.safetensors"
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(payload)
    if config is not None:
        (root / "config.json").write_text(json.dumps(config))
    return root


def gguf_llama(path: Path, tensors: dict[str, np.ndarray] | None = None, *, seed: int = 0) -> Path:
    """A llama GGUF written by gguf.GGUFWriter (GGUF names, F32)."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    if tensors is None:
        tensors = {"token_embd.weight": w(VOCAB, HIDDEN)}
        for i in range(LAYERS):
            tensors[f"blk.{i}.attn_norm.weight"] = np.ones(HIDDEN, np.float32)
            tensors[f"blk.{i}.attn_q.weight"] = w(HEADS * HEAD_DIM, HIDDEN)
            tensors[f"blk.{i}.attn_k.weight"] = w(KV_HEADS * HEAD_DIM, HIDDEN)
            tensors[f"blk.{i}.attn_v.weight"] = w(KV_HEADS * HEAD_DIM, HIDDEN)
            tensors[f"blk.{i}.attn_output.weight"] = w(HIDDEN, HEADS * HEAD_DIM)
            tensors[f"blk.{i}.ffn_gate.weight"] = w(INTER, HIDDEN)
        tensors["output_norm.weight"] = np.ones(HIDDEN, np.float32)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(LAYERS)
    writer.add_embedding_length(HIDDEN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_context_length(128)
    writer.add_token_list([f"tok{i}" for i in range(VOCAB)])
    for name, arr in tensors.items():
        writer.add_tensor(name, arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def gguf_tensor_info_pos(blob: bytes, tensor_name: str) -> int:
    """Byte position, in a GGUF file, of the tensor-info record of ``tensor_name`` (its name length field)."""
    raw = tensor_name.encode()
    pos = blob.index(struct.pack("<Q", len(raw)) + raw)
    return pos


def gguf_offset_field(blob: bytes, tensor_name: str) -> int:
    """Byte position of the uint64 data offset in ``tensor_name``'s tensor-info record."""
    pos = gguf_tensor_info_pos(blob, tensor_name) + 8 + len(tensor_name.encode())
    (n_dims,) = struct.unpack_from("<I", blob, pos)
    return pos + 4 + 8 * n_dims + 4


def assert_one_line_error(err: FingerprintError | None, model: str, kind: type[FingerprintError], *words: str) -> str:
    """The error is of ``kind``, names the model first, is one line, says what to do, and mentions ``words``."""
    assert err is not None, f"{model} did not fail"
    assert isinstance(err, kind), f"{model}: expected {kind.__name__}, got {type(err).__name__}: {err}"
    text = str(err)
    assert text.startswith(f"{model}: "), text
    assert "\n" not in text and "\r" not in text, text
    assert "Traceback" not in text
    assert err.fix and text.endswith(err.fix), text  # what to do
    for w in words:
        assert w.lower() in text.lower(), f"{w!r} not in {text!r}"
    return text


def fails(path: Path | str, kind: type[FingerprintError], *words: str, opts: Options = NO_CACHE) -> str:
    model = str(path)
    out = compute(model, opts)
    assert out.fingerprint is None
    return assert_one_line_error(out.error, model, kind, *words)


def succeeds(path: Path | str, opts: Options = NO_CACHE):
    out = compute(str(path), opts)
    assert out.error is None, str(out.error)
    assert out.fingerprint is not None
    return out.fingerprint


# ----------------------------------------------------------------------------------------------
# the helpers themselves are right


def test_helper_writes_files_the_safetensors_library_reads(tmp_path):
    from safetensors.numpy import load_file

    tensors = llama_tensors()
    write_model(tmp_path / "m", st_bytes(tensors))
    loaded = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert set(loaded) == set(tensors)
    for k, v in tensors.items():
        np.testing.assert_array_equal(loaded[k], v)
    fp = succeeds(tmp_path / "m")
    assert fp.layers == LAYERS and fp.architecture == "LlamaForCausalLM"
    assert {"q", "k", "v", "o"} <= set(fp.curves)


def test_helper_gguf_is_fingerprinted(tmp_path):
    fp = succeeds(gguf_llama(tmp_path / "m.gguf"))
    assert fp.format == "gguf" and fp.layers == LAYERS
    assert {"q", "k", "v", "o"} <= set(fp.curves)


# ----------------------------------------------------------------------------------------------
# damaged safetensors


@pytest.fixture
def good_st() -> tuple[dict, bytes]:
    return st_layout(llama_tensors())


def test_truncated_in_the_data(tmp_path, good_st):
    blob = st_pack(*good_st)
    root = write_model(tmp_path / "m", blob[: len(blob) - len(good_st[1]) // 2])
    fails(root, CorruptFile, "model.safetensors", "outside the file's data")


def test_truncated_in_the_header(tmp_path, good_st):
    blob = st_pack(*good_st)
    root = write_model(tmp_path / "m", blob[:100])
    fails(root, CorruptFile, "model.safetensors", "longer than the whole file", "truncated")


@pytest.mark.parametrize("size", [0, 1, 7])
def test_shorter_than_the_length_field(tmp_path, size):
    root = write_model(tmp_path / "m", b"\x01" * size)
    fails(root, CorruptFile, "too short")


def test_header_length_beyond_the_file(tmp_path, good_st):
    header, data = good_st
    raw = json.dumps(header).encode()
    root = write_model(tmp_path / "m", st_pack(raw, data, length=len(raw) + len(data) + 1000))
    fails(root, CorruptFile, "longer than the whole file")


def test_header_length_absurd(tmp_path, good_st):
    root = write_model(tmp_path / "m", st_pack(json.dumps(good_st[0]).encode(), good_st[1], length=2**64 - 1))
    fails(root, CorruptFile, "larger than any real safetensors header")


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b'{"a": 1',
        b'{"pad":"' + b"x" * 20_000 + b'","a":' + b"[" * 2000 + b"]" * 2000 + b"}",
        b"\x00" * 64,
    ],
    ids=["syntax", "not-utf8", "unterminated", "deeply-nested", "zeros"],
)
def test_header_not_json(tmp_path, raw):
    root = write_model(tmp_path / "m", st_pack(raw))
    fails(root, CorruptFile, "not valid JSON")


@pytest.mark.parametrize("header", [[1, 2, 3], "a string", 42, None], ids=["list", "string", "number", "null"])
def test_header_json_but_not_an_object(tmp_path, header):
    root = write_model(tmp_path / "m", st_pack(header))
    fails(root, CorruptFile, "not a JSON object")


def test_metadata_not_an_object(tmp_path, good_st):
    header, data = good_st
    root = write_model(tmp_path / "m", st_pack({"__metadata__": ["x"], **header}, data))
    fails(root, CorruptFile, "__metadata__")


@pytest.mark.parametrize("entry", [[1, 2], "F32", 7, None])
def test_entry_not_an_object(tmp_path, good_st, entry):
    header, data = good_st
    header["model.layers.0.self_attn.q_proj.weight"] = entry
    root = write_model(tmp_path / "m", st_pack(header, data))
    fails(root, CorruptFile, "model.layers.0.self_attn.q_proj.weight", "not an object")


@pytest.mark.parametrize(
    "shape",
    [None, "16,16", [16, -16], [16.0, 16], [True, 16], [16, "16"], {"a": 1}],
    ids=["missing", "string", "negative", "float", "bool", "str-dim", "object"],
)
def test_bad_shape(tmp_path, good_st, shape):
    header, data = good_st
    entry = header["model.layers.1.self_attn.k_proj.weight"]
    if shape is None:
        del entry["shape"]
    else:
        entry["shape"] = shape
    root = write_model(tmp_path / "m", st_pack(header, data))
    fails(root, CorruptFile, "model.layers.1.self_attn.k_proj.weight", "invalid shape")


@pytest.mark.parametrize("dtype", [None, 7, ["F32"]], ids=["missing", "number", "list"])
def test_missing_or_bad_dtype(tmp_path, good_st, dtype):
    header, data = good_st
    entry = header["model.layers.0.self_attn.v_proj.weight"]
    if dtype is None:
        del entry["dtype"]
    else:
        entry["dtype"] = dtype
    fails(write_model(tmp_path / "m", st_pack(header, data)), CorruptFile, "v_proj", "no dtype")


@pytest.mark.parametrize(
    "offsets",
    [None, [0], [0, 1, 2], "0-16", [0.0, 1024.0], [-4, 1020], [1024, 0], "beyond-end", "huge"],
    ids=["missing", "one", "three", "string", "floats", "negative", "reversed", "beyond-end", "huge"],
)
def test_bad_data_offsets(tmp_path, good_st, offsets):
    header, data = good_st
    entry = header["model.layers.0.self_attn.o_proj.weight"]
    if offsets is None:
        del entry["data_offsets"]
    elif offsets == "beyond-end":
        entry["data_offsets"] = [len(data) - 100, len(data) - 100 + 1024]
    elif offsets == "huge":
        entry["data_offsets"] = [2**70, 2**70 + 1024]
    else:
        entry["data_offsets"] = offsets
    root = write_model(tmp_path / "m", st_pack(header, data))
    text = fails(root, CorruptFile, "model.layers.0.self_attn.o_proj.weight")
    assert "data_offsets" in text or "outside the file's data" in text


def test_overlapping_tensors(tmp_path, good_st):
    header, data = good_st
    q = header["model.layers.0.self_attn.q_proj.weight"]
    k = header["model.layers.0.self_attn.k_proj.weight"]
    # k (512 bytes) now starts in the middle of q: sizes still match the shapes
    start = q["data_offsets"][0] + 256
    k["data_offsets"] = [start, start + (k["data_offsets"][1] - k["data_offsets"][0])]
    root = write_model(tmp_path / "m", st_pack(header, data))
    fails(root, CorruptFile, "overlap", "q_proj", "k_proj")


def test_shape_does_not_match_offsets(tmp_path, good_st):
    header, data = good_st
    header["model.layers.1.self_attn.q_proj.weight"]["shape"] = [HIDDEN, HIDDEN + 1]
    root = write_model(tmp_path / "m", st_pack(header, data))
    fails(root, CorruptFile, "model.layers.1.self_attn.q_proj.weight", "bytes")


def test_unknown_dtype_on_an_attention_tensor(tmp_path, good_st):
    header, data = good_st
    header["model.layers.0.self_attn.q_proj.weight"]["dtype"] = "F4_X"
    root = write_model(tmp_path / "m", st_pack(header, data))
    fails(root, UnsupportedFormat, "model.layers.0.self_attn.q_proj.weight", "F4_X")


def test_unknown_dtype_on_a_tensor_not_needed_is_fine(tmp_path, good_st):
    header, data = good_st
    header["model.layers.0.mlp.up_proj.weight"]["dtype"] = "F4_X"
    succeeds(write_model(tmp_path / "m", st_pack(header, data)))


def test_integer_attention_tensor_is_unsupported(tmp_path):
    tensors = llama_tensors()
    q = tensors["model.layers.1.self_attn.q_proj.weight"]
    tensors["model.layers.1.self_attn.q_proj.weight"] = np.clip(q * 1000, -127, 127).astype(np.int8)
    root = write_model(tmp_path / "m", st_bytes(tensors))
    fails(root, UnsupportedFormat, "model.layers.1.self_attn.q_proj.weight", "I8")


def test_integer_gguf_attention_tensor_is_unsupported(tmp_path, monkeypatch):
    """Refused from the header (dtype check in the read plan), before any tensor data is read."""
    rng = np.random.default_rng(0)
    tensors = {
        "blk.0.attn_q.weight": rng.integers(-127, 127, (HIDDEN, HIDDEN), dtype=np.int8),
        "blk.0.attn_k.weight": rng.standard_normal((KV_HEADS * HEAD_DIM, HIDDEN)).astype(np.float32),
    }
    path = gguf_llama(tmp_path / "m.gguf", tensors)
    fails(path, UnsupportedFormat, "blk.0.attn_q.weight", "I8", "not floating-point")


def test_config_json_damaged(tmp_path):
    root = write_model(tmp_path / "m", st_bytes(llama_tensors()), config=None)
    (root / "config.json").write_text("{ not json")
    fails(root, CorruptFile, "config.json")


def test_sharded_index_names_a_missing_shard(tmp_path):
    root = write_model(tmp_path / "m", st_bytes(llama_tensors()), name="model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    fails(root, CorruptFile, "model-00002-of-00002.safetensors")


def test_one_damaged_shard_of_a_sharded_checkpoint(tmp_path):
    tensors = llama_tensors()
    names = list(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    root = tmp_path / "m"
    for fname, part in shards.items():
        blob = st_bytes({k: tensors[k] for k in part})
        write_model(root, blob if fname.startswith("model-00001") else blob[:-50], name=fname)
    index = {"metadata": {}, "weight_map": {k: f for f, part in shards.items() for k in part}}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    fails(root, CorruptFile, "model-00002-of-00002.safetensors", "outside the file's data")


def test_single_safetensors_file_given_directly(tmp_path, good_st):
    header, data = good_st
    header["model.layers.0.self_attn.q_proj.weight"]["shape"] = [1, 2, 3]
    root = write_model(tmp_path / "m", st_pack(header, data))
    fails(root / "model.safetensors", CorruptFile, "q_proj")


# ----------------------------------------------------------------------------------------------
# damaged GGUF


@pytest.fixture
def good_gguf(tmp_path) -> bytes:
    return gguf_llama(tmp_path / "good.gguf").read_bytes()


def put(blob: bytes, pos: int, fmt: str, value) -> bytes:
    b = bytearray(blob)
    struct.pack_into(fmt, b, pos, value)
    return bytes(b)


def write_gguf_bytes(tmp_path: Path, blob: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / "bad" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(blob)
    return path


def test_gguf_bad_magic(tmp_path, good_gguf):
    fails(write_gguf_bytes(tmp_path, b"GGML" + good_gguf[4:]), CorruptFile, "not a GGUF file")


def test_gguf_version_1_is_unsupported(tmp_path, good_gguf):
    fails(write_gguf_bytes(tmp_path, put(good_gguf, 4, "<I", 1)), UnsupportedFormat, "version 1")


@pytest.mark.parametrize("version", [0, 4, 99, 0x03000000])
def test_gguf_unknown_version(tmp_path, good_gguf, version):
    fails(write_gguf_bytes(tmp_path, put(good_gguf, 4, "<I", version)), CorruptFile, f"version {version}")


@pytest.mark.parametrize("cut", [10, 30, 200, "tensor-info"])
def test_gguf_truncated_header(tmp_path, good_gguf, cut):
    if cut == "tensor-info":
        cut = gguf_tensor_info_pos(good_gguf, "blk.1.attn_q.weight") + 12
    fails(write_gguf_bytes(tmp_path, good_gguf[:cut]), CorruptFile, "model.gguf")


def test_gguf_truncated_data(tmp_path, good_gguf):
    fails(write_gguf_bytes(tmp_path, good_gguf[:-100]), CorruptFile, "outside the file's data", "truncated")


@pytest.mark.parametrize("offset", [2**20, 2**63, 2**64 - 1])
def test_gguf_tensor_offset_beyond_the_file(tmp_path, good_gguf, offset):
    blob = put(good_gguf, gguf_offset_field(good_gguf, "blk.0.attn_k.weight"), "<Q", offset)
    fails(write_gguf_bytes(tmp_path, blob), CorruptFile, "blk.0.attn_k.weight", "outside the file's data")


def test_gguf_overlapping_tensors(tmp_path, good_gguf):
    (q_off,) = struct.unpack_from("<Q", good_gguf, gguf_offset_field(good_gguf, "blk.0.attn_q.weight"))
    blob = put(good_gguf, gguf_offset_field(good_gguf, "blk.0.attn_k.weight"), "<Q", q_off + 32)
    fails(write_gguf_bytes(tmp_path, blob), CorruptFile, "overlap")


def test_gguf_unknown_tensor_type(tmp_path, good_gguf):
    pos = gguf_offset_field(good_gguf, "blk.0.attn_v.weight") - 4
    fails(
        write_gguf_bytes(tmp_path, put(good_gguf, pos, "<I", 999)),
        CorruptFile,
        "blk.0.attn_v.weight",
        "unknown GGML type",
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("n_tensors", 2**64 - 1),
        ("n_kv", 2**64 - 1),
        ("n_tensors", 2**40),
        ("n_kv", 2**33),
        ("string", 2**62),
        ("array", 2**60),
        ("n_dims", 2**31),
    ],
)
def test_gguf_absurd_count_fails_fast(tmp_path, good_gguf, field, value):
    if field == "n_tensors":
        blob = put(good_gguf, 8, "<Q", value)
    elif field == "n_kv":
        blob = put(good_gguf, 16, "<Q", value)
    elif field == "string":  # length of the first key's name
        blob = put(good_gguf, 24, "<Q", value)
    elif field == "array":  # item count of tokenizer.ggml.tokens
        key = b"tokenizer.ggml.tokens"
        pos = good_gguf.index(key) + len(key) + 4 + 4  # value type, item type
        assert struct.unpack_from("<Q", good_gguf, pos)[0] == VOCAB
        blob = put(good_gguf, pos, "<Q", value)
    else:
        pos = gguf_tensor_info_pos(good_gguf, "blk.0.attn_q.weight") + 8 + len(b"blk.0.attn_q.weight")
        blob = put(good_gguf, pos, "<I", value)
    path = write_gguf_bytes(tmp_path, blob)
    t0 = time.process_time()  # CPU seconds: what other work on the machine does not change
    fails(path, CorruptFile, "model.gguf")
    assert time.process_time() - t0 < 2.0


def test_gguf_huge_kv_count_is_rejected_from_the_header(tmp_path, good_gguf):
    """A huge count must be rejected from the header alone: few bytes read, no big allocation."""
    import tracemalloc

    blob = put(good_gguf, 16, "<Q", 2**50) + b"\0" * (8 << 20)
    path = write_gguf_bytes(tmp_path, blob)
    src = LocalFile(path)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFile):
            fingerprint.formats.gguf.read_header(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        src.close()
    assert src.context.bytes <= 64 << 10
    assert peak < 4 << 20


def test_gguf_split_with_a_missing_part(tmp_path):
    (tmp_path / "split").mkdir()
    path = gguf_llama(tmp_path / "split" / "model-00001-of-00002.gguf")
    fails(path, FileNotInRepo, "model-00002-of-00002.gguf")


def test_gguf_without_attention_tensors(tmp_path):
    path = gguf_llama(tmp_path / "m.gguf", {"token_embd.weight": np.ones((VOCAB, HIDDEN), np.float32)})
    fails(path, NoAttentionTensors, "token_embd.weight", "llama", "--map")


# ----------------------------------------------------------------------------------------------
# NaN / Inf


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_attention_weight(tmp_path, value):
    tensors = llama_tensors()
    tensors["model.layers.1.self_attn.v_proj.weight"][3, 5] = value
    root = write_model(tmp_path / "m", st_bytes(tensors))
    fails(root, NonFiniteWeights, "model.layers.1.self_attn.v_proj.weight", "NaN or Inf")


def test_non_finite_attention_weight_bf16(tmp_path):
    """BF16 is decoded by a bit shift, not numpy: a NaN must survive that."""
    import ml_dtypes

    tensors = llama_tensors()
    header, _data = st_layout(tensors)
    name = "model.layers.0.self_attn.o_proj.weight"
    arr = tensors[name].astype(ml_dtypes.bfloat16)
    arr[0, 0] = np.nan
    chunks, pos = [], 0
    for k, v in tensors.items():
        raw = arr.tobytes() if k == name else v.tobytes()
        header[k] = {
            "dtype": "BF16" if k == name else "F32",
            "shape": list(v.shape),
            "data_offsets": [pos, pos + len(raw)],
        }
        chunks.append(raw)
        pos += len(raw)
    root = write_model(tmp_path / "m", st_pack(header, b"".join(chunks)))
    fails(root, NonFiniteWeights, name)


def test_non_finite_gguf_attention_weight(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {
        "blk.0.attn_q.weight": rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32),
        "blk.0.attn_k.weight": rng.standard_normal((KV_HEADS * HEAD_DIM, HIDDEN)).astype(np.float32),
    }
    tensors["blk.0.attn_k.weight"][0, 0] = np.nan
    fails(gguf_llama(tmp_path / "m.gguf", tensors), NonFiniteWeights, "blk.0.attn_k.weight")


@pytest.mark.parametrize("mlp_cols", [INTER, 1024], ids=["small-mlp", "large-mlp"])
def test_nan_in_an_mlp_tensor_is_not_a_failure(tmp_path, monkeypatch, mlp_cols):
    """MLP tensors are never decoded; one far from any attention tensor is not even fetched.

    (Small tensors between attention tensors may be fetched with them: reads closer than
    stats.MERGE_GAP are merged into one request. Their bytes are still never decoded.)
    """
    tensors = llama_tensors()
    mlp = "model.layers.0.mlp.down_proj.weight"
    tensors[mlp] = np.full((HIDDEN, mlp_cols), np.nan, np.float32)
    header, data = st_layout(tensors)
    root = write_model(tmp_path / "m", st_pack(header, data))

    reads: list[tuple[int, int]] = []
    fetch = LocalFile.fetch

    def spy(self, offset, length):
        if self.name == "model.safetensors":
            reads.append((offset, length))
        return fetch(self, offset, length)

    monkeypatch.setattr(LocalFile, "fetch", spy)
    fp = succeeds(root)
    assert all(v is not None for role in ("q", "k", "v", "o") for v in fp.curves[role])
    assert reads, "nothing was read"
    if mlp_cols * HIDDEN * 4 > stats.MERGE_GAP:
        data_start = len(st_pack(header))
        b, e = header[mlp]["data_offsets"]
        lo, hi = data_start + b, data_start + e
        assert not any(o < hi and lo < o + n for o, n in reads), f"the MLP tensor's bytes were read: {reads}"


# ----------------------------------------------------------------------------------------------
# unknown architectures, explicit mapping


def custom_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {"tok.weight": rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32)}
    for i in range(3):
        for r in ("wq", "wk", "wv", "wo"):
            out[f"blocks.{i}.{r}.weight"] = (rng.standard_normal((HIDDEN, HIDDEN)) * (i + 1)).astype(np.float32)
        out[f"blocks.{i}.ffn.weight"] = rng.standard_normal((INTER, HIDDEN)).astype(np.float32)
    return out


def test_no_attention_tensors(tmp_path):
    root = write_model(tmp_path / "m", st_bytes({"foo.weight": np.ones((4, 4), np.float32)}), config=None)
    text = fails(root, NoAttentionTensors, "foo.weight", "--map")
    assert issubclass(NoAttentionTensors, UnknownArchitecture)
    assert "no attention tensors" in text


def test_no_attention_tensors_lists_names_and_mapping_fixes_it(tmp_path):
    root = write_model(tmp_path / "m", st_bytes(custom_tensors()), config={"architectures": ["MyNetForCausalLM"]})
    text = fails(root, NoAttentionTensors, "blocks.0.wq.weight", "MyNetForCausalLM", "--map")
    mapping = {"q": "blocks.{layer}.wq", "k": "blocks.{layer}.wk", "v": "blocks.{layer}.wv", "o": "blocks.{layer}.wo"}
    fp = succeeds(root, Options(use_cache=False, mapping=mapping))
    assert fp.layers == 3
    assert set(fp.curves) == {"q", "k", "v", "o"}
    q = fp.curves["q"]
    assert q[0] < q[1] < q[2]  # the scales 1, 2, 3 of the layers
    assert "{layer}" in text


def test_mapping_via_the_command_line(tmp_path, capsys):
    root = write_model(tmp_path / "m", st_bytes(custom_tensors()), config=None)
    out = tmp_path / "fps.json"
    code = cli.main(
        [
            "compute",
            "-q",
            "--no-cache",
            str(root),
            "--map",
            "q=blocks.{layer}.wq",
            "--map",
            "o=blocks.{layer}.wo",
            "--json",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    (fp,) = json.loads(out.read_text())
    assert set(fp["curves"]) == {"q", "o"}


def test_mapping_without_layer_placeholder_is_a_one_line_error(tmp_path, capsys):
    root = write_model(tmp_path / "m", st_bytes(custom_tensors()), config=None)
    out = compute(str(root), Options(use_cache=False, mapping={"q": "blocks.wq"}))
    assert isinstance(out.error, FingerprintError)
    assert "{layer}" in str(out.error)


# ----------------------------------------------------------------------------------------------
# bugs found outside the format parsers, fixed: regression tests


def test_quant_method_not_a_string(tmp_path):
    tensors = {"model.layers.0.self_attn.q_proj.qweight": np.zeros((2, HIDDEN), np.int32)}
    config = {**LLAMA_CONFIG, "quantization_config": {"quant_method": 5}}
    fails(write_model(tmp_path / "m", st_bytes(tensors), config=config), UnsupportedFormat, "qweight")


def beyond_num_hidden_layers(tmp_path: Path) -> Path:
    """Attention tensors only at layer 3, config says one layer: every tensor is 'beyond' the model."""
    tensors = {k.replace(".layers.0.", ".layers.3."): v for k, v in llama_tensors(layers=1).items()}
    return write_model(tmp_path / "beyond", st_bytes(tensors), config={**LLAMA_CONFIG, "num_hidden_layers": 1})


def test_all_attention_layers_beyond_num_hidden_layers(tmp_path):
    fails(beyond_num_hidden_layers(tmp_path), FingerprintError)


def test_an_unexpected_exception_in_one_model_leaves_the_others(tmp_path):
    bad = str(beyond_num_hidden_layers(tmp_path))
    outcomes = compute_many([GOOD, bad], NO_CACHE)
    assert outcomes[0].fingerprint is not None
    assert isinstance(outcomes[1].error, FingerprintError)


@pytest.mark.parametrize("where", ["no-attention", "corrupt-entry"])
def test_control_characters_in_tensor_names_stay_on_one_line(tmp_path, where):
    evil = "foo\nerror: all good\x1b[2K.weight"
    if where == "no-attention":
        root = write_model(tmp_path / "m", st_bytes({evil: np.ones(4, np.float32)}), config=None)
    else:
        header, data = st_layout(llama_tensors())
        header[evil] = {"dtype": "F32", "shape": [1], "data_offsets": [0, 3]}
        root = write_model(tmp_path / "m", st_pack(header, data))
    text = str(compute(str(root), NO_CACHE).error)
    assert "\n" not in text and "\x1b" not in text, repr(text)


def test_cli_map_without_layer_placeholder(tmp_path, capsys):
    code = cli.main(["compute", "-q", "--no-cache", GOOD, "--map", "q=blocks.wq"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and err.startswith("error: ") and len(err.splitlines()) == 1


def test_cli_json_into_a_missing_folder(tmp_path, capsys):
    code = cli.main(["compute", "-q", "--no-cache", GOOD, "--json", str(tmp_path / "no" / "such" / "fps.json")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and err.startswith("error: ")


# ----------------------------------------------------------------------------------------------
# pickle, quantized layouts, no weights, bad references


class _Explodes:
    """Unpickling this creates a directory: the marker that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_legacy_pickle_checkpoint_is_refused_and_never_unpickled(tmp_path, monkeypatch):
    """A pickle that is not torch.save's zip (torch < 1.6, or pickle itself) is refused from its first bytes."""
    root = tmp_path / "m"
    root.mkdir()
    marker = tmp_path / "code-ran"
    binfile = root / "pytorch_model.bin"
    binfile.write_bytes(pickle.dumps(_Explodes(marker)))
    (root / "config.json").write_text(json.dumps(LLAMA_CONFIG))

    def boom(*a, **k):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    fake_torch = types.ModuleType("torch")
    fake_torch.load = boom
    monkeypatch.setitem(sys.modules, "torch", fake_torch)

    fails(root, PickleRefused, "pytorch_model.bin", "legacy PyTorch pickle", "without unpickling")
    fails(binfile, PickleRefused, "legacy PyTorch pickle")
    plain = root / "weights.pkl"
    plain.write_bytes(pickle.dumps(_Explodes(marker)))
    fails(plain, PickleRefused, "weights.pkl")
    assert not marker.exists()


def test_damaged_gptq_parts_are_refused_by_name(tmp_path):
    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {"model.embed_tokens.weight": np.ones((VOCAB, HIDDEN), np.float32)}
    for i in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            p = f"model.layers.{i}.self_attn.{proj}."
            tensors[p + "qweight"] = rng.integers(-(2**31), 2**31 - 1, (HIDDEN // 8, HIDDEN), dtype=np.int32)
            tensors[p + "qzeros"] = rng.integers(-(2**31), 2**31 - 1, (1, HIDDEN // 8), dtype=np.int32)
            tensors[p + "scales"] = np.ones((1, HIDDEN), np.float16)
            tensors[p + "g_idx"] = np.full(HIDDEN, 5, np.int32)  # a group beyond the one row of scales
        tensors[f"model.layers.{i}.input_layernorm.weight"] = np.ones(HIDDEN, np.float32)
    config = {**LLAMA_CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    fails(write_model(tmp_path / "m", st_bytes(tensors), config=config), CorruptFile, "g_idx", "group beyond")
    # qweight rows that are no GPTQ bit width for its input features
    for name in [n for n in tensors if n.endswith(".qweight")]:
        tensors[name] = np.zeros((3, HIDDEN), np.int32)  # 6 bits per feature
        tensors[name.replace(".qweight", ".g_idx")] = np.zeros(HIDDEN, np.int32)
    fails(write_model(tmp_path / "n", st_bytes(tensors), config=config), UnsupportedFormat, "GPTQ", "qweight")


def test_bitsandbytes_without_a_readable_quant_state_is_refused(tmp_path):
    tensors: dict[str, np.ndarray] = {}
    for i in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            p = f"model.layers.{i}.self_attn.{proj}.weight"
            tensors[p] = np.zeros((HIDDEN * HIDDEN // 2, 1), np.uint8)
            tensors[p + ".absmax"] = np.ones(HIDDEN * HIDDEN // 64, np.float32)
            tensors[p + ".quant_map"] = np.linspace(-1, 1, 16, dtype=np.float32)
            tensors[p + ".quant_state.bitsandbytes__nf4"] = np.zeros(64, np.uint8)
    config = {**LLAMA_CONFIG, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}}
    fails(write_model(tmp_path / "m", st_bytes(tensors), config=config), CorruptFile, "bitsandbytes quant state")


def test_directory_without_weights(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    (root / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    (root / "README.md").write_text("hello")
    fails(root, NoWeights, "config.json", ".safetensors", ".bin")


def test_empty_directory(tmp_path):
    root = tmp_path / "nothing"
    root.mkdir()
    fails(root, NoWeights, "no files")


@pytest.mark.parametrize("ref", ["./nope", "nope.safetensors", "/definitely/not/here", "~/no-such-model-dir-xyz"])
def test_nonexistent_path(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(ref, BadReference, "no such file or folder")


@pytest.mark.parametrize("ref", ["not a valid id!!", "org/na me", "a/b/c.pkl", "org/name@", "   "])
def test_invalid_model_reference(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = compute(ref, NO_CACHE)
    assert isinstance(out.error, BadReference), out.error
    text = str(out.error)
    assert "\n" not in text and text.endswith(BadReference.fix)
    if ref.strip():
        assert text.startswith(f"{ref}: ") or text.startswith(f"{ref.strip()}: "), text


def test_not_a_weight_file(tmp_path):
    path = tmp_path / "weights.npy"
    path.write_bytes(b"\x93NUMPY")
    fails(path, BadReference, "weights.npy")


# ----------------------------------------------------------------------------------------------
# many models: each fails alone


def bad_models(tmp_path: Path) -> dict[str, type[FingerprintError]]:
    """A zoo of broken models -> the error each must give."""
    tensors = llama_tensors()
    header, data = st_layout(tensors)
    blob = st_pack(header, data)
    nan = llama_tensors()
    nan["model.layers.0.self_attn.q_proj.weight"][0, 0] = np.nan
    good_gguf = gguf_llama(tmp_path / "g.gguf").read_bytes()
    pickle_dir = tmp_path / "pickle"
    pickle_dir.mkdir()
    (pickle_dir / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    zoo = {
        str(write_model(tmp_path / "truncated", blob[: len(blob) - 300])): CorruptFile,
        str(write_model(tmp_path / "notjson", st_pack(b"{{{{"))): CorruptFile,
        str(write_model(tmp_path / "nan", st_bytes(nan))): NonFiniteWeights,
        str(
            write_model(tmp_path / "foo", st_bytes({"foo.weight": np.ones(4, np.float32)}), config=None)
        ): NoAttentionTensors,
        str(write_gguf_bytes(tmp_path, put(good_gguf, 4, "<I", 99), "v99.gguf")): CorruptFile,
        str(pickle_dir): PickleRefused,
        str(tmp_path / "nope"): BadReference,
        "not a valid id!!": BadReference,
    }
    return zoo


def test_compute_many_bad_ones_fail_alone(tmp_path):
    zoo = bad_models(tmp_path)
    good_gguf = str(FIXTURES / "stories260k-q8_0.gguf")
    refs = [GOOD, *zoo, good_gguf]
    outcomes = compute_many(refs, NO_CACHE, parallel=3)
    assert [o.model for o in outcomes] == refs
    assert outcomes[0].error is None and outcomes[0].fingerprint.layers == 5
    assert outcomes[-1].error is None and outcomes[-1].fingerprint.format == "gguf"
    messages = set()
    for ref, o in zip(refs[1:-1], outcomes[1:-1]):
        assert o.fingerprint is None
        assert_one_line_error(o.error, ref, zoo[ref])
        messages.add(str(o.error))
    assert len(messages) == len(zoo)  # each with its own message


@pytest.mark.parametrize("use_cache", [False, True])
def test_cli_compute_reports_one_line_per_failed_model(tmp_path, capsys, use_cache):
    zoo = bad_models(tmp_path)
    out = tmp_path / "fps.json"
    argv = ["compute", "-q", GOOD, *zoo, "--json", str(out)]
    if not use_cache:
        argv.insert(1, "--no-cache")
    else:
        argv[1:1] = ["--cache", str(tmp_path / "cache.sqlite")]
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == len(zoo), captured.err
    for ref, line in zip(zoo, lines):
        assert line.startswith(f"error: {ref}: "), line
    assert GOOD in captured.out
    fps = json.loads(out.read_text())
    assert [fp["model"] for fp in fps] == [GOOD]
    assert fps[0]["layers"] == 5


def test_cli_all_good_exits_zero(tmp_path, capsys):
    out = tmp_path / "fps.json"
    assert cli.main(["compute", "-q", "--no-cache", GOOD, "--json", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert len(json.loads(out.read_text())) == 1


def test_cli_inspect_reports_bad_models_on_one_line(tmp_path, capsys):
    zoo = {k: v for k, v in bad_models(tmp_path).items() if v is not NonFiniteWeights}  # inspect reads no data
    code = cli.main(["inspect", "--no-cache", GOOD, *zoo])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == len(zoo), captured.err
    for ref, line in zip(zoo, lines):
        assert line.startswith(f"error: {ref}: ")
    assert GOOD in captured.out


def test_cli_compare_with_a_bad_model(tmp_path, capsys):
    bad = str(write_model(tmp_path / "bad", st_pack(b"[1]")))
    code = cli.main(["compare", "--no-cache", GOOD, str(FIXTURES / "babyllama-tok105"), bad])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert [ln for ln in captured.err.splitlines() if ln.strip()] == [
        ln for ln in captured.err.splitlines() if ln.startswith(f"error: {bad}: ")
    ]
    assert "σ-curve correlation" in captured.out


# ---------------------------------------------------------------------------------------------- hostile references


@pytest.mark.parametrize(
    "text, says",
    [
        ("org/..", "not a Hub model ID"),
        ("org/--x", "not a Hub model ID"),
        ("h/x.safetensors", "no such file or folder"),
        ("a" * 100_000, "100,000 characters long"),
        ("org/na\x00me", "control characters"),
        ("org/name\n", None),  # surrounding whitespace is trimmed: a valid Hub ID
    ],
)
def test_hostile_references_get_a_one_line_error_and_the_run_goes_on(text, says, fixtures):
    good = str(fixtures / "stories260k")
    bad_out, good_out = compute_many([text, good], Options(use_cache=False))
    assert good_out.error is None
    if says is None:
        assert not isinstance(bad_out.error, BadReference)
        return
    assert isinstance(bad_out.error, BadReference), bad_out.error
    msg = str(bad_out.error)
    assert says in msg and "\n" not in msg and len(msg) < 1000


def test_a_hub_answer_with_a_forged_commit_sha_is_never_used(monkeypatch):
    from huggingface_hub import HfApi

    from fingerprint.sources import hub as hubsrc

    def forged(self, repo_id, revision=None, files_metadata=False):
        return types.SimpleNamespace(sha="../../../../api/whoami", siblings=[])

    monkeypatch.setattr(HfApi, "model_info", forged)
    with pytest.raises(NetworkError, match="no valid commit sha"):
        hubsrc.resolve_snapshot("org/model", None, endpoint="http://127.0.0.1:9")


def test_repo_file_names_that_step_out_of_the_resolve_url_are_dropped(monkeypatch):
    from huggingface_hub import HfApi

    from fingerprint.sources import hub as hubsrc

    names = ["model.safetensors", "../../api/whoami", "/etc/passwd", "a/./b.json", "a\\b", "ok/config.json"]
    siblings = [types.SimpleNamespace(rfilename=n, size=1) for n in names]

    def info(self, repo_id, revision=None, files_metadata=False):
        return types.SimpleNamespace(sha="a" * 40, siblings=siblings)

    monkeypatch.setattr(HfApi, "model_info", info)
    snap = hubsrc.resolve_snapshot("org/model", None, endpoint="http://127.0.0.1:9")
    assert sorted(snap.files) == ["model.safetensors", "ok/config.json"]


def test_a_fifo_named_like_a_weight_file_is_refused_at_once(tmp_path, fixtures):
    fifo = tmp_path / "x.safetensors"
    os.mkfifo(fifo)
    bad, good = compute_many([str(fifo), str(fixtures / "stories260k")], Options(use_cache=False))
    assert isinstance(bad.error, CorruptFile) and "not a regular file" in str(bad.error)
    assert good.error is None


@pytest.mark.parametrize("command", ["compute", "verdict"])
def test_an_unwritable_json_path_is_refused_before_any_work(command, tmp_path, fixtures, capsys):
    model = str(fixtures / "stories260k")
    target = tmp_path / "is-a-folder"
    target.mkdir()
    args = (
        [command, model, "--json", str(target), "--no-cache"]
        if command == "compute"
        else [command, model, model, "--json", str(target), "--no-cache"]
    )
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {target}: it is a folder") and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- absurd sizes in tiny headers


def _good_and(bad: Path, fixtures: Path) -> tuple:
    """Run a bad model next to a good one: the bad one fails with a typed error, the good one is kept."""
    bad_out, good_out = compute_many([str(bad), str(fixtures / "stories260k")], NO_CACHE)
    assert good_out.error is None, good_out.error
    return bad_out


def test_a_zero_size_tensor_of_2_60_rows_is_refused_from_the_header(tmp_path, fixtures):
    header = {"model.layers.0.self_attn.q_proj.weight": {"dtype": "F32", "shape": [2**60, 0], "data_offsets": [0, 0]}}
    path = write_model(tmp_path / "z", st_pack(header))
    out = _good_and(path, fixtures)
    assert_one_line_error(out.error, str(path), CorruptFile, "2^31")


@pytest.mark.parametrize("layer", ["1000000000000", "9" * 5000, "²"])
def test_absurd_layer_numbers_are_not_layers(tmp_path, fixtures, layer):
    arr = np.zeros((HEADS * HEAD_DIM, HIDDEN), np.float32)
    header, data = st_layout({f"model.layers.{layer}.self_attn.q_proj.weight": arr})
    path = write_model(tmp_path / "layer", st_pack(header, data))
    out = _good_and(path, fixtures)
    assert isinstance(out.error, NoAttentionTensors), out.error  # not "a bug in the tool", not a hang
    assert "bug" not in str(out.error)


def test_a_header_made_of_empty_lists_is_refused_before_parsing(tmp_path, fixtures):
    import tracemalloc

    raw = b'{"x":' + b"[" + b"[]," * 700_000 + b"[]]}"
    path = write_model(tmp_path / "lists", st_pack(raw))
    tracemalloc.start()
    try:
        out = _good_and(path, fixtures)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_one_line_error(out.error, str(path), CorruptFile, "JSON objects and lists")
    assert peak < 64 << 20


def test_gguf_dims_of_2_60_are_refused(tmp_path, good_gguf):
    pos = gguf_tensor_info_pos(good_gguf, "blk.0.attn_q.weight") + 8 + len(b"blk.0.attn_q.weight")
    (n_dims,) = struct.unpack_from("<I", good_gguf, pos)
    assert n_dims == 2
    blob = put(put(good_gguf, pos + 4, "<Q", 0), pos + 12, "<Q", 2**60)
    fails(write_gguf_bytes(tmp_path, blob), CorruptFile, "2^31")


def test_gguf_offsets_off_the_alignment_are_refused(tmp_path, good_gguf):
    pos = gguf_offset_field(good_gguf, "blk.1.attn_q.weight")
    (offset,) = struct.unpack_from("<Q", good_gguf, pos)
    fails(write_gguf_bytes(tmp_path, put(good_gguf, pos, "<Q", offset + 4)), CorruptFile, "not aligned")


def test_an_error_names_a_one_file_model_once():
    err = CorruptFile("random.safetensors: the header length is larger than the file", model="/up/random.safetensors")
    assert str(err).startswith("/up/random.safetensors: the header length is larger than the file.")
    assert str(err).count("random.safetensors") == 1
    missing = BadReference("no such file or folder", model="/nonexistent/model")
    assert str(missing).startswith("/nonexistent/model: no such file or folder.")
