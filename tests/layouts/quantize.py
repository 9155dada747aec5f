"""Quantizers the libraries do not offer: DeepSeek-V3's FP8 blocks, and GGUF's Q4_K (gguf-py dequantizes Q4_K but
cannot quantize it)."""

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
