"""Read a probe: plan its rows (plan.py), read them through the shared read engine, keep them in the
source's precision (rowcodec.py). Memory is the probe itself plus a few raw reads in flight."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from ..checkpoint import Checkpoint
from ..errors import Cancelled, NonFiniteWeights
from ..formats.dtypes import apply_fp8_scale, decode_rows, read_scale
from ..formats.gguf import QK_PERMUTED_ARCHS
from ..formats.tensor import TensorInfo
from ..roles import assign_roles
from ..sources.reader import RangeRead, read_ranges
from ..tensor_names import PROBE_ROLES, NamedTensor, name_tensors
from . import rowcodec
from .packed_rows import limit_whole_reads, other_bytes, read_packed_rows
from .plan import ProbeBudget, RowsToRead, as_budget, plan_probe
from .probe import Probe, RowSample
from .slots import runs
from .vocab import NUMBERED_TOKENS, read_vocabulary


def build_probe(
    ckpt: Checkpoint,
    model: str,
    *,
    budget: ProbeBudget | int | None = None,
    cancel: threading.Event | None = None,
) -> Probe:
    """Read a probe from an opened checkpoint (from ``fingerprinting.open_model``)."""
    budget = as_budget(budget)
    cfg = ckpt.config
    rmap = assign_roles(ckpt.tensors, cfg)  # the language model's prefix and depth, as the σ-curve sees them
    attention_names = {t.tensor.name for t in rmap.tensors}
    prefixes = {named.prefix for named in probe_tensors({n: ckpt.tensors[n] for n in attention_names})}
    located = [named for named in probe_tensors(ckpt.tensors) if named.prefix in prefixes or named.layer == -1]
    n_layers = rmap.n_layers
    located = [named for named in located if named.layer < n_layers]
    permuted = ckpt.format == "gguf" and cfg.gguf_arch in QK_PERMUTED_ARCHS

    vocab, vocab_source, _ = read_vocabulary(ckpt)
    if vocab is None:
        # Without a vocabulary, token ids stand in for tokens: right when both models share a
        # tokenizer; when they don't, the rows are unrelated and the alignment finds nothing.
        rows = next((named.tensor.rows for named in located if named.role == "embed"), 0)
        vocab = [f"<token id {i}>" for i in range(rows)] or None
        vocab_source = f"{vocab_source}: {NUMBERED_TOKENS}"
    scales = {}
    for named in located:
        name = named.tensor.name
        if named.tensor.dtype.startswith("F8") and (
            s := ckpt.tensors.get(name + "_scale_inv") or ckpt.tensors.get(name + "_scale")
        ):
            scales[name] = s
    header_bytes, header_requests = ckpt.context.bytes, ckpt.context.requests
    plan = plan_probe(
        located,
        cfg,
        ckpt.format,
        vocab,
        budget,
        permuted=permuted,
        spent_bytes=header_bytes,
        spent_requests=header_requests,
        scales=scales,
    )
    if vocab_source.startswith("no "):
        plan.notes.append(vocab_source)
    limit_whole_reads(plan, budget.bytes - header_bytes - other_bytes(plan))
    data = _read_all(plan.wants, cancel)

    vectors: dict[str, dict[int, np.ndarray]] = {}
    vector_encodings: dict[str, str] = {}
    matrices: dict[str, dict[int, RowSample]] = {}
    experts: dict[str, dict[tuple[int, int], RowSample]] = {}
    embedding_rows, tokens = None, []
    for w in plan.wants:
        kept, encoding = data[id(w)]
        if w.key[0] == "v":
            vectors.setdefault(w.role, {})[w.key[2]] = kept
            vector_encodings[w.role] = encoding
        elif w.key[0] == "m" and w.columns:  # Conv1D fused QKV: the stored rows hold Q, K and V side by side
            for role, first, end in w.columns:
                part = np.ascontiguousarray(kept[:, first:end])
                shape = (w.shape[0], end - first)
                matrices.setdefault(role, {})[w.key[2]] = RowSample(w.rows, part, encoding, shape, transposed=True)
        elif w.key[0] == "m":
            sample = RowSample(w.rows, kept, encoding, w.shape, transposed=w.transposed)
            matrices.setdefault(w.role, {})[w.key[2]] = sample
        elif w.key[0] == "e":
            experts.setdefault(w.role, {})[(w.key[2], w.key[3])] = RowSample(w.rows, kept, encoding, w.shape)
        elif len(plan.token_ids):
            in_vocab = np.isin(w.rows, plan.token_ids)  # rows of the windows whose text names a token
            embedding_rows = RowSample(plan.token_ids, kept[in_vocab], encoding, w.shape)
            tokens = plan.token_texts
    bytes_read, requests = ckpt.context.bytes, ckpt.context.requests
    notes = list(plan.notes)
    if plan.mode == "sampled":
        notes.append(
            f"sampled: {bytes_read / 2**20:.0f} MiB read of {ckpt.total_bytes / 2**20:.0f} MiB in {requests} requests"
        )
    return Probe(
        model=model,
        revision=ckpt.revision,  # a local file's hash, computed alongside the reads, is waited for here
        format=ckpt.format,
        architecture=cfg.architecture,
        n_layers=n_layers,
        config={
            "hidden": cfg.hidden,
            "heads": cfg.n_heads,
            "kv_heads": cfg.n_kv_heads or cfg.n_heads,
            "head_dim": cfg.head_dim,
            "gguf_permuted": permuted,
            "experts": len({w.key[3] for w in plan.experts if w.key[0] == "e"}),
            "slot_elements": plan.slot_elements,
            "packed": next((p.scheme.method for t in ckpt.tensors.values() if (p := t.packed)), None),
        },
        mode=plan.mode,
        vectors=vectors,
        matrices=matrices,
        experts=experts,
        tokens=tokens,
        embedding_rows=embedding_rows,
        vocab_size=len(vocab) if vocab else 0,
        vocab_source=vocab_source,
        bytes_read=bytes_read,
        bytes_total=ckpt.total_bytes,
        requests=requests,
        reads={"headers_and_tokenizer": header_bytes, **plan.parts()},
        vector_encodings=vector_encodings,
        notes=notes,
        computed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# ---------------------------------------------------------------------------------------
# reading


@dataclass
class RowRead:
    """One read: file rows [first, end) of a want's tensor, landing in ``dest`` rows of its kept array."""

    want: RowsToRead
    first: int
    end: int
    dest: np.ndarray

    @property
    def offset(self) -> int:
        t = self.want.named.tensor
        return t.offset if len(t.shape) == 1 else t.offset + self.first * t.row_bytes

    @property
    def length(self) -> int:
        t = self.want.named.tensor
        return t.nbytes if len(t.shape) == 1 else (self.end - self.first) * t.row_bytes


