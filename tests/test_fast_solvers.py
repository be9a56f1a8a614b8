"""Fast paths against the reference path: batched dual solvers (numpy, torch), the level
method, the node-kernel cache, float32 storage, per-node PCA, warm starts.

References are independent where one exists (libsvm through ``SVC``, cvxpy/Clarabel) and
otherwise the original path (SILP, uncached kernels, float64). Tolerances are explicit and
follow from the reference's own accuracy:

* libsvm stops at a maximal-violating-pair gap of a tenth of the MKL ``tol`` within
  ``[1e-5, 1e-4]`` (``1e-4``, ``_LIBSVM_TOL``, when called directly). Its dual objective is
  then within ~1e-7 relative, but its decisions ``K a + b`` only within
  ``O(sqrt(dual gap))`` of the unique optimum: we see up to 1e-4 and compare at 1e-3 (fits
  compared on decisions run at ``tol=1e-4`` or tighter, i.e. libsvm at 1e-5). Tight
  agreement (1e-8) is checked against cvxpy/Clarabel at 1e-11.
* Two MKL fits that both stop at a relative gap ``tol`` agree on ``J`` to ``tol``; ``beta``
  and the decisions along flat directions of ``J`` only to about ``sqrt(tol)``, so fits
  compared on beta/decisions run at a tighter ``tol`` than the default.
* float32 storage rounds entries at ``6e-8`` relative.
"""

import importlib
import subprocess
import sys

import cvxpy as cp
import numpy as np
import pytest

from mkl_tp import PyramidMKLClassifier
from mkl_tp.kernels import (
    apply_node_projections,
    combined_kernel,
    fit_node_projections,
    node_products,
    unit_diagonal_scales,
)
from mkl_tp.pyramid import node_descriptors_batch
from mkl_tp.solvers import fit_mkl, svm_duals
from mkl_tp.solvers.batch_svm import kkt_violation, project, svm_duals_batch
from mkl_tp.solvers.gram import TrainingKernels
from mkl_tp.solvers.svm import one_vs_rest_labels


