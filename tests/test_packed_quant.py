"""Packed quantizations (GPTQ, AWQ, bitsandbytes 4-bit) dequantized by our code equal a reference dequantization
written from each format's spec (tests/layouts/quantize.py), and stay close to the matrix that was quantized."""

from __future__ import annotations

import numpy as np
import pytest
from layouts import quantize as ref

from fingerprint.formats.packed import (
    FP4_CODE,
    NF4_CODE,
    awq_dequantize,
    bnb4_dequantize,
    bnb_nested_absmax,
    ct_dequantize,
    ct_unpack,
    gptq_dequantize,
    unpack_bits,
)


def _matrix(out: int, n_in: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((out, n_in)) * 0.02).astype(np.float32)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_unpack_bits_reads_every_width_as_a_bit_stream(bits: int) -> None:
    values = np.random.default_rng(bits).integers(0, 2**bits, size=(64, 5))
    packed = ref.gptq_pack_rows(values, bits)
    assert np.array_equal(unpack_bits(packed, bits, axis=0), values)
    assert np.array_equal(unpack_bits(ref.gptq_pack_cols(values.T, bits), bits, axis=1), values.T)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_dequantizes_as_the_reference(bits: int, act_order: bool) -> None:
    w = _matrix(64, 128, seed=bits)
    perm = np.random.default_rng(1).permutation(128) if act_order else None
    qweight, qzeros, scales, g_idx, expected = ref.gptq_quantize(w, bits, group_size=32, perm=perm)
    got = gptq_dequantize(qweight, qzeros, scales, g_idx.astype(np.int64), bits, zero_offset=1)
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)
    err = np.abs(got - w.T).max() / np.abs(w).max()
    assert err < {2: 0.7, 3: 0.3, 4: 0.15, 8: 0.01}[bits]
    if bits == 8:
        assert np.corrcoef(got.ravel(), w.T.ravel())[0, 1] > 0.999


def test_gptq_rows_of_a_unit_run_need_only_their_groups() -> None:
    """Dequantizing input features 64..128 from their words and their groups' rows gives the same values."""
    w = _matrix(32, 128)
    qweight, qzeros, scales, g_idx, expected = ref.gptq_quantize(w, 3, group_size=32)
    part = gptq_dequantize(qweight[2 * 3 : 4 * 3], qzeros[2:4], scales[2:4], g_idx[64:128].astype(np.int64) - 2, 3)
    assert np.array_equal(part, expected[64:128])


def test_awq_dequantizes_as_the_reference_with_its_interleaved_order() -> None:
    w = _matrix(64, 128)
    qweight, qzeros, scales, expected = ref.awq_quantize(w, group_size=32)
    got = awq_dequantize(qweight, qzeros, scales, np.arange(128) // 32)
    assert np.array_equal(got, expected)
    assert np.abs(got - w.T).max() / np.abs(w).max() < 0.15
    # read in GPTQ's plain order instead, the features of each word come out shuffled
    wrong = unpack_bits(qweight, 4, axis=1)
    assert not np.array_equal(wrong, np.rint(expected / np.repeat(scales.astype(np.float32), 32, 0)))


@pytest.mark.parametrize("code", ["nf4", "fp4"])
@pytest.mark.parametrize("nested", [False, True])
def test_bnb4_dequantizes_as_the_reference(code: str, nested: bool) -> None:
    w = _matrix(32, 64 * 16)
    book = NF4_CODE if code == "nf4" else FP4_CODE
    q = ref.bnb4_quantize(w, book, blocksize=64, nested=nested)
    absmax = q["absmax"]
    assert isinstance(absmax, np.ndarray)
    if nested:
        absmax = bnb_nested_absmax(absmax, q["nested_absmax"], q["nested_quant_map"], 256, q["nested_offset"])  # type: ignore[arg-type]
    got = bnb4_dequantize(q["weight"], absmax, q["quant_map"], 64).reshape(w.shape)  # type: ignore[arg-type]
    assert np.array_equal(got, q["reference"])
    assert np.corrcoef(got.ravel(), w.ravel())[0, 1] > (0.99 if code == "nf4" else 0.97)


def test_bnb4_rows_from_the_middle_of_a_block() -> None:
    """A read starting inside a block (rows of 32 values, blocks of 64) takes that block's absmax."""
    w = _matrix(8, 32)
    q = ref.bnb4_quantize(w, NF4_CODE, blocksize=64)
    packed, absmax = q["weight"], q["absmax"]
    assert isinstance(packed, np.ndarray) and isinstance(absmax, np.ndarray)
    row3 = bnb4_dequantize(packed.reshape(-1)[3 * 16 : 4 * 16], absmax[1:2], NF4_CODE, 64, first=3 * 32)
    assert np.array_equal(row3, q["reference"][3])  # type: ignore[index]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("n_in", [128, 100])
def test_ct_unpack_reads_compressed_tensors_words_and_drops_the_padding(bits: int, n_in: int) -> None:
    """At 3 bits ten values fill a word and its top two bits stay unused; a last word is padded with zeros."""
    values = np.random.default_rng(bits).integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(6, n_in))
    words = ref.ct_pack_to_int32(values, bits)
    assert words.shape == (6, -(-n_in // (32 // bits)))
    assert np.array_equal(ct_unpack(words, bits, n_in), values)
    assert np.array_equal(ct_unpack(ref.ct_pack_to_int32(values.T, bits, 0), bits, n_in, axis=0), values.T)


@pytest.mark.parametrize(
    "bits, group_size, symmetric, act_order",
    [(4, 32, True, False), (4, 32, False, False), (4, None, True, False), (8, None, True, False), (4, 32, True, True)],
)
def test_compressed_tensors_dequantizes_as_the_reference(
    bits: int, group_size: int | None, symmetric: bool, act_order: bool
) -> None:
    w = _matrix(64, 128, seed=bits)
    perm = np.random.default_rng(2).permutation(128) if act_order else None
    q = ref.ct_quantize(w, bits, group_size, symmetric=symmetric, perm=perm)
    packed = ref.ct_pack_to_int32(q["q"], bits)
    zeros = None
    if not symmetric:
        zeros = ct_unpack(ref.ct_pack_to_int32(q["weight_zero_point"], bits, 0), bits, 64, axis=0)
        assert np.array_equal(zeros, q["weight_zero_point"])
    groups = q["weight_g_idx"] if act_order else np.arange(128) // (group_size or 128)
    got = ct_dequantize(ct_unpack(packed, bits, 128), q["weight_scale"], zeros, groups.astype(np.int64))
    assert got.dtype == np.float32
    assert np.array_equal(got, q["reference"])
    assert np.abs(got - w).max() / np.abs(w).max() < (0.01 if bits == 8 else 0.2)
