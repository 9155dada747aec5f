"""Presets for the Models page: Hub models behind well-known claims and known relations, to try in one click."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    title: str
    models: tuple[str, ...]
    explanation: str


PRESETS: tuple[Preset, ...] = (
    Preset(
        "Pangu Pro MoE vs Qwen2.5-14B (the 2025 claim)",
        ("IntervitensInc/pangu-pro-moe-model", "Qwen/Qwen2.5-14B"),
        "The pair behind the July 2025 paper (arXiv 2507.03014), which reported r = 0.927 and called it evidence "
        "of lineage. Large downloads are avoided: the tool reads only attention tensors, sampled for big models.",
    ),
    Preset(
        "Qwen-1.8B vs Qwen1.5-MoE (an upcycle)",
        ("Qwen/Qwen-1_8B", "Qwen/Qwen1.5-MoE-A2.7B"),
        "Known lineage the 2025 paper checked its method on: Qwen's model card says Qwen1.5-MoE-A2.7B was "
        "upcycled from Qwen-1.8B. The MoE model's attention is compared with the dense one's.",
    ),
    Preset(
        "Llama-3.1-70B vs Nemotron-70B (a fine-tune)",
        ("meta-llama/Llama-3.1-70B-Instruct", "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF"),
        "Known lineage the 2025 paper checked its method on: NVIDIA's Nemotron-70B is a fine-tune of Llama-3.1-70B-"
        "Instruct. Both are large, so they are sampled; Llama is gated: accept its licence and give a token.",
    ),
    Preset(
        "Llama-2-7B vs deepseek-llm-7b (independent)",
        ("meta-llama/Llama-2-7b-hf", "deepseek-ai/deepseek-llm-7b-base"),
        "Two models trained independently by different companies with similar recipes; their σ-curves still "
        "correlate around 0.9. Llama-2 is gated: accept its licence on the Hub and give a token.",
    ),
    Preset(
        "Qwen2.5-7B base vs its Instruct fine-tune",
        ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"),
        "A base model and its own fine-tune: real shared lineage, for comparison with the cases above.",
    ),
    Preset(
        "Qwen2.5-0.5B base vs Instruct (small, quick)",
        ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct"),
        "A small base model and its fine-tune: about a gigabyte each, fingerprinted exactly in well under a minute.",
    ),
    Preset(
        "SmolLM2-135M base vs Instruct (smallest)",
        ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        "A very small base model and its fine-tune: the quickest real check of a fine-tune relation over the network.",
    ),
)