def problem(seed=0, n=40, nodes=4, width=5, classes=3):
    """Scaled random node blocks where node 1 carries the class, plus labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    block = rng.normal(size=(n, nodes, width))
    block[:, 1, :classes] += 1.5 * np.eye(classes)[y]
    block /= np.sqrt(unit_diagonal_scales(block))[None, :, None]
    return [block], one_vs_rest_labels(y, classes)


def videos(n=36, d=4, classes=3, seed=0):
    """Order-sensitive videos: the class shows only in the second half."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = []
    for label in y:
        T = int(rng.integers(3, 21))
        x = rng.normal(size=(T, d))
        x[T // 2:, label % d] += 1.5
        X.append(x)
    return X, y


def decisions(kernel, duals):
    return kernel @ duals.coef + duals.intercept


# --- batched dual solver (numpy) ------------------------------------------------------

def test_projection_matches_cvxpy():
    rng = np.random.default_rng(1)
    Y = np.where(rng.random((15, 3)) < 0.4, 1.0, -1.0)
    lo, hi = np.where(Y > 0, 0.0, -0.7), np.where(Y > 0, 0.7, 0.0)
    V = rng.normal(size=Y.shape)
    projected = project(V, lo, hi)
    for c in range(3):
        a = cp.Variable(15)
        cp.Problem(cp.Minimize(cp.sum_squares(a - V[:, c])),
                   [a >= lo[:, c], a <= hi[:, c], cp.sum(a) == 0]).solve(
            solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        np.testing.assert_allclose(projected[:, c], a.value, atol=1e-8)
    np.testing.assert_allclose(projected.sum(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("kind", ["linear", "cross"])
def test_batch_duals_match_libsvm(kind, C):
    blocks, Y = problem()
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), kind)
    reference = svm_duals(kernel, Y, C)
    fast, info = svm_duals_batch(kernel, Y, C, tol=1e-9)
    assert info["violation"].max() <= 1e-9
    # Both optima of the same strictly concave-in-decisions problem: objectives agree to
    # libsvm's accuracy (its gap 1e-5 times the O(1) gradient scale gives ~1e-9 relative).
    np.testing.assert_allclose(fast.objective, reference.objective, rtol=1e-7)
    np.testing.assert_allclose(decisions(kernel, fast), decisions(kernel, reference),
                               atol=1e-3)
    np.testing.assert_allclose(fast.intercept, reference.intercept, atol=1e-3)


def test_batch_duals_match_cvxpy_dual_tightly():
    blocks, Y = problem(seed=3, n=30)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    fast, _ = svm_duals_batch(kernel, Y, 1.0, tol=1e-10)
    for c in range(Y.shape[1]):
        alpha = cp.Variable(30)
        factor = np.linalg.cholesky(kernel + 1e-10 * np.eye(30))
        objective = cp.sum(alpha) - 0.5 * cp.sum_squares(factor.T @ cp.multiply(alpha, Y[:, c]))
        optimum = cp.Problem(cp.Maximize(objective),
                             [alpha >= 0, alpha <= 1.0, Y[:, c] @ alpha == 0]).solve(
            solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
        assert fast.objective[c] == pytest.approx(optimum, rel=1e-8)
        # K a = Phi w is unique at the optimum (the primal is strongly convex in w).
        np.testing.assert_allclose(kernel @ fast.coef[:, c],
                                   kernel @ (alpha.value * Y[:, c]), atol=1e-6)


def test_batch_warm_start_reaches_the_same_optimum_and_needs_fewer_iterations():
    blocks, Y = problem(seed=2, n=60)
    first, _ = combined_kernel(blocks, np.array([0.4, 0.3, 0.2, 0.1]), "linear")
    second, _ = combined_kernel(blocks, np.array([0.35, 0.35, 0.2, 0.1]), "linear")
    start, _ = svm_duals_batch(first, Y, 1.0, tol=1e-8)
    cold, cold_info = svm_duals_batch(second, Y, 1.0, tol=1e-8)
    warm, warm_info = svm_duals_batch(second, Y, 1.0, tol=1e-8, init=start.coef)
    np.testing.assert_allclose(warm.objective, cold.objective, rtol=1e-9)
    np.testing.assert_allclose(decisions(second, warm), decisions(second, cold), atol=1e-6)
    assert warm_info["n_iter"] <= cold_info["n_iter"]


def test_batch_intercept_without_free_variables_is_libsvms():
    # Balanced binary labels and a tiny C put every dual at C (y'alpha = 0 holds there):
    # no variable is free, and libsvm takes the middle of the feasible interval of b.
    blocks, _ = problem(seed=4)
    Y = one_vs_rest_labels(np.arange(40) % 2, 2)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    C = 1e-3
    fast, _ = svm_duals_batch(kernel, Y, C, tol=1e-10)
    reference = svm_duals(kernel, Y, C)
    lo, hi = np.where(Y > 0, 0.0, -C), np.where(Y > 0, C, 0.0)
    assert not ((fast.coef > lo + 1e-12) & (fast.coef < hi - 1e-12)).any()
    np.testing.assert_allclose(fast.intercept, reference.intercept, atol=1e-6)
    np.testing.assert_allclose(decisions(kernel, fast), decisions(kernel, reference),
                               atol=1e-6)


def test_kkt_violation_is_zero_at_the_reference_optimum_and_positive_elsewhere():
    blocks, Y = problem(seed=5)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    fast, _ = svm_duals_batch(kernel, Y, 1.0, tol=1e-10)
    lo, hi = np.where(Y > 0, 0.0, -1.0), np.where(Y > 0, 1.0, 0.0)
    assert kkt_violation(kernel @ fast.coef - Y, fast.coef, lo, hi).max() <= 1e-10
    zero = np.zeros_like(Y)
    assert (kkt_violation(-Y, zero, lo, hi) > 1.0).all()


# --- the MKL loop with fast paths ------------------------------------------------------

@pytest.mark.parametrize("kind", ["linear", "cross"])
def test_fit_mkl_with_batch_solver_matches_libsvm(kind):
    blocks, Y = problem(seed=6)
    reference = fit_mkl(blocks, Y, kernel=kind, tol=1e-4)
    fast = fit_mkl(blocks, Y, kernel=kind, tol=1e-4, solver="batch",
                   solver_options={"tol": 1e-9})
    assert fast.objective == pytest.approx(reference.objective, rel=1e-5)
    np.testing.assert_allclose(fast.beta, reference.beta, atol=1e-3)
    assert fast.n_svm_solves == fast.n_iter * Y.shape[1]
    assert fast.n_inner_iter > 0 and reference.n_inner_iter == 0


def test_level_method_and_silp_reach_the_same_certified_optimum():
    blocks, Y = problem(seed=7, nodes=6)
    silp = fit_mkl(blocks, Y, kernel="linear", tol=1e-5, beta_method="silp", max_iter=300)
    level = fit_mkl(blocks, Y, kernel="linear", tol=1e-5, beta_method="level", max_iter=300)
    assert silp.converged and level.converged
    # Both certify a relative gap below tol against the same lower bound.
    assert level.objective == pytest.approx(silp.objective, rel=2e-5)
    assert level.n_iter <= silp.n_iter


# --- memory-budget switch ---------------------------------------------------------------

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
    np.testing.assert_allclose(cached.combined(beta)[0], recomputed.combined(beta)[0],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(cached.combined(np.full(4, 0.25))[0],
                               combined_kernel(blocks, np.full(4, 0.25), "linear")[0],
                               rtol=0, atol=1e-6)
    reference = node_products(blocks, coef, diagonal=True)
    np.testing.assert_allclose(cached.node_quadratics(coef), reference, rtol=1e-5)
    # The cache's own pass (taken when it is the cheaper one: N^2 small against m C).
    np.testing.assert_allclose(cached._cached_quadratics(coef), reference, rtol=1e-5)
    assert not TrainingKernels(blocks, "cross", cache_bytes=1e9).cached


def test_fit_with_and_without_node_kernel_cache_agree():
    blocks, Y = problem(seed=9)
    cached = fit_mkl(blocks, Y, kernel="linear", tol=1e-4, cache_bytes=1e9)
    uncached = fit_mkl(blocks, Y, kernel="linear", tol=1e-4, cache_bytes=0)
    assert cached.kernel_cached and not uncached.kernel_cached
    assert cached.objective == pytest.approx(uncached.objective, rel=1e-6)
    np.testing.assert_allclose(cached.beta, uncached.beta, atol=1e-4)


def test_estimator_cache_size_switch_both_ways_gives_the_same_model():
    X, y = videos()
    small = PyramidMKLClassifier(levels=3, cache_size=0, tol=1e-6).fit(X, y)
    large = PyramidMKLClassifier(levels=3, cache_size=1024, tol=1e-6).fit(X, y)
    assert small.objective_ == pytest.approx(large.objective_, rel=1e-6)
    np.testing.assert_allclose(small.beta_, large.beta_, atol=1e-3)
    np.testing.assert_allclose(small.decision_function(X), large.decision_function(X),
                               atol=1e-3)


# --- estimator options -------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_estimator_batch_solver_matches_libsvm(kernel):
    X, y = videos()
    reference = PyramidMKLClassifier(levels=3, kernel=kernel, tol=1e-4).fit(X, y)
    fast = PyramidMKLClassifier(levels=3, kernel=kernel, solver="batch", tol=1e-4).fit(X, y)
    assert fast.objective_ == pytest.approx(reference.objective_, rel=1e-4)
    np.testing.assert_allclose(fast.beta_, reference.beta_, atol=2e-3)
    np.testing.assert_allclose(fast.decision_function(X), reference.decision_function(X),
                               atol=2e-3)
    np.testing.assert_array_equal(fast.predict(X), reference.predict(X))


def test_float32_storage_is_float64_rounded_once():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(T, 6)) for T in (1, 2, 5, 17, 64)]
    wide = node_descriptors_batch(X, 5)
    narrow = node_descriptors_batch(X, 5, dtype=np.float32)
    assert narrow.dtype == np.float32
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))


