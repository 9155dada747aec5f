"""Vision-language models, whose ground truth is the language model's attention: LLaVA (old and new tensor naming)
and Qwen3-VL."""

from __future__ import annotations

from .base import CheckpointBuilder, Layout
from .llama import causal_lm, llama_layers, qwen3_text_config


def _clip_tower(b: CheckpointBuilder, p: str, *, hidden: int, layers: int, inter: int, patch: int, image: int):
    n_pos = (image // patch) ** 2 + 1
    e = p + "embeddings."
    b.w(e + "class_embedding", (hidden,), 0.02)
    b.w(e + "patch_embedding.weight", (hidden, 3, patch, patch), 0.02)
    b.w(e + "position_embedding.weight", (n_pos, hidden), 0.02)
    b.norm(p + "pre_layrnorm.weight", hidden)  # sic: CLIPVisionTransformer.pre_layrnorm
    b.w(p + "pre_layrnorm.bias", (hidden,), 0.01)
    for i in range(layers):
        q = f"{p}encoder.layers.{i}."
        for n in ("k_proj", "v_proj", "q_proj", "out_proj"):  # CLIPAttention registration order
            b.w(f"{q}self_attn.{n}.weight", (hidden, hidden), 0.05 * (i + 1))
            b.w(f"{q}self_attn.{n}.bias", (hidden,), 0.01)
        b.norm(q + "layer_norm1.weight", hidden)
        b.w(q + "layer_norm1.bias", (hidden,), 0.01)
        b.w(q + "mlp.fc1.weight", (inter, hidden), 0.02)
        b.w(q + "mlp.fc1.bias", (inter,), 0.01)
        b.w(q + "mlp.fc2.weight", (hidden, inter), 0.02)
        b.w(q + "mlp.fc2.bias", (hidden,), 0.01)
        b.norm(q + "layer_norm2.weight", hidden)
        b.w(q + "layer_norm2.bias", (hidden,), 0.01)
    b.norm(p + "post_layernorm.weight", hidden)
    b.w(p + "post_layernorm.bias", (hidden,), 0.01)


def build_llava(
    seed: int = 0, *, new_naming: bool = False, hidden: int = 64, layers: int = 3, heads: int = 4, vocab: int = 128
) -> Layout:
    """llava-hf/llava-1.5-7b-hf: ``language_model.model.layers.N.*`` (Vicuna = llama, MHA),
    ``language_model.lm_head``, CLIP ``vision_tower.vision_model.encoder.layers.N.self_attn.
    {q,k,v,out}_proj`` (with biases), ``multi_modal_projector.linear_1/2``.
    ``new_naming=True`` gives what transformers >= 4.52 save_pretrained writes
    (``_checkpoint_conversion_mapping``): ``model.language_model.*``, ``model.vision_tower.*``,
    ``model.multi_modal_projector.*``, ``lm_head.weight``.
    Ground truth = the LANGUAGE model's attention only."""
    hd = hidden // heads
    inter = hidden * 3
    vh, vl, vheads, vinter, patch, image = 32, 2, 2, 64, 14, 28
    if new_naming:
        lm, lm_head, vt, mmp = (
            "model.language_model.",
            "lm_head.weight",
            "model.vision_tower.",
            "model.multi_modal_projector.",
        )
    else:
        lm, lm_head, vt, mmp = (
            "language_model.model.",
            "language_model.lm_head.weight",
            "vision_tower.",
            "multi_modal_projector.",
        )
    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        lm,
        vocab,
        hidden,
        lambda: llama_layers(b, lm, layers, hidden, heads, heads, hd, inter),
        tie=False,
        lm_head=lm_head,
    )
    b.w(mmp + "linear_1.weight", (hidden, vh), 0.02)
    b.w(mmp + "linear_1.bias", (hidden,), 0.01)
    b.w(mmp + "linear_2.weight", (hidden, hidden), 0.02)
    b.w(mmp + "linear_2.bias", (hidden,), 0.01)
    _clip_tower(b, vt + "vision_model.", hidden=vh, layers=vl, inter=vinter, patch=patch, image=image)
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": vocab - 2,
        "pad_token_id": vocab - 1,
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.36.0.dev0",
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": vocab,
        "text_config": {
            "_name_or_path": "lmsys/vicuna-7b-v1.5",
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": inter,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-05,
            "torch_dtype": "float16",
            "vocab_size": vocab,
        },
        "vision_config": {
            "hidden_size": vh,
            "image_size": image,
            "intermediate_size": vinter,
            "model_type": "clip_vision_model",
            "num_attention_heads": vheads,
            "num_hidden_layers": vl,
            "patch_size": patch,
            "projection_dim": 768,
            "vocab_size": 32000,
        },
    }
    return b.layout("llava_new_naming" if new_naming else "llava", config)


