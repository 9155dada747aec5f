"""What a probe reads: which rows of which tensors, under a budget of bytes *and* requests.

Every Range request counts against the Hub's rate limits as much as its bytes count against
the budget, so a plan is sized by both (``ProbeBudget``): at most ``bytes`` read per model and
at most ``requests`` reads, headers, config and tokenizer included.

- whole 1-D vectors: the norms before attention and MLP, the final norm, q/k/v biases;
- rows of Q, K, V, O, gate, up and down in every layer, in *slots* (slots.py): blocks of about
  ``slot_elements`` elements (rows per slot = slot_elements / cols, whatever the dtype, so a bf16
  model and its Q8_0 GGUF copy are cut alike). Q and K slots are rotary pairs (rows i and
  i + head_dim/2 of one head), which llama.cpp stores next to each other, so its row
  permutation is undone on read. A matrix reads a prefix of a fixed order of its slots that
  depends only on its role and shape - never on the layer, the file format, the dtype or the
  budget - so models of one shape (pruned, deeper, requantized, read with another budget)
  share positions: the smaller sample lies inside the larger one;
- a fused QKV split into Q, K and V (any layout: each part maps its rows to the file's, so it is read at the
  positions of an unfused Q, K or V of its shape); GPT-2's Conv1D weights, stored (in, out), by stored row
  (``_split_fused`` says why); MLA's q_a/kv_a in place of Q/K (roles.MLA_STAND_INS says why);
- the embedding rows of windows of consecutive token ids around hash-ranked tokens (vocab.py);
- for MoE models, the experts' gate/up/down rows in a few layers, at the positions a dense
  MLP of the same shape is read at.

Slots per matrix come from both budgets: every matrix of one role and shape gets the same
number (Q and K twice as many: their rows carry the permutation-robust signal), at least one.
Requests are counted as contiguous runs of rows in Hugging Face order, which is never fewer
than in the file (a GGUF's Q/K rotary pairs are one run there, two in HF order): a model and its
GGUF copy get the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import UnsupportedFormat
from ..formats.dtypes import is_float_dtype
from ..formats.tensor import TensorInfo
from ..modelconfig import ModelConfig
from ..result import Mode
from ..roles import MLA_STAND_INS, fused_qkv_parts, fused_qkv_words
from ..tensor_names import EXPERT_ROLES, MATRIX_ROLES, NamedTensor
from .slots import geometry, llama_cpp_rows, read_only, sample_rows
from .vocab import first_ids, pick_windows

PROBE_BYTES = 128_000_000  # per model, headers, config and tokenizer included
PROBE_REQUESTS = 1000  # per model, every read included
HEADER_REQUESTS = 50  # requests kept for headers, config, index and tokenizer: data reads get the rest
SLOT_ELEMENTS = 1 << 16  # elements per slot (rows per slot = this / cols)
EMBED_WINDOWS = 64  # windows of consecutive token ids read from the embedding
WINDOW_IDS = 32  # ids per window
EMBED_BYTES = 48 << 20
EXPERT_LAYERS = 4  # MoE layers whose experts are read (evenly spaced)
EXPERTS_PER_LAYER = 8
MATRIX_WEIGHT = {"q": 2, "k": 2, "qkv": 2}  # Q and K carry the permutation-robust signal: more slots
MLA_STAND_IN = {"q_a": "q", "kv_a": "k"}  # MLA down-projections read for Q and K: why in roles.MLA_STAND_INS
CONV1D_ROWS = (
    "GPT-2 Conv1D weights (c_attn, c_proj, c_fc) are stored (in, out): the rows read are input dimensions, each "
    "holding every output; another Conv1D model is read at the same positions"
)


@dataclass(frozen=True)
class ProbeBudget:
    bytes: int = PROBE_BYTES
    requests: int = PROBE_REQUESTS
    slot_elements: int = SLOT_ELEMENTS
    embed_windows: int = EMBED_WINDOWS
    window_ids: int = WINDOW_IDS

    @property
    def data_requests(self) -> int:
        return max(self.requests - HEADER_REQUESTS, 1)

    def key(self) -> str:
        return f"{self.bytes}/{self.requests}/{self.slot_elements}/{self.embed_windows}x{self.window_ids}"


def as_budget(budget: ProbeBudget | int | None) -> ProbeBudget:
    if budget is None:
        return ProbeBudget()
    return budget if isinstance(budget, ProbeBudget) else ProbeBudget(bytes=int(budget))


ReadKey = (
    tuple[Literal["m", "v"], str, int]  # a matrix or a vector: (kind, role, layer)
    | tuple[Literal["e"], str, int, int]  # an expert's matrix: (kind, role, layer, expert)
    | tuple[Literal["embed"]]
)


@dataclass
class RowsToRead:
    """Rows of one tensor to read; ``rows`` are Hugging Face row indices (none until the plan chooses them)."""

    named: NamedTensor
    key: ReadKey
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    row_base: int = 0  # first row of this expert (or of Q/K/V) inside a stacked or fused tensor
    nrows: int = 0  # rows of the matrix this want stands for (an expert's, for stacked tensors)
    permuted_head_dim: int = 0  # llama.cpp's Q/K row order: undo it
    scale: TensorInfo | None = None  # FP8 scale companion (weight_scale_inv / weight_scale)
    row_map: np.ndarray | None = None  # file row of each row (Q, K or V of a fused QKV, in any layout)
    columns: tuple[tuple[str, int, int], ...] = ()  # Conv1D fused QKV: (role, first column, end) of each part
    transposed: bool = False  # stored (in, out), GPT-2's Conv1D: the rows read are input dimensions

    @property
    def role(self) -> str:
        return self.key[1] if self.key[0] in ("m", "e", "v") else "embed"

    @property
    def shape(self) -> tuple[int, int]:
        t = self.named.tensor
        return (self.nrows, t.cols) if self.nrows else (t.rows, t.cols)

    @property
    def row_bytes(self) -> int:
        return self.named.tensor.row_bytes

    @property
    def nbytes(self) -> int:
        t = self.named.tensor
        return t.nbytes if len(t.shape) == 1 else len(self.rows) * t.row_bytes

    def file_row(self, r: np.ndarray) -> np.ndarray:
        if self.row_map is not None:
            mapped: np.ndarray = self.row_map[r]
            return mapped
        return llama_cpp_rows(r, self.permuted_head_dim) + self.row_base


@dataclass
class ProbePlan:
    mode: Mode
    vectors: list[RowsToRead]
    matrices: list[RowsToRead]
    experts: list[RowsToRead]
    embed: RowsToRead | None
    token_ids: np.ndarray  # embedding rows kept (ids whose text names a token), ascending
    token_texts: list[str]
    scales: list[TensorInfo]  # FP8 scale tensors, read whole
    notes: list[str] = field(default_factory=list)
    slot_elements: int = SLOT_ELEMENTS

    @property
    def wants(self) -> list[RowsToRead]:
        return self.vectors + self.matrices + self.experts + ([self.embed] if self.embed else [])

    @property
    def data_bytes(self) -> int:
        return sum(w.nbytes for w in self.wants) + sum(s.nbytes for s in self.scales)

    @property
    def data_requests(self) -> int:
        """Reads of the plan's data, counted as runs in Hugging Face row order (an upper bound)."""
        return sum(_requests(w) for w in self.wants) + len(self.scales)

    def parts(self) -> dict[str, int]:
        """Bytes per part: vectors, matrices by role, embedding, experts."""
        return {
            "vectors": sum(w.nbytes for w in self.vectors),
            **{f"matrices_{k}": sum(w.nbytes for w in self.matrices if w.role == k) for k in MATRIX_ROLES},
            **({"matrices_qkv": n} if (n := sum(w.nbytes for w in self.matrices if w.role == "qkv")) else {}),
            "embedding": self.embed.nbytes if self.embed else 0,
            "experts": sum(w.nbytes for w in self.experts),
        }


