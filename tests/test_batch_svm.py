"""The batched dual solver (numpy and torch) against libsvm and cvxpy.

Tolerances: see tests/_problems.py.
"""

import importlib
import sys
import warnings

import cvxpy as cp
import numpy as np
import pytest
from _problems import decisions, problem

from mkl_tp.kernels.combine import combined_kernel
from mkl_tp.solvers import svm_duals
from mkl_tp.solvers.batch_svm import kkt_violation, project, svm_duals_batch
from mkl_tp.solvers.svm import one_vs_rest_labels


def test_projection_matches_cvxpy():
    rng = np.random.default_rng(1)
    Y = np.where(rng.random((15, 3)) < 0.4, 1.0, -1.0)
    lo, hi = np.where(Y > 0, 0.0, -0.7), np.where(Y > 0, 0.7, 0.0)
    V = rng.normal(size=Y.shape)
    projected = project(V, lo, hi)
    for c in range(3):
        a = cp.Variable(15)
        cp.Problem(
            cp.Minimize(cp.sum_squares(a - V[:, c])), [a >= lo[:, c], a <= hi[:, c], cp.sum(a) == 0]
        ).solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        np.testing.assert_allclose(projected[:, c], a.value, atol=1e-8)
    np.testing.assert_allclose(projected.sum(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("kind", ["linear", "cross"])
def test_batch_duals_match_libsvm(kind, C):
    blocks, Y = problem()
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), kind)
    reference = svm_duals(kernel, Y, C)
    fast = svm_duals_batch(kernel, Y, C, tol=1e-9)
    info = fast.info
    assert info["violation"].max() <= 1e-9
    # Both optima of the same strictly concave-in-decisions problem: objectives agree to
    # libsvm's accuracy (its gap 1e-5 times the O(1) gradient scale gives ~1e-9 relative).
    np.testing.assert_allclose(fast.objective, reference.objective, rtol=1e-7)
    np.testing.assert_allclose(decisions(kernel, fast), decisions(kernel, reference), atol=1e-3)
    np.testing.assert_allclose(fast.intercept, reference.intercept, atol=1e-3)


def test_batch_duals_match_cvxpy_dual_tightly():
    blocks, Y = problem(seed=3, n=30)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    fast = svm_duals_batch(kernel, Y, 1.0, tol=1e-10)
    for c in range(Y.shape[1]):
        alpha = cp.Variable(30)
        factor = np.linalg.cholesky(kernel + 1e-10 * np.eye(30))
        objective = cp.sum(alpha) - 0.5 * cp.sum_squares(factor.T @ cp.multiply(alpha, Y[:, c]))
        optimum = cp.Problem(
            cp.Maximize(objective), [alpha >= 0, alpha <= 1.0, Y[:, c] @ alpha == 0]
        ).solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
        assert fast.objective[c] == pytest.approx(optimum, rel=1e-8)
        # K a = Phi w is unique at the optimum (the primal is strongly convex in w).
        np.testing.assert_allclose(
            kernel @ fast.coef[:, c], kernel @ (alpha.value * Y[:, c]), atol=1e-6
        )


def test_batch_warm_start_reaches_the_same_optimum_and_needs_fewer_iterations():
    blocks, Y = problem(seed=2, n=60)
    first, _ = combined_kernel(blocks, np.array([0.4, 0.3, 0.2, 0.1]), "linear")
    second, _ = combined_kernel(blocks, np.array([0.35, 0.35, 0.2, 0.1]), "linear")
    start = svm_duals_batch(first, Y, 1.0, tol=1e-8)
    cold = svm_duals_batch(second, Y, 1.0, tol=1e-8)
    cold_info = cold.info
    warm = svm_duals_batch(second, Y, 1.0, tol=1e-8, init=start.coef)
    warm_info = warm.info
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
    fast = svm_duals_batch(kernel, Y, C, tol=1e-10)
    reference = svm_duals(kernel, Y, C)
    lo, hi = np.where(Y > 0, 0.0, -C), np.where(Y > 0, C, 0.0)
    assert not ((fast.coef > lo + 1e-12) & (fast.coef < hi - 1e-12)).any()
    np.testing.assert_allclose(fast.intercept, reference.intercept, atol=1e-6)
    np.testing.assert_allclose(decisions(kernel, fast), decisions(kernel, reference), atol=1e-6)


