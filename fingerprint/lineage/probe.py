"""A probe: the sample of one model's weights that every lineage signal is computed from.

What it reads is planned in plan.py, under a budget of bytes and of requests (at most 128 MB
and 1,000 reads per model, headers and tokenizer included); how the rows are kept (in the
source's precision, decoded to float32 on use) is rowcodec.py. Small models are read whole
("exact"); larger ones are sampled and say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..checkpoint import Checkpoint
from ..errors import Cancelled, NonFiniteWeights
from ..formats.dtypes import decode_rows
from ..formats.tensor import TensorInfo
from ..roles import _GGUF_PERMUTED
from ..sources.reader import RangeRead, read_ranges
from ..stats import _dequant_scale
from . import rowcodec
from .plan import ProbeBudget, Want, as_budget, plan_probe, runs
from .tensors import locate_all
from .vocab import read_vocabulary

PROBE_VERSION = 3  # 3: rows kept in the source's precision; 128 MB / 1,000 requests; embedding windows


@dataclass
class RowSample:
    """Some rows of a 2-D matrix, in the Hugging Face row order, kept in the source's precision."""

    rows: np.ndarray  # int64 row indices, ascending
    kept: np.ndarray  # rowcodec form: (len(rows), cols) F32/F16/BF16 bits, or (len(rows), row bytes) GGML blocks
    encoding: str
    shape: tuple[int, int]

    @property
    def data(self) -> np.ndarray:
        """The rows as float32 (len(rows), cols), decoded anew on each use: keep it only while needed."""
        return rowcodec.decode(self.kept, self.encoding, self.shape[1])

    def data_of(self, index: np.ndarray) -> np.ndarray:
        """float32 of the rows at these positions of the sample (only those are decoded)."""
        return rowcodec.decode(self.kept[index], self.encoding, self.shape[1])

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.kept.nbytes


