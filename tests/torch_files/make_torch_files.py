"""Write the reference PyTorch checkpoints in this folder with torch itself (run once; the files are committed).

    python3 -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch==2.13.0 numpy ml_dtypes
    /tmp/venv-torch/bin/python tests/torch_files/make_torch_files.py

Writes, for a tiny Llama (hidden 16, 2 layers, 4 heads, 2 KV heads, vocabulary 32; tied embedding in views/):
  llama-f32/, llama-f16/, llama-bf16/  pytorch_model.bin + config.json, as transformers' save_pretrained writes them
                                       (torch.save of model.state_dict(), with its _metadata)
  llama-sharded/                       pytorch_model-0000{1,2}-of-00002.bin + pytorch_model.bin.index.json
  views/                               a tied lm_head (one storage, two names) and a transposed (non-contiguous)
                                       view of an MLP weight
  expected.npz                         every tensor's values as float32 (bf16 and f16 widen exactly)
It then checks that tests/layouts/torch_files.py writes data.pkl byte for byte as torch does and that
torch.load(weights_only=True) reads its files back to the arrays written.
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 32,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "float32",
}


def llama_state(seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h, kv, inter, vocab = 16, 8, 24, 32
    sd: OrderedDict[str, torch.Tensor] = OrderedDict()
    sd["model.embed_tokens.weight"] = torch.randn(vocab, h, generator=g)
    for i in range(2):
        p = f"model.layers.{i}."
        sd[p + "self_attn.q_proj.weight"] = torch.randn(h, h, generator=g) * 0.1
        sd[p + "self_attn.k_proj.weight"] = torch.randn(kv, h, generator=g) * 0.1
        sd[p + "self_attn.v_proj.weight"] = torch.randn(kv, h, generator=g) * 0.1
        sd[p + "self_attn.o_proj.weight"] = torch.randn(h, h, generator=g) * 0.1
        sd[p + "mlp.gate_proj.weight"] = torch.randn(inter, h, generator=g) * 0.1
        sd[p + "mlp.up_proj.weight"] = torch.randn(inter, h, generator=g) * 0.1
        sd[p + "mlp.down_proj.weight"] = torch.randn(h, inter, generator=g) * 0.1
        sd[p + "input_layernorm.weight"] = 1 + torch.randn(h, generator=g) * 0.01
        sd[p + "post_attention_layernorm.weight"] = 1 + torch.randn(h, generator=g) * 0.01
    sd["model.norm.weight"] = 1 + torch.randn(h, generator=g) * 0.01
    sd["lm_head.weight"] = torch.randn(vocab, h, generator=g)
    sd._metadata = OrderedDict({"": {"version": 1}})  # type: ignore[attr-defined]  # as module.state_dict() has
    return sd


def save_dir(folder: Path, state: OrderedDict[str, torch.Tensor], dtype: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**CONFIG, "torch_dtype": dtype}, indent=2) + "\n")
    torch.save(state, folder / "pytorch_model.bin")


def main() -> None:
    base = llama_state()
    expected = {}
    for dtype, tdtype in (("float32", torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        state = OrderedDict((k, v.to(tdtype)) for k, v in base.items())
        state._metadata = base._metadata  # type: ignore[attr-defined]
        tag = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}[dtype]
        save_dir(HERE / f"llama-{tag}", state, dtype)
        expected |= {f"{tag}/{k}": v.float().numpy() for k, v in state.items()}

    sharded = HERE / "llama-sharded"
    sharded.mkdir(exist_ok=True)
    (sharded / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    names = list(base)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves, 1):
        fname = f"pytorch_model-{i:05d}-of-00002.bin"
        torch.save({k: base[k] for k in part}, sharded / fname)
        weight_map |= dict.fromkeys(part, fname)
    total = sum(v.numel() * v.element_size() for v in base.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")
    expected |= {f"sharded/{k}": v.numpy() for k, v in base.items()}

    views = OrderedDict((k, v.clone()) for k, v in base.items())
    views["lm_head.weight"] = views["model.embed_tokens.weight"]  # tied: one storage, two names
    views["model.layers.1.mlp.down_proj.weight"] = views["model.layers.1.mlp.down_proj.weight"].t().contiguous().t()
    save_dir(HERE / "views", views, "float32")
    expected |= {f"views/{k}": v.numpy() for k, v in views.items()}
    np.savez_compressed(HERE / "expected.npz", **expected)

    check_writer(base)


def check_writer(base: OrderedDict[str, torch.Tensor]) -> None:
    spec = importlib.util.spec_from_file_location("torch_files", HERE.parent / "layouts" / "torch_files.py")
    assert spec and spec.loader
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    arrays = {k: v.numpy() for k, v in base.items()}
    mine = writer.torch_zip_bytes(arrays, archive="archive")
    buf = io.BytesIO()
    torch.save(OrderedDict(base), buf)  # a plain OrderedDict: no _metadata, as the writer writes
    ours, theirs = zipfile.ZipFile(io.BytesIO(mine)), zipfile.ZipFile(buf)
    assert ours.read("archive/data.pkl") == theirs.read("archive/data.pkl"), "data.pkl differs from torch's"
    loaded = torch.load(io.BytesIO(mine), weights_only=True)
    assert all(np.array_equal(loaded[k].numpy(), v) for k, v in arrays.items()), "torch reads other values"
    print("writer: data.pkl byte for byte as torch writes it; torch.load(weights_only=True) reads the same values")


if __name__ == "__main__":
    main()