def build_qwen3_vl(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 16,
    vocab: int = 128,
) -> Layout:
    """Qwen/Qwen3-VL-8B-Instruct (transformers' current VLM naming, shipped natively):
    ``model.language_model.layers.N.self_attn.{q,k,v,o}_proj`` + ``q_norm/k_norm``,
    ``lm_head.weight`` at top level, vision ``model.visual.blocks.N.attn.qkv`` (fused,
    [q;k;v] rows, with bias), ``attn.proj``, ``mlp.linear_fc1/2``, ``norm1/2``, merger and
    ``deepstack_merger_list``.  Ground truth = language model only."""
    inter = hidden * 3
    vh, depth, vheads, vinter, patch, tpatch, merge, npos = 32, 3, 2, 64, 16, 2, 2, 16
    deepstack = [0, 1]
    b = CheckpointBuilder(seed)
    vis = "model.visual."
    b.w(vis + "patch_embed.proj.weight", (vh, 3, tpatch, patch, patch), 0.02)
    b.w(vis + "patch_embed.proj.bias", (vh,), 0.01)
    b.w(vis + "pos_embed.weight", (npos, vh), 0.02)
    for i in range(depth):
        p = f"{vis}blocks.{i}."
        b.norm(p + "norm1.weight", vh)
        b.w(p + "norm1.bias", (vh,), 0.01)
        b.norm(p + "norm2.weight", vh)
        b.w(p + "norm2.bias", (vh,), 0.01)
        b.w(p + "attn.qkv.weight", (3 * vh, vh), 0.05 * (i + 1))
        b.w(p + "attn.qkv.bias", (3 * vh,), 0.01)
        b.w(p + "attn.proj.weight", (vh, vh), 0.05)
        b.w(p + "attn.proj.bias", (vh,), 0.01)
        b.w(p + "mlp.linear_fc1.weight", (vinter, vh), 0.02)
        b.w(p + "mlp.linear_fc1.bias", (vinter,), 0.01)
        b.w(p + "mlp.linear_fc2.weight", (vh, vinter), 0.02)
        b.w(p + "mlp.linear_fc2.bias", (vh,), 0.01)
    mh = vh * merge * merge
    for p, norm_dim in [(vis + "merger.", vh)] + [
        (f"{vis}deepstack_merger_list.{k}.", mh) for k in range(len(deepstack))
    ]:
        b.norm(p + "norm.weight", norm_dim)
        b.w(p + "norm.bias", (norm_dim,), 0.01)
        b.w(p + "linear_fc1.weight", (mh, mh), 0.02)
        b.w(p + "linear_fc1.bias", (mh,), 0.01)
        b.w(p + "linear_fc2.weight", (hidden, mh), 0.02)
        b.w(p + "linear_fc2.bias", (hidden,), 0.01)
    lm = "model.language_model."
    causal_lm(
        b,
        lm,
        vocab,
        hidden,
        lambda: llama_layers(b, lm, layers, hidden, heads, kv_heads, head_dim, inter, qk_norm=True),
        tie=False,
        lm_head="lm_head.weight",
    )
    text = {
        "model_type": "qwen3_vl_text",
        **qwen3_text_config(hidden, inter, layers, heads, kv_heads, head_dim, vocab, False),
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
        "rope_theta": 5000000,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "dtype": "bfloat16",
    }
    config = {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "tie_word_embeddings": False,
        "transformers_version": "4.57.0.dev0",
        "text_config": text,
        "vision_config": {
            "deepstack_visual_indexes": deepstack,
            "depth": depth,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": vh,
            "in_channels": 3,
            "initializer_range": 0.02,
            "intermediate_size": vinter,
            "model_type": "qwen3_vl",
            "num_heads": vheads,
            "num_position_embeddings": npos,
            "out_hidden_size": hidden,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": tpatch,
        },
    }
    return b.layout("qwen3_vl", config)
