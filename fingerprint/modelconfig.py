"""What a fingerprint needs from a model's config: architecture, depth, head counts, QKV layout.

Read from config.json (HF) or GGUF metadata; key names differ between architectures, so
each value is looked up under its known aliases. Nested text configs (VLMs) are searched too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_ALIASES = {
    "n_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "n_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "n_kv_heads": ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num", "kv_n_heads"),
    "hidden": ("hidden_size", "n_embd", "d_model", "dim"),
    "head_dim": ("head_dim",),
}


# transformers models whose linear layers are Conv1D (GPT-2's c_attn, c_proj, c_fc: weights stored (in, out))
CONV1D_MODEL_TYPES = frozenset(("gpt2", "openai-gpt", "imagegpt", "decision_transformer"))
CONV1D_ARCHITECTURES = ("GPT2", "OpenAIGPT", "ImageGPT", "DecisionTransformer")  # their class names' prefixes


@dataclass
class ModelConfig:
    architecture: str | None = None  # e.g. "LlamaForCausalLM", or the GGUF general.architecture
    model_type: str | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    hidden: int | None = None
    explicit_head_dim: int | None = None
    qkv_layout: str = "contiguous"  # contiguous | interleaved | grouped
    quant_method: str | None = None
    gguf_arch: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def conv1d(self) -> bool:
        """Linear weights stored (in, out), transposed from nn.Linear's (out, in): GPT-2's Conv1D. llama.cpp
        transposes them when it converts, so a GGUF never is."""
        return self.gguf_arch is None and self.model_type in CONV1D_MODEL_TYPES

    @property
    def head_dim(self) -> int | None:
        if self.explicit_head_dim:
            return self.explicit_head_dim
        if self.hidden and self.n_heads and self.hidden % self.n_heads == 0:
            return self.hidden // self.n_heads
        return None

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> ModelConfig:
        text = cfg
        for key in ("text_config", "language_config", "llm_config"):
            if isinstance(cfg.get(key), dict):
                text = {**cfg[key]}
                break

        def get(name: str) -> Any:
            for src in (text, cfg):
                for alias in _ALIASES[name]:
                    v = src.get(alias)
                    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                        return v
            return None

        archs = cfg.get("architectures") or []
        archs = [archs] if isinstance(archs, str) else archs if isinstance(archs, list) else []
        model_type = text.get("model_type") or cfg.get("model_type")
        c = cls(
            architecture=archs[0] if archs and isinstance(archs[0], str) else model_type,
            model_type=model_type,
            n_layers=get("n_layers"),
            n_heads=get("n_heads"),
            n_kv_heads=get("n_kv_heads"),
            hidden=get("hidden"),
            explicit_head_dim=get("head_dim"),
            raw=cfg,
        )
        if model_type == "falcon" and cfg.get("multi_query") and not cfg.get("new_decoder_architecture"):
            c.n_kv_heads = 1
        c.qkv_layout = _qkv_layout(model_type, cfg)
        q = cfg.get("quantization_config")
        if isinstance(q, dict):
            c.quant_method = q.get("quant_method")
        return c

    @classmethod
    def from_gguf(cls, meta: dict[str, Any]) -> ModelConfig:
        arch = meta.get("general.architecture")
        arch = arch if isinstance(arch, str) else None

        def get(key: str) -> int | None:
            v = meta.get(f"{arch}.{key}")
            return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None

        n_heads = get("attention.head_count")
        key_len = get("attention.key_length")
        emb = get("embedding_length")
        explicit = key_len if key_len and not (emb and n_heads and key_len == emb // n_heads) else None
        return cls(
            architecture=arch,
            model_type=arch,
            n_layers=get("block_count"),
            n_heads=n_heads,
            n_kv_heads=get("attention.head_count_kv"),
            hidden=emb,
            explicit_head_dim=explicit,
            qkv_layout="contiguous",
            gguf_arch=arch,
            raw={k: v for k, v in meta.items() if not isinstance(v, (list, bytes))},
        )


def _qkv_layout(model_type: str | None, cfg: dict[str, Any]) -> str:
    if model_type in ("gpt_neox", "bloom", "persimmon", "stablelm_epoch"):
        return "interleaved"
    if model_type == "falcon":
        if cfg.get("new_decoder_architecture"):
            return "grouped"
        if cfg.get("multi_query", True):
            return "contiguous"
        return "interleaved"
    return "contiguous"
