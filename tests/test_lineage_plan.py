"""The probe's read plan on the shapes of real large models, from tensor headers alone (no data).

A 7B Llama (32 layers, hidden 4096, MLP 11008, vocab 32000) and a 70B-shaped one (80 layers,
hidden 8192, 8 KV heads, MLP 28672, vocab 128256), each as bf16 safetensors and as a Q8_0 GGUF:
every plan stays within 128 MB and 1,000 requests per model, headers and tokenizer included, and
a model and its GGUF copy read the same rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from fingerprint.formats.tensor import TensorInfo
from fingerprint.lineage.plan import PROBE_BYTES, PROBE_REQUESTS, ProbeBudget, plan_probe
from fingerprint.lineage.reading import probe_tensors
from fingerprint.lineage.slots import runs, sample_rows
from fingerprint.modelconfig import ModelConfig
from fingerprint.sources.base import ByteSource

SHAPES = {
    "7b": dict(layers=32, hidden=4096, heads=32, kv_heads=32, inter=11008, vocab=32000),
    "70b": dict(layers=80, hidden=8192, heads=64, kv_heads=8, inter=28672, vocab=128256),
}
# What a real model reads before the plan: headers of every shard, config, index, tokenizer.json
# (Llama-2's is 1.8 MB, Llama-3's 9 MB) or the GGUF header with its vocabulary. Generous on purpose.
SPENT = {
    ("7b", "safetensors"): (2_500_000, 8),
    ("7b", "gguf"): (2_000_000, 6),
    ("70b", "safetensors"): (10_000_000, 40),
    ("70b", "gguf"): (9_000_000, 8),
}


class _NoData(ByteSource):
    name = "model"
    size = 1 << 50

    def fetch(self, offset: int, length: int) -> bytes:
        raise AssertionError("planning reads no data")


def _row_bytes(dtype: str, cols: int) -> int:
    return {"BF16": 2 * cols, "F32": 4 * cols, "Q8_0": cols // 32 * 34, "Q4_0": cols // 32 * 18}[dtype]


def _tensors(shape: dict, fmt: str, dtype: str) -> dict[str, TensorInfo]:
    h, kvd = shape["hidden"], shape["kv_heads"] * shape["hidden"] // shape["heads"]
    src = _NoData()
    out: dict[str, TensorInfo] = {}
    offset = 0

    def add(name: str, dims: tuple[int, ...], dt: str) -> None:
        nonlocal offset
        rows = int(np.prod(dims[:-1])) if len(dims) > 1 else 1
        nbytes = rows * _row_bytes(dt, dims[-1])
        out[name] = TensorInfo(name, dt, dims, src, offset, nbytes, fmt)
        offset += nbytes

    vec = "F32" if fmt == "gguf" else dtype  # llama.cpp keeps 1-D tensors in F32
    gguf = fmt == "gguf"
    inter = shape["inter"]
    add("token_embd.weight" if gguf else "model.embed_tokens.weight", (shape["vocab"], h), dtype)
    # (Hugging Face name, GGUF name, shape) of each tensor of a block, in file order
    block = [
        ("input_layernorm", "attn_norm", (h,)), ("self_attn.q_proj", "attn_q", (h, h)),
        ("self_attn.k_proj", "attn_k", (kvd, h)), ("self_attn.v_proj", "attn_v", (kvd, h)),
        ("self_attn.o_proj", "attn_output", (h, h)), ("post_attention_layernorm", "ffn_norm", (h,)),
        ("mlp.gate_proj", "ffn_gate", (inter, h)), ("mlp.up_proj", "ffn_up", (inter, h)),
        ("mlp.down_proj", "ffn_down", (h, inter)),
    ]  # fmt: skip
    for i in range(shape["layers"]):
        for hf, gg, dims in block:
            add(
                f"blk.{i}.{gg}.weight" if gguf else f"model.layers.{i}.{hf}.weight",
                dims,
                vec if len(dims) == 1 else dtype,
            )
    add("output_norm.weight" if gguf else "model.norm.weight", (h,), vec)
    add("output.weight" if gguf else "lm_head.weight", (shape["vocab"], h), dtype)
    return out


def _plan(size: str, fmt: str, dtype: str, budget: ProbeBudget | None = None):
    shape = SHAPES[size]
    cfg = ModelConfig(
        architecture="llama",
        model_type="llama",
        n_layers=shape["layers"],
        n_heads=shape["heads"],
        n_kv_heads=shape["kv_heads"],
        hidden=shape["hidden"],
        gguf_arch="llama" if fmt == "gguf" else None,
    )
    vocab = [f"tok{i}" for i in range(shape["vocab"])]
    spent_bytes, spent_requests = SPENT[(size, fmt)]
    plan = plan_probe(
        probe_tensors(_tensors(shape, fmt, dtype)),
        cfg,
        fmt,
        vocab,
        budget or ProbeBudget(),
        permuted=fmt == "gguf",
        spent_bytes=spent_bytes,
        spent_requests=spent_requests,
    )
    return plan, spent_bytes, spent_requests


def _file_requests(plan) -> int:
    """Reads as the probe issues them: runs of consecutive rows in the file's own order."""
    n = len(plan.scales)
    for w in plan.wants:
        n += 1 if len(w.named.tensor.shape) == 1 else len(runs(np.sort(w.file_row(w.rows))))
    return n


