"""Streaming per-layer statistics of attention tensors: which bytes to read, and the moments.

Exact mode reads every row of every needed tensor; sampled mode reads a few evenly spread
row blocks per tensor, at positions that are a pure function of (shape, role, layer), and
gives each value a jackknife standard error over its blocks. Reads are grouped into jobs of
at most JOB_BYTES, so memory is bounded by (parallel jobs x JOB_BYTES) whatever the model size.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import Cancelled, NonFiniteWeights, UnsupportedFormat
from .formats.dtypes import apply_fp8_scale, decode_rows, is_float_dtype, read_scale
from .formats.tensor import TensorInfo
from .result import Mode, ModeChoice
from .roles import RoleMap, TensorRoles
from .sources.base import ByteSource
from .sources.reader import RangeRead, read_ranges

JOB_BYTES = 8 << 20  # raw bytes per read job
MERGE_GAP = 16 << 10  # exact mode: neighbouring ranges closer than this are fetched in one request
SAMPLED_MERGE_GAP = 512  # sampled mode: a gap between sample blocks is bytes we chose not to read
SUBCHUNK_ELEMENTS = 1 << 17  # float64 temporaries of 1 MB stay in the CPU cache
SAMPLE_BLOCKS = 16  # requests per sampled tensor: more blocks = better σ, but each is a round trip to the storage host
SAMPLE_REQUESTS = 2400  # at most this many sample blocks per model (round trips; resolver calls stay one per file)
MIN_SAMPLE_BLOCKS = 4
SAMPLE_BUDGET = 30 << 20  # bytes a sampled fingerprint reads in all, headers included
EXACT_LIMIT = 1 << 30  # auto mode: exact when the needed tensors are smaller than this
# Rows of Q and K differ far more from one another than rows of V and O (RoPE frequency
# and per-head scale), so their σ needs more rows for the same precision: they get a
# larger share of the sampling budget (measured in BENCHMARKS.md).
# (4 rather than 3: on a 7B-shaped model the Q curve's r against exact rises from 0.969 to 0.972, BENCHMARKS.md)
ROLE_SAMPLE_WEIGHT = {"q": 4.0, "k": 4.0, "qkv": 4.0, "q_b": 2.0, "kv_b": 2.0}


@dataclass
class Moments:
    """Count, mean and sum of squared deviations; merged with Chan's formula (float64)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        """Moments of a float32 array: one float64 copy, then its sum and its dot with itself.

        NaN or Inf anywhere makes ``mean`` non-finite, which the caller reports.
        """
        part = x.reshape(-1).astype(np.float64)
        n = part.size
        if not n:
            return cls()
        total = float(part.sum())
        mean = total / n
        # sum of squares minus n*mean^2: exact enough in float64 for weights (|mean| << 1e6 * std)
        m2 = max(float(np.dot(part, part)) - total * mean, 0.0)
        return cls(n, mean, m2)

    def __add__(self, other: Moments) -> Moments:
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(n, mean, m2)

    def __sub__(self, other: Moments) -> Moments:
        """Inverse of +: the moments of self without the part ``other`` (for the jackknife)."""
        n = self.n - other.n
        if n <= 0:
            return Moments()
        mean = (self.mean * self.n - other.mean * other.n) / n
        delta = other.mean - mean
        m2 = self.m2 - other.m2 - delta * delta * n * other.n / self.n
        return Moments(n, mean, max(m2, 0.0))

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")

    @property
    def rms(self) -> float:
        return math.sqrt(self.m2 / self.n + self.mean**2) if self.n else float("nan")


@dataclass
class RowSpan:
    """Rows [r0, r1) of one tensor; ``block`` numbers the sample block (for the jackknife)."""

    item: TensorRoles
    r0: int
    r1: int
    block: int

    @property
    def offset(self) -> int:
        return self.item.tensor.offset + self.r0 * stored_row_bytes(self.item.tensor)

    @property
    def length(self) -> int:
        return (self.r1 - self.r0) * stored_row_bytes(self.item.tensor)


def stored_rows(t: TensorInfo) -> int:
    """Contiguous rows as stored: a packed tensor's units (formats/packed.py), else the rows of the 2-D view."""
    return t.packed.units if t.packed else t.rows


def stored_row_bytes(t: TensorInfo) -> int:
    return t.packed.unit_bytes if t.packed else t.row_bytes


