"""Node normalisation, feature maps and combined kernels against explicit sums."""

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from mkl_tp.kernels.combine import (
    combined_kernel,
    gram_matrix,
    node_gram,
    node_products,
    weighted_features,
)
from mkl_tp.kernels.feature_maps import (
    apply_feature_maps,
    fit_feature_maps,
    normalize_nodes,
    unit_diagonal_scales,
)

rng = np.random.default_rng(0)


def test_l2_and_power_normalisation():
    psi = rng.normal(size=(5, 3, 4))
    psi[0, 1] = 0.0
    l2 = normalize_nodes(psi, "l2")
    norms = np.linalg.norm(l2, axis=-1)
    assert norms[0, 1] == 0.0
    np.testing.assert_allclose(np.delete(norms.ravel(), 1), 1.0)
    power = normalize_nodes(psi, "power")
    expected = np.sign(psi) * np.sqrt(np.abs(psi))
    expected /= np.maximum(np.linalg.norm(expected, axis=-1, keepdims=True), 1e-300)
    np.testing.assert_allclose(power, expected)
    assert normalize_nodes(psi, "none") is psi
    with pytest.raises(ValueError, match="node_norm must be one of"):
        normalize_nodes(psi, "l1")


def test_rbf_map_is_exact_on_training_points_with_all_landmarks():
    psi = rng.normal(size=(20, 2, 3))
    feature_map = fit_feature_maps(psi, "rbf", n_components=40, gamma=0.3, random_state=0)
    phi = apply_feature_maps(psi, feature_map)
    # One map for the stream: every pair of nodes, the cross terms of Eq. 2 included.
    for p in range(2):
        for q in range(2):
            np.testing.assert_allclose(
                phi[:, p] @ phi[:, q].T, rbf_kernel(psi[:, p], psi[:, q], gamma=0.3), atol=1e-8
            )


def test_rbf_default_gamma_is_inverse_mean_squared_distance():
    psi = rng.normal(size=(15, 2, 3))
    feature_map = fit_feature_maps(psi, "rbf", random_state=0)
    x = psi.reshape(30, 3)  # the descriptors of all nodes of the stream
    mean_sq = np.mean(((x[:, None] - x[None]) ** 2).sum(-1)) * 30 / 29  # distinct pairs
    assert feature_map.gamma == pytest.approx(1 / mean_sq, rel=1e-9)


