"""A probe: the sample of one model's weights that every lineage signal is computed from.

What a probe reads, under PROBE_BUDGET bytes per model (headers and tokenizer included):

- whole 1-D vectors: the norms before attention and MLP, the final norm, q/k/v biases;
- rows of Q, K, V, O, gate, up and down in every layer. Positions depend only on the
  tensor's shape and kind - not on the layer or the file format - so two models with the
  same shapes are read at the same positions even when one is pruned or a GGUF. Q and K
  are read in rotary-pair blocks (rows i and i + head_dim/2 of a head together): llama.cpp
  stores exactly those pairs next to each other, so its row permutation is undone on read;
- the embedding rows of up to EMBED_TOKENS tokens picked by a hash of their text (vocab.py);
- for MoE models, the experts' gate/up/down rows in a few layers, at the positions a dense
  MLP of the same shape is read at.

Small models are read whole ("exact"); larger ones are sampled and say so.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..checkpoint import Checkpoint
from ..errors import Cancelled, NonFiniteWeights, UnsupportedFormat
from ..formats.dtypes import decode_rows, is_float_dtype
from ..formats.tensor import TensorInfo
from ..roles import _GGUF_PERMUTED
from ..stats import GOLDEN, _dequant_scale, _water_fill
from .tensors import EXPERT_KINDS, MATRIX_KINDS, Located, locate_all
from .vocab import pick_tokens, read_vocabulary

PROBE_VERSION = 2
PROBE_BUDGET = 256_000_000  # bytes per model, everything included (issue: <= 256 MB in sampled mode)
EMBED_TOKENS = 2048  # embedding rows read: one Range request each when ids are scattered
EMBED_BUDGET = 48 << 20
EXPERT_BUDGET = 32 << 20
EXPERT_LAYERS = 4  # MoE layers whose experts are read (evenly spaced)
EXPERTS_PER_LAYER = 8
MATRIX_WEIGHT = {"q": 2.0, "k": 2.0}  # Q and K carry the permutation-robust signal: more rows


@dataclass
class RowSample:
    """Some rows of a 2-D matrix, in the Hugging Face row order."""

    rows: np.ndarray  # int64 row indices, ascending
    data: np.ndarray  # float32 (len(rows), cols)
    shape: tuple[int, int]

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.shape[0]


@dataclass
class Probe:
    model: str
    revision: str
    format: str
    architecture: str | None
    n_layers: int
    config: dict  # hidden, heads, kv_heads, head_dim, vocab, experts, gguf_permuted
    mode: str  # exact | sampled
    vectors: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # kind -> layer -> vector
    matrices: dict[str, dict[int, RowSample]] = field(default_factory=dict)  # kind -> layer -> rows
    experts: dict[str, dict[tuple[int, int], RowSample]] = field(default_factory=dict)  # kind -> (layer, expert)
    tokens: list[str] = field(default_factory=list)  # texts of the embedding rows read
    embedding: np.ndarray | None = None  # (len(tokens), hidden)
    vocab_size: int = 0
    vocab_source: str = ""
    bytes_read: int = 0
    bytes_total: int = 0
    reads: dict = field(default_factory=dict)  # bytes read per part: headers, vectors, matrices (by kind), embedding, experts
    notes: list[str] = field(default_factory=list)
    tool_version: str = __version__
    computed_at: str = ""

    @property
    def memory_bytes(self) -> int:
        """Bytes of the arrays this probe holds."""
        n = sum(v.nbytes for layers in self.vectors.values() for v in layers.values())
        n += sum(r.data.nbytes for layers in self.matrices.values() for r in layers.values())
        n += sum(r.data.nbytes for items in self.experts.values() for r in items.values())
        return n + (self.embedding.nbytes if self.embedding is not None else 0)

    @property
    def is_moe(self) -> bool:
        return bool(self.experts)

    def meta(self) -> dict:
        keys = ("model", "revision", "format", "architecture", "n_layers", "config", "mode", "tokens", "vocab_size",
                "vocab_source", "bytes_read", "bytes_total", "reads", "notes", "tool_version", "computed_at")
        return {k: getattr(self, k) for k in keys}

    # ---- storage: numpy's npz without pickles; metadata as JSON ----
    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps({**self.meta(), "version": PROBE_VERSION}))}
        for kind, layers in self.vectors.items():
            for layer, v in layers.items():
                arrays[f"v|{kind}|{layer}"] = v
        for kind, layers in self.matrices.items():
            for layer, s in layers.items():
                _put_rows(arrays, f"m|{kind}|{layer}", s)
        for kind, items in self.experts.items():
            for (layer, expert), s in items.items():
                _put_rows(arrays, f"e|{kind}|{layer}|{expert}", s)
        if self.embedding is not None:
            arrays["embedding"] = self.embedding
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probe-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Probe:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.pop("version", None) != PROBE_VERSION:
                raise ValueError("probe written by another version")
            p = cls(**meta)
            for key in z.files:
                parts = key.split("|")
                if parts[0] == "v":
                    p.vectors.setdefault(parts[1], {})[int(parts[2])] = z[key]
                elif parts[0] == "m" and parts[-1] == "rows":
                    p.matrices.setdefault(parts[1], {})[int(parts[2])] = _get_rows(z, key[: -len("|rows")])
                elif parts[0] == "e" and parts[-1] == "rows":
                    p.experts.setdefault(parts[1], {})[(int(parts[2]), int(parts[3]))] = _get_rows(z, key[: -len("|rows")])
            if "embedding" in z.files:
                p.embedding = z["embedding"]
        return p


def _put_rows(arrays: dict, key: str, s: RowSample) -> None:
    arrays[f"{key}|rows"] = s.rows
    arrays[f"{key}|data"] = s.data
    arrays[f"{key}|shape"] = np.array(s.shape, dtype=np.int64)


def _get_rows(z, key: str) -> RowSample:
    return RowSample(z[f"{key}|rows"], z[f"{key}|data"], tuple(int(v) for v in z[f"{key}|shape"]))


# ---------------------------------------------------------------------------------------
# what to read


@dataclass
class _Want:
    """Rows of one tensor to read; ``rows`` are Hugging Face row indices (None = all)."""

    loc: Located
    key: tuple  # ("m", kind, layer) | ("e", kind, layer, expert) | ("v", kind, layer) | ("embed",)
    rows: np.ndarray | None = None
    row_base: int = 0  # first row of this expert inside a stacked GGUF expert tensor
    nrows: int = 0  # rows of the matrix this want stands for (an expert's, for stacked tensors)
    permuted_head_dim: int = 0  # llama.cpp's Q/K row order: undo it
    scale: TensorInfo | None = None  # FP8 scale companion (weight_scale_inv / weight_scale)

    def file_row(self, r: np.ndarray) -> np.ndarray:
        hd = self.permuted_head_dim
        if hd:
            head, within = np.divmod(r, hd)
            j, i = np.divmod(within, hd // 2)
            r = head * hd + 2 * i + j
        return r + self.row_base


def _kind_shape(w: _Want) -> tuple[int, int]:
    t = w.loc.tensor
    return (w.nrows, t.cols) if w.nrows else (t.rows, t.cols)


SLOTS = 32  # a sampled matrix is cut into at most this many equal blocks of rows (one Range request each, at most)


def _slot_order(kind: str, shape: tuple[int, int], n_slots: int) -> np.ndarray:
    """A fixed order of a matrix's row blocks (golden-ratio sequence from a hash of kind and
    shape): a probe reads a prefix of it, so two probes of the same shape always share their
    first blocks, whatever their budgets."""
    u = int.from_bytes(hashlib.sha256(f"{kind}|{list(shape)}".encode()).digest()[:8], "little") / 2**64
    seq = np.floor(((u + np.arange(4 * n_slots) * GOLDEN) % 1.0) * n_slots).astype(np.int64)
    _, first = np.unique(seq, return_index=True)
    order = seq[np.sort(first)]
    rest = np.setdiff1d(np.arange(n_slots), order)
    return np.concatenate([order, rest])


def _geometry(kind: str, shape: tuple[int, int], head_dim: int | None) -> tuple[int, int, int]:
    """(units, rows per unit, units per slot): Q and K are cut in rotary pairs (2 rows), whose
    slots never cross a head, so llama.cpp's interleaved order reads them contiguously."""
    rows = shape[0]
    if kind in ("q", "k") and head_dim and head_dim % 2 == 0 and rows % head_dim == 0:
        half = head_dim // 2
        want = max(1, -(-(rows // 2) // SLOTS))
        per_slot = max(d for d in range(1, half + 1) if half % d == 0 and d <= max(want, 1))
        return rows // 2, 2, per_slot
    return rows, 1, max(1, -(-rows // SLOTS))


def _sample_rows(kind: str, shape: tuple[int, int], slots: int, head_dim: int | None) -> np.ndarray:
    """Row indices (ascending) of the first ``slots`` blocks of the matrix's fixed block order."""
    units, per_unit, per_slot = _geometry(kind, shape, head_dim)
    n_slots = -(-units // per_slot)
    if slots >= n_slots:
        return np.arange(shape[0])
    chosen = np.sort(_slot_order(kind, shape, n_slots)[:slots])
    idx = (chosen[:, None] * per_slot + np.arange(per_slot)[None, :]).reshape(-1)
    idx = idx[idx < units]
    if per_unit == 1:
        return idx
    half = head_dim // 2
    head, i = np.divmod(idx, half)
    return np.sort(np.concatenate([head * head_dim + i, head * head_dim + half + i]))


def build_probe(
    ckpt: Checkpoint,
    model: str,
    *,
    budget: int = PROBE_BUDGET,
    cancel: threading.Event | None = None,
) -> Probe:
    """Read a probe from an opened checkpoint (Checkpoint from compute.open_model)."""
    from ..roles import assign_roles

    cfg = ckpt.config
    rmap = assign_roles(ckpt.tensors, cfg)  # the language model's prefix and depth, as the σ-curve sees them
    attention_names = {t.tensor.name for t in rmap.tensors}
    prefixes = {loc.prefix for loc in locate_all({n: ckpt.tensors[n] for n in attention_names})}
    located = [loc for loc in locate_all(ckpt.tensors) if loc.prefix in prefixes or loc.layer == -1]
    n_layers = rmap.n_layers
    located = [loc for loc in located if loc.layer < n_layers]
    notes: list[str] = []
    head_dim = cfg.head_dim
    permuted = ckpt.format == "gguf" and cfg.gguf_arch in _GGUF_PERMUTED

    for loc in located:
        if not is_float_dtype(loc.tensor.dtype, loc.tensor.format):
            raise UnsupportedFormat(f"{loc.tensor.name} has dtype {loc.tensor.dtype}, not floating-point weights")

    def scale_of(loc: Located) -> TensorInfo | None:
        name = loc.tensor.name
        if not loc.tensor.dtype.startswith("F8"):
            return None
        return ckpt.tensors.get(name + "_scale_inv") or ckpt.tensors.get(name + "_scale")

    vocab, vocab_source, vocab_bytes = read_vocabulary(ckpt)
    if vocab is None:
        # Without a vocabulary, token ids stand in for tokens: right when both models share a
        # tokenizer; when they don't, the rows are unrelated and the alignment finds nothing.
        rows = next((loc.tensor.rows for loc in located if loc.kind == "embed"), 0)
        vocab = [f"<token id {i}>" for i in range(rows)] or None
        vocab_source = f"{vocab_source}: token ids stand in for tokens (assumes the same tokenizer)"
    used = ckpt.context.bytes

    vectors: list[_Want] = []
    matrices: list[_Want] = []
    experts: list[_Want] = []
    embed: Located | None = None
    for loc in located:
        t = loc.tensor
        if loc.kind in ("embed", "lm_head"):
            if embed is None or (loc.kind == "embed" and embed.kind == "lm_head"):
                embed = loc  # the input embedding; the output matrix only when there is none
            continue
        if len(t.shape) == 1 and loc.kind in ("attn_norm", "ffn_norm", "final_norm", "q_bias", "k_bias", "v_bias"):
            hd = head_dim if permuted and loc.kind in ("q_bias", "k_bias") else 0
            vectors.append(_Want(loc, ("v", loc.kind, max(loc.layer, 0)), permuted_head_dim=hd or 0))
        elif loc.kind in MATRIX_KINDS and len(t.shape) == 2:
            hd = head_dim if permuted and loc.kind in ("q", "k") else 0
            matrices.append(_Want(loc, ("m", loc.kind, loc.layer), permuted_head_dim=hd or 0, scale=scale_of(loc)))
        elif loc.kind in EXPERT_KINDS:
            experts += _expert_wants(loc)
        elif loc.kind == "qkv" and len(t.shape) == 2:
            split = _split_fused(loc, cfg, ckpt.format)
            if split:
                matrices += split
            elif "fused QKV" not in " ".join(notes):
                notes.append(
                    f"fused QKV projection ({cfg.qkv_layout} layout, shape {list(t.shape)}) not split into Q/K/V rows: "
                    "the Q/K signals are not available"
                )
    if permuted:
        notes.append("llama.cpp's Q/K row permutation undone on read")

    experts = _pick_experts(experts, notes)
    for w in experts:
        w.scale = scale_of(w.loc) if w.loc.expert is not None else None
    vector_bytes = sum(w.loc.tensor.nbytes for w in vectors)
    left = max(budget - used - vocab_bytes - vector_bytes, budget // 4)

    # embedding rows: the lowest-ranked tokens, as many as EMBED_BUDGET allows
    embed_want = None
    token_texts: list[str] = []
    if embed is not None and vocab:
        t = embed.tensor
        limit = min(EMBED_TOKENS, max(1, min(EMBED_BUDGET, left // 4) // max(t.row_bytes, 1)))
        ids = np.array(pick_tokens(vocab, limit, t.rows), dtype=np.int64)
        if len(ids):
            embed_want = _Want(embed, ("embed",), rows=ids, scale=scale_of(embed))
            token_texts = [vocab[i] for i in ids]
            left -= len(ids) * t.row_bytes
    if vocab_source.startswith("no "):
        notes.append(vocab_source)

    # experts, then the dense matrices share the rest
    exact_bytes = sum(_want_bytes(w) for w in matrices + experts)
    mode = "exact" if exact_bytes <= left else "sampled"
    if mode == "sampled":
        expert_budget = min(EXPERT_BUDGET, left // 4) if experts else 0
        _assign_rows(experts, expert_budget, head_dim)
        left -= sum(len(w.rows) * w.loc.tensor.row_bytes for w in experts)
        _assign_rows(matrices, left, head_dim)
    else:
        for w in matrices + experts:
            w.rows = np.arange(_kind_shape(w)[0])
    for w in vectors:
        w.rows = np.arange(w.loc.tensor.rows if len(w.loc.tensor.shape) > 1 else 1)

    wants = vectors + matrices + experts + ([embed_want] if embed_want else [])
    header_bytes = ckpt.context.bytes
    data = _read_all(wants, cancel)

    probe = Probe(
        model=model,
        revision="",
        format=ckpt.format,
        architecture=cfg.architecture,
        n_layers=n_layers,
        config={
            "hidden": cfg.hidden,
            "heads": cfg.n_heads,
            "kv_heads": cfg.n_kv_heads or cfg.n_heads,
            "head_dim": head_dim,
            "gguf_permuted": permuted,
            "experts": len({w.key[3] for w in experts}) if experts else 0,
        },
        mode=mode,
        tokens=token_texts,
        vocab_size=len(vocab) if vocab else (embed.tensor.rows if embed else 0),
        vocab_source=vocab_source,
        bytes_total=ckpt.total_bytes,
        notes=notes,
        computed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    for w in wants:
        arr = data[id(w)]
        if w.key[0] == "v":
            probe.vectors.setdefault(w.key[1], {})[w.key[2]] = arr.reshape(-1)
        elif w.key[0] == "m":
            probe.matrices.setdefault(w.key[1], {})[w.key[2]] = RowSample(w.rows, arr, _kind_shape(w))
        elif w.key[0] == "e":
            probe.experts.setdefault(w.key[1], {})[(w.key[2], w.key[3])] = RowSample(w.rows, arr, _kind_shape(w))
        else:
            probe.embedding = arr
    if probe.embedding is None and probe.tokens:
        probe.tokens = []
    probe.bytes_read = ckpt.context.bytes

    def part(ws: list[_Want]) -> int:
        return sum(w.loc.tensor.nbytes if len(w.loc.tensor.shape) == 1 else len(w.rows) * w.loc.tensor.row_bytes for w in ws)

    probe.reads = {
        "headers_and_tokenizer": header_bytes,
        "vectors": part(vectors),
        **{f"matrices_{k}": part([w for w in matrices if w.key[1] == k]) for k in MATRIX_KINDS},
        "embedding": part([embed_want]) if embed_want else 0,
        "experts": part(experts),
    }
    probe.revision = ckpt.revision
    if mode == "sampled":
        probe.notes.append(f"sampled: {probe.bytes_read / 2**20:.0f} MiB read of {ckpt.total_bytes / 2**20:.0f} MiB")
    return probe


def _split_fused(loc: Located, cfg, fmt: str) -> list[_Want]:
    """Q, K and V of a fused (out, in) projection whose rows are [Q | K | V] (Phi-3, Qwen-1, GLM, GGUF
    attn_qkv): each read as a matrix of its own through a row offset. Interleaved layouts (GPT-NeoX,
    Falcon) and GPT-2's transposed Conv1D are left fused."""
    t = loc.tensor
    nh, hd = cfg.n_heads, cfg.head_dim
    nkv = cfg.n_kv_heads or nh
    if not nh or not hd or t.shape[0] != (nh + 2 * nkv) * hd or (fmt != "gguf" and cfg.qkv_layout != "contiguous"):
        return []
    base, out = 0, []
    for kind, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
        out.append(_Want(loc, ("m", kind, loc.layer), row_base=base, nrows=rows))
        base += rows
    return out


def _expert_wants(loc: Located) -> list[_Want]:
    kind = EXPERT_KINDS[loc.kind]
    t = loc.tensor
    if loc.expert is not None:
        return [_Want(loc, ("e", kind, loc.layer, loc.expert))]
    if len(t.shape) == 3:  # GGUF stacked experts: (experts, rows, cols) in numpy order
        n_exp, rows = t.shape[0], t.shape[1]
        return [_Want(loc, ("e", kind, loc.layer, e), row_base=e * rows, nrows=rows) for e in range(n_exp)]
    return []


def _pick_experts(wants: list[_Want], notes: list[str]) -> list[_Want]:
    if not wants:
        return wants
    layers = sorted({w.key[2] for w in wants})
    experts = sorted({w.key[3] for w in wants})
    keep_layers = set(_spread(layers, EXPERT_LAYERS))
    keep_experts = set(_spread(experts, EXPERTS_PER_LAYER))
    if len(keep_layers) < len(layers) or len(keep_experts) < len(experts):
        notes.append(
            f"MoE: experts {sorted(keep_experts)} of layers {sorted(keep_layers)} read "
            f"({len(experts)} experts, {len(layers)} MoE layers in all)"
        )
    return [w for w in wants if w.key[2] in keep_layers and w.key[3] in keep_experts]


def _spread(items: list[int], k: int) -> list[int]:
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else [items[0]]


def _want_bytes(w: _Want) -> int:
    shape = _kind_shape(w)
    return shape[0] * w.loc.tensor.row_bytes


def _assign_rows(wants: list[_Want], budget: int, head_dim: int | None) -> None:
    """Whole blocks per matrix from the budget's water-filled shares; shares shrink until the
    blocks (at least one per matrix) fit the budget."""
    if not wants:
        return
    sizes = [_want_bytes(w) for w in wants]
    weights = [MATRIX_WEIGHT.get(w.key[1], 1.0) for w in wants]
    geometry = [_geometry(w.key[1], _kind_shape(w), head_dim) for w in wants]
    scale = 1.0
    for _ in range(40):
        shares = _water_fill(sizes, int(max(budget, 0) * scale), weights)
        slots = []
        for w, share, (units, per_unit, per_slot) in zip(wants, shares, geometry):
            slot_bytes = per_unit * per_slot * max(w.loc.tensor.row_bytes, 1)
            slots.append(max(1, share // slot_bytes))
        chosen = [_sample_rows(w.key[1], _kind_shape(w), k, head_dim) for w, k in zip(wants, slots)]
        total = sum(len(r) * w.loc.tensor.row_bytes for w, r in zip(wants, chosen))
        if total <= budget:
            break
        scale *= 0.9
    for w, rows in zip(wants, chosen):
        w.rows = rows


# ---------------------------------------------------------------------------------------
# reading


def _runs(file_rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted row indices -> [start, end) runs of consecutive rows."""
    if not len(file_rows):
        return []
    breaks = np.nonzero(np.diff(file_rows) != 1)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [len(file_rows)]])
    return [(int(file_rows[s]), int(file_rows[e - 1]) + 1) for s, e in zip(starts, ends)]


def _read_all(wants: list[_Want], cancel: threading.Event | None) -> dict[int, np.ndarray]:
    """Read every want's rows; returns id(want) -> float32 (rows, cols) in HF row order.

    Each want's array is allocated once and filled in place as reads complete; at most
    2 x workers reads are in flight, so memory is the probe itself plus a few raw reads."""
    scales: dict[str, np.ndarray] = {}
    out: dict[int, np.ndarray] = {}
    jobs: list[tuple[_Want, int, int, np.ndarray]] = []  # (want, first file row, end file row, destination rows)
    for w in wants:
        t = w.loc.tensor
        if len(t.shape) == 1:
            out[id(w)] = np.empty((1, t.shape[0]), np.float32)
            jobs.append((w, 0, 1, np.zeros(1, np.int64)))
            continue
        file_rows = w.file_row(w.rows)
        order = np.argsort(file_rows, kind="stable")
        out[id(w)] = np.empty((len(w.rows), t.cols), np.float32)
        k = 0
        for a, b in _runs(file_rows[order]):
            jobs.append((w, a, b, order[k : k + b - a]))
            k += b - a
    workers = max((w.loc.tensor.source.max_parallel for w in wants), default=1)

    def fetch(job):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        w, a, b, dest = job
        t = w.loc.tensor
        if len(t.shape) == 1:
            return job, t.source.read(t.offset, t.nbytes)
        return job, t.source.read(t.offset + a * t.row_bytes, (b - a) * t.row_bytes)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        todo = iter(jobs)
        pending = {pool.submit(fetch, j) for j in itertools.islice(todo, 2 * workers)}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    (w, a, b, dest), raw = fut.result()
                    t = w.loc.tensor
                    if len(t.shape) == 1:
                        x = decode_rows(raw, t.dtype, t.format, 1, t.shape[0])
                    else:
                        x = decode_rows(raw, t.dtype, t.format, b - a, t.cols)
                        scale = _scale_of(w, scales)
                        if scale is not None:
                            x = _dequant_scale(x, scale, a, t.shape)
                    if not np.isfinite(x).all():
                        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
                        raise NonFiniteWeights(f"NaN or Inf in {t.name} ({bad} values)")
                    out[id(w)][dest] = x
                    if (nxt := next(todo, None)) is not None:
                        pending.add(pool.submit(fetch, nxt))
        finally:
            for fut in pending:
                fut.cancel()
    for w in wants:
        if len(w.loc.tensor.shape) == 1:
            v = out[id(w)].reshape(-1)
            out[id(w)] = v[w.file_row(np.arange(len(v)))] if w.permuted_head_dim else v  # vector in HF order
    return out


def _scale_of(w: _Want, cache: dict[str, np.ndarray]) -> np.ndarray | None:
    """The FP8 scale tensor of a want (read whole once: it is small)."""
    s = w.scale
    if s is None:
        return None
    if s.name not in cache:
        raw = s.source.read(s.offset, s.nbytes)
        cache[s.name] = decode_rows(raw, s.dtype, s.format, s.rows, s.cols).reshape(s.shape)
    return cache[s.name]


def probe_key(cache_key: str, revision: str) -> str:
    return hashlib.sha256(f"{cache_key}|{revision}|{PROBE_VERSION}".encode()).hexdigest()[:32]