def _requests(w: RowsToRead) -> int:
    if len(w.named.tensor.shape) == 1 or len(w.rows) == 0:
        return 1
    rows = w.rows if w.row_map is None else np.sort(w.file_row(w.rows))  # a fused part: runs in the file
    return 1 + int(np.count_nonzero(np.diff(rows) != 1))  # runs of consecutive rows


def plan_probe(
    located: list[NamedTensor],
    cfg: ModelConfig,
    fmt: str,
    vocab: list[str] | None,
    budget: ProbeBudget,
    *,
    permuted: bool = False,
    spent_bytes: int = 0,
    spent_requests: int = 0,
    scales: dict[str, TensorInfo] | None = None,
) -> ProbePlan:
    """The rows to read from these tensors. ``spent_*``: bytes and requests already used (headers,
    tokenizer); ``scales``: FP8 weight name -> its scale tensor. Needs no tensor data."""
    scales = scales or {}
    head_dim = cfg.head_dim
    notes: list[str] = []
    for named in located:
        if not is_float_dtype(named.tensor.dtype, named.tensor.format):
            raise UnsupportedFormat(f"{named.tensor.name} has dtype {named.tensor.dtype}, not floating-point weights")

    vectors: list[RowsToRead] = []
    matrices: list[RowsToRead] = []
    experts: list[RowsToRead] = []
    embed: NamedTensor | None = None
    plain = {(named.role, named.layer) for named in located}
    split_words = ""
    for named in located:
        t = named.tensor
        if named.role in ("embed", "lm_head"):
            if embed is None or (named.role == "embed" and embed.role == "lm_head"):
                embed = named  # the input embedding; the output matrix only when there is none
            continue
        if len(t.shape) == 1 and named.role in ("attn_norm", "ffn_norm", "final_norm", "q_bias", "k_bias", "v_bias"):
            hd = head_dim if permuted and named.role in ("q_bias", "k_bias") else 0
            vectors.append(
                RowsToRead(
                    named, ("v", named.role, max(named.layer, 0)), rows=np.zeros(1, np.int64), permuted_head_dim=hd or 0
                )
            )
        elif named.role == "qkv_bias" and len(t.shape) == 1:
            vectors += _split_fused_bias(named, cfg, fmt)
        elif named.role in MATRIX_ROLES and len(t.shape) == 2:
            hd = head_dim if permuted and named.role in ("q", "k") else 0
            matrices.append(
                RowsToRead(
                    named,
                    ("m", named.role, named.layer),
                    permuted_head_dim=hd or 0,
                    scale=scales.get(t.name),
                    transposed=cfg.conv1d,
                )
            )
        elif named.role in MLA_STAND_IN and len(t.shape) == 2 and (MLA_STAND_IN[named.role], named.layer) not in plain:
            key: ReadKey = ("m", MLA_STAND_IN[named.role], named.layer)
            matrices.append(RowsToRead(named, key, scale=scales.get(t.name)))
            if MLA_STAND_INS not in notes:
                notes.append(MLA_STAND_INS)
        elif named.role in EXPERT_ROLES:
            experts += _expert_rows(named)
        elif named.role == "qkv" and len(t.shape) == 2:
            split, why = _split_fused(named, cfg, fmt)
            matrices += split
            if split and not split_words:
                split_words = fused_qkv_words(cfg, fmt)
                notes.append(f"fused QKV ({split_words}) split into Q, K and V rows")
            elif not split and "fused QKV" not in " ".join(notes):
                notes.append(
                    f"fused QKV projection ({cfg.qkv_layout} layout, shape {list(t.shape)}) not split into Q/K/V rows "
                    f"({why}): the Q/K signals are not available"
                )
    if cfg.conv1d and any(w.transposed for w in matrices):
        notes.append(CONV1D_ROWS)
    if permuted:
        notes.append("llama.cpp's Q/K row permutation undone on read")
    experts = _pick_experts(experts, notes)
    for w in experts:
        w.scale = scales.get(w.named.tensor.name) if w.named.expert is not None else None
    sampled = matrices + experts
    scale_tensors = list({s.name: s for w in sampled if (s := w.scale) is not None}.values())

    left_bytes = (
        budget.bytes - spent_bytes - sum(w.named.tensor.nbytes for w in vectors) - sum(s.nbytes for s in scale_tensors)
    )
    left_requests = budget.requests - max(spent_requests, HEADER_REQUESTS) - len(vectors) - len(scale_tensors)

    # exact: every matrix whole, and the embedding windows as usual
    for w in sampled:
        w.rows = read_only(np.arange(w.shape[0]))
    exact_bytes = sum(w.nbytes for w in sampled)
    floor_bytes, floor_requests = exact_bytes, sum(_requests(w) for w in sampled)
    mode: Mode = "exact"
    if exact_bytes > left_bytes or len(sampled) > left_requests:
        mode = "sampled"
        floor_bytes, floor_requests = _allocate(sampled, 0, head_dim, budget.slot_elements)

    embed_want, token_ids, token_texts = None, np.zeros(0, np.int64), []
    if embed is not None and vocab:
        t = embed.tensor
        window_bytes = budget.window_ids * max(t.row_bytes, 1)
        # what one slot per matrix leaves (an eighth at least: AWM needs some tokens)
        room = min(EMBED_BYTES, max(left_bytes - floor_bytes, left_bytes // 8)) // window_bytes
        n_windows = max(0, min(budget.embed_windows, room, left_requests - floor_requests))
        starts = pick_windows(vocab, n_windows, budget.window_ids, t.rows)
        if starts:
            ids = np.unique(np.concatenate([np.arange(s, min(s + budget.window_ids, t.rows)) for s in starts]))
            embed_want = RowsToRead(embed, ("embed",), rows=ids.astype(np.int64), scale=scales.get(t.name))
            id_of_text = first_ids(vocab, t.rows)
            first = np.zeros(t.rows, bool)
            first[list(id_of_text.values())] = True
            token_ids = ids[first[ids]]
            token_texts = [vocab[i] for i in token_ids]
            left_bytes -= embed_want.nbytes
            left_requests -= _requests(embed_want)
            if embed_want.scale is not None and embed_want.scale.name not in {s.name for s in scale_tensors}:
                scale_tensors.append(embed_want.scale)
                left_bytes -= embed_want.scale.nbytes
                left_requests -= 1

    if mode == "sampled":
        _fit(sampled, left_bytes, left_requests, head_dim, budget.slot_elements, notes)
    return ProbePlan(
        mode, vectors, matrices, experts, embed_want, token_ids, token_texts, scale_tensors, notes, budget.slot_elements
    )


def _allocate(
    wants: list[RowsToRead], t: int | dict[str, int], head_dim: int | None, slot_elements: int, take: int | None = None
) -> tuple[int, int]:
    """Give every want min(its slots, weight x t / 2), at least one (``t`` per role, or one for all);
    return (bytes, requests)."""
    for w in wants:
        step = t if isinstance(t, int) else t[w.role]
        slots = max(1, MATRIX_WEIGHT.get(w.role, 1) * step // 2)
        w.rows = sample_rows(w.role, w.shape, slots, head_dim, slot_elements, take)
    return sum(w.nbytes for w in wants), sum(_requests(w) for w in wants)


def _fit(
    wants: list[RowsToRead],
    left_bytes: int,
    left_requests: int,
    head_dim: int | None,
    slot_elements: int,
    notes: list[str],
) -> None:
    """The most slots per matrix that fit both budgets (binary search on the common step)."""
    if not wants:
        return
    take = None
    nbytes, nreq = _allocate(wants, 0, head_dim, slot_elements)
    if nbytes > left_bytes:  # not even one whole slot per matrix: read the first part of each slot
        per_slot = max(geometry(w.role, w.shape, head_dim, slot_elements).per_slot for w in wants)
        take = per_slot
        while take > 1 and nbytes > left_bytes:
            take //= 2
            nbytes, nreq = _allocate(wants, 0, head_dim, slot_elements, take)
        notes.append(f"budget too small for one whole slot per matrix: {take} unit(s) of each slot read")
    if nreq > left_requests:
        notes.append(f"one slot per matrix needs {nreq} requests, over the {max(left_requests, 0)} left for data")
    if take is None:
        hi = 2 * max(geometry(w.role, w.shape, head_dim, slot_elements).n_slots for w in wants)
        lo = 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            b, r = _allocate(wants, mid, head_dim, slot_elements)
            if b <= left_bytes and r <= left_requests:
                lo = mid
            else:
                hi = mid - 1
        # what one more common step would not fit may still fit for some roles: one more step for
        # each role in a fixed order while it fits (every matrix of a role and shape stays alike)
        steps = {w.role: lo for w in wants}
        for role in dict.fromkeys(k for k in (*MATRIX_ROLES, *steps) if k in steps):
            trial = {**steps, role: lo + 1}
            b, r = _allocate(wants, trial, head_dim, slot_elements)
            if b <= left_bytes and r <= left_requests:
                steps = trial
        _allocate(wants, steps, head_dim, slot_elements)


def _split_fused(named: NamedTensor, cfg: ModelConfig, fmt: str) -> tuple[list[RowsToRead], str]:
    """Q, K and V of a fused QKV projection, each read as a matrix of its own: ([], why) when the head counts
    do not fit its shape.

    An (out, in) weight - [Q | K | V] (Phi-3, Qwen-1, GLM, every GGUF attn_qkv), interleaved per head
    (GPT-NeoX, BLOOM) or grouped (Falcon's new decoder architecture) - gives each part a map from its rows to
    the file's rows, so Q's row r is the unfused Q's row r whatever the layout, and is sampled as a Q of that
    shape is (a fused model and its unfused copy are read at the same positions).

    GPT-2's Conv1D c_attn is stored (in, out): a row of Q is a column of the file, and a column cannot be read
    without a request per input dimension. So the rows read are the stored rows - input dimensions, each holding
    every output of Q, K and V (one read for all three) - and Q, K and V are kept in that orientation, as column
    blocks of those rows (``transposed``). Two Conv1D models are then sampled at the same input dimensions and
    compared position by position; against a model stored (out, in) (its GGUF copy: llama.cpp transposes)
    element-wise compares the elements both samples hold, and AWM takes the input dimensions as the hidden
    dimensions they are (signals.py)."""
    t = named.tensor
    if cfg.conv1d:
        which, why = fused_qkv_parts(t.cols, cfg, fmt)
        if which is None:
            return [], why
        columns = []
        for i, role in enumerate(("q", "k", "v")):
            at = np.flatnonzero(which == i)
            if at[-1] - at[0] + 1 != len(at):
                return [], "Conv1D QKV columns are not one block per Q, K and V"
            columns.append((role, int(at[0]), int(at[-1]) + 1))
        return [RowsToRead(named, ("m", "qkv", named.layer), columns=tuple(columns), transposed=True)], ""
    which, why = fused_qkv_parts(t.rows, cfg, fmt)
    if which is None:
        return [], why
    out = []
    for i, role in enumerate(("q", "k", "v")):
        rows = read_only(np.flatnonzero(which == i))
        out.append(RowsToRead(named, ("m", role, named.layer), nrows=len(rows), row_map=rows))
    return out, ""


def _split_fused_bias(named: NamedTensor, cfg: ModelConfig, fmt: str) -> list[RowsToRead]:
    """The q/k/v biases inside a fused QKV bias (read whole, then each part taken out), in the weight's layout."""
    which, _ = fused_qkv_parts(named.tensor.shape[0], cfg, fmt)
    if which is None:
        return []
    return [
        RowsToRead(
            named,
            ("v", f"{role}_bias", named.layer),
            rows=np.zeros(1, np.int64),
            row_map=read_only(np.flatnonzero(which == i)),
        )
        for i, role in enumerate(("q", "k", "v"))
    ]


def _expert_rows(named: NamedTensor) -> list[RowsToRead]:
    role = EXPERT_ROLES[named.role]
    t = named.tensor
    if named.expert is not None:
        return [RowsToRead(named, ("e", role, named.layer, named.expert))]
    if len(t.shape) == 3:  # GGUF stacked experts: (experts, rows, cols) in numpy order
        n_exp, rows = t.shape[0], t.shape[1]
        return [RowsToRead(named, ("e", role, named.layer, e), row_base=e * rows, nrows=rows) for e in range(n_exp)]
    return []


def _pick_experts(wants: list[RowsToRead], notes: list[str]) -> list[RowsToRead]:
    if not wants:
        return wants
    at = [(w, w.key[2], w.key[3]) for w in wants if w.key[0] == "e"]  # (want, layer, expert)
    layers = sorted({layer for _, layer, _ in at})
    experts = sorted({e for _, _, e in at})
    keep_layers = set(_spread(layers, EXPERT_LAYERS))
    keep_experts = set(_spread(experts, EXPERTS_PER_LAYER))
    if len(keep_layers) < len(layers) or len(keep_experts) < len(experts):
        notes.append(
            f"MoE: experts {sorted(keep_experts)} of layers {sorted(keep_layers)} read "
            f"({len(experts)} experts, {len(layers)} MoE layers in all)"
        )
    return [w for w, layer, e in at if layer in keep_layers and e in keep_experts]


def _spread(items: list[int], k: int) -> list[int]:
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else [items[0]]
