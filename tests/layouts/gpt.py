"""Fused-QKV classics: GPT-2 (Conv1D, (in, out) weights), GPT-NeoX (per-head interleaved qkv), Falcon (7B multi-query
and the new decoder architecture of 40B/180B), and BERT."""

from __future__ import annotations

import numpy as np

from .base import CheckpointBuilder, Layout, role_std


def build_gpt2(
    seed: int = 0,
    *,
    n_embd: int = 48,
    n_layer: int = 3,
    n_head: int = 4,
    n_positions: int = 32,
    vocab: int = 128,
    attn_mask_buffers: bool = True,
) -> Layout:
    """openai-community/gpt2 as its model.safetensors names it: NO ``transformer.``
    prefix (``h.0.attn.c_attn.weight``, ``wte.weight``, ``ln_f.weight``), Conv1D weights
    stored (in, out): c_attn (n_embd, 3*n_embd) with bias (3*n_embd,), q/k/v = column
    split.  The file also carries the causal-mask buffer ``h.N.attn.bias`` (1, 1,
    n_positions, n_positions) in F32 - NOT an attention bias.  lm_head is tied (absent).
    """
    E = n_embd
    b = CheckpointBuilder(seed)
    b.w("wte.weight", (vocab, E), role_std("embed", 0))
    b.w("wpe.weight", (n_positions, E), 0.01)
    mask = np.tril(np.ones((n_positions, n_positions), np.float32)).reshape(1, 1, n_positions, n_positions)
    for i in range(n_layer):
        p = f"h.{i}."
        w = b.norm(p + "ln_1.weight", E)
        b.role(i, "attn_norm", w, p + "ln_1.weight")
        b.w(p + "ln_1.bias", (E,), 0.01)
        if attn_mask_buffers:
            b.put(p + "attn.bias", mask.copy())
        parts = [b.randn((E, E), role_std(r, i)) for r in ("q", "k", "v")]
        W = b.put(p + "attn.c_attn.weight", np.concatenate(parts, axis=1))
        bparts = [b.randn((E,), role_std(r + "_bias", i)) for r in ("q", "k", "v")]
        Bv = b.put(p + "attn.c_attn.bias", np.concatenate(bparts))
        b.role(i, "qkv", W, p + "attn.c_attn.weight")
        b.role(i, "qkv_bias", Bv, p + "attn.c_attn.bias")
        for j, r in enumerate("qkv"):
            b.role(i, r, W[:, j * E : (j + 1) * E], p + "attn.c_attn.weight")
            b.role(i, r + "_bias", Bv[j * E : (j + 1) * E], p + "attn.c_attn.bias")
        o = b.w(p + "attn.c_proj.weight", (E, E), role_std("o", i))
        ob = b.w(p + "attn.c_proj.bias", (E,), role_std("o_bias", i))
        b.role(i, "o", o, p + "attn.c_proj.weight")
        b.role(i, "o_bias", ob, p + "attn.c_proj.bias")
        b.norm(p + "ln_2.weight", E)
        b.w(p + "ln_2.bias", (E,), 0.01)
        b.w(p + "mlp.c_fc.weight", (E, 4 * E), role_std("mlp", i))
        b.w(p + "mlp.c_fc.bias", (4 * E,), 0.01)
        b.w(p + "mlp.c_proj.weight", (4 * E, E), role_std("mlp", i))
        b.w(p + "mlp.c_proj.bias", (E,), 0.01)
    b.norm("ln_f.weight", E)
    b.w("ln_f.bias", (E,), 0.01)
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": n_positions,
        "n_embd": E,
        "n_head": n_head,
        "n_layer": n_layer,
        "n_positions": n_positions,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": vocab,
    }
    return b.layout("gpt2", config, notes="h.N.attn.bias is the causal mask buffer")