@dataclass
class Probe:
    model: str
    revision: str
    format: str
    architecture: str | None
    n_layers: int
    config: dict  # hidden, heads, kv_heads, head_dim, experts, gguf_permuted, slot_elements
    mode: str  # exact | sampled
    vectors: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # kind -> layer -> float32 vector
    matrices: dict[str, dict[int, RowSample]] = field(default_factory=dict)  # kind -> layer -> rows
    experts: dict[str, dict[tuple[int, int], RowSample]] = field(default_factory=dict)  # kind -> (layer, expert)
    tokens: list[str] = field(default_factory=list)  # texts of the embedding rows kept
    embedding_rows: RowSample | None = None  # rows = token ids, one per entry of ``tokens``
    vocab_size: int = 0
    vocab_source: str = ""
    bytes_read: int = 0
    bytes_total: int = 0
    requests: int = 0  # reads of this model, headers and tokenizer included
    reads: dict = field(
        default_factory=dict
    )  # bytes read per part: headers, vectors, matrices (by kind), embedding, experts
    vector_encodings: dict = field(default_factory=dict)  # kind -> how its vectors are kept on disk
    notes: list[str] = field(default_factory=list)
    tool_version: str = __version__
    computed_at: str = ""

    @property
    def embedding(self) -> np.ndarray | None:
        """float32 (len(tokens), hidden), decoded anew on each use."""
        return self.embedding_rows.data if self.embedding_rows is not None else None

    @property
    def memory_bytes(self) -> int:
        """Bytes of the arrays this probe holds."""
        n = sum(v.nbytes for layers in self.vectors.values() for v in layers.values())
        n += sum(r.nbytes for layers in self.matrices.values() for r in layers.values())
        n += sum(r.nbytes for items in self.experts.values() for r in items.values())
        return n + (self.embedding_rows.nbytes if self.embedding_rows is not None else 0)

    @property
    def is_moe(self) -> bool:
        return bool(self.experts)

    def meta(self) -> dict:
        keys = (
            "model",
            "revision",
            "format",
            "architecture",
            "n_layers",
            "config",
            "mode",
            "tokens",
            "vocab_size",
            "vocab_source",
            "bytes_read",
            "bytes_total",
            "requests",
            "reads",
            "vector_encodings",
            "notes",
            "tool_version",
            "computed_at",
        )
        return {k: getattr(self, k) for k in keys}

    # ---- storage: an npz without pickles: every array packed into one pool per numpy dtype, stored
    # as it is (the rows are already as compact as the source); the index and metadata as deflated JSON ----
    def save(self, path: Path) -> None:
        pools: dict[str, list[np.ndarray]] = {}
        index: dict[str, dict] = {}

        def put(key: str, arr: np.ndarray, **extra) -> None:
            arr = np.ascontiguousarray(arr)
            pool = pools.setdefault(arr.dtype.name, [])
            index[key] = {
                "pool": arr.dtype.name,
                "offset": sum(a.size for a in pool),
                "shape": list(arr.shape),
                **extra,
            }
            pool.append(arr)

        for kind, layers in self.vectors.items():
            enc = self.vector_encodings.get(kind, "F32")
            for layer, v in layers.items():
                put(f"v|{kind}|{layer}", rowcodec.encode(v, enc), encoding=enc)
        samples = [(f"m|{k}|{layer}", s) for k, layers in self.matrices.items() for layer, s in layers.items()]
        samples += [(f"e|{k}|{layer}|{e}", s) for k, items in self.experts.items() for (layer, e), s in items.items()]
        samples += [("embedding", self.embedding_rows)] if self.embedding_rows is not None else []
        for key, s in samples:
            put(key, s.kept, encoding=s.encoding, matrix=list(s.shape), runs=runs(s.rows))
        meta = json.dumps({**self.meta(), "version": PROBE_VERSION, "index": index}).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probe-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as z:
                _write_npy(z, "meta", [np.frombuffer(meta, np.uint8)], zipfile.ZIP_DEFLATED)
                for name, arrays in pools.items():
                    _write_npy(z, f"pool_{name}", arrays, zipfile.ZIP_STORED)
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Probe:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.pop("version", None) != PROBE_VERSION:
                raise ValueError("probe written by another version")
            index = meta.pop("index")
            pools = {name: z[f"pool_{name}"] for name in {e["pool"] for e in index.values()}}
        p = cls(**meta)
        for key, e in index.items():
            arr = pools[e["pool"]][e["offset"] : e["offset"] + int(np.prod(e["shape"]))].reshape(e["shape"])
            parts = key.split("|")
            if parts[0] == "v":
                p.vectors.setdefault(parts[1], {})[int(parts[2])] = rowcodec.decode(
                    arr, e["encoding"], arr.shape[-1]
                ).reshape(-1)
                continue
            rows = np.concatenate([np.arange(a, b) for a, b in e["runs"]]) if e["runs"] else np.zeros(0, np.int64)
            sample = RowSample(rows.astype(np.int64), arr, e["encoding"], tuple(e["matrix"]))
            if parts[0] == "m":
                p.matrices.setdefault(parts[1], {})[int(parts[2])] = sample
            elif parts[0] == "e":
                p.experts.setdefault(parts[1], {})[(int(parts[2]), int(parts[3]))] = sample
            else:
                p.embedding_rows = sample
        return p


