"""Quantizers the libraries do not offer: DeepSeek-V3's FP8 blocks, GGUF's Q4_K (gguf-py dequantizes Q4_K but
cannot quantize it), and reference quantizers written from each packed format's spec (AutoGPTQ's ``pack``,
AutoAWQ's ``pack``, bitsandbytes' blockwise 4-bit kernel), in numpy: a known matrix packed exactly as the format
stores it, with the reference dequantization the tests compare our code against."""

from __future__ import annotations

import ml_dtypes
import numpy as np


def fp8_block_quantize(w: np.ndarray, block: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """DeepSeek-V3 weight quantization: float8_e4m3fn values and an F32 ``scale_inv`` per
    block x block tile (partial tiles at the edges), W ~= W8 * scale_inv[i//128, j//128]."""
    rows, cols = w.shape
    nr, nc = -(-rows // block), -(-cols // block)
    scale = np.ones((nr, nc), np.float32)
    q = np.empty(w.shape, ml_dtypes.float8_e4m3fn)
    fmax = float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max)  # 448
    for bi in range(nr):
        for bj in range(nc):
            tile = w[bi * block : (bi + 1) * block, bj * block : (bj + 1) * block].astype(np.float32)
            amax = float(np.abs(tile).max())
            s = np.float32(amax / fmax) if amax > 0 else np.float32(1.0)
            scale[bi, bj] = s
            q[bi * block : (bi + 1) * block, bj * block : (bj + 1) * block] = (tile / s).astype(ml_dtypes.float8_e4m3fn)
    return q, scale


def fp8_block_dequantize(q: np.ndarray, scale_inv: np.ndarray, block: int = 128) -> np.ndarray:
    rows, cols = q.shape
    s = np.repeat(np.repeat(scale_inv.astype(np.float64), block, axis=0), block, axis=1)[:rows, :cols]
    return q.astype(np.float64) * s


def _q4k_pack(d, dmin, sc, mq, q) -> np.ndarray:
    nb = q.shape[0]
    scales = np.zeros((nb, 12), np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (mq[:, 0:4] & 63) | ((mq[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mq[:, 4:8] & 0xF) << 4)
    q = q.reshape(nb, 4, 2, 32)
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(nb, 128).astype(np.uint8)
    return np.concatenate([d.reshape(nb, 1).view(np.uint8), dmin.reshape(nb, 1).view(np.uint8), scales, qs], axis=1)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """A simple (non-optimal, no search) but format-exact Q4_K quantizer: 256-value super
    blocks of 8 sub-blocks of 32, 6-bit scales/mins, f16 d/dmin, 144 bytes per block.
    gguf-py 0.19 can dequantize Q4_K but not quantize it.  Rows must be multiples of 256."""
    x = np.asarray(x, np.float32)
    rows, n = x.shape
    if n % 256:
        raise ValueError("Q4_K needs rows that are a multiple of 256")
    blk = x.reshape(-1, 8, 32)
    mins = np.minimum(blk.min(-1), 0.0)
    maxs = np.maximum(blk.max(-1), 0.0)
    scale = (maxs - mins) / 15.0
    m = -mins
    d = (scale.max(-1) / 63.0).astype(np.float16)
    dmin = (m.max(-1) / 63.0).astype(np.float16)
    df, dmf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.ceil(scale / df), 0).clip(0, 63).astype(np.uint8)
        mq = np.where(dmf > 0, np.ceil(m / dmf), 0).clip(0, 63).astype(np.uint8)
        eff_d = (df * sc)[..., None]
        eff_m = (dmf * mq)[..., None]
        q = np.where(eff_d > 0, np.rint((blk + eff_m) / eff_d), 0).clip(0, 15).astype(np.uint8)
    return _q4k_pack(d, dmin, sc, mq, q).reshape(rows, n // 256 * 144)


AWQ_PACK_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def gptq_pack_rows(iw: np.ndarray, bits: int) -> np.ndarray:
    """AutoGPTQ's QuantLinear.pack: (in, out) ints -> (in * bits / 32, out) int32, written as its loop does
    (3-bit values cross word boundaries: 10 values, 2 bits of the 11th; 1 bit, 10 values, 1 bit; 2 bits, 10)."""
    iw = iw.astype(np.uint32)
    q = np.zeros((iw.shape[0] * bits // 32, iw.shape[1]), np.uint32)
    i = row = 0
    while row < q.shape[0]:
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                q[row] |= iw[j] << np.uint32(bits * (j - i))
            i += 32 // bits
            row += 1
        else:  # 3
            for j in range(i, i + 10):
                q[row] |= iw[j] << np.uint32(3 * (j - i))
            i += 10
            q[row] |= iw[i] << np.uint32(30)
            row += 1
            q[row] |= (iw[i] >> np.uint32(2)) & np.uint32(1)
            i += 1
            for j in range(i, i + 10):
                q[row] |= iw[j] << np.uint32(3 * (j - i) + 1)
            i += 10
            q[row] |= iw[i] << np.uint32(31)
            row += 1
            q[row] |= (iw[i] >> np.uint32(1)) & np.uint32(3)
            i += 1
            for j in range(i, i + 10):
                q[row] |= iw[j] << np.uint32(3 * (j - i) + 2)
            i += 10
            row += 1
    return q.view(np.int32)


def gptq_pack_cols(iz: np.ndarray, bits: int) -> np.ndarray:
    """AutoGPTQ's qzeros packing: the same bit pattern along the output dim (columns)."""
    return np.ascontiguousarray(gptq_pack_rows(np.ascontiguousarray(iz.T), bits).T)


def gptq_quantize(
    w: np.ndarray, bits: int, group_size: int, perm: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric min/max GPTQ-format quantization of W (out, in). ``perm``: act-order's processing order of the
    input features (groups are consecutive in that order). Returns (qweight, qzeros v1, scales f16, g_idx,
    reference dequantized W^T (in, out) float32)."""
    wt = w.T.astype(np.float32)  # (in, out)
    n_in, n_out = wt.shape
    maxq = 2**bits - 1
    order = np.arange(n_in) if perm is None else perm
    inv = np.argsort(order)
    g_idx = (inv // group_size).astype(np.int32)
    n_groups = n_in // group_size
    scales = np.zeros((n_groups, n_out), np.float16)
    zeros = np.zeros((n_groups, n_out), np.int64)
    for g in range(n_groups):
        block = wt[g_idx == g]
        lo, hi = np.minimum(block.min(0), 0), np.maximum(block.max(0), 0)
        s = np.maximum((hi - lo) / maxq, 1e-8).astype(np.float16)
        scales[g] = s
        zeros[g] = np.clip(np.rint(-lo / s.astype(np.float32)), 1, maxq)  # >= 1: v1 stores zero - 1
    s_full = scales.astype(np.float32)[g_idx]
    z_full = zeros[g_idx]
    iw = np.clip(np.rint(wt / s_full) + z_full, 0, maxq).astype(np.int64)
    ref = (iw.astype(np.float32) - z_full.astype(np.float32)) * s_full
    return gptq_pack_rows(iw, bits), gptq_pack_cols(zeros - 1, bits), scales, g_idx, ref


def awq_pack(iw: np.ndarray) -> np.ndarray:
    """AutoAWQ's WQLinear_GEMM.pack: (rows, out) 4-bit ints -> (rows, out / 8) int32, 8 features a word in
    the order [0, 2, 4, 6, 1, 3, 5, 7]."""
    iw = iw.astype(np.uint32)
    q = np.zeros((iw.shape[0], iw.shape[1] // 8), np.uint32)
    for col in range(iw.shape[1] // 8):
        for i in range(8):
            q[:, col] |= iw[:, col * 8 + AWQ_PACK_ORDER[i]] << np.uint32(i * 4)
    return q.view(np.int32)


def awq_quantize(w: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AutoAWQ's asymmetric 4-bit quantization of W (out, in) (without its activation-aware scale search, which
    changes the values but not the layout). Returns (qweight, qzeros, scales f16, reference W^T float32)."""
    wt = w.T.astype(np.float32)
    n_in, n_out = wt.shape
    g = wt.reshape(n_in // group_size, group_size, n_out)
    lo, hi = g.min(1), g.max(1)
    scales = (np.maximum(hi - lo, 1e-5) / 15).astype(np.float16)
    zeros = np.clip(np.rint(-lo / scales.astype(np.float32)), 0, 15).astype(np.int64)
    s_full = np.repeat(scales.astype(np.float32), group_size, 0)
    z_full = np.repeat(zeros, group_size, 0)
    iw = np.clip(np.rint(wt / s_full) + z_full, 0, 15).astype(np.int64)
    ref = (iw.astype(np.float32) - z_full.astype(np.float32)) * s_full
    return awq_pack(iw), awq_pack(zeros), scales, ref


DYNAMIC_MAP_SIZE = 256


def dynamic_map() -> np.ndarray:
    """A signed 8-bit code book of 256 sorted values in [-1, 1] (bitsandbytes' create_dynamic_map stands here;
    the checkpoint stores its map, so any map tests the layout)."""
    pos = np.linspace(0, 1, 128, dtype=np.float32) ** 2
    return np.concatenate([-pos[::-1], pos]).astype(np.float32)


def bnb4_quantize(
    w: np.ndarray, code: np.ndarray, blocksize: int = 64, nested: bool = False, nested_blocksize: int = 256
) -> dict[str, np.ndarray | float]:
    """bitsandbytes' quantize_4bit of W (out, in): the flattened values in blocks of ``blocksize``, each divided
    by its absmax and rounded to the nearest code, two codes a byte (the first in the high nibble). ``nested``:
    absmax minus its mean quantized blockwise to 8 bits (double quantization)."""
    flat = w.astype(np.float32).reshape(-1, blocksize)
    absmax = np.abs(flat).max(1).astype(np.float32)
    idx = np.abs((flat / absmax[:, None])[..., None] - code).argmin(-1).astype(np.uint8).reshape(-1)
    packed = ((idx[0::2] << 4) | idx[1::2]).astype(np.uint8).reshape(-1, 1)
    out: dict[str, np.ndarray | float] = {"weight": packed, "quant_map": code.astype(np.float32)}
    if nested:
        dmap = dynamic_map()
        offset = float(absmax.mean())
        n = absmax.size
        centred = np.zeros(-(-n // nested_blocksize) * nested_blocksize, np.float32)  # the last block may be partial
        centred[:n] = absmax - np.float32(offset)
        centred = centred.reshape(-1, nested_blocksize)
        nested_absmax = np.maximum(np.abs(centred).max(1), 1e-12).astype(np.float32)
        codes = np.abs((centred / nested_absmax[:, None])[..., None] - dmap).argmin(-1).astype(np.uint8).reshape(-1)[:n]
        block = np.arange(n) // nested_blocksize
        absmax = (dmap[codes] * nested_absmax[block] + np.float32(offset)).astype(np.float32)
        out.update(absmax=codes, nested_absmax=nested_absmax, nested_quant_map=dmap, nested_offset=offset)
    else:
        out["absmax"] = absmax
    ref = code.astype(np.float32)[idx] * np.repeat(absmax, blocksize)
    out["reference"] = ref.reshape(w.shape)
    return out


def ct_pack_to_int32(values: np.ndarray, bits: int, packed_dim: int = 1) -> np.ndarray:
    """compressed-tensors' pack_to_int32: signed ints shifted by 2^(bits-1) to unsigned, padded with zeros to a
    whole number of words along ``packed_dim``, ``32 // bits`` values a word, value i of a word at bit bits * i."""
    per = 32 // bits
    v = (values.astype(np.int64) + (1 << (bits - 1))).astype(np.uint32)
    v = np.moveaxis(v, packed_dim, 1)
    pad = -v.shape[1] % per
    v = np.pad(v, [(0, 0), (0, pad)])
    out = np.zeros((v.shape[0], v.shape[1] // per), np.uint32)
    for i in range(per):
        out |= v[:, i::per] << np.uint32(bits * i)
    return np.ascontiguousarray(np.moveaxis(out, 1, packed_dim)).view(np.int32)


def ct_quantize(
    w: np.ndarray,
    bits: int,
    group_size: int | None,
    symmetric: bool = True,
    perm: np.ndarray | None = None,
    scale_dtype: type = np.float16,
) -> dict[str, np.ndarray]:
    """llm-compressor's min/max quantization of W (out, in) to signed ``bits``-bit ints, as compressed-tensors
    stores it: per group of ``group_size`` input features (None: per output channel), symmetric (zero 0,
    scale = absmax / ((2^bits - 1) / 2)) or asymmetric (scale = range / (2^bits - 1), zero = q_min - round(min /
    scale)); ``perm``: act-order's processing order of the input features (groups consecutive in it, g_idx
    stored). Returns the signed ints "q", "weight_scale", "weight_zero_point" (signed, or absent when
    symmetric), "weight_g_idx" (act-order) and "reference" W = (q - zero) * scale in float32."""
    w = w.astype(np.float32)
    out_f, n_in = w.shape
    q_min, q_max = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    size = n_in if group_size is None else group_size
    order = np.arange(n_in) if perm is None else perm
    g_idx = (np.argsort(order) // size).astype(np.int32)
    n_groups = -(-n_in // size)
    scales = np.zeros((out_f, n_groups), scale_dtype)
    zeros = np.zeros((out_f, n_groups), np.int64)
    for g in range(n_groups):
        block = w[:, g_idx == g]
        lo, hi = np.minimum(block.min(1), 0), np.maximum(block.max(1), 0)
        if symmetric:
            scales[:, g] = np.maximum(np.maximum(-lo, hi) / ((q_max - q_min) / 2), 1e-8)
        else:
            scales[:, g] = np.maximum((hi - lo) / (q_max - q_min), 1e-8)
            zeros[:, g] = np.clip(q_min - np.rint(lo / scales[:, g].astype(np.float32)), q_min, q_max)
    s_full = scales.astype(np.float32)[:, g_idx]
    z_full = zeros[:, g_idx]
    q = np.clip(np.rint(w / s_full) + z_full, q_min, q_max).astype(np.int64)
    out = {"q": q, "weight_scale": scales, "reference": (q.astype(np.float32) - z_full.astype(np.float32)) * s_full}
    if not symmetric:
        out["weight_zero_point"] = zeros
    if perm is not None:
        out["weight_g_idx"] = g_idx
    return out