def test_estimator_float32_agrees_with_float64():
    X, y = videos()
    wide = PyramidMKLClassifier(levels=3, tol=1e-6).fit(X, y)
    narrow = PyramidMKLClassifier(levels=3, dtype="float32", tol=1e-6).fit(X, y)
    assert narrow.objective_ == pytest.approx(wide.objective_, rel=1e-6)
    np.testing.assert_allclose(narrow.decision_function(X), wide.decision_function(X),
                               atol=1e-3)


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


def test_pca_with_all_components_keeps_the_kernels():
    X, y = videos(d=4)
    full = PyramidMKLClassifier(levels=2).fit(X, y)
    reduced = PyramidMKLClassifier(levels=2, pca_components=4, random_state=0).fit(X, y)
    np.testing.assert_allclose(reduced.beta_, full.beta_, atol=1e-6)
    np.testing.assert_allclose(reduced.decision_function(X), full.decision_function(X),
                               atol=1e-6)
    fewer = PyramidMKLClassifier(levels=2, pca_components=2, random_state=0).fit(X, y)
    assert fewer.decision_function(X).shape == (len(X), 3)


def test_beta_init_from_a_coarser_pyramid_reaches_the_cold_start_optimum():
    X, y = videos()
    coarse = PyramidMKLClassifier(levels=2, tol=1e-4).fit(X, y)
    cold = PyramidMKLClassifier(levels=3, tol=1e-4).fit(X, y)
    warm = PyramidMKLClassifier(levels=3, tol=1e-4, beta_init=coarse.beta_).fit(X, y)
    assert warm.objective_ == pytest.approx(cold.objective_, rel=2e-4)
    with pytest.raises(ValueError, match="beta_init"):
        PyramidMKLClassifier(levels=2, beta_init=np.ones(7)).fit(X, y)
    with pytest.raises(ValueError, match="beta_init"):
        PyramidMKLClassifier(levels=3, beta_init=np.ones(5)).fit(X, y)