@pytest.mark.parametrize("size", ["7b", "70b"])
@pytest.mark.parametrize(
    "fmt, dtype", [("safetensors", "BF16"), ("gguf", "Q8_0"), ("gguf", "Q4_0"), ("safetensors", "F32")]
)
def test_large_model_plans_fit_128_mb_and_1000_requests(size, fmt, dtype):
    plan, spent_bytes, spent_requests = _plan(size, fmt, dtype)
    assert plan.mode == "sampled"
    assert spent_bytes + plan.data_bytes <= PROBE_BYTES
    assert spent_requests + plan.data_requests <= PROBE_REQUESTS
    assert plan.data_requests <= PROBE_REQUESTS - 50  # data reads leave room for headers
    assert _file_requests(plan) <= plan.data_requests  # counted in HF order: never fewer than the file needs
    layers = SHAPES[size]["layers"]
    assert len(plan.matrices) == 7 * layers and all(len(w.rows) > 0 for w in plan.matrices)
    assert len(plan.token_ids) >= (256 if dtype == "F32" else 2048)  # shared tokens to align hidden dims on
    assert not any("over the" in n for n in plan.notes)


@pytest.mark.parametrize("size", ["7b", "70b"])
def test_a_bf16_model_and_its_q8_0_gguf_read_the_same_rows(size):
    st, _, _ = _plan(size, "safetensors", "BF16")
    gg, _, _ = _plan(size, "gguf", "Q8_0")
    rows_st = {w.key: w.rows for w in st.matrices}
    rows_gg = {w.key: w.rows for w in gg.matrices}
    assert rows_st.keys() == rows_gg.keys()
    for key, rows in rows_st.items():
        np.testing.assert_array_equal(rows, rows_gg[key], err_msg=str(key))
    # the embedding windows of a larger plan contain the smaller one's (same tokenizer: same rows)
    small, large = sorted((st.token_ids, gg.token_ids), key=len)
    assert np.isin(small, large).all()


def test_rows_are_a_prefix_of_one_order_whatever_the_budget():
    shape = (11008, 4096)
    previous = np.zeros(0, np.int64)
    for slots in (1, 2, 5, 20, 100):
        rows = sample_rows("gate", shape, slots, 128, 1 << 16)
        assert np.isin(previous, rows).all()
        previous = rows
    q = sample_rows("q", (4096, 4096), 3, 128, 1 << 16)
    within = q % 128
    assert set((within[within < 64] + 64).tolist()) == set(within[within >= 64].tolist())  # whole rotary pairs


@pytest.mark.parametrize("role", ["q", "down"])
def test_models_of_different_widths_read_the_same_rows_first(role):
    """A width-pruned copy's matrices differ from the original's only in their input width: both plans must hold
    common rows, or AWM and element-wise have nothing to compare (whatever each one's budget allows)."""
    from fingerprint.lineage.slots import sample_rows

    rows = 512
    for narrow_cols, wide_cols in ((96, 128), (64, 4096), (1024, 8192)):
        for few, many in ((1, 1), (2, 5), (3, 40)):
            a = sample_rows(role, (rows, wide_cols), few, 64, 16384)
            b = sample_rows(role, (rows, narrow_cols), many, 64, 16384)
            assert min(len(a), len(b)) < rows and len(np.intersect1d(a, b)) > 0, (narrow_cols, wide_cols, few, many)
            # the same width and more slots: the rows read with fewer are all read again
            assert set(sample_rows(role, (rows, wide_cols), few, 64, 16384)) <= set(
                sample_rows(role, (rows, wide_cols), many, 64, 16384)
            )