@dataclass
class ReadJob:
    """One Range request: neighbouring row spans of one file, read together."""

    source: ByteSource
    offset: int
    length: int
    spans: list[RowSpan]


@dataclass
class ReadPlan:
    mode: Mode
    jobs: list[ReadJob]
    scales: dict[int, TensorInfo]  # id() of an FP8 tensor's TensorRoles -> its scale tensor, read whole first

    @property
    def tensor_bytes(self) -> int:
        return sum(j.length for j in self.jobs) + sum(s.nbytes for s in self.scales.values())


@dataclass
class LayerStat:
    std: float
    mean: float
    rms: float
    std_err: float  # standard errors: 0 in exact mode / when the whole tensor was read
    mean_err: float
    rms_err: float
    n: int


def needed_bytes(rmap: RoleMap) -> int:
    return sum(t.tensor.nbytes + (t.scale.nbytes if t.scale else 0) for t in rmap.tensors)


def choose_mode(rmap: RoleMap, mode: ModeChoice) -> Mode:
    """The mode to read in: as chosen, or for "auto" exact when the needed tensors are under EXACT_LIMIT."""
    if mode in ("exact", "sampled"):
        return mode
    return "exact" if needed_bytes(rmap) < EXACT_LIMIT else "sampled"


def _phase(shape: tuple[int, ...], role: str, layer: int, block: int) -> float:
    digest = hashlib.sha256(f"{list(shape)}|{role}|{layer}|{block}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


GOLDEN = (math.sqrt(5) - 1) / 2


def sample_blocks(
    rows: int, take_rows: int, shape: tuple[int, ...], role: str, layer: int, max_blocks: int | None = None
) -> list[tuple[int, int]]:
    """Up to SAMPLE_BLOCKS row blocks covering ``take_rows`` rows, spread over the tensor.

    Block starts follow a Kronecker (golden-ratio) sequence: evenly spread over the whole
    tensor, and - because the ratio is irrational - also over the positions inside any
    period such as an attention head, whose rows share a RoPE frequency and a scale. A
    plain stride would land every block on the same position inside a head whenever it is
    a multiple of head_dim. Deterministic in (shape, role, layer).
    """
    if take_rows >= rows:
        return [(0, rows)]
    # at least two blocks: the jackknife needs two to give a standard error (one block would claim an exact σ)
    take_rows = max(take_rows, min(2, rows))
    blocks = max(2, min(max_blocks or SAMPLE_BLOCKS, take_rows))
    sizes = [take_rows // blocks + (1 if i < take_rows % blocks else 0) for i in range(blocks)]
    if take_rows > rows // 3:  # dense sampling: one block per stratum, jittered
        stride = rows / blocks
        starts = [int(i * stride + _phase(shape, role, layer, i) * max(stride - sizes[i], 0)) for i in range(blocks)]
    else:
        u = _phase(shape, role, layer, 0)
        starts = sorted(int(((u + i * GOLDEN) % 1.0) * (rows - max(sizes))) for i in range(blocks))
    out: list[tuple[int, int]] = []
    for start, size in zip(starts, sizes):
        start = min(max(start, out[-1][1] if out else 0), rows - size)
        if out and start < out[-1][1]:  # no room left after the previous block: extend it instead
            out[-1] = (out[-1][0], min(rows, out[-1][1] + size))
            continue
        out.append((start, start + size))
    if len(out) == 1 and out[0] != (0, rows):  # the blocks ran together: split the run in two for the jackknife
        a, b = out[0]
        out = [(a, (a + b) // 2), ((a + b) // 2, b)]
    return out


def make_plan(rmap: RoleMap, mode: Mode, header_bytes: int = 0, sample_budget: int | None = None) -> ReadPlan:
    """Which bytes to read. In sampled mode the headers already read count against the budget
    (a GGUF header with its tokenizer can be several MB); at least a quarter of it is kept
    for the tensors."""
    for t in rmap.tensors:
        if not is_float_dtype(t.tensor.dtype, t.tensor.format):
            raise UnsupportedFormat(f"{t.tensor.name} has dtype {t.tensor.dtype}, not floating-point weights")
    spans: list[RowSpan] = []
    if mode == "exact":
        for t in rmap.tensors:
            spans += _whole(t)
    else:
        total = SAMPLE_BUDGET if sample_budget is None else sample_budget
        budget = max(total - header_bytes, total // 4)
        weights = [ROLE_SAMPLE_WEIGHT.get(t.role, 1.0) for t in rmap.tensors]
        budgets = water_fill([t.tensor.nbytes for t in rmap.tensors], budget, weights)
        sampled = sum(1 for t, b in zip(rmap.tensors, budgets) if b < t.tensor.nbytes)
        per_tensor = max(MIN_SAMPLE_BLOCKS, min(SAMPLE_BLOCKS, SAMPLE_REQUESTS // max(sampled, 1)))
        for t, budget in zip(rmap.tensors, budgets):
            rb, rows = max(stored_row_bytes(t.tensor), 1), stored_rows(t.tensor)
            blocks = sample_blocks(rows, max(1, budget // rb), t.tensor.shape, t.role, t.layer, per_tensor)
            if blocks == [(0, rows)]:
                spans += _whole(t)
            else:
                spans += [RowSpan(t, r0, r1, i) for i, (r0, r1) in enumerate(blocks)]
    scales = {id(t): t.scale for t in rmap.tensors if t.scale is not None}
    gap = MERGE_GAP if mode == "exact" else SAMPLED_MERGE_GAP
    return ReadPlan(mode=mode, jobs=_group(spans, gap), scales=scales)


def _whole(t: TensorRoles) -> list[RowSpan]:
    """All rows of a tensor, cut into spans that fit a job; block -1 marks 'read whole'."""
    rows, rb = stored_rows(t.tensor), max(stored_row_bytes(t.tensor), 1)
    step = max(1, JOB_BYTES // rb)
    return [RowSpan(t, r, min(rows, r + step), -1) for r in range(0, rows, step)]


def water_fill(sizes: list[int], budget: int, weights: list[float] | None = None) -> list[int]:
    """Share the budget in proportion to weights: tensors smaller than their share are read
    whole, and what they leave is shared again among the rest."""
    weights = weights or [1.0] * len(sizes)
    out = [0] * len(sizes)
    order = sorted(range(len(sizes)), key=lambda i: sizes[i] / weights[i])
    left, weight_left = budget, sum(weights)
    for i in order:
        share = int(left * weights[i] / weight_left) if weight_left > 0 else 0
        out[i] = min(sizes[i], share)
        left -= out[i]
        weight_left -= weights[i]
    return out


def _group(spans: list[RowSpan], merge_gap: int) -> list[ReadJob]:
    """Merge spans that are neighbours in one file into jobs of at most JOB_BYTES."""
    by_source: dict[int, list[RowSpan]] = defaultdict(list)
    sources: dict[int, ByteSource] = {}
    for p in spans:
        by_source[id(p.item.tensor.source)].append(p)
        sources[id(p.item.tensor.source)] = p.item.tensor.source
    jobs: list[ReadJob] = []
    for key, group in by_source.items():
        group.sort(key=lambda p: p.offset)
        job: ReadJob | None = None
        for p in group:
            if p.length == 0:
                continue
            if job is not None:
                gap = p.offset - (job.offset + job.length)
                # a gap is bytes read for nothing: merge only when it costs under 1% of what the job needs
                useful = sum(q.length for q in job.spans) + p.length
                if 0 <= gap <= min(merge_gap, useful // 100) and p.offset + p.length - job.offset <= JOB_BYTES:
                    job.length = p.offset + p.length - job.offset
                    job.spans.append(p)
                    continue
            job = ReadJob(sources[key], p.offset, p.length, [p])
            jobs.append(job)
    return jobs


ProgressFn = Callable[[int, int], None]


def compute_stats(
    rmap: RoleMap,
    plan: ReadPlan,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    parallel: int | None = None,
) -> dict[str, dict[int, LayerStat]]:
    """Run the plan; return {role: {layer: LayerStat}}. Raises NonFiniteWeights on NaN/Inf."""
    scales = {key: read_scale(s) for key, s in plan.scales.items()}
    results: list[tuple[RowSpan, str, Moments]] = []
    bad: list[str] = []
    total = plan.tensor_bytes
    done = sum(s.nbytes for s in plan.scales.values())
    if progress:
        progress(done, total)
    workers = parallel or max((j.source.max_parallel for j in plan.jobs), default=1)
    reads = (RangeRead(j.source, j.offset, j.length, j) for j in plan.jobs)
    for read, raw in read_ranges(reads, workers):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        job = read.tag
        for p in job.spans:
            start = p.offset - job.offset
            per_role = span_moments(p, raw[start : start + p.length], scales.get(id(p.item)))
            for role, (m, nonfinite) in per_role.items():
                results.append((p, role, m))
                if nonfinite:
                    bad.append(f"{p.item.tensor.name} ({nonfinite} values)")
        del raw
        done += job.length
        if progress:
            progress(done, total)
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteWeights(f"NaN or Inf in {shown}")
    # merge in a fixed order, so a result is bit-for-bit the same whatever order jobs finished in
    results.sort(key=lambda r: (r[0].item.layer, r[1], r[0].item.tensor.name, r[0].r0))
    acc: dict[tuple[int, str, int], Moments] = defaultdict(Moments)
    for p, role, m in results:
        acc[(p.item.layer, role, p.block)] = acc[(p.item.layer, role, p.block)] + m
    return _finish(acc)


def span_moments(p: RowSpan, raw: bytes, scale: np.ndarray | None) -> dict[str, tuple[Moments, int]]:
    """The moments of one span's raw bytes, per role its tensor holds (a fused QKV holds several):
    {role: (moments of the finite values, count of NaN/Inf values)}. ``scale``: its FP8 scales, if any."""
    t = p.item.tensor
    nrows = p.r1 - p.r0
    out: dict[str, tuple[Moments, int]] = {}
    rb = stored_row_bytes(t)
    # decode in row groups so float temporaries stay small even for an 8 MB span
    step = max(1, SUBCHUNK_ELEMENTS // max(t.packed.unit_elements if t.packed else t.cols, 1))
    packed = t.packed.for_units(p.r0, p.r1) if t.packed and nrows > step else t.packed
    for g0 in range(0, nrows, step):
        g1 = min(nrows, g0 + step)
        if packed:  # a sample of units is a fair sample of the weights (see formats/packed.py)
            x = packed.decode_units(raw[g0 * rb : g1 * rb], p.r0 + g0, p.r0 + g1)
        else:
            x = decode_rows(raw[g0 * rb : g1 * rb], t.dtype, t.format, g1 - g0, t.cols)
        if scale is not None:
            x = apply_fp8_scale(x, scale, p.r0 + g0, t.shape)
        for s in p.item.slices:
            sel = x
            if s.mask is not None and t.packed is not None and t.packed.transposed:
                sel = x[:, s.mask]  # GPTQ/AWQ units hold W's rows as columns
            elif s.mask is not None:
                sel = x[s.mask[p.r0 + g0 : p.r0 + g1]] if s.axis == 0 else x[:, s.mask]
            if not sel.size:
                continue
            m = Moments.of(sel)
            nonfinite = 0
            if not (math.isfinite(m.mean) and math.isfinite(m.m2)):
                nonfinite = max(1, int(sel.size - np.count_nonzero(np.isfinite(sel))))
                m = Moments()
            prev_m, prev_bad = out.get(s.role, (Moments(), 0))
            out[s.role] = (prev_m + m, prev_bad + nonfinite)
    return out


def _finish(acc: dict[tuple[int, str, int], Moments]) -> dict[str, dict[int, LayerStat]]:
    grouped: dict[tuple[int, str], dict[int, Moments]] = defaultdict(dict)
    for (layer, role, block), m in acc.items():
        grouped[(layer, role)][block] = m
    out: dict[str, dict[int, LayerStat]] = defaultdict(dict)
    for (layer, role), blocks in grouped.items():
        total = Moments()
        for m in blocks.values():
            total = total + m
        sampled = [m for b, m in blocks.items() if b >= 0]
        std_err, mean_err, rms_err = (jackknife(total, sampled, f) if len(sampled) > 1 else 0.0 for f in _STATISTICS)
        out[role][layer] = LayerStat(total.std, total.mean, total.rms, std_err, mean_err, rms_err, total.n)
    return dict(out)


_STATISTICS = (lambda m: m.std, lambda m: m.mean, lambda m: m.rms)


def jackknife(total: Moments, blocks: list[Moments], statistic: Callable[[Moments], float]) -> float:
    """Delete-one-block jackknife standard error of a statistic of the sampled elements."""
    k = len(blocks)
    loo = np.array([statistic(total - b) for b in blocks])
    return float(math.sqrt((k - 1) / k * np.sum((loo - loo.mean()) ** 2)))
