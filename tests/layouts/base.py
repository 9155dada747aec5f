"""What every builder returns (:class:`Layout`) and how it fills one (:class:`CheckpointBuilder`): deterministic
random weights whose per-layer σ rises with depth and differs by role, and the ground truth of every attention
role."""

from __future__ import annotations

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

ST_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NP_TO_ST = {v: k for k, v in ST_DTYPES.items()}


def st_dtype_name(arr: np.ndarray) -> str:
    try:
        return _NP_TO_ST[arr.dtype]
    except KeyError:
        raise TypeError(f"no safetensors dtype for numpy dtype {arr.dtype}") from None


@dataclass
class Layout:
    name: str
    config: dict
    tensors: dict[str, np.ndarray]
    attention: dict[int, dict[str, np.ndarray]]
    # layer -> role -> name of the tensor the role's elements come from
    sources: dict[int, dict[str, str]] = field(default_factory=dict)
    # tensors whose on-disk dtype does not follow the writer's ``dtype`` argument
    # (FP8 weights and their F32 scale_inv, GPTQ I32/F16, bnb U8, BOOL masks ...)
    fixed_dtypes: dict[str, str] = field(default_factory=dict)
    # other files the real checkpoint directory holds (e.g. GPTQ quantize_config.json)
    extra_files: dict[str, dict] = field(default_factory=dict)
    notes: str = ""

    @property
    def num_layers(self) -> int:
        return len(self.attention)

    def stored_dtype(self, name: str, dtype: str = "F32") -> str:
        """The safetensors dtype ``name`` gets when written with ``dtype``."""
        if name in self.fixed_dtypes:
            return self.fixed_dtypes[name]
        arr = self.tensors[name]
        if arr.dtype == np.float32:
            return dtype
        return st_dtype_name(arr)

    def attention_as(self, dtype: str) -> dict[int, dict[str, np.ndarray]]:
        """Ground truth as read back from a file written with ``dtype`` (rounded)."""
        out: dict[int, dict[str, np.ndarray]] = {}
        for layer, roles in self.attention.items():
            out[layer] = {}
            for role, arr in roles.items():
                src = self.sources.get(layer, {}).get(role)
                st = self.stored_dtype(src, dtype) if src is not None else "F32"
                if st in ("F16", "BF16") and self.tensors[src].dtype == np.float32:
                    arr = arr.astype(np.float32).astype(ST_DTYPES[st]).astype(np.float64)
                out[layer][role] = arr
        return out


# --------------------------------------------------------------------------------------
# deterministic random weights
# --------------------------------------------------------------------------------------

_ROLE_BASE = {
    "q": 0.020,
    "k": 0.030,
    "v": 0.012,
    "o": 0.016,
    "q_a": 0.028,
    "q_b": 0.022,
    "kv_a": 0.026,
    "kv_b": 0.018,
    "q_bias": 0.05,
    "k_bias": 0.08,
    "v_bias": 0.02,
    "o_bias": 0.03,
    "mlp": 0.02,
    "embed": 0.02,
    "router": 0.01,
    "vision": 0.02,
}
# phase of the per-layer wiggle: roles with different phases get differently shaped curves
_ROLE_PHASE = {
    "q": 0,
    "k": 1,
    "v": 2,
    "o": 1,
    "q_a": 0,
    "q_b": 2,
    "kv_a": 2,
    "kv_b": 0,
    "q_bias": 1,
    "k_bias": 2,
    "v_bias": 0,
    "o_bias": 2,
}


def role_std(role: str, layer: int) -> float:
    """A per-role, per-layer std: rising with depth, with a role-dependent bump every
    third layer, so per-layer curves are neither flat nor proportional across roles."""
    base = _ROLE_BASE.get(role, 0.02)
    bump = 1.3 if (layer + _ROLE_PHASE.get(role, 0)) % 3 == 0 else 1.0
    return base * (1.0 + 0.5 * layer) * bump


class CheckpointBuilder:
    """Accumulates a state dict (in module order) and the attention ground truth."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.t: dict[str, np.ndarray] = {}
        self.gt: dict[int, dict[str, np.ndarray]] = {}
        self.src: dict[int, dict[str, str]] = {}
        self.fixed: dict[str, str] = {}

    def randn(self, shape, std) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def w(self, name, shape, std) -> np.ndarray:
        arr = self.randn(shape, std)
        self.t[name] = arr
        return arr

    def norm(self, name, n, center=1.0, noise=0.05) -> np.ndarray:
        arr = (center + self.rng.standard_normal(n) * noise).astype(np.float32)
        self.t[name] = arr
        return arr

    def put(self, name, arr, fixed: str | None = None) -> np.ndarray:
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
            arr = arr.copy(order="C")
        self.t[name] = arr
        if fixed is not None:
            self.fixed[name] = fixed
        return arr

    def role(self, layer, role, arr, src):
        self.gt.setdefault(layer, {})[role] = np.array(arr, dtype=np.float64, copy=True)
        self.src.setdefault(layer, {})[role] = src

    def layout(self, name, config, notes="", extra_files=None) -> Layout:
        return Layout(
            name=name,
            config=config,
            tensors=self.t,
            attention=self.gt,
            sources=self.src,
            fixed_dtypes=self.fixed,
            extra_files=extra_files or {},
            notes=notes,
        )


def noisy_copy(layout: Layout, rel: float, seed: int) -> Layout:
    """A light "fine-tune" of ``layout``: every float32 tensor plus Gaussian noise of ``rel`` times its own std
    (the same names, shapes and config)."""
    rng = np.random.default_rng(seed)
    tensors = {
        name: (arr + rng.standard_normal(arr.shape) * rel * float(arr.std())).astype(np.float32)
        if arr.dtype == np.float32 and arr.ndim
        else arr
        for name, arr in layout.tensors.items()
    }
    return Layout(
        name=layout.name,
        config=dict(layout.config),
        tensors=tensors,
        attention=layout.attention,
        sources=layout.sources,
        fixed_dtypes=dict(layout.fixed_dtypes),
        extra_files=dict(layout.extra_files),
        notes=f"{layout.notes} (noise {rel} x std added)".strip(),
    )
