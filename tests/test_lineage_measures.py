"""The numerical measures behind lineage signals, checked against direct formulas and planted answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fingerprint.lineage.measures import (
    DepthAlignment,
    HiddenAlignment,
    NeuronMatch,
    align_hidden,
    centred_pearson,
    match_neurons,
    monotone_alignment,
    null_level_abs_corr,
    unbiased_cka,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))  # Haar-distributed


# ---------------------------------------------------------------------------- centred_pearson


def test_pearson_matches_numpy_and_is_offset_scale_invariant():
    g = rng(1)
    a = g.standard_normal(50)
    b = 0.6 * a + g.standard_normal(50)
    r = centred_pearson(a, b)
    assert r == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert centred_pearson(3.0 * a + 7.0, 0.01 * b - 2.0) == pytest.approx(r, abs=1e-12)
    assert centred_pearson(a, -b) == pytest.approx(-r, abs=1e-12)
    assert centred_pearson(a, a) == pytest.approx(1.0)


def test_pearson_is_not_cosine_on_positive_norm_weights():
    g = rng(2)
    a = 1.0 + 0.05 * g.standard_normal(512)  # norm weights of two unrelated models
    b = 1.0 + 0.05 * g.standard_normal(512)
    cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cosine > 0.99
    assert abs(centred_pearson(a, b)) < 0.15


@pytest.mark.parametrize(
    "a, b",
    [
        ([1.0, 2.0], [2.0, 1.0]),  # too short
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]),  # lengths differ
        ([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]),  # constant
        ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]),  # all zero
        ([1.0, 1.0 + 1e-14, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]),  # constant to rounding
        ([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, np.inf, 4.0]),
        (np.ones((3, 3)), np.ones((3, 3))),  # not 1-D
    ],
)
def test_pearson_none_when_meaningless(a, b):
    assert centred_pearson(a, b) is None


# ---------------------------------------------------------------------------- unbiased_cka


def direct_hsic_u(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC with explicit n x n Gram matrices."""
    n = k.shape[0]
    k = k - np.diag(np.diag(k))
    l = l - np.diag(np.diag(l))
    one = np.ones(n)
    return (
        np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (one @ k @ l @ one)
    ) / (n * (n - 3))


def direct_cka(x: np.ndarray, y: np.ndarray) -> float:
    k, l = x @ x.T, y @ y.T
    return direct_hsic_u(k, l) / np.sqrt(direct_hsic_u(k, k) * direct_hsic_u(l, l))


@pytest.mark.parametrize("n, p, q, shared", [(4, 3, 2, 0.0), (40, 7, 11, 0.5), (120, 30, 20, 1.0), (60, 80, 5, 0.3)])
def test_cka_matches_direct_gram_implementation(n, p, q, shared):
    g = rng(n + p + q)
    z = g.standard_normal((n, 4))
    x = shared * z @ g.standard_normal((4, p)) + g.standard_normal((n, p)) + 0.3  # offsets: no centring needed
    y = shared * z @ g.standard_normal((4, q)) + g.standard_normal((n, q)) - 1.0
    assert unbiased_cka(x, y) == pytest.approx(direct_cka(x, y), abs=1e-10)


def test_cka_near_zero_for_independent_representations():
    g = rng(3)
    values = [unbiased_cka(g.standard_normal((512, 64)), g.standard_normal((512, 48))) for _ in range(3)]
    assert all(abs(v) < 0.05 for v in values), values
    # the biased estimator would sit near p/n here; check the unbiased one is not merely small by luck
    assert max(abs(v) for v in values) < 0.02


def test_cka_invariances_and_self_similarity():
    g = rng(4)
    n = 300
    z = g.standard_normal((n, 5))
    x = z @ g.standard_normal((5, 40)) + 0.5 * g.standard_normal((n, 40))
    y = np.tanh(z @ g.standard_normal((5, 24))) + 0.5 * g.standard_normal((n, 24))
    base = unbiased_cka(x, y)
    assert 0.2 < base < 0.99
    q = random_orthogonal(24, 5)
    assert unbiased_cka(x, y @ q) == pytest.approx(base, abs=1e-12)
    assert unbiased_cka(x @ random_orthogonal(40, 6), y) == pytest.approx(base, abs=1e-12)
    assert unbiased_cka(17.0 * x, 0.003 * y) == pytest.approx(base, abs=1e-12)
    assert unbiased_cka(y, x) == pytest.approx(base, abs=1e-12)
    assert unbiased_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    # not invariant to an anisotropic scaling: this is what makes it a real test of the identity
    assert abs(unbiased_cka(x, y * np.linspace(0.1, 10, 24)) - base) > 1e-3