def _write_npy(z: zipfile.ZipFile, name: str, arrays: list[np.ndarray], compression: int) -> None:
    """Arrays of one dtype, one after the other, as a single 1-D .npy entry (written piece by piece: no copy)."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compression
    with z.open(info, "w", force_zip64=True) as fh:
        header = {
            "descr": np.lib.format.dtype_to_descr(arrays[0].dtype),
            "fortran_order": False,
            "shape": (sum(a.size for a in arrays),),
        }
        np.lib.format.write_array_header_2_0(fh, header)
        for a in arrays:
            fh.write(memoryview(a).cast("B"))


def build_probe(
    ckpt: Checkpoint,
    model: str,
    *,
    budget: ProbeBudget | int | None = None,
    cancel: threading.Event | None = None,
) -> Probe:
    """Read a probe from an opened checkpoint (Checkpoint from compute.open_model)."""
    from ..roles import assign_roles

    budget = as_budget(budget)
    cfg = ckpt.config
    rmap = assign_roles(ckpt.tensors, cfg)  # the language model's prefix and depth, as the σ-curve sees them
    attention_names = {t.tensor.name for t in rmap.tensors}
    prefixes = {loc.prefix for loc in locate_all({n: ckpt.tensors[n] for n in attention_names})}
    located = [loc for loc in locate_all(ckpt.tensors) if loc.prefix in prefixes or loc.layer == -1]
    n_layers = rmap.n_layers
    located = [loc for loc in located if loc.layer < n_layers]
    permuted = ckpt.format == "gguf" and cfg.gguf_arch in _GGUF_PERMUTED

    vocab, vocab_source, _ = read_vocabulary(ckpt)
    if vocab is None:
        # Without a vocabulary, token ids stand in for tokens: right when both models share a
        # tokenizer; when they don't, the rows are unrelated and the alignment finds nothing.
        rows = next((loc.tensor.rows for loc in located if loc.kind == "embed"), 0)
        vocab = [f"<token id {i}>" for i in range(rows)] or None
        vocab_source = f"{vocab_source}: token ids stand in for tokens (assumes the same tokenizer)"
    scales = {}
    for loc in located:
        name = loc.tensor.name
        if loc.tensor.dtype.startswith("F8") and (
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
    data = _read_all(plan.wants, cancel)

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
            "head_dim": cfg.head_dim,
            "gguf_permuted": permuted,
            "experts": len({w.key[3] for w in plan.experts}) if plan.experts else 0,
            "slot_elements": plan.slot_elements,
        },
        mode=plan.mode,
        vocab_size=len(vocab) if vocab else 0,
        vocab_source=vocab_source,
        bytes_total=ckpt.total_bytes,
        notes=plan.notes,
        computed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for w in plan.wants:
        kept, encoding = data[id(w)]
        if w.key[0] == "v":
            probe.vectors.setdefault(w.kind, {})[w.key[2]] = kept
            probe.vector_encodings[w.kind] = encoding
        elif w.key[0] == "m":
            probe.matrices.setdefault(w.kind, {})[w.key[2]] = RowSample(w.rows, kept, encoding, w.shape)
        elif w.key[0] == "e":
            probe.experts.setdefault(w.kind, {})[(w.key[2], w.key[3])] = RowSample(w.rows, kept, encoding, w.shape)
        elif len(plan.token_ids):
            named = np.isin(w.rows, plan.token_ids)  # rows of the windows whose text names a token
            probe.embedding_rows = RowSample(plan.token_ids, kept[named], encoding, w.shape)
            probe.tokens = plan.token_texts
    probe.bytes_read = ckpt.context.bytes
    probe.requests = ckpt.context.requests
    probe.reads = {"headers_and_tokenizer": header_bytes, **plan.parts()}
    probe.revision = ckpt.revision
    if plan.mode == "sampled":
        probe.notes.append(
            f"sampled: {probe.bytes_read / 2**20:.0f} MiB read of {ckpt.total_bytes / 2**20:.0f} MiB in {probe.requests} requests"
        )
    return probe


# ---------------------------------------------------------------------------------------
# reading


@dataclass
class Job:
    """One read: file rows [first, end) of a want's tensor, landing in ``dest`` rows of its kept array."""

    want: Want
    first: int
    end: int
    dest: np.ndarray

    @property
    def offset(self) -> int:
        t = self.want.loc.tensor
        return t.offset if len(t.shape) == 1 else t.offset + self.first * t.row_bytes

    @property
    def length(self) -> int:
        t = self.want.loc.tensor
        return t.nbytes if len(t.shape) == 1 else (self.end - self.first) * t.row_bytes