@pytest.mark.parametrize("name, value, message", [
    ("solver", "gpu", "solver must be one of"),
    ("beta_method", "simple", "beta_method must be one of"),
    ("cache_size", -1, "cache_size must be"),
    ("dtype", "float16", "dtype must be"),
    ("dtype", "not-a-type", "dtype must be"),
    ("pca_components", 0, "pca_components must be"),
])
def test_bad_performance_parameters_name_the_culprit(name, value, message):
    X, y = videos(n=12)
    with pytest.raises(ValueError, match=message):
        PyramidMKLClassifier(**{name: value}).fit(X, y)


# --- torch --------------------------------------------------------------------------------

def test_torch_solver_matches_libsvm_on_cpu():
    pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    from mkl_tp.solvers.torch_svm import svm_duals_torch

    blocks, Y = problem(seed=10)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "cross")
    reference = svm_duals(kernel, Y, 1.0, tol=1e-8)
    duals, info = svm_duals_torch(kernel, Y, 1.0, tol=1e-9, device="cpu")
    assert info["device"] == "cpu"
    np.testing.assert_allclose(duals.objective, reference.objective, rtol=1e-7)
    np.testing.assert_allclose(decisions(kernel, duals), decisions(kernel, reference),
                               atol=1e-3)
    numpy_duals, _ = svm_duals_batch(kernel, Y, 1.0, tol=1e-9)
    np.testing.assert_allclose(duals.objective, numpy_duals.objective, rtol=1e-10)


def test_estimator_torch_solver_on_cpu_matches_libsvm():
    pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    X, y = videos()
    reference = PyramidMKLClassifier(levels=3).fit(X, y)
    fast = PyramidMKLClassifier(levels=3, solver="torch", device="cpu").fit(X, y)
    assert fast.objective_ == pytest.approx(reference.objective_, rel=1e-4)
    np.testing.assert_array_equal(fast.predict(X), reference.predict(X))


def test_torch_solver_on_gpu_matches_cpu():
    torch = pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine: the GPU path cannot run here")
    from mkl_tp.solvers.torch_svm import svm_duals_torch

    blocks, Y = problem(seed=11)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    cpu, _ = svm_duals_torch(kernel, Y, 1.0, tol=1e-9, device="cpu")
    gpu, _ = svm_duals_torch(kernel, Y, 1.0, tol=1e-9, device="cuda")
    np.testing.assert_allclose(gpu.objective, cpu.objective, rtol=1e-8)


def test_core_import_and_default_fit_do_not_import_torch():
    code = ("import sys, numpy as np; import mkl_tp; "
            "from mkl_tp import PyramidMKLClassifier; rng = np.random.default_rng(0); "
            "X = [rng.normal(size=(5, 3)) for _ in range(8)]; "
            "PyramidMKLClassifier(levels=2).fit(X, [0, 1] * 4); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_solver_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "mkl_tp.solvers.torch_svm", raising=False)
    with pytest.raises(ImportError, match=r"mkl_tp\[deep\]"):
        importlib.import_module("mkl_tp.solvers.torch_svm")


# --- descriptors from shared boundaries -------------------------------------------------

def per_node_end_descriptors(x, levels):
    """The per-node-end formula (two gathers per node), the previous implementation."""
    from mkl_tp.pyramid import node_bounds

    T = x.shape[0]
    prefix = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    out = []
    for a, b in node_bounds(levels):
        ends = []
        for boundary in (a, b):
            j = min(int(np.floor(boundary * T)), T - 1)
            ends.append(prefix[j] + (boundary * T - j) * x[j])
        out.append((ends[1] - ends[0]) / ((b - a) * T))
    return np.array(out)


def test_shared_boundary_descriptors_are_bitwise_the_per_node_formula():
    rng = np.random.default_rng(3)
    X = [rng.normal(size=(T, 7)) for T in (1, 2, 3, 7, 31, 32, 33, 100)]
    for levels in (1, 4, 6):
        batch = node_descriptors_batch(X, levels)
        for i, x in enumerate(X):
            np.testing.assert_array_equal(batch[i], per_node_end_descriptors(x, levels))