def build_gpt_neox(
    seed: int = 0,
    *,
    hidden: int = 48,
    layers: int = 3,
    heads: int = 4,
    vocab: int = 128,
    max_pos: int = 32,
    legacy_buffers: bool = True,
) -> Layout:
    """EleutherAI/pythia style: ``gpt_neox.layers.N.attention.query_key_value`` (3*hidden,
    hidden) with rows interleaved PER HEAD: view (nh, 3, hd, hidden) -> [q_h, k_h, v_h]
    (modeling_gpt_neox: view(..., -1, 3*head_size).chunk(3)), bias likewise.  Pythia files
    also hold the buffers ``attention.bias`` (BOOL causal mask), ``attention.masked_bias``
    (scalar) and ``attention.rotary_emb.inv_freq`` (``legacy_buffers``)."""
    hd = hidden // heads
    rot = int(hd * 0.25)
    b = CheckpointBuilder(seed)
    b.w("gpt_neox.embed_in.weight", (vocab, hidden), role_std("embed", 0))
    for i in range(layers):
        p = f"gpt_neox.layers.{i}."
        w = b.norm(p + "input_layernorm.weight", hidden)
        b.role(i, "attn_norm", w, p + "input_layernorm.weight")
        b.w(p + "input_layernorm.bias", (hidden,), 0.01)
        b.norm(p + "post_attention_layernorm.weight", hidden)
        b.w(p + "post_attention_layernorm.bias", (hidden,), 0.01)
        if legacy_buffers:
            mask = np.tril(np.ones((max_pos, max_pos), np.bool_)).reshape(1, 1, max_pos, max_pos)
            b.put(p + "attention.bias", mask, fixed="BOOL")
            b.put(p + "attention.masked_bias", np.array(-1e9, np.float32))
            inv = (1.0 / (10000 ** (np.arange(0, rot, 2, dtype=np.float32) / rot))).astype(np.float32)
            b.put(p + "attention.rotary_emb.inv_freq", inv)
        q, k, v = (b.randn((heads, hd, hidden), role_std(r, i)) for r in "qkv")
        W = b.put(p + "attention.query_key_value.weight", np.stack([q, k, v], axis=1).reshape(3 * hidden, hidden))
        qb, kb, vb = (b.randn((heads, hd), role_std(r + "_bias", i)) for r in "qkv")
        Bv = b.put(p + "attention.query_key_value.bias", np.stack([qb, kb, vb], axis=1).reshape(3 * hidden))
        src, bsrc = p + "attention.query_key_value.weight", p + "attention.query_key_value.bias"
        b.role(i, "qkv", W, src)
        b.role(i, "qkv_bias", Bv, bsrc)
        for r, part, pb in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
            b.role(i, r, part.reshape(hidden, hidden), src)
            b.role(i, r + "_bias", pb.reshape(hidden), bsrc)
        o = b.w(p + "attention.dense.weight", (hidden, hidden), role_std("o", i))
        ob = b.w(p + "attention.dense.bias", (hidden,), role_std("o_bias", i))
        b.role(i, "o", o, p + "attention.dense.weight")
        b.role(i, "o_bias", ob, p + "attention.dense.bias")
        b.w(p + "mlp.dense_h_to_4h.weight", (4 * hidden, hidden), role_std("mlp", i))
        b.w(p + "mlp.dense_h_to_4h.bias", (4 * hidden,), 0.01)
        b.w(p + "mlp.dense_4h_to_h.weight", (hidden, 4 * hidden), role_std("mlp", i))
        b.w(p + "mlp.dense_4h_to_h.bias", (hidden,), 0.01)
    b.norm("gpt_neox.final_layer_norm.weight", hidden)
    b.w("gpt_neox.final_layer_norm.bias", (hidden,), 0.01)
    b.w("embed_out.weight", (vocab, hidden), role_std("embed", 1))
    config = {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "hidden_act": "gelu",
        "max_position_embeddings": max_pos,
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000,
        "use_parallel_residual": True,
        "layer_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float16",
        "transformers_version": "4.24.0",
        "use_cache": True,
    }
    return b.layout("gpt_neox", config, notes="qkv rows interleaved per head")