def test_cka_none_and_errors():
    g = rng(5)
    assert unbiased_cka(g.standard_normal((3, 4)), g.standard_normal((3, 4))) is None
    assert unbiased_cka(np.zeros((10, 3)), g.standard_normal((10, 3))) is None
    with pytest.raises(ValueError):
        unbiased_cka(g.standard_normal((10, 3)), g.standard_normal((11, 3)))
    with pytest.raises(ValueError):
        unbiased_cka(g.standard_normal(10), g.standard_normal(10))
    bad = g.standard_normal((10, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError):
        unbiased_cka(bad, g.standard_normal((10, 3)))


# ---------------------------------------------------------------------------- align_hidden


def planted_embedding(g, tokens: int, d: int, noise: float):
    emb_b = g.standard_normal((tokens, d)) * g.uniform(0.5, 2.0, d)  # per-dim scales differ
    perm = g.permutation(d)  # dim j of b is dim perm[j] of a
    flips = g.choice([-1.0, 1.0], d)
    emb_a = np.empty_like(emb_b)
    emb_a[:, perm] = emb_b * flips
    emb_a += noise * g.standard_normal(emb_a.shape)
    return emb_a, emb_b, perm, flips


def test_align_hidden_recovers_permutation_and_signs():
    g = rng(6)
    emb_a, emb_b, perm, flips = planted_embedding(g, 2000, 64, noise=0.1)
    al = align_hidden(emb_a, emb_b)
    assert isinstance(al, HiddenAlignment)
    np.testing.assert_array_equal(al.dims_b, np.arange(64))
    np.testing.assert_array_equal(al.dims_a, perm)
    np.testing.assert_array_equal(al.signs, flips)
    assert al.n_tokens == 2000
    assert al.quality > 0.95
    np.testing.assert_allclose(al.cos * al.signs, np.abs(al.cos))
    aligned = emb_a[:, al.dims_a] * al.signs
    assert np.corrcoef(aligned.ravel(), emb_b.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError):
        al.dims_a[0] = 1  # results are read-only


def test_align_hidden_unrelated_is_near_chance():
    g = rng(7)
    al = align_hidden(g.standard_normal((2000, 64)), g.standard_normal((2000, 64)))
    assert al.quality < 0.1  # chance ~ 2.5 / sqrt(2000) ~ 0.05
    assert al.quality == pytest.approx(null_level_abs_corr(2000, 64), rel=0.2)


def test_align_hidden_rectangular_both_ways():
    g = rng(8)
    emb_a, emb_b, perm, flips = planted_embedding(g, 1500, 48, noise=0.05)
    keep = np.sort(g.choice(48, 32, replace=False))  # a model of width 32 made of some of b's dims
    narrow = emb_b[:, keep]

    wide_to_narrow = align_hidden(emb_a, narrow)  # d_a = 48 >= d_b = 32
    np.testing.assert_array_equal(wide_to_narrow.dims_b, np.arange(32))
    np.testing.assert_array_equal(wide_to_narrow.dims_a, perm[keep])
    np.testing.assert_array_equal(wide_to_narrow.signs, flips[keep])

    narrow_to_wide = align_hidden(narrow, emb_a)  # d_a = 32 < d_b = 48
    assert len(narrow_to_wide.dims_a) == 32
    np.testing.assert_array_equal(narrow_to_wide.dims_b, np.sort(perm[keep]))
    np.testing.assert_array_equal(np.sort(narrow_to_wide.dims_a), np.arange(32))
    lhs = narrow[:, narrow_to_wide.dims_a] * narrow_to_wide.signs
    rhs = emb_a[:, narrow_to_wide.dims_b]
    assert np.min(np.einsum("ij,ij->j", lhs, rhs)) > 0  # every matched pair points the same way
    assert narrow_to_wide.quality > 0.95


@pytest.mark.parametrize("noise", [0.05, 1.0, None])  # related, weakly related (lines' maxima collide), unrelated
@pytest.mark.parametrize("widths", [(48, 48), (48, 32), (32, 48)])
def test_align_hidden_finds_the_best_matching_whichever_way_it_is_found(noise, widths):
    """The matching is the optimum of the summed |cos|, as the Hungarian assignment finds it, also when the
    shortcut (every line's maximum in its own column) applies."""
    from scipy.optimize import linear_sum_assignment

    g = rng(10)
    emb_a, emb_b, _, _ = planted_embedding(g, 400, 48, noise=noise or 0.0)
    if noise is None:
        emb_a = g.standard_normal(emb_a.shape)
    emb_a, emb_b = emb_a[:, : widths[0]], emb_b[:, : widths[1]]
    al = align_hidden(emb_a, emb_b)
    ua, ub = (e / np.linalg.norm(e, axis=0) for e in (emb_a, emb_b))
    cos = np.abs(ua.T @ ub)
    rows, cols = linear_sum_assignment(cos, maximize=True)
    assert np.sum(np.abs(al.cos)) == pytest.approx(cos[rows, cols].sum(), rel=1e-9)
    assert len(np.unique(al.dims_a)) == len(al.dims_a) == min(widths) == len(np.unique(al.dims_b))
    np.testing.assert_allclose(np.abs(al.cos), cos[al.dims_a, al.dims_b], rtol=1e-9)


def test_align_hidden_errors():
    g = rng(9)
    with pytest.raises(ValueError):
        align_hidden(g.standard_normal((10, 4)), g.standard_normal((11, 4)))
    with pytest.raises(ValueError):
        align_hidden(g.standard_normal((1, 4)), g.standard_normal((1, 4)))


# ---------------------------------------------------------------------------- monotone_alignment


def layer_features(g, n_layers: int, width: int = 400) -> np.ndarray:
    """Per-layer feature vectors like a residual stream: each layer is its predecessor plus an update."""
    feats = [g.standard_normal(width)]
    for _ in range(n_layers - 1):
        feats.append(feats[-1] + 0.8 * g.standard_normal(width))
    return np.array(feats)


def sim_matrix(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    return np.array([[centred_pearson(u, v) for v in fb] for u in fa])


def test_monotone_alignment_finds_dropped_layers():
    g = rng(10)
    fa = layer_features(g, 6)
    fb = fa[[0, 1, 3, 5]] + 0.3 * g.standard_normal((4, fa.shape[1]))  # layers 2 and 4 removed
    sim = sim_matrix(fa, fb)
    # the neighbours are alike, so only a real optimum finds the right ones
    assert sim[2, 2] > 0.6 and sim[4, 3] > 0.6

    al = monotone_alignment(sim)  # n_a = 6 > n_b = 4
    assert isinstance(al, DepthAlignment)
    assert al.pairs == [(0, 0), (1, 1), (3, 2), (5, 3)]
    assert al.skipped_a == [2, 4] and al.skipped_b == []
    assert al.mean_similarity == pytest.approx(np.mean([sim[i, j] for i, j in al.pairs]))
    # proportional diagonal maps b's layers to a's 0, 2, 3, 5: layer 1 of b lands on a's 2
    assert al.diagonal_similarity == pytest.approx(np.mean([sim[0, 0], sim[2, 1], sim[3, 2], sim[5, 3]]))
    assert al.diagonal_similarity < al.mean_similarity

    flipped = monotone_alignment(sim.T)  # n_a = 4 < n_b = 6: same pairs, other orientation
    assert flipped.pairs == [(0, 0), (1, 1), (2, 3), (3, 5)]
    assert flipped.skipped_a == [] and flipped.skipped_b == [2, 4]
    assert flipped.mean_similarity == pytest.approx(al.mean_similarity)


def brute_force(sim: np.ndarray) -> float:
    n_a, n_b = sim.shape
    if n_a <= n_b:
        return max(sum(sim[i, j] for i, j in enumerate(c)) for c in itertools.combinations(range(n_b), n_a))
    return brute_force(sim.T)


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (5, 5), (4, 8), (1, 6), (6, 1)])
def test_monotone_alignment_is_optimal(shape):
    g = rng(sum(shape))
    for _ in range(5):
        sim = g.standard_normal(shape)
        al = monotone_alignment(sim)
        assert len(al.pairs) == min(shape)
        a_idx, b_idx = zip(*al.pairs)
        assert all(np.diff(a_idx) > 0) and all(np.diff(b_idx) > 0)
        assert sum(sim[i, j] for i, j in al.pairs) == pytest.approx(brute_force(sim), abs=1e-12)