def test_chi2_map_is_exact_exponential_chi2_on_training_points():
    psi = rng.uniform(0.0, 1, size=(6, 2, 4))
    feature_map = fit_feature_maps(psi, "chi2", random_state=0)
    phi = apply_feature_maps(psi, feature_map).reshape(12, -1)
    x = psi.reshape(12, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = (x[:, None] - x[None]) ** 2 / (x[:, None] + x[None])
    distance = np.nan_to_num(terms).sum(-1)
    off_diagonal = distance[~np.eye(12, dtype=bool)]
    assert feature_map.gamma == pytest.approx(1 / off_diagonal.mean(), rel=1e-9)
    np.testing.assert_allclose(phi @ phi.T, np.exp(-feature_map.gamma * distance), atol=1e-8)


@pytest.mark.parametrize("base_kernel", ["rbf", "chi2"])
def test_cross_kernel_with_an_exact_map_is_eq2(base_kernel):
    """K(V, V') = sum_{p,q} beta_p beta_q k(psi_p(V), psi_q(V')) / D, evaluated pairwise."""
    from sklearn.metrics.pairwise import chi2_kernel

    psi = rng.uniform(0.0, 1.0, size=(8, 3, 4))
    feature_map = fit_feature_maps(psi, base_kernel, n_components=24, random_state=1)
    phi = apply_feature_maps(psi, feature_map)
    beta = np.array([0.5, 0.3, 0.2])
    pairwise = rbf_kernel if base_kernel == "rbf" else chi2_kernel
    unnormalised = sum(
        beta[p] * beta[q] * pairwise(psi[:, p], psi[:, q], gamma=feature_map.gamma)
        for p in range(3)
        for q in range(3)
    )
    K, normaliser = combined_kernel([phi], beta, "cross")
    assert normaliser == pytest.approx(np.trace(unnormalised) / 8, rel=1e-8)
    np.testing.assert_allclose(K, unnormalised / normaliser, atol=1e-7)


def test_chi2_rejects_negative_features_naming_the_video():
    psi = np.abs(rng.normal(size=(6, 2, 3)))
    psi[4, 1, 2] = -0.1
    with pytest.raises(ValueError, match="video 4 has negative"):
        fit_feature_maps(psi, "chi2")
    feature_map = fit_feature_maps(np.abs(psi), "chi2")
    with pytest.raises(ValueError, match="video 4 has negative"):
        apply_feature_maps(psi, feature_map)


def test_unknown_base_kernel():
    with pytest.raises(ValueError, match="base_kernel must be one of"):
        fit_feature_maps(np.ones((2, 1, 1)), "poly")


def test_unit_diagonal_scales():
    phi = rng.normal(size=(7, 3, 5))
    phi[:, 2] = 0.0
    scaled = phi / np.sqrt(unit_diagonal_scales(phi))[None, :, None]
    for p in range(2):
        assert np.trace(scaled[:, p] @ scaled[:, p].T) / 7 == pytest.approx(1.0)
    assert unit_diagonal_scales(phi)[2] == 1.0


def two_stream_blocks():
    return [rng.normal(size=(6, 3, 4)), rng.normal(size=(6, 2, 5))]


def test_linear_combined_kernel_is_weighted_sum_of_node_kernels():
    blocks = two_stream_blocks()
    beta = np.array([0.1, 0.0, 0.3, 0.4, 0.2])
    nodes = [b[:, p] for b in blocks for p in range(b.shape[1])]
    expected = sum(w * x @ x.T for w, x in zip(beta, nodes))
    K, normaliser = combined_kernel(blocks, beta, "linear")
    np.testing.assert_allclose(K, expected, rtol=1e-12)
    assert normaliser == 1.0
    # zero-weight nodes are dropped from the explicit features
    assert weighted_features(blocks, beta, "linear").shape == (6, 2 * 4 + 2 * 5)


@pytest.mark.parametrize(
    "beta, copies",
    [
        (np.full(5, 0.2), 0),  # uniform: a view of each block, no weighted copy
        (np.array([0.5, 0.5, 0.0, 0.0, 0.0]), 0),  # the first stream's first two nodes
        (np.array([0.0, 0.25, 0.25, 0.25, 0.25]), 0),  # a run in each stream
        (np.array([0.3, 0.3, 0.2, 0.0, 0.2]), 1),  # unequal weights in the first stream
        (np.array([0.5, 0.0, 0.5, 0.0, 0.0]), 1),  # a gap in the first stream's nodes
        (np.zeros(5), 0),
    ],
)
def test_linear_combined_kernel_on_runs_of_equal_weights(beta, copies, monkeypatch):
    """Streams whose used nodes are one run of equal weights are multiplied as views;
    every case equals the weighted sum of node kernels."""
    import mkl_tp.kernels.combine as combine

    blocks = two_stream_blocks()  # 3 nodes, then 2
    nodes = [b[:, p] for b in blocks for p in range(b.shape[1])]
    expected = sum(w * x @ x.T for w, x in zip(beta, nodes))
    made = []
    monkeypatch.setattr(
        combine, "weighted_features", lambda *a: made.append(a) or weighted_features(*a)
    )
    np.testing.assert_allclose(combined_kernel(blocks, beta, "linear")[0], expected, atol=1e-12)
    assert len(made) == copies


def test_cross_combined_kernel_sums_node_pairs_within_streams():
    blocks = two_stream_blocks()
    beta = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    streams = [(blocks[0], beta[:3]), (blocks[1], beta[3:])]
    unnormalised = sum(
        wp * wq * block[:, p] @ block[:, q].T
        for block, w in streams
        for p, wp in enumerate(w)
        for q, wq in enumerate(w)
    )
    K, normaliser = combined_kernel(blocks, beta, "cross")
    assert normaliser == pytest.approx(np.trace(unnormalised) / 6)
    np.testing.assert_allclose(K, unnormalised / normaliser, rtol=1e-12)
    assert np.trace(K) / 6 == pytest.approx(1.0)
    assert beta @ node_gram(blocks) @ beta == pytest.approx(normaliser)


def test_node_products_against_explicit_quadratic_forms():
    blocks = two_stream_blocks()
    coef = rng.normal(size=(6, 3))
    M = node_products(blocks, coef)
    nodes = [(s, b[:, p]) for s, b in enumerate(blocks) for p in range(b.shape[1])]
    for i, (si, xi) in enumerate(nodes):
        for j, (sj, xj) in enumerate(nodes):
            expected = (
                sum(coef[:, c] @ xi @ xj.T @ coef[:, c] for c in range(3)) if si == sj else 0.0
            )
            assert M[i, j] == pytest.approx(expected, abs=1e-10)
    np.testing.assert_allclose(node_products(blocks, coef, diagonal=True), np.diag(M))


@pytest.mark.parametrize("tile", [3, 4, 2048])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gram_matrix_equals_the_plain_product(tile, dtype):
    # Tiled GEMMs instead of numpy's a @ a.T (syrk, which crashes at 20,000 x 960 on
    # 2 OpenBLAS threads, numpy #19685): the same float64 product, symmetric.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 6)).astype(dtype)
    reference = features.astype(np.float64) @ features.astype(np.float64).T.copy()
    out = np.full((10, 10), np.nan)
    result = gram_matrix(features, out=out, tile=tile)
    assert result is out and result.dtype == np.float64
    np.testing.assert_allclose(result, reference, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(result, result.T)
    strided = features[:, 1:3].astype(np.float64)  # a non-contiguous view's product
    np.testing.assert_allclose(
        gram_matrix(features[:, 1:3], tile=tile), strided @ strided.T.copy(), rtol=1e-13, atol=1e-13
    )


def test_total_variance_in_blocks_is_numpys_in_float64():
    from mkl_tp.kernels.feature_maps import _total_variance

    x = (5.0 + rng.normal(size=(1001, 7))).astype(np.float32)  # a large common mean
    expected = x.astype(np.float64).var(axis=0, ddof=1).sum()
    for chunk in (7, 50, 2**22):  # one row, several rows (a short last block), all rows
        assert _total_variance(x, chunk=chunk) == pytest.approx(expected, rel=1e-12)
    assert _total_variance(x[:1]) == 0.0  # one descriptor: no pair, no spread
    assert fit_feature_maps(rng.normal(size=(1, 1, 3)), "rbf").gamma == 1.0


@pytest.mark.parametrize("kind", ["linear", "cross"])
@pytest.mark.parametrize(
    "beta",
    [
        np.full(5, 0.2),
        np.array([0.5, 0.5, 0.0, 0.0, 0.0]),  # the coarse nodes of the first stream only
        np.array([0.4, 0.0, 0.3, 0.0, 0.3]),  # gaps inside the runs
        np.array([[0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5, 0.5]]),  # per task
    ],
)
def test_primal_node_weights_give_the_kernel_decisions(kind, beta):
    """Decisions through node weights (block_decisions of node_weight_blocks), which read
    only the nodes some task weighs, equal the kernel's ``K(test, train) coef``."""
    from mkl_tp.kernels.combine import block_decisions, node_weight_blocks

    train, test = two_stream_blocks(), two_stream_blocks()  # 3 nodes, then 2
    coef = rng.normal(size=(6, 2))
    decisions = block_decisions(test, node_weight_blocks(train, beta, coef, kind))
    for c, b in enumerate(np.broadcast_to(np.atleast_2d(beta), (2, 5))):
        weighted = [(b[:3], test[0], train[0]), (b[3:], test[1], train[1])]
        if kind == "linear":  # sum_p beta_p <phi_p(x), phi_p(x')>
            K = sum(w[p] * t[:, p] @ r[:, p].T for w, t, r in weighted for p in range(len(w)))
        else:  # <sum_p beta_p phi_p(x), sum_q beta_q phi_q(x')> within each stream
            K = sum(
                np.einsum("p,ipm->im", w, t) @ np.einsum("p,ipm->im", w, r).T
                for w, t, r in weighted
            )
        np.testing.assert_allclose(decisions[:, c], K @ coef[:, c], atol=1e-12)