def test_intercept_with_every_variable_free_is_their_mean_gradient_without_warnings():
    # No variable at a bound: the middle of the bounded variables' interval does not
    # exist (it was computed as inf - inf, a RuntimeWarning) and is not used.
    from mkl_tp.solvers._common import libsvm_intercept

    gradient = np.array([[0.2], [0.4], [-0.3]])
    A = np.array([[0.5], [-0.25], [-0.25]])
    lo, hi = np.array([[0.0], [-1.0], [-1.0]]), np.array([[1.0], [0.0], [0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = libsvm_intercept(gradient, A, lo, hi)
    np.testing.assert_allclose(b, [-0.1])


def test_kkt_violation_is_zero_at_the_reference_optimum_and_positive_elsewhere():
    blocks, Y = problem(seed=5)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    fast = svm_duals_batch(kernel, Y, 1.0, tol=1e-10)
    lo, hi = np.where(Y > 0, 0.0, -1.0), np.where(Y > 0, 1.0, 0.0)
    assert kkt_violation(kernel @ fast.coef - Y, fast.coef, lo, hi).max() <= 1e-10
    zero = np.zeros_like(Y)
    assert (kkt_violation(-Y, zero, lo, hi) > 1.0).all()


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")  # a true reference
def test_torch_solver_matches_libsvm_on_cpu():
    pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    from mkl_tp.solvers.torch_svm import svm_duals_torch

    blocks, Y = problem(seed=10)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "cross")
    reference = svm_duals(kernel, Y, 1.0, tol=1e-6)
    duals = svm_duals_torch(kernel, Y, 1.0, tol=1e-9, device="cpu")
    info = duals.info
    assert info["device"] == "cpu"
    np.testing.assert_allclose(duals.objective, reference.objective, rtol=1e-7)
    np.testing.assert_allclose(decisions(kernel, duals), decisions(kernel, reference), atol=1e-3)
    numpy_duals = svm_duals_batch(kernel, Y, 1.0, tol=1e-9)
    np.testing.assert_allclose(duals.objective, numpy_duals.objective, rtol=1e-10)


def test_torch_solver_on_gpu_matches_cpu():
    torch = pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine: the GPU path cannot run here")
    from mkl_tp.solvers.torch_svm import svm_duals_torch

    blocks, Y = problem(seed=11)
    kernel, _ = combined_kernel(blocks, np.full(4, 0.25), "linear")
    cpu = svm_duals_torch(kernel, Y, 1.0, tol=1e-9, device="cpu")
    gpu = svm_duals_torch(kernel, Y, 1.0, tol=1e-9, device="cuda")
    np.testing.assert_allclose(gpu.objective, cpu.objective, rtol=1e-8)


def test_torch_solver_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "mkl_tp.solvers.torch_svm", raising=False)
    with pytest.raises(ImportError, match=r"mkl_tp\[deep\]"):
        importlib.import_module("mkl_tp.solvers.torch_svm")


def test_every_alpha_step_solver_returns_svm_duals_with_info():
    from mkl_tp.kernels.combine import weighted_features
    from mkl_tp.solvers import SVMDuals
    from mkl_tp.solvers.primal import svm_duals_primal

    blocks, Y = problem()
    beta = np.full(4, 0.25)
    kernel, _ = combined_kernel(blocks, beta, "linear")
    results = [
        svm_duals(kernel, Y, 1.0),
        svm_duals_batch(kernel, Y, 1.0, tol=1e-9),
        svm_duals_primal(weighted_features(blocks, beta, "linear"), Y, 1.0, tol=1e-9),
    ]
    for duals in results:
        assert isinstance(duals, SVMDuals) and isinstance(duals.info, dict)
        assert duals.coef.shape == Y.shape and duals.objective.shape == (Y.shape[1],)
    assert all("n_iter" in duals.info for duals in results[1:])
    # Duals assembled from parts carry no info.
    assert SVMDuals(*results[0][:3]).info is None
