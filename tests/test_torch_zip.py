"""PyTorch zip checkpoints (.bin/.pt) read without unpickling: the values torch saved, a verdict against the
safetensors original, hostile pickles refused and never executed, and the Hub path's Range reads.

tests/torch_files/ holds files written by torch 2.13.0 itself (tests/torch_files/make_torch_files.py);
tests/layouts/torch_files.py writes the same layout with the stdlib (its data.pkl checked byte for byte against
torch's by that script) for the models and the hostile variants made here.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, fixture_files
from layouts.torch_files import torch_zip_bytes, write_torch_dir
from safetensors.numpy import load_file

from fingerprint import Options, compute
from fingerprint.errors import CorruptFile, PickleRefused, UnsupportedFormat
from fingerprint.fingerprinting import inspect, open_model
from fingerprint.formats import torch_pickle, torch_zip
from fingerprint.formats.dtypes import decode_rows
from fingerprint.lineage import evidence
from fingerprint.present.labels import format_label
from fingerprint.present.terminal_text import inspection_text
from fingerprint.sources.local import LocalFile

TORCH_FILES = Path(__file__).parent / "torch_files"
STORIES = FIXTURES / "stories260k"
NO_CACHE = Options(use_cache=False)


def values(tensor) -> np.ndarray:
    raw = tensor.source.read(tensor.offset, tensor.nbytes)
    return decode_rows(raw, tensor.dtype, tensor.format, tensor.rows, tensor.cols).reshape(tensor.shape)


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(TORCH_FILES / "expected.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------ files torch wrote


@pytest.mark.parametrize("tag", ["f32", "f16", "bf16", "sharded"])
def test_tensors_read_equal_what_torch_saved(tag, expected):
    folder = TORCH_FILES / ("llama-sharded" if tag == "sharded" else f"llama-{tag}")
    ckpt = open_model(str(folder), NO_CACHE)
    try:
        assert ckpt.format == "pytorch"
        assert len(ckpt.files) == (2 if tag == "sharded" else 1)
        want = {k.split("/", 1)[1]: v for k, v in expected.items() if k.startswith(f"{tag}/")}
        assert set(ckpt.tensors) == set(want)
        for name, t in ckpt.tensors.items():
            assert t.dtype == {"f32": "F32", "f16": "F16", "bf16": "BF16", "sharded": "F32"}[tag]
            np.testing.assert_array_equal(values(t), want[name], err_msg=name)
        assert ckpt.config.architecture == "LlamaForCausalLM"  # config.json read as for safetensors
    finally:
        ckpt.close()


def test_tied_weights_and_non_contiguous_views(expected):
    ckpt = open_model(str(TORCH_FILES / "views"), NO_CACHE)
    try:
        tied, embed = ckpt.tensors["lm_head.weight"], ckpt.tensors["model.embed_tokens.weight"]
        assert (tied.offset, tied.nbytes) == (embed.offset, embed.nbytes)  # one storage, two names
        np.testing.assert_array_equal(values(tied), expected["views/lm_head.weight"])
        assert "model.layers.1.mlp.down_proj.weight" not in ckpt.tensors  # a transposed view: rows are not ranges
        assert any("non-contiguous" in n and "down_proj" in n for n in ckpt.notes)
    finally:
        ckpt.close()
    assert compute(str(TORCH_FILES / "views"), NO_CACHE).fingerprint is not None


def test_a_non_contiguous_attention_tensor_refuses_the_model(tmp_path):
    state = load_file(str(STORIES / "model.safetensors"))
    name = next(k for k in state if k.endswith("self_attn.q_proj.weight"))
    rows, cols = state[name].shape
    # the same bytes described as the transpose of a (cols, rows) tensor: torch's .t() of a contiguous matrix
    idx = list(state).index(name)
    described = {
        k: ("FloatStorage", str(i), 0, tuple(v.shape), tuple(s // 4 for s in v.strides), v.size)
        for i, (k, v) in enumerate(state.items())
    }
    described[name] = ("FloatStorage", str(idx), 0, (rows, cols), (1, rows), rows * cols)
    pkl = torch_pickle_bytes(described)
    path = tmp_path / "m.bin"
    path.write_bytes(torch_zip_bytes(state, pickle_bytes=pkl))
    out = compute(str(path), NO_CACHE)
    assert isinstance(out.error, UnsupportedFormat) and name in str(out.error) and "non-contiguous" in str(out.error)


def torch_pickle_bytes(described) -> bytes:
    from layouts.torch_files import state_dict_pickle

    return state_dict_pickle(described)


def test_inspect_says_how_the_model_was_read():
    info = inspect(str(TORCH_FILES / "llama-sharded"), NO_CACHE)
    text = inspection_text(info)
    assert "pickle checkpoint read without unpickling: 2 shards" in text
    assert format_label("safetensors", 1) == "safetensors: 1 file"
    gptq = "GPTQ 4-bit (group 128) dequantized from the packed weights"
    assert format_label("safetensors", 2, ["other note", gptq]) == f"{gptq}: 2 shards"


# ------------------------------------------------------------------ a .bin model gets a verdict


@pytest.fixture(scope="module")
def stories_bin(tmp_path_factory) -> Path:
    state = load_file(str(STORIES / "model.safetensors"))
    config = json.loads((STORIES / "config.json").read_text())
    return write_torch_dir(state, tmp_path_factory.mktemp("bin") / "stories260k-bin", config)


def test_bin_copy_of_a_model_is_the_same_weights(stories_bin):
    a = compute(str(STORIES), NO_CACHE).fingerprint
    b = compute(str(stories_bin), NO_CACHE).fingerprint
    assert b is not None and b.format == "pytorch"
    for role in a.curves:
        assert a.curves[role] == b.curves[role], role  # the same bytes, the same σ to the last bit
    v = evidence.verdict(str(STORIES), str(stories_bin), NO_CACHE)
    assert v.verdict == "same_weights", v.verdict


# ------------------------------------------------------------------ hostile files: refused, never executed


def zip_with_pickle(tmp_path: Path, pkl: bytes, name: str = "evil.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(torch_zip_bytes({"w": np.ones((2, 2), np.float32)}, pickle_bytes=pkl))
    return path


def refused(path: Path, kind=PickleRefused) -> str:
    with pytest.raises(kind) as info:
        torch_zip.read_header(LocalFile(path))
    return str(info.value)


def test_reduce_of_os_system_is_refused_and_never_runs(tmp_path):
    canary = tmp_path / "canary"
    pkl = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(f"touch {canary}")) + f"touch {canary}".encode() + b"\x85R."
    path = zip_with_pickle(tmp_path, pkl)
    assert "os.system" in refused(path)
    out = compute(str(path), NO_CACHE)
    assert isinstance(out.error, PickleRefused) and "os.system" in str(out.error) and "nothing loaded" in str(out.error)
    assert not canary.exists()


@pytest.mark.parametrize(
    ("pkl", "named"),
    [
        (b"\x80\x02cbuiltins\ngetattr\n.", "builtins.getattr"),
        (b"\x80\x02ctorch._utils\n_rebuild_qtensor\n.", "torch._utils._rebuild_qtensor"),
        (b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93.", "builtins.eval"),  # STACK_GLOBAL
    ],
)
def test_globals_outside_the_allowlist_are_named(tmp_path, pkl, named):
    assert named in refused(zip_with_pickle(tmp_path, pkl))


@pytest.mark.parametrize(
    ("pkl", "word"),
    [
        (b"\x80\x02(ios\nsystem\nX\x04\x00\x00\x00truet.", "INST"),
        (b"\x80\x02(ctorch\nFloatStorage\no.", "OBJ"),
        (b"\x80\x02ctorch\nFloatStorage\n)\x81.", "NEWOBJ"),
        (b"\x80\x02\x82\x01.", "EXT1"),
        # BUILD on a stand-in (here a storage class) would set its attributes: only the OrderedDict takes a state
        (b"\x80\x02ctorch\nFloatStorage\nN}\x86b.", "sets the state"),
    ],
)
def test_object_building_opcodes_are_refused(tmp_path, pkl, word):
    assert word in refused(zip_with_pickle(tmp_path, pkl))


def test_pickle_bombs_are_refused_within_bounds(tmp_path, monkeypatch):
    # a memo slot of 2^31: the C unpickler would size its memo by it (16 GB)
    assert "memo slot" in refused(zip_with_pickle(tmp_path, b"\x80\x02Nr\x00\x00\x00\x80."))
    # more opcodes than a state dict has (the cap lowered so the test stays small)
    monkeypatch.setattr(torch_pickle, "MAX_OPCODES", 1000)
    assert "opcodes" in refused(zip_with_pickle(tmp_path, b"\x80\x02" + b"N0" * 1000 + b"N."))
    monkeypatch.setattr(torch_pickle, "MAX_PICKLE_BYTES", 100)
    assert "larger than any state dict" in refused(zip_with_pickle(tmp_path, b"\x80\x02" + b"N0" * 100 + b"N."))


def test_a_shared_dict_bomb_is_walked_once_per_dict(tmp_path):
    """d60 = {a: d59, b: d59}, d59 = {a: d58, b: d58} ... d0 = {w: tensor}: 2^60 paths through 61 dicts."""
    path = tmp_path / "bomb.bin"
    path.write_bytes(torch_zip_bytes({"w": np.ones((2, 2), np.float32)}, pickle_bytes=dag_bomb_pickle(60)))
    tensors, _, _ = torch_zip.read_header(LocalFile(path))
    assert len(tensors) == 1 and tensors[0].name == "a." * 60 + "w"


def dag_bomb_pickle(levels: int) -> bytes:
    """A dict nested ``levels`` deep in which every level holds the next one twice (memo references)."""
    p = bytearray(b"\x80\x02")
    p += b"}q\x00X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
    p += b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89"
    p += b"ccollections\nOrderedDict\n)RtRs"
    for level in range(1, levels + 1):
        p += b"}r" + struct.pack("<I", level)  # a new dict in memo slot `level`
        p += b"X\x01\x00\x00\x00aj" + struct.pack("<I", level - 1) + b"s"
        p += b"X\x01\x00\x00\x00bj" + struct.pack("<I", level - 1) + b"s"
    p += b"."
    return bytes(p)


def test_huge_declared_shape_is_refused(tmp_path):
    described = {"w": ("FloatStorage", "0", 0, (1 << 40, 1 << 40), (1 << 40, 1), 4)}
    path = tmp_path / "huge.bin"
    path.write_bytes(torch_zip_bytes({"w": np.ones((2, 2), np.float32)}, pickle_bytes=torch_pickle_bytes(described)))
    assert "2^31" in refused(path, CorruptFile)


def test_a_tensor_past_its_storage_is_refused(tmp_path):
    described = {"w": ("FloatStorage", "0", 3, (2, 2), (2, 1), 4)}
    path = tmp_path / "past.bin"
    path.write_bytes(torch_zip_bytes({"w": np.ones((2, 2), np.float32)}, pickle_bytes=torch_pickle_bytes(described)))
    assert "outside its storage" in refused(path, CorruptFile)


def test_compressed_storage_is_refused(tmp_path):
    path = tmp_path / "deflated.bin"
    path.write_bytes(torch_zip_bytes({"w": np.ones((64, 64), np.float32)}, compress_storages=True))
    assert "compressed" in refused(path, UnsupportedFormat)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_zip_is_refused(tmp_path, keep):
    blob = torch_zip_bytes({"w": np.ones((64, 64), np.float32)})
    path = tmp_path / "cut.bin"
    path.write_bytes(blob[: int(len(blob) * keep)])
    assert "zip end record" in refused(path, CorruptFile)


def test_zip_without_data_pkl_and_plain_junk(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    (tmp_path / "a.bin").write_bytes(buf.getvalue())
    assert "not a PyTorch checkpoint" in refused(tmp_path / "a.bin", CorruptFile)
    (tmp_path / "b.bin").write_bytes(b"GGUF" + b"\x00" * 100)
    assert "neither a PyTorch zip checkpoint nor a pickle" in refused(tmp_path / "b.bin", CorruptFile)


def test_legacy_pickle_is_refused(tmp_path):
    path = tmp_path / "old.bin"
    path.write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.")  # torch < 1.6 starts with a pickled magic number
    assert "legacy PyTorch pickle" in refused(path)


# ------------------------------------------------------------------ choosing files


def test_safetensors_is_preferred_over_bin(tmp_path, stories_bin):
    both = tmp_path / "both"
    shutil.copytree(STORIES, both)
    shutil.copy(stories_bin / "pytorch_model.bin", both / "pytorch_model.bin")
    (both / "training_args.bin").write_bytes(b"\x80\x04junk")
    assert compute(str(both), NO_CACHE).fingerprint.format == "safetensors"
    (both / "model.safetensors").unlink()
    fp = compute(str(both), NO_CACHE).fingerprint  # training_args.bin is not a weight file
    assert fp.format == "pytorch" and [f["name"] for f in fp.files] == ["pytorch_model.bin"]


# ------------------------------------------------------------------ the Hub: Range reads only


def test_hub_bin_repo_reads_only_what_it_needs(hub, stories_bin):
    hub.add_repo("org/stories-bin", fixture_files(stories_bin))
    local = compute(str(STORIES), NO_CACHE).fingerprint
    out = compute("org/stories-bin", Options(endpoint=hub.url, use_cache=False))
    assert out.error is None, out.error
    fp = out.fingerprint
    assert fp.format == "pytorch"
    for role in local.curves:
        assert fp.curves[role] == local.curves[role], role
    served = hub.bytes_served["org/stories-bin"]
    size = (stories_bin / "pytorch_model.bin").stat().st_size
    attention = sum(
        v.nbytes
        for k, v in load_file(str(STORIES / "model.safetensors")).items()
        if ".self_attn." in k or "input_" in k
    )
    assert served < 0.3 * size
    # attention rows, the tail (directory) and data.pkl's window, config.json: the directory is the overhead
    assert served <= attention + 80_000
    ranges = [r for m, path, r in hub.requests if path.endswith("pytorch_model.bin")]
    assert ranges and all(r and r.startswith("bytes=") for r in ranges), "every weight read is a Range request"


def test_hub_sharded_bin_repo(hub, expected):
    hub.add_repo("org/sharded", fixture_files(TORCH_FILES / "llama-sharded"))
    local = compute(str(TORCH_FILES / "llama-sharded"), NO_CACHE).fingerprint
    fp = compute("org/sharded", Options(endpoint=hub.url, use_cache=False)).fingerprint
    assert fp is not None and fp.format == "pytorch" and len(fp.files) == 2
    assert fp.curves == local.curves
