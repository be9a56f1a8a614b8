"""Per-node PCA against numpy's SVD."""

import numpy as np

from mkl_tp.node_pca import apply_node_projections, fit_node_projections


def test_node_projections_are_the_top_singular_subspace():
    rng = np.random.default_rng(0)
    low_rank = rng.normal(size=(200, 2, 6)) @ rng.normal(size=(6, 30))
    phi = low_rank + 1e-3 * rng.normal(size=low_rank.shape)
    projections = fit_node_projections(phi, 6, random_state=0)
    assert projections.shape == (2, 30, 6)
    for p in range(2):
        _, _, vt = np.linalg.svd(phi[:, p], full_matrices=False)
        np.testing.assert_allclose(projections[p] @ projections[p].T, vt[:6].T @ vt[:6],
                                   atol=1e-8)
    reduced = apply_node_projections(phi, projections)
    np.testing.assert_allclose(reduced[:, 0], phi[:, 0] @ projections[0], rtol=1e-12)
