"""The builders in tests/layouts write what real checkpoints look like: names and shapes as transformers and
llama.cpp have them, folders as save_pretrained writes them, GGUF files as llama.cpp converts them, and a ground
truth that is exactly what the files hold."""

from __future__ import annotations

import json
import re

import gguf
import layouts as L
import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file

Q = gguf.GGMLQuantizationType
ALLOWED_ROLES = {
    "q",
    "k",
    "v",
    "o",
    "qkv",
    "q_a",
    "q_b",
    "kv_a",
    "kv_b",
    "q_bias",
    "k_bias",
    "v_bias",
    "o_bias",
    "qkv_bias",
    "attn_norm",
    "q_norm",
    "k_norm",
    "q_a_norm",
    "kv_a_norm",
}
FUSED = {"gpt2", "gpt_neox", "phi3", "falcon_new_arch", "falcon_7b"}


@pytest.fixture(scope="module", params=sorted(L.GROUND_TRUTH_BUILDERS))
def gt_layout(request):
    return L.GROUND_TRUTH_BUILDERS[request.param](0)


def text_config(layout):
    return layout.config.get("text_config", layout.config)


def n_layers(cfg):
    return cfg.get("num_hidden_layers", cfg.get("n_layer"))


# ------------------------------------------------------------------ directories / shards