@dataclass
class Landing:
    """Where finished reads go: one kept array per want, allocated once, and the FP8 scales read so far."""

    kept: dict[int, np.ndarray] = field(default_factory=dict)
    encodings: dict[int, str] = field(default_factory=dict)
    scales: dict[str, np.ndarray] = field(default_factory=dict)


def _jobs(wants: list[Want], landing: Landing) -> list[Job]:
    """The reads of a plan, one per run of consecutive file rows; allocates each want's kept array."""
    jobs: list[Job] = []
    for w in wants:
        t = w.loc.tensor
        if len(t.shape) == 1:
            enc = rowcodec.encoding_of(t.dtype, t.format)
            landing.encodings[id(w)] = enc if enc in ("F32", "F16", "BF16") else "F32"
            landing.kept[id(w)] = np.empty((1, t.shape[0]), np.float32)  # vectors are small: float32
            jobs.append(Job(w, 0, 1, np.zeros(1, np.int64)))
            continue
        enc = rowcodec.encoding_of(t.dtype, t.format, scaled=w.scale is not None)
        landing.encodings[id(w)] = enc
        width = rowcodec.stored_width(enc, t.cols, t.row_bytes)
        landing.kept[id(w)] = np.empty((len(w.rows), width), rowcodec.storage_dtype(enc))
        file_rows = w.file_row(w.rows)
        order = np.argsort(file_rows, kind="stable")
        k = 0
        for a, b in runs(file_rows[order]):
            jobs.append(Job(w, a, b, order[k : k + b - a]))
            k += b - a
    return jobs


def _store(job: Job, raw: bytes, landing: Landing) -> None:
    """Check one finished read for NaN/Inf and put its rows, in their kept form, where they belong."""
    w = job.want
    t = w.loc.tensor
    if len(t.shape) == 1:
        landing.kept[id(w)][job.dest] = decode_rows(raw, t.dtype, t.format, 1, t.shape[0])
        return
    nrows = job.end - job.first
    x = decode_rows(raw, t.dtype, t.format, nrows, t.cols)
    if w.scale is not None:
        x = _dequant_scale(x, _scale(w.scale, landing.scales), job.first, t.shape)
    if not np.isfinite(x).all():
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise NonFiniteWeights(f"NaN or Inf in {t.name} ({bad} values)")
    landing.kept[id(w)][job.dest] = rowcodec.keep(raw, x, landing.encodings[id(w)], nrows)


def _read_all(wants: list[Want], cancel: threading.Event | None) -> dict[int, tuple[np.ndarray, str]]:
    """Read every want's rows; returns id(want) -> (kept rows in HF row order, encoding); vectors as float32.

    Through the shared read engine: memory is the probe itself plus a few raw reads in flight."""
    landing = Landing()
    jobs = _jobs(wants, landing)
    workers = max((w.loc.tensor.source.max_parallel for w in wants), default=1)
    reads = (RangeRead(j.want.loc.tensor.source, j.offset, j.length, j) for j in jobs)
    for read, raw in read_ranges(reads, workers):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        _store(read.tag, raw, landing)
    out = {}
    for w in wants:
        kept = landing.kept[id(w)]
        if len(w.loc.tensor.shape) == 1:
            v = kept.reshape(-1)
            kept = v[w.file_row(np.arange(len(v)))] if w.permuted_head_dim else v  # vector in HF order
        out[id(w)] = (kept, landing.encodings[id(w)])
    return out


def _scale(s: TensorInfo, cache: dict[str, np.ndarray]) -> np.ndarray:
    """An FP8 scale tensor (read whole once: it is small)."""
    if s.name not in cache:
        raw = s.source.read(s.offset, s.nbytes)
        cache[s.name] = decode_rows(raw, s.dtype, s.format, s.rows, s.cols).reshape(s.shape)
    return cache[s.name]


def probe_key(cache_key: str, revision: str) -> str:
    return hashlib.sha256(f"{cache_key}|{revision}|{PROBE_VERSION}".encode()).hexdigest()[:32]