def test_monotone_alignment_edges():
    one = monotone_alignment(np.array([[0.2, 0.9, 0.1]]))
    assert one.pairs == [(0, 1)] and one.skipped_b == [0, 2] and one.skipped_a == []
    assert one.mean_similarity == pytest.approx(0.9)
    assert one.diagonal_similarity is None
    single = monotone_alignment(np.array([[0.4]]))
    assert single.pairs == [(0, 0)] and single.diagonal_similarity is None
    same = monotone_alignment(rng(11).standard_normal((4, 4)))
    assert same.pairs == [(0, 0), (1, 1), (2, 2), (3, 3)]
    with pytest.raises(ValueError):
        monotone_alignment(np.zeros((0, 3)))


def test_diagonal_rounds_half_up():
    sim = np.arange(18, dtype=float).reshape(3, 6)  # short layer 1 sits at 2.5 of the long model
    assert monotone_alignment(sim).diagonal_similarity == pytest.approx(np.mean([sim[0, 0], sim[1, 3], sim[2, 5]]))
    assert monotone_alignment(sim.T).diagonal_similarity == pytest.approx(np.mean([sim[0, 0], sim[1, 3], sim[2, 5]]))


def test_monotone_alignment_nan_is_avoided():
    # read as 0, the NaN would make (0,0),(1,1) best (sum 0.9); as unknown-and-low, (0,1),(1,2) wins
    sim = np.array([[np.nan, -0.3, 0.0], [0.0, 0.9, -0.2]])
    al = monotone_alignment(sim)
    assert al.pairs == [(0, 1), (1, 2)]
    assert al.mean_similarity == pytest.approx(-0.25)
    forced = monotone_alignment(np.array([[np.nan, 1.0], [1.0, 0.5]]))  # n_a == n_b: identity
    assert forced.pairs == [(0, 0), (1, 1)]
    assert forced.mean_similarity == pytest.approx(0.5) and forced.diagonal_similarity == pytest.approx(0.5)
    all_nan = monotone_alignment(np.full((2, 3), np.nan))
    assert len(all_nan.pairs) == 2 and np.isnan(all_nan.mean_similarity) and all_nan.diagonal_similarity is None