def build_falcon(
    seed: int = 0,
    *,
    new_decoder_architecture: bool = True,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 8,
    kv_heads: int = 2,
    vocab: int = 128,
) -> Layout:
    """tiiuae/falcon.  ``transformer.h.N.self_attention.query_key_value`` (no bias).

    * new_decoder_architecture=True (falcon-40b/180b): rows = nkv groups of
      [nh/nkv q heads, 1 k head, 1 v head], each head hd rows; separate ``ln_attn`` (the
      norm before attention) and ``ln_mlp``; config key ``num_kv_heads``.
    * False with multi_query (falcon-7b): rows = [q: nh*hd | k: hd | v: hd];
      single ``input_layernorm``.
    LayerNorms have weight and bias; lm_head tied (FalconConfig default) so absent.
    """
    hd = hidden // heads
    b = CheckpointBuilder(seed)
    b.w("transformer.word_embeddings.weight", (vocab, hidden), role_std("embed", 0))
    for i in range(layers):
        p = f"transformer.h.{i}."
        src = p + "self_attention.query_key_value.weight"
        if new_decoder_architecture:
            g = heads // kv_heads
            q = b.randn((kv_heads, g, hd, hidden), role_std("q", i))
            k = b.randn((kv_heads, 1, hd, hidden), role_std("k", i))
            v = b.randn((kv_heads, 1, hd, hidden), role_std("v", i))
            W = np.concatenate([q, k, v], axis=1).reshape((heads + 2 * kv_heads) * hd, hidden)
            qs, ks, vs = (
                q.reshape(heads * hd, hidden),
                k.reshape(kv_heads * hd, hidden),
                v.reshape(kv_heads * hd, hidden),
            )
        else:
            qs = b.randn((heads * hd, hidden), role_std("q", i))
            ks = b.randn((hd, hidden), role_std("k", i))
            vs = b.randn((hd, hidden), role_std("v", i))
            W = np.concatenate([qs, ks, vs], axis=0)
        b.put(src, W)
        for r, arr in (("qkv", W), ("q", qs), ("k", ks), ("v", vs)):
            b.role(i, r, arr, src)
        o = b.w(p + "self_attention.dense.weight", (hidden, hidden), role_std("o", i))
        b.role(i, "o", o, p + "self_attention.dense.weight")
        b.w(p + "mlp.dense_h_to_4h.weight", (4 * hidden, hidden), role_std("mlp", i))
        b.w(p + "mlp.dense_4h_to_h.weight", (hidden, 4 * hidden), role_std("mlp", i))
        if new_decoder_architecture:
            w = b.norm(p + "ln_attn.weight", hidden)
            b.role(i, "attn_norm", w, p + "ln_attn.weight")
            b.w(p + "ln_attn.bias", (hidden,), 0.01)
            b.norm(p + "ln_mlp.weight", hidden)
            b.w(p + "ln_mlp.bias", (hidden,), 0.01)
        else:
            w = b.norm(p + "input_layernorm.weight", hidden)
            b.role(i, "attn_norm", w, p + "input_layernorm.weight")
            b.w(p + "input_layernorm.bias", (hidden,), 0.01)
    b.norm("transformer.ln_f.weight", hidden)
    b.w("transformer.ln_f.bias", (hidden,), 0.01)
    config = {
        "alibi": False,
        "apply_residual_connection_post_layernorm": False,
        "architectures": ["FalconForCausalLM"],
        "attention_dropout": 0.0,
        "bias": False,
        "bos_token_id": 11,
        "eos_token_id": 11,
        "hidden_dropout": 0.0,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "falcon",
        "new_decoder_architecture": new_decoder_architecture,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "parallel_attn": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.27.4",
        "use_cache": True,
        "vocab_size": vocab,
    }
    if new_decoder_architecture:
        config["num_kv_heads"] = kv_heads
        name = "falcon_new_arch"
    else:
        config["multi_query"] = True
        name = "falcon_7b"
    return b.layout(name, config)