@pytest.mark.parametrize("name", ["llama", "qwen2_moe", "deepseek_v3_fp8", "gptq_llama", "bnb4_llama"])
@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("dtype", ["F32", "BF16"])
def test_checkpoint_dir_and_index(tmp_path, name, shards, dtype):
    layout = L.BUILDERS[name](0)
    d = L.write_safetensors_dir(layout, tmp_path / "ckpt", dtype=dtype, shards=shards)
    assert json.loads((d / "config.json").read_text()) == layout.config
    for fname, content in layout.extra_files.items():
        assert json.loads((d / fname).read_text()) == content
    files = sorted(p.name for p in d.glob("*.safetensors"))
    if shards == 1:
        assert files == ["model.safetensors"]
        assert not (d / "model.safetensors.index.json").exists()
        weight_map = {n: "model.safetensors" for n in layout.tensors}
    else:
        assert files == [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
        idx = json.loads((d / "model.safetensors.index.json").read_text())
        assert set(idx) == {"metadata", "weight_map"}
        weight_map = idx["weight_map"]
        assert list(weight_map) == sorted(weight_map)
        assert set(weight_map) == set(layout.tensors)
        assert set(weight_map.values()) == set(files)
    total = 0
    seen = {}
    for f in files:
        _n, header = L.read_safetensors_header(d / f)
        assert header.pop("__metadata__") == {"format": "pt"}
        for k, v in header.items():
            assert k not in seen
            seen[k] = f
            total += v["data_offsets"][1] - v["data_offsets"][0]
            assert v["dtype"] == layout.stored_dtype(k, dtype)
            assert v["shape"] == list(layout.tensors[k].shape)
    assert seen == weight_map
    if shards > 1:
        assert idx["metadata"]["total_size"] == total
    # contents
    for f in files:
        t = L.read_safetensors_file(d / f)
        if not any(v.dtype == ml_dtypes.float8_e4m3fn for v in t.values()):
            st = load_file(d / f)  # the official loader agrees
            assert set(st) == set(t)
        for k, v in t.items():
            src = layout.tensors[k]
            want = src.astype(L.ST_DTYPES[layout.stored_dtype(k, dtype)])
            assert v.dtype == want.dtype and v.tobytes() == want.tobytes(), k


def test_a_layer_can_straddle_shards(tmp_path):
    layout = L.build_llama(0)
    d = L.write_safetensors_dir(layout, tmp_path / "c", shards=3)
    wm = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
    per_layer = {}
    for k, f in wm.items():
        m = re.match(r"model\.layers\.(\d+)\.", k)
        if m:
            per_layer.setdefault(int(m.group(1)), set()).add(f)
    assert any(len(fs) > 1 for fs in per_layer.values())


def test_bf16_ground_truth_matches_file(tmp_path):
    for name in ("llama", "phi3", "gpt_neox"):
        layout = L.BUILDERS[name](0)
        d = L.write_safetensors_dir(layout, tmp_path / name, dtype="BF16")
        t = load_file(d / "model.safetensors")
        gt = layout.attention_as("BF16")
        for layer, roles in gt.items():
            for role, want in roles.items():
                src = t[layout.sources[layer][role]].astype(np.float64)
                if role in ("q", "k", "v", "q_bias", "k_bias", "v_bias") and name in FUSED:
                    assert np.isin(want.ravel(), src.ravel()).all()
                else:
                    assert np.array_equal(src, want)


# ------------------------------------------------------------------ ground truth


def test_ground_truth_is_consistent(gt_layout):
    lay = gt_layout
    cfg = text_config(lay)
    assert sorted(lay.attention) == list(range(n_layers(cfg)))
    roles0 = set(lay.attention[0])
    for layer, roles in lay.attention.items():
        assert set(roles) == roles0, "every layer has the same roles"
        assert set(roles) <= ALLOWED_ROLES
        for role, arr in roles.items():
            assert arr.dtype == np.float64
            src = lay.sources[layer][role]
            assert src in lay.tensors
            assert f".{layer}." in src or src.startswith(f"h.{layer}.")
            stored = lay.tensors[src]
            if stored.dtype == np.float32 and not (
                lay.name in FUSED and role in ("q", "k", "v", "q_bias", "k_bias", "v_bias")
            ):
                assert np.array_equal(arr, stored.astype(np.float64)), (layer, role)
            # the ground truth is a copy, not a view
            assert not np.shares_memory(arr, stored)
    assert {"q", "o"} <= roles0 or {"q_a", "o"} <= roles0


def test_per_layer_curves_are_not_flat(gt_layout):
    for role in ("q", "q_a", "k", "v", "o"):
        if role in gt_layout.attention[0]:
            stds = np.array([gt_layout.attention[i][role].std() for i in gt_layout.attention])
            assert stds.max() / stds.min() > 1.2, role
    o = np.array([gt_layout.attention[i]["o"].std() for i in gt_layout.attention])
    first = "q" if "q" in gt_layout.attention[0] else "q_a"
    q = np.array([gt_layout.attention[i][first].std() for i in gt_layout.attention])
    assert not np.allclose(q / q[0], o / o[0], rtol=0.02), "roles have different curves"


@pytest.mark.parametrize("name", sorted(L.BUILDERS))
def test_deterministic_in_seed(name):
    a, b, c = L.BUILDERS[name](3), L.BUILDERS[name](3), L.BUILDERS[name](4)
    assert list(a.tensors) == list(b.tensors) == list(c.tensors)
    assert all(a.tensors[k].tobytes() == b.tensors[k].tobytes() for k in a.tensors)
    assert not all(a.tensors[k].tobytes() == c.tensors[k].tobytes() for k in a.tensors)
    assert all(v.flags.c_contiguous for v in a.tensors.values())


GGUF_ARCH = {
    "llama": "LLAMA",
    "mistral": "LLAMA",
    "qwen2": "QWEN2",
    "qwen3": "QWEN3",
    "gemma": "GEMMA",
    "gemma2": "GEMMA2",
    "phi3": "PHI3",
    "gpt2": "GPT2",
    "gpt_neox": "GPTNEOX",
    "falcon_new_arch": "FALCON",
    "falcon_7b": "FALCON",
    "bert": "BERT",
    "mixtral": "LLAMA",
    "qwen2_moe": "QWEN2MOE",
    "deepseek_v2": "DEEPSEEK2",
    "deepseek_v2_lite": "DEEPSEEK2",
    "deepseek_v3_fp8": "DEEPSEEK2",
    "pangu_pro_moe": "LLAMA",
    "llava": "LLAMA",
    "llava_new_naming": "LLAMA",
    "qwen3_vl": "QWEN3",
}
ROLE_TENSOR = {
    "q": {"ATTN_Q"},
    "k": {"ATTN_K"},
    "v": {"ATTN_V"},
    "o": {"ATTN_OUT"},
    "qkv": {"ATTN_QKV"},
    "attn_norm": {"ATTN_NORM", "ATTN_NORM_2"},
    "q_norm": {"ATTN_Q_NORM"},
    "k_norm": {"ATTN_K_NORM"},
    "q_a": {"ATTN_Q_A"},
    "q_b": {"ATTN_Q_B"},
    "kv_a": {"ATTN_KV_A_MQA"},
    "kv_b": {"ATTN_KV_B"},
    "q_a_norm": {"ATTN_Q_A_NORM"},
    "kv_a_norm": {"ATTN_KV_A_NORM"},
}


def test_names_agree_with_gguf_tensor_mapping(gt_layout):
    """Independent cross-check against llama.cpp's HF-name table (gguf-py)."""
    arch = getattr(gguf.MODEL_ARCH, GGUF_ARCH[gt_layout.name])
    tmap = gguf.get_tensor_name_map(arch, 8)
    for layer, _roles in gt_layout.attention.items():
        for role, src in gt_layout.sources[layer].items():
            name = src
            for prefix, repl in (
                ("language_model.model.", "model."),
                ("model.language_model.", "model."),
                ("bert.", ""),
            ):
                if name.startswith(prefix):
                    name = repl + name[len(prefix) :]
            kind = tmap.get_type(name, try_suffixes=(".weight", ".bias", ".gamma", ".beta"))
            if role.endswith("_bias") and role not in ("q_bias", "k_bias", "v_bias", "o_bias", "qkv_bias"):
                continue
            base = role[:-5] if role.endswith("_bias") else role
            expected = {"qkv"} if gt_layout.name in FUSED and base in ("q", "k", "v") else {base}
            want = set().union(*(ROLE_TENSOR[r] for r in expected))
            assert kind is not None and kind.name in want, (src, role, kind)


SEPARATE_QKV_DECODERS = [
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "mixtral",
    "qwen2_moe",
    "pangu_pro_moe",
    "llava",
    "llava_new_naming",
    "qwen3_vl",
]


@pytest.mark.parametrize("name", SEPARATE_QKV_DECODERS)
def test_llama_family_shapes(name):
    lay = L.GROUND_TRUTH_BUILDERS[name](0)
    cfg = text_config(lay)
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hidden = cfg["hidden_size"]
    hd = cfg.get("head_dim") or hidden // nh
    for roles in lay.attention.values():
        assert roles["q"].shape == (nh * hd, hidden)
        assert roles["k"].shape == roles["v"].shape == (nkv * hd, hidden)
        assert roles["o"].shape == (hidden, nh * hd)
        assert roles["attn_norm"].shape == (hidden,)
        if "q_bias" in roles:
            assert roles["q_bias"].shape == (nh * hd,) and roles["k_bias"].shape == (nkv * hd,)
        if "q_norm" in roles:
            assert roles["q_norm"].shape == roles["k_norm"].shape == (hd,)


def test_qwen3_and_gemma_use_explicit_head_dim():
    for layout in (L.build_qwen3(0), L.build_gemma(0), L.build_gemma(0, version=2)):
        c = layout.config
        assert c["num_attention_heads"] * c["head_dim"] != c["hidden_size"]
        assert "lm_head.weight" not in layout.tensors  # tied
    g = L.build_gemma(0)
    assert abs(np.mean([g.attention[i]["attn_norm"].mean() for i in g.attention])) < 0.2  # 1+w convention
    g2 = L.build_gemma(0, version=2)
    assert "model.layers.0.pre_feedforward_layernorm.weight" in g2.tensors
    assert "model.layers.0.pre_feedforward_layernorm.weight" not in g.tensors


def test_qwen2_has_qkv_bias_but_no_o_bias():
    lay = L.build_qwen2(0)
    assert "model.layers.0.self_attn.q_proj.bias" in lay.tensors
    assert "model.layers.0.self_attn.o_proj.bias" not in lay.tensors


def test_phi3_fused_rows():
    lay = L.build_phi3(0)
    c = lay.config
    hd = c["hidden_size"] // c["num_attention_heads"]
    for r in lay.attention.values():
        assert np.array_equal(np.concatenate([r["q"], r["k"], r["v"]]), r["qkv"])
        assert r["q"].shape[0] == c["num_attention_heads"] * hd
        assert r["k"].shape[0] == r["v"].shape[0] == c["num_key_value_heads"] * hd
    gu = lay.tensors["model.layers.0.mlp.gate_up_proj.weight"]
    assert gu.shape == (2 * c["intermediate_size"], c["hidden_size"])
    assert not any("q_proj" in k for k in lay.tensors)


def test_gpt2_conv1d_column_split():
    lay = L.build_gpt2(0)
    E = lay.config["n_embd"]
    assert not any(k.startswith("transformer.") for k in lay.tensors)
    assert "h.0.attn.c_attn.weight" in lay.tensors and "wte.weight" in lay.tensors
    assert "lm_head.weight" not in lay.tensors
    x = np.random.default_rng(0).standard_normal((5, E))
    for i, r in lay.attention.items():
        W, B = r["qkv"], r["qkv_bias"]
        assert W.shape == (E, 3 * E) and B.shape == (3 * E,)
        assert np.array_equal(np.concatenate([r["q"], r["k"], r["v"]], axis=1), W)
        # GPT2Attention: c_attn(x).split(n_embd, dim=2), Conv1D = x @ W + b
        q, _k, v = np.split(x @ W + B, 3, axis=1)
        assert np.allclose(q, x @ r["q"] + r["q_bias"]) and np.allclose(v, x @ r["v"] + r["v_bias"])
        mask = lay.tensors[f"h.{i}.attn.bias"]
        assert mask.shape == (1, 1, lay.config["n_positions"], lay.config["n_positions"])
        assert f"h.{i}.attn.bias" not in lay.sources[i].values()


def test_gpt_neox_per_head_interleave_round_trip():
    lay = L.build_gpt_neox(0)
    c = lay.config
    nh, H = c["num_attention_heads"], c["hidden_size"]
    hd = H // nh
    x = np.random.default_rng(0).standard_normal((5, H))
    for _i, r in lay.attention.items():
        W, B = r["qkv"], r["qkv_bias"]
        # modeling_gpt_neox: qkv.view(..., nh, 3*hd).chunk(3, dim=-1)
        fused = (x @ W.T + B).reshape(5, nh, 3 * hd)
        q, k, v = np.split(fused, 3, axis=-1)
        assert np.allclose(q.reshape(5, H), x @ r["q"].T + r["q_bias"])
        assert np.allclose(k.reshape(5, H), x @ r["k"].T + r["k_bias"])
        assert np.allclose(v.reshape(5, H), x @ r["v"].T + r["v_bias"])
        # round trip
        back = np.stack([r[n].reshape(nh, hd, H) for n in "qkv"], axis=1).reshape(3 * H, H)
        assert np.array_equal(back, W)
        assert not np.array_equal(np.concatenate([r["q"], r["k"], r["v"]]), W)
    assert lay.fixed_dtypes["gpt_neox.layers.0.attention.bias"] == "BOOL"
    assert lay.tensors["gpt_neox.layers.0.attention.masked_bias"].shape == ()


@pytest.mark.parametrize("new_arch", [True, False])
def test_falcon_split_heads(new_arch):
    lay = L.build_falcon(0, new_decoder_architecture=new_arch) if new_arch else L.build_falcon_7b(0)
    c = lay.config
    nh, H = c["num_attention_heads"], c["hidden_size"]
    hd = H // nh
    nkv = c["num_kv_heads"] if new_arch else 1
    x = np.random.default_rng(0).standard_normal((5, H))
    for r in lay.attention.values():
        fused = x @ r["qkv"].T
        if new_arch:  # modeling_falcon._split_heads, new_decoder_architecture
            qkv = fused.reshape(5, nkv, nh // nkv + 2, hd)
            q, k, v = qkv[:, :, :-2], qkv[:, :, -2], qkv[:, :, -1]
        else:  # multi_query
            qkv = fused.reshape(5, nh + 2, hd)
            q, k, v = qkv[:, :-2], qkv[:, -2], qkv[:, -1]
        assert np.allclose(q.reshape(5, -1), x @ r["q"].T)
        assert np.allclose(k.reshape(5, -1), x @ r["k"].T)
        assert np.allclose(v.reshape(5, -1), x @ r["v"].T)
        assert r["qkv"].shape == ((nh + 2 * nkv) * hd, H)
    if new_arch:
        assert "transformer.h.0.ln_attn.weight" in lay.tensors and "transformer.h.0.ln_mlp.weight" in lay.tensors
        assert lay.sources[0]["attn_norm"] == "transformer.h.0.ln_attn.weight"
    else:
        assert c["multi_query"] is True and "num_kv_heads" not in c


def test_bert_names():
    lay = L.build_bert(0)
    assert "bert.encoder.layer.0.attention.self.query.weight" in lay.tensors
    assert "bert.encoder.layer.0.attention.output.LayerNorm.gamma" in lay.tensors
    assert "bert.embeddings.LayerNorm.beta" in lay.tensors
    assert not any(k.endswith("LayerNorm.weight") for k in lay.tensors)
    assert "attn_norm" not in lay.attention[0]


def test_moe_layouts():
    mx = L.build_mixtral(0)
    E = mx.config["num_local_experts"]
    assert mx.tensors["model.layers.0.block_sparse_moe.gate.weight"].shape == (E, mx.config["hidden_size"])
    assert f"model.layers.2.block_sparse_moe.experts.{E - 1}.w3.weight" in mx.tensors
    qm = L.build_qwen2_moe(0)
    h = qm.config["hidden_size"]
    assert qm.tensors["model.layers.0.mlp.shared_expert_gate.weight"].shape == (1, h)
    assert qm.tensors["model.layers.0.mlp.gate.weight"].shape == (qm.config["num_experts"], h)
    assert qm.tensors["model.layers.0.mlp.shared_expert.up_proj.weight"].shape == (
        qm.config["shared_expert_intermediate_size"],
        h,
    )
    assert qm.tensors["model.layers.0.mlp.experts.0.down_proj.weight"].shape == (h, qm.config["moe_intermediate_size"])
    pg = L.build_pangu_pro_moe(0)
    assert pg.config["model_type"] == "PanGuMoE"
    assert pg.tensors["model.layers.0.mlp.router_scale"].shape == (1, pg.config["num_experts"])
    assert {"q_bias", "k_bias", "v_bias", "o_bias"} <= set(pg.attention[0])
    assert pg.config["num_experts"] % pg.config["num_experts_per_tok"] == 0


@pytest.mark.parametrize("name", ["deepseek_v2", "deepseek_v2_lite", "deepseek_v3_fp8"])
def test_mla_shapes_follow_config(name):
    lay = L.BUILDERS[name](0)
    c = lay.config
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nope, rope, vd, kvr, qr = (
        c["qk_nope_head_dim"],
        c["qk_rope_head_dim"],
        c["v_head_dim"],
        c["kv_lora_rank"],
        c["q_lora_rank"],
    )
    for i, r in lay.attention.items():
        if qr is None:
            assert r["q"].shape == (nh * (nope + rope), H) and "q_a" not in r
        else:
            assert r["q_a"].shape == (qr, H) and r["q_a_norm"].shape == (qr,)
            assert r["q_b"].shape == (nh * (nope + rope), qr) and "q" not in r
        assert r["kv_a"].shape == (kvr + rope, H) and r["kv_a_norm"].shape == (kvr,)
        assert r["kv_b"].shape == (nh * (nope + vd), kvr)
        assert r["o"].shape == (H, nh * vd)
        p = f"model.layers.{i}.mlp."
        if i < c["first_k_dense_replace"]:
            assert p + "gate_proj.weight" in lay.tensors and p + "gate.weight" not in lay.tensors
        else:
            assert lay.tensors[p + "gate.weight"].shape == (c["n_routed_experts"], H)
            assert f"{p}experts.{c['n_routed_experts'] - 1}.down_proj.weight" in lay.tensors
            assert (
                lay.tensors[p + "shared_experts.gate_proj.weight"].shape[0]
                == c["moe_intermediate_size"] * c["n_shared_experts"]
            )


def test_deepseek_v3_fp8_blocks():
    lay = L.build_deepseek_v3_fp8(0)
    c = lay.config
    assert c["quantization_config"] == {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    }
    n_fp8 = 0
    partial = False
    for name, arr in lay.tensors.items():
        if name.endswith("_scale_inv"):
            continue
        if arr.dtype == ml_dtypes.float8_e4m3fn:
            n_fp8 += 1
            s = lay.tensors[name + "_scale_inv"]
            assert lay.fixed_dtypes[name] == "F8_E4M3" and lay.fixed_dtypes[name + "_scale_inv"] == "F32"
            assert s.dtype == np.float32 and s.shape == tuple(-(-d // 128) for d in arr.shape)
            assert np.abs(arr.astype(np.float32)).max() <= 448
            partial |= any(d % 128 for d in arr.shape) and any(d > 128 for d in arr.shape)
        else:
            assert name + "_scale_inv" not in lay.tensors
    assert n_fp8 > 0 and partial
    # which tensors stay unquantized
    for name in (
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.layers.1.mlp.gate.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.kv_a_layernorm.weight",
    ):
        assert lay.tensors[name].dtype == np.float32
    assert lay.fixed_dtypes["model.layers.1.mlp.gate.e_score_correction_bias"] == "F32"
    qa = lay.tensors["model.layers.0.self_attn.q_a_proj.weight"]
    assert qa.shape == (192, 160) and lay.tensors["model.layers.0.self_attn.q_a_proj.weight_scale_inv"].shape == (2, 2)
    # ground truth is W8 * scale_inv[i // 128, j // 128], block by block
    for i, r in lay.attention.items():
        for role in ("q_a", "q_b", "kv_a", "kv_b", "o"):
            src = lay.sources[i][role]
            w8 = lay.tensors[src].astype(np.float64)
            s = lay.tensors[src + "_scale_inv"]
            want = np.empty_like(w8)
            for a in range(w8.shape[0]):
                for b in range(w8.shape[1]):
                    want[a, b] = w8[a, b] * s[a // 128, b // 128]
            assert np.array_equal(r[role], want)
    # MTP module appended as layer num_hidden_layers, not part of the ground truth
    m = c["num_hidden_layers"]
    assert c["num_nextn_predict_layers"] == 1 and m not in lay.attention
    for n in (
        "enorm.weight",
        "hnorm.weight",
        "eh_proj.weight",
        "shared_head.head.weight",
        "self_attn.q_a_proj.weight",
        "self_attn.q_a_proj.weight_scale_inv",
    ):
        assert f"model.layers.{m}.{n}" in lay.tensors
    assert "model.layers.3.enorm.weight" not in L.build_deepseek_v3_fp8(0, mtp=False).tensors


def test_fp8_survives_bf16_directory(tmp_path):
    lay = L.build_deepseek_v3_fp8(0)
    d = L.write_safetensors_dir(lay, tmp_path / "ds", dtype="BF16", shards=2)
    t = {}
    for f in d.glob("*.safetensors"):
        t.update(L.read_safetensors_file(f))
    assert t["model.layers.0.self_attn.q_a_proj.weight"].dtype == ml_dtypes.float8_e4m3fn
    assert t["model.layers.0.self_attn.q_a_proj.weight_scale_inv"].dtype == np.float32
    assert t["model.layers.1.mlp.gate.e_score_correction_bias"].dtype == np.float32
    assert t["model.embed_tokens.weight"].dtype == ml_dtypes.bfloat16
    deq = L.fp8_block_dequantize(
        t["model.layers.0.self_attn.q_a_proj.weight"], t["model.layers.0.self_attn.q_a_proj.weight_scale_inv"]
    )
    assert np.array_equal(deq, lay.attention[0]["q_a"])
    assert np.array_equal(lay.attention_as("BF16")[0]["q_a"], lay.attention[0]["q_a"])


@pytest.mark.parametrize(
    "name, text_prefix, vision_q",
    [
        ("llava", "language_model.model.", "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight"),
        (
            "llava_new_naming",
            "model.language_model.",
            "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
        ),
        ("qwen3_vl", "model.language_model.", "model.visual.blocks.0.attn.qkv.weight"),
    ],
)
def test_vlm_ground_truth_is_the_language_model(name, text_prefix, vision_q):
    lay = L.BUILDERS[name](0)
    assert vision_q in lay.tensors
    for srcs in lay.sources.values():
        assert all(s.startswith(text_prefix) for s in srcs.values())
    assert len(lay.attention) == lay.config["text_config"]["num_hidden_layers"]
    assert any(k.endswith("lm_head.weight") for k in lay.tensors)
    if name == "llava":
        assert "language_model.lm_head.weight" in lay.tensors
        assert "multi_modal_projector.linear_1.weight" in lay.tensors
        assert "vision_tower.vision_model.pre_layrnorm.weight" in lay.tensors
    if name == "qwen3_vl":
        vh = lay.config["vision_config"]["hidden_size"]
        assert lay.tensors[vision_q].shape == (3 * vh, vh)
        assert "lm_head.weight" in lay.tensors and "q_norm" in lay.attention[0]


# ------------------------------------------------------------------ quantized, unsupported


def test_gptq_layout():
    lay = L.build_gptq_llama(0)
    base = L.build_llama(0, layers=2)
    qc = lay.config["quantization_config"]
    g = qc["group_size"]
    assert qc["quant_method"] == "gptq" and qc["bits"] == 4 and lay.attention == {}
    p = "model.layers.0.self_attn.q_proj."
    w = base.tensors[p + "weight"]
    n_out, n_in = w.shape
    assert p + "weight" not in lay.tensors
    assert lay.tensors[p + "qweight"].dtype == np.int32 and lay.tensors[p + "qweight"].shape == (n_in // 8, n_out)
    assert lay.tensors[p + "qzeros"].shape == (n_in // g, n_out // 8)
    assert lay.tensors[p + "scales"].dtype == np.float16 and lay.tensors[p + "scales"].shape == (n_in // g, n_out)
    assert np.array_equal(lay.tensors[p + "g_idx"], np.arange(n_in) // g)
    # unpack and dequantize ~ original
    qw = lay.tensors[p + "qweight"].view(np.uint32)
    iw = np.stack([(qw >> (4 * j)) & 15 for j in range(8)], axis=1).reshape(n_in, n_out).astype(np.int64)
    z = lay.tensors[p + "qzeros"].view(np.uint32)
    zeros = np.stack([(z >> (4 * j)) & 15 for j in range(8)], axis=2).reshape(n_in // g, n_out).astype(np.int64) + 1
    assert (zeros == 8).all()  # symmetric, v1 format stores zero - 1
    s = lay.tensors[p + "scales"].astype(np.float32)
    deq = (iw - zeros[np.arange(n_in) // g]) * s[np.arange(n_in) // g]
    assert np.abs(deq - w.T).max() <= s.max() * 0.51
    assert lay.tensors["model.embed_tokens.weight"].dtype == np.float16


def test_bnb4_layout():
    lay = L.build_bnb4_llama(0)
    base = L.build_llama(0, layers=2)
    assert lay.config["quantization_config"]["quant_method"] == "bitsandbytes" and lay.attention == {}
    p = "model.layers.1.self_attn.k_proj.weight"
    w = base.tensors[p]
    packed = lay.tensors[p]
    assert packed.dtype == np.uint8 and packed.shape == (w.size // 2, 1)
    state = json.loads(lay.tensors[p + ".quant_state.bitsandbytes__nf4"].tobytes())
    assert state == {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": list(w.shape)}
    absmax = lay.tensors[p + ".absmax"]
    qmap = lay.tensors[p + ".quant_map"]
    assert absmax.shape == (w.size // 64,) and qmap.shape == (16,)
    idx = np.stack([packed[:, 0] >> 4, packed[:, 0] & 15], axis=1).reshape(-1)
    deq = (qmap[idx].reshape(-1, 64) * absmax[:, None]).reshape(w.shape)
    assert np.abs(deq - w).max() <= absmax.max() * 0.2


# ------------------------------------------------------------------ GGUF


def gguf_tensors(path):
    r = gguf.GGUFReader(path)
    out = {}
    for t in r.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type)
        out[t.name] = (t.tensor_type, arr.reshape(tuple(int(x) for x in reversed(t.shape))))
    return r, out


def field_value(r, key):
    f = r.fields[key]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v.tolist()[0]


def test_permute_matches_llama_cpp_definition():
    w = np.arange(2 * 8 * 3, dtype=np.float32).reshape(16, 3)  # 2 heads, head_dim 8
    p = L.llama_permute(w, 2)
    hd = 8
    for h in range(2):
        for i in range(hd // 2):
            for j in range(2):  # GGML pairs (i, i + hd/2) of the HF rotate-half layout
                assert np.array_equal(p[h * hd + 2 * i + j], w[h * hd + j * hd // 2 + i])
    assert np.array_equal(L.llama_unpermute(p, 2), w)
    # K uses the kv-head count
    assert np.array_equal(L.llama_permute(w, 8, 2), L.llama_permute(w, 2))


def test_gguf_f32_is_exact_and_laid_out_like_llama_cpp(tmp_path):
    lay = L.build_llama(0)
    c = lay.config
    path = L.write_gguf(lay, tmp_path / "m.gguf")
    r, t = gguf_tensors(path)
    assert field_value(r, "general.architecture") == "llama"
    assert field_value(r, "llama.block_count") == c["num_hidden_layers"]
    assert field_value(r, "llama.attention.head_count") == c["num_attention_heads"]
    assert field_value(r, "llama.attention.head_count_kv") == c["num_key_value_heads"]
    assert field_value(r, "llama.embedding_length") == c["hidden_size"]
    assert field_value(r, "llama.feed_forward_length") == c["intermediate_size"]
    assert "general.alignment" not in r.fields
    exp = L.gguf_expected_tensors(lay)
    assert [tt.name for tt in r.tensors] == list(exp)
    assert {
        "token_embd.weight",
        "output_norm.weight",
        "output.weight",
        "blk.2.attn_q.weight",
        "blk.0.attn_output.weight",
        "blk.1.ffn_gate.weight",
    } <= set(t)
    for name, (qt, arr) in t.items():
        assert qt == Q.F32
        assert np.array_equal(arr, exp[name]), name
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    for i, roles in lay.attention.items():
        q = t[f"blk.{i}.attn_q.weight"][1]
        k = t[f"blk.{i}.attn_k.weight"][1]
        assert not np.array_equal(q, roles["q"])
        assert np.array_equal(L.llama_unpermute(q, nh), roles["q"])
        assert np.array_equal(L.llama_unpermute(k, nh, nkv), roles["k"])
        assert np.array_equal(t[f"blk.{i}.attn_v.weight"][1], roles["v"])
        assert np.array_equal(t[f"blk.{i}.attn_output.weight"][1], roles["o"])
        assert np.array_equal(t[f"blk.{i}.attn_norm.weight"][1], roles["attn_norm"])


def expected_gguf_type(qtype, cols):
    """llama.cpp's choice for a 2-D weight whose rows have ``cols`` values."""
    if qtype in (Q.F32, Q.F16, Q.BF16):
        return qtype
    if qtype == Q.Q4_K:
        return Q.Q4_K if cols % 256 == 0 else Q.Q5_0 if cols % 32 == 0 else Q.F16
    return qtype if cols % 32 == 0 else Q.F16


TOL = {
    Q.F16: (1e-3, 1e-3),
    Q.BF16: (8e-3, 5e-3),
    Q.Q8_0: (1 / 127, 0.02),
    Q.Q4_0: (1 / 7, 0.15),
    Q.Q5_0: (1 / 15, 0.08),
    Q.Q4_K: (1 / 7, 0.15),
}  # (max err / amax, relative rms)


@pytest.mark.parametrize(
    "qtype, hidden, seen",
    [
        (Q.F16, 64, {Q.F16}),
        (Q.BF16, 64, {Q.BF16}),
        (Q.Q8_0, 64, {Q.Q8_0}),
        (Q.Q8_0, 48, {Q.Q8_0, Q.F16}),  # convert_hf_to_gguf: QuantError -> F16 (48-wide rows)
        (Q.Q4_0, 64, {Q.Q4_0}),
        (Q.Q4_K, 256, {Q.Q4_K}),
        (Q.Q4_K, 64, {Q.Q5_0}),  # llama-quant: incompatible Q4_K -> Q5_0
        (Q.Q4_K, 48, {Q.Q5_0, Q.F16}),  # ... -> F16 when 32 does not divide either
    ],
)
def test_gguf_quantized_within_error(tmp_path, qtype, hidden, seen):
    lay = L.build_llama(0, hidden=hidden, heads=4, kv_heads=2, intermediate=2 * hidden, vocab=64)
    path = L.write_gguf(lay, tmp_path / "q.gguf", qtype=qtype)
    _r, t = gguf_tensors(path)
    exp = L.gguf_expected_tensors(lay)
    types = set()
    for name, (qt, arr) in t.items():
        want = exp[name]
        if want.ndim == 1:
            assert qt == Q.F32 and np.array_equal(arr, want)
            continue
        assert qt == expected_gguf_type(qtype, want.shape[1]), (name, qt)
        types.add(qt)
        err = np.abs(arr - want)
        amax = np.abs(want).max()
        max_tol, rms_tol = TOL[qt]
        assert err.max() <= max_tol * amax, (name, err.max(), amax)
        assert np.sqrt(((arr - want) ** 2).mean() / (want**2).mean()) < rms_tol
    assert types == seen


def test_q4_k_quantizer_round_trip():
    x = np.random.default_rng(0).standard_normal((8, 512)).astype(np.float32) * 0.05
    x[0] += 0.2  # an all-positive row, min clipped at 0
    x[1] = 0.0  # an all-zero row
    q = L.quantize_q4_k(x)
    assert q.dtype == np.uint8 and q.shape == (8, 2 * 144)
    y = gguf.quants.dequantize(q, Q.Q4_K)
    assert y.shape == x.shape
    assert np.array_equal(y[1], x[1])
    for row in range(8):
        blocks = x[row].reshape(-1, 32)
        step = (blocks.max(1) - np.minimum(blocks.min(1), 0)) / 15
        err = np.abs(y[row] - x[row]).reshape(-1, 32).max(1)
        assert (err <= step * 0.75 + 1e-3 * np.abs(blocks).max()).all()