# ---------------------------------------------------------------------------- match_neurons


def test_match_neurons_recovers_permuted_noisy_rows():
    g = rng(12)
    b = g.standard_normal((256, 128))
    perm = g.permutation(256)  # row k of a is row perm[k] of b
    a = b[perm] * g.uniform(0.5, 2.0, (256, 1)) + 0.3 + 0.3 * g.standard_normal((256, 128))
    a[::7] *= -1.0  # some neurons sign-flipped
    m = match_neurons(a, b)
    assert isinstance(m, NeuronMatch)
    np.testing.assert_array_equal(m.rows_b, np.arange(256))
    np.testing.assert_array_equal(perm[m.rows_a], m.rows_b)
    assert np.all(np.sign(m.corr[perm[::7]]) == -1) and np.sum(m.corr < 0) == len(perm[::7])
    k = 5
    assert m.corr[k] == pytest.approx(centred_pearson(a[m.rows_a[k]], b[k]), abs=1e-12)
    assert m.mean_abs_corr > 0.9


def test_match_neurons_rectangular_keeps_the_pruned_rows():
    g = rng(13)
    a = g.standard_normal((300, 64))
    keep = np.sort(g.choice(300, 200, replace=False))  # b: a width-pruned MLP, order kept
    b = a[keep] + 0.2 * g.standard_normal((200, 64))
    m = match_neurons(a, b)
    np.testing.assert_array_equal(m.rows_a, keep)
    back = match_neurons(b, a)  # m_a < m_b: every row of b matched, rows_b are the kept rows of a
    np.testing.assert_array_equal(back.rows_b, keep)
    np.testing.assert_array_equal(back.rows_a, np.arange(200))


def test_match_neurons_null_level():
    g = rng(14)
    m = match_neurons(g.standard_normal((256, 128)), g.standard_normal((256, 128)))
    null = null_level_abs_corr(128, 256)
    assert 0.22 < null < 0.29  # the assignment picks the best of 256 chance correlations of spread 1/sqrt(128)
    assert m.mean_abs_corr == pytest.approx(null, rel=0.05)
    assert null_level_abs_corr(128, 256) == null  # deterministic, cached
    assert null_level_abs_corr(1024, 256) < null / 2  # shrinks like 1/sqrt(d)
    assert null_level_abs_corr(128, 32) < null  # grows with the number of candidates


def test_match_neurons_errors_and_constant_rows():
    g = rng(15)
    with pytest.raises(ValueError):
        match_neurons(g.standard_normal((4, 8)), g.standard_normal((4, 9)))
    with pytest.raises(ValueError):
        match_neurons(g.standard_normal((4, 2)), g.standard_normal((4, 2)))
    a = g.standard_normal((5, 20))
    a[2] = 3.0  # constant neuron: correlates 0 with everything, no NaN
    m = match_neurons(a, a)
    assert np.all(np.isfinite(m.corr))
    assert m.corr[2] == 0.0
    np.testing.assert_allclose(np.delete(m.corr, 2), 1.0, atol=1e-12)
