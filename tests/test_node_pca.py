"""Per-node PCA against numpy's SVD."""

import numpy as np

from mkl_tp.kernels.node_pca import apply_node_projections, fit_node_projections


def test_node_projections_are_the_top_singular_subspace():
    rng = np.random.default_rng(0)
    low_rank = rng.normal(size=(200, 2, 6)) @ rng.normal(size=(6, 30))
    phi = low_rank + 1e-3 * rng.normal(size=low_rank.shape)
    projections = fit_node_projections(phi, 6, random_state=0)
    assert projections.shape == (2, 30, 6)
    for p in range(2):
        _, _, vt = np.linalg.svd(phi[:, p], full_matrices=False)
        np.testing.assert_allclose(projections[p] @ projections[p].T, vt[:6].T @ vt[:6], atol=1e-8)
    reduced = apply_node_projections(phi, projections)
    np.testing.assert_allclose(reduced[:, 0], phi[:, 0] @ projections[0], rtol=1e-12)


def test_shared_projection_is_the_top_subspace_of_all_nodes_stacked():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(100, 3, 5)) @ rng.normal(size=(5, 20)) + 1e-3 * rng.normal(
        size=(100, 3, 20)
    )
    projections = fit_node_projections(phi, 5, random_state=0, shared=True)
    _, _, vt = np.linalg.svd(phi.reshape(300, 20), full_matrices=False)
    for p in range(3):
        np.testing.assert_allclose(projections[p] @ projections[p].T, vt[:5].T @ vt[:5], atol=1e-8)


def test_cross_kernel_with_a_full_rank_pca_is_the_cross_kernel_without():
    # A full-rank projection keeps every inner product, cross-node ones included, only when
    # all nodes share it (per-node bases would pair unrelated coordinates).
    from mkl_tp import PyramidMKLClassifier

    rng = np.random.default_rng(2)
    X = [rng.normal(size=(int(rng.integers(4, 12)), 4)) for _ in range(30)]
    y = np.arange(30) % 3
    params = dict(levels=2, kernel="cross", base_kernel="linear", node_weights=[0.5, 0.2, 0.3])
    plain = PyramidMKLClassifier(**params).fit(X, y)
    reduced = PyramidMKLClassifier(pca_components=4, **params).fit(X, y)
    np.testing.assert_allclose(
        reduced.decision_function(X), plain.decision_function(X), rtol=1e-6, atol=1e-8
    )
