"""σ-curve comparison: Pearson per role, mean over projection roles, depth resampling, the N×N matrix."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprint.compare import compare_pair, pearson, resample, similarity_matrix
from fingerprint.result import Fingerprint


def fp(name, curves, layers=None):
    n = layers or len(next(iter(curves.values())))
    return Fingerprint(
        model=name,
        revision="sha256:0",
        source="local",
        format="safetensors",
        architecture="x",
        layers=n,
        mode="exact",
        curves=curves,
        stats={},
        bytes_read=0,
        bytes_total=0,
        tool_version="t",
        computed_at="now",
    )


def test_pearson_matches_numpy_and_is_scale_free():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20), rng.normal(size=20)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert pearson(a, 3 * a + 7) == pytest.approx(1.0)  # z-scoring first (as the paper does) changes nothing
    assert pearson(a, np.full(20, 0.02)) is None  # a flat curve has no shape
    assert pearson(a[:2], b[:2]) is None  # too few layers


def test_score_is_mean_over_projection_roles_only():
    x = np.linspace(0, 1, 8)
    a = fp("a", {"q": list(x), "k": list(x**2), "attn_norm": list(x)})
    b = fp("b", {"q": list(x), "k": list(-(x**2)), "attn_norm": list(-x)})
    c = compare_pair(a, b)
    assert c.per_role == {"q": pytest.approx(1.0), "k": pytest.approx(-1.0), "attn_norm": pytest.approx(-1.0)}
    assert c.score_roles == ["q", "k"] and c.score == pytest.approx(0.0)


def test_different_depths_are_resampled_and_said_so():
    deep = list(np.sin(np.linspace(0, 3, 40)))
    shallow = list(np.sin(np.linspace(0, 3, 24)))
    c = compare_pair(fp("deep", {"q": deep}), fp("shallow", {"q": shallow}))
    assert c.resampled and c.score > 0.999 and any("resampled" in n for n in c.notes)
    assert len(resample(np.array(shallow), 40)) == 40


def test_missing_layers_are_skipped_not_invented():
    curve = [0.1, 0.2, None, 0.4, 0.5, 0.3]
    c = compare_pair(fp("a", {"q": curve}), fp("b", {"q": [0.1, 0.2, 0.3, 0.4, 0.5, 0.3]}))
    assert c.score == pytest.approx(1.0)


def test_matrix_is_symmetric_with_unit_diagonal():
    rng = np.random.default_rng(1)
    fps = [fp(str(i), {"q": list(rng.normal(size=10)), "k": list(rng.normal(size=10))}) for i in range(4)]
    m = similarity_matrix(fps)
    assert m.shape == (4, 4) and np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
    mk = similarity_matrix(fps, role="k")
    assert mk[0, 1] == pytest.approx(compare_pair(fps[0], fps[1]).per_role["k"])
    assert np.isnan(similarity_matrix(fps, role="v")).all()