@dataclass
class Landing:
    """Where finished reads go: one kept array per want, allocated once, and the FP8 scales read so far."""

    kept: dict[int, np.ndarray] = field(default_factory=dict)
    encodings: dict[int, str] = field(default_factory=dict)
    scales: dict[str, np.ndarray] = field(default_factory=dict)


def _jobs(wants: list[RowsToRead], landing: Landing) -> list[RowRead]:
    """The reads of a plan, one per run of consecutive file rows; allocates each want's kept array."""
    jobs: list[RowRead] = []
    for w in wants:
        t = w.named.tensor
        if len(t.shape) == 1:
            enc = rowcodec.encoding_of(t.dtype, t.format)
            landing.encodings[id(w)] = enc if enc in ("F32", "F16", "BF16") else "F32"
            landing.kept[id(w)] = np.empty((1, t.shape[0]), np.float32)  # vectors are small: float32
            jobs.append(RowRead(w, 0, 1, np.zeros(1, np.int64)))
            continue
        enc = rowcodec.encoding_of(t.dtype, t.format, scaled=w.scale is not None)
        landing.encodings[id(w)] = enc
        width = rowcodec.stored_width(enc, t.cols, t.row_bytes)
        landing.kept[id(w)] = np.empty((len(w.rows), width), rowcodec.storage_dtype(enc))
        file_rows = w.file_row(w.rows)
        order = np.argsort(file_rows, kind="stable")
        k = 0
        for a, b in runs(file_rows[order]):
            jobs.append(RowRead(w, a, b, order[k : k + b - a]))
            k += b - a
    return jobs


def _store(job: RowRead, raw: bytes, landing: Landing) -> None:
    """Check one finished read for NaN/Inf and put its rows, in their kept form, where they belong."""
    w = job.want
    t = w.named.tensor
    if len(t.shape) == 1:
        landing.kept[id(w)][job.dest] = decode_rows(raw, t.dtype, t.format, 1, t.shape[0])
        return
    nrows = job.end - job.first
    x = decode_rows(raw, t.dtype, t.format, nrows, t.cols)
    if w.scale is not None:
        x = apply_fp8_scale(x, _scale(w.scale, landing.scales), job.first, t.shape)
    if not np.isfinite(x).all():
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise NonFiniteWeights(f"NaN or Inf in {t.name} ({bad} values)")
    landing.kept[id(w)][job.dest] = rowcodec.keep(raw, x, landing.encodings[id(w)], nrows)


def _read_all(wants: list[RowsToRead], cancel: threading.Event | None) -> dict[int, tuple[np.ndarray, str]]:
    """Read every want's rows; returns id(want) -> (kept rows in HF row order, encoding); vectors as float32.

    Through the shared read engine: memory is the probe itself plus a few raw reads in flight."""
    landing = Landing()
    packed = [w for w in wants if w.named.tensor.packed is not None]
    wants = [w for w in wants if w.named.tensor.packed is None]
    jobs = _jobs(wants, landing)
    workers = max((w.named.tensor.source.max_parallel for w in wants), default=1)
    reads = (RangeRead(j.want.named.tensor.source, j.offset, j.length, j) for j in jobs)
    for read, raw in read_ranges(reads, workers):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        _store(read.tag, raw, landing)
    out = {}
    for w in wants:
        kept = landing.kept[id(w)]
        if len(w.named.tensor.shape) == 1:
            v = kept.reshape(-1)
            if w.row_map is not None:  # a q/k/v bias inside a fused QKV bias
                v = v[w.row_map]
            kept = v[w.file_row(np.arange(len(v)))] if w.permuted_head_dim else v  # vector in HF order
        out[id(w)] = (kept, landing.encodings[id(w)])
    for w in packed:  # one at a time: memory is one packed tensor's chunk and its kept rows
        out[id(w)] = (read_packed_rows(w, cancel), "F32")
    return out


def _scale(s: TensorInfo, cache: dict[str, np.ndarray]) -> np.ndarray:
    """An FP8 scale tensor, read once per probe."""
    if s.name not in cache:
        cache[s.name] = read_scale(s)
    return cache[s.name]


def probe_tensors(tensors: dict[str, TensorInfo]) -> list[NamedTensor]:
    """The tensors a probe can read from (of q/k/v/o/gate/up/down, only the q/k/v biases, fused or not)."""
    return [t for t in name_tensors(tensors, PROBE_ROLES) if t.role in PROBE_ROLES or t.role == "qkv_bias"]
