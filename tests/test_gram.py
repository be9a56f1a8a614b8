"""The node-kernel cache of one fit (mkl_tp.solvers.gram) against direct products."""

import numpy as np
from _problems import problem

from mkl_tp.kernels.combine import combined_kernel, node_products
from mkl_tp.solvers.gram import TrainingKernels


def test_training_kernels_cached_and_recomputed_agree():
    blocks, Y = problem(seed=8)
    coef = np.random.default_rng(0).normal(size=Y.shape)
    beta = np.array([0.5, 0.0, 0.3, 0.2])
    cached = TrainingKernels(blocks, "linear", cache_bytes=1e9)
    recomputed = TrainingKernels(blocks, "linear", cache_bytes=0)
    tight = TrainingKernels(blocks, "linear", cache_bytes=cached.cache_nbytes - 1)
    assert cached.cached and not recomputed.cached and not tight.cached
    assert cached.cache_nbytes == 4 * 40 * 40 * 4
    # float32 cache: entries rounded at 6e-8 relative (kernel entries are O(1)).
    np.testing.assert_allclose(
        cached.combined(beta)[0], recomputed.combined(beta)[0], rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        cached.combined(np.full(4, 0.25))[0],
        combined_kernel(blocks, np.full(4, 0.25), "linear")[0],
        rtol=0,
        atol=1e-6,
    )
    reference = node_products(blocks, coef, diagonal=True)
    np.testing.assert_allclose(cached.node_quadratics(coef), reference, rtol=1e-5)
    # The cache's own pass (taken when it is the cheaper one: N^2 small against m C).
    np.testing.assert_allclose(cached._cached_quadratics(coef), reference, rtol=1e-5)
    assert not TrainingKernels(blocks, "cross", cache_bytes=1e9).cached


def test_cached_combination_of_all_a_run_or_scattered_nodes_is_the_direct_kernel():
    """The three ways combined() reads the cache (one product over all nodes, one over a
    run of them such as a pyramid's coarse levels, a sum over scattered ones) against
    the kernel of the weighted features."""
    blocks, _ = problem(seed=3)
    cached = TrainingKernels(blocks, "linear", cache_bytes=1e9)
    for beta in (
        [0.1, 0.2, 0.3, 0.4],
        [0.0, 0.6, 0.4, 0.0],
        [0.5, 0.0, 0.0, 0.5],
        [0, 0, 1, 0],
        [0, 0, 0, 0],  # no node used: the zero kernel
    ):
        beta = np.array(beta, dtype=float)
        np.testing.assert_allclose(
            cached.combined(beta)[0], combined_kernel(blocks, beta, "linear")[0], atol=1e-6
        )