def build_falcon_7b(seed: int = 0, **kw) -> Layout:
    kw.setdefault("heads", 4)
    return build_falcon(seed, new_decoder_architecture=False, **kw)


def build_falcon_40b(seed: int = 0, **kw) -> Layout:
    return build_falcon(seed, new_decoder_architecture=True, **kw)


def build_bert(
    seed: int = 0, *, hidden: int = 48, layers: int = 3, heads: int = 4, vocab: int = 128, max_pos: int = 32
) -> Layout:
    """google-bert/bert-base-uncased as its model.safetensors names it: ``bert.`` prefix,
    legacy LayerNorm ``gamma``/``beta`` names, biased q/k/v/o; post-LN (no norm before
    attention, so no ``attn_norm`` role); MLM + NSP heads (``cls.*``), pooler."""
    inter = 4 * hidden
    b = CheckpointBuilder(seed)
    e = "bert.embeddings."
    b.w(e + "word_embeddings.weight", (vocab, hidden), role_std("embed", 0))
    b.w(e + "position_embeddings.weight", (max_pos, hidden), 0.01)
    b.w(e + "token_type_embeddings.weight", (2, hidden), 0.01)
    b.norm(e + "LayerNorm.gamma", hidden)
    b.w(e + "LayerNorm.beta", (hidden,), 0.01)
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for r, n in (("q", "query"), ("k", "key"), ("v", "value")):
            w = b.w(f"{p}attention.self.{n}.weight", (hidden, hidden), role_std(r, i))
            bb = b.w(f"{p}attention.self.{n}.bias", (hidden,), role_std(r + "_bias", i))
            b.role(i, r, w, f"{p}attention.self.{n}.weight")
            b.role(i, r + "_bias", bb, f"{p}attention.self.{n}.bias")
        o = b.w(p + "attention.output.dense.weight", (hidden, hidden), role_std("o", i))
        ob = b.w(p + "attention.output.dense.bias", (hidden,), role_std("o_bias", i))
        b.role(i, "o", o, p + "attention.output.dense.weight")
        b.role(i, "o_bias", ob, p + "attention.output.dense.bias")
        b.norm(p + "attention.output.LayerNorm.gamma", hidden)
        b.w(p + "attention.output.LayerNorm.beta", (hidden,), 0.01)
        b.w(p + "intermediate.dense.weight", (inter, hidden), role_std("mlp", i))
        b.w(p + "intermediate.dense.bias", (inter,), 0.01)
        b.w(p + "output.dense.weight", (hidden, inter), role_std("mlp", i))
        b.w(p + "output.dense.bias", (hidden,), 0.01)
        b.norm(p + "output.LayerNorm.gamma", hidden)
        b.w(p + "output.LayerNorm.beta", (hidden,), 0.01)
    b.w("bert.pooler.dense.weight", (hidden, hidden), 0.02)
    b.w("bert.pooler.dense.bias", (hidden,), 0.01)
    b.w("cls.predictions.bias", (vocab,), 0.01)
    b.w("cls.predictions.transform.dense.weight", (hidden, hidden), 0.02)
    b.w("cls.predictions.transform.dense.bias", (hidden,), 0.01)
    b.norm("cls.predictions.transform.LayerNorm.gamma", hidden)
    b.w("cls.predictions.transform.LayerNorm.beta", (hidden,), 0.01)
    b.w("cls.seq_relationship.weight", (2, hidden), 0.02)
    b.w("cls.seq_relationship.bias", (2,), 0.01)
    config = {
        "architectures": ["BertForMaskedLM"],
        "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": max_pos,
        "model_type": "bert",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": vocab,
    }
    return b.layout("bert", config)
