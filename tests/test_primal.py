"""The primal alpha-step (no N x N kernel) against libsvm, cvxpy and the dual MKL path.

Tolerances: see tests/_problems.py.
"""

import warnings

import cvxpy as cp
import numpy as np
import pytest
from _problems import decisions, problem, videos
from sklearn.exceptions import ConvergenceWarning

from mkl_tp import PyramidMKLClassifier
from mkl_tp.kernels.combine import combined_kernel, node_gram, weighted_features
from mkl_tp.solvers import fit_mkl, svm_duals
from mkl_tp.solvers._line_search import line_search, sorted_line_search
from mkl_tp.solvers.batch_svm import kkt_violation
from mkl_tp.solvers.primal import FeatureOperator, svm_duals_primal
from mkl_tp.solvers.svm import one_vs_rest_labels


def features_of(blocks, beta, kind):
    """``(Z, D, K)``: weighted features, normaliser, and the kernel ``Z Z' / D``."""
    Z = weighted_features(blocks, beta, kind)
    D = float(beta @ node_gram(blocks) @ beta) if kind == "cross" else 1.0
    K, normaliser = combined_kernel(blocks, beta, kind)
    assert normaliser == pytest.approx(D, rel=1e-12)
    return Z, D, K


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("kind", ["linear", "cross"])
def test_primal_duals_match_libsvm(kind, C):
    blocks, Y = problem()
    Z, D, K = features_of(blocks, np.full(4, 0.25), kind)
    reference = svm_duals(K, Y, C, tol=1e-5)
    duals = svm_duals_primal(Z, Y, C, tol=1e-9, scale=D)
    info = duals.info
    assert info["violation"].max() <= 1e-9
    lo, hi = np.where(Y > 0, 0.0, -C), np.where(Y > 0, C, 0.0)
    assert (duals.coef >= lo).all() and (duals.coef <= hi).all()
    np.testing.assert_allclose(duals.coef.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(duals.objective, reference.objective, rtol=1e-7)
    np.testing.assert_allclose(decisions(K, duals), decisions(K, reference), atol=1e-3)
    np.testing.assert_allclose(info["weights"], Z.T @ duals.coef / np.sqrt(D), atol=1e-12)


def test_primal_duals_match_cvxpy_dual_tightly():
    blocks, Y = problem(seed=3, n=30)
    Z, _, K = features_of(blocks, np.full(4, 0.25), "linear")
    duals = svm_duals_primal(Z, Y, 1.0, tol=1e-10)
    for c in range(Y.shape[1]):
        alpha = cp.Variable(30)
        objective = cp.sum(alpha) - 0.5 * cp.sum_squares(Z.T @ cp.multiply(alpha, Y[:, c]))
        optimum = cp.Problem(
            cp.Maximize(objective), [alpha >= 0, alpha <= 1.0, Y[:, c] @ alpha == 0]
        ).solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
        assert duals.objective[c] == pytest.approx(optimum, rel=1e-8)
        # w = Z'a is unique at the optimum (the primal is strongly convex in w).
        np.testing.assert_allclose(Z.T @ duals.coef[:, c], Z.T @ (alpha.value * Y[:, c]), atol=1e-6)


def test_primal_intercept_without_free_variables_is_libsvms():
    # Tiny C and balanced labels: every dual at C, no free variable; libsvm takes the
    # middle of the feasible interval of b.
    blocks, _ = problem(seed=4)
    Y = one_vs_rest_labels(np.arange(40) % 2, 2)
    Z, _, K = features_of(blocks, np.full(4, 0.25), "linear")
    duals = svm_duals_primal(Z, Y, 1e-3, tol=1e-10)
    reference = svm_duals(K, Y, 1e-3)
    np.testing.assert_allclose(duals.intercept, reference.intercept, atol=1e-6)
    np.testing.assert_allclose(decisions(K, duals), decisions(K, reference), atol=1e-6)


def test_primal_warm_start_reaches_the_same_optimum_in_fewer_newton_steps():
    blocks, Y = problem(seed=2, n=60)
    first = weighted_features(blocks, np.array([0.4, 0.3, 0.2, 0.1]), "linear")
    second = weighted_features(blocks, np.array([0.35, 0.35, 0.2, 0.1]), "linear")
    start = svm_duals_primal(first, Y, 1.0, tol=1e-8)
    cold = svm_duals_primal(second, Y, 1.0, tol=1e-8)
    cold_info = cold.info
    warm = svm_duals_primal(second, Y, 1.0, tol=1e-8, init=start.coef)
    warm_info = warm.info
    np.testing.assert_allclose(warm.objective, cold.objective, rtol=1e-10)
    K = second @ second.T
    np.testing.assert_allclose(decisions(K, warm), decisions(K, cold), atol=1e-6)
    assert warm_info["n_iter"] < cold_info["n_iter"]


def test_line_search_finds_the_minimum_along_the_direction():
    # phi(t) = 1/2 ||w + t d||^2 + 1/s sum psi(T0 - s t Q) against a dense grid.
    rng = np.random.default_rng(0)
    n, sigma, C = 50, 3.0, 1.0
    T0, Q = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    w, d = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))

    def psi(t):
        return np.where(t <= 0, 0.0, np.where(t >= C, C * t - C * C / 2, t * t / 2))

    step = line_search(np, (w * d).sum(0), (d * d).sum(0), T0, Q, sigma, C)
    few = line_search(np, (w * d).sum(0), (d * d).sum(0), T0, Q, sigma, C, n_trials=1)
    exact = sorted_line_search(np, (w * d).sum(0), (d * d).sum(0), T0, Q, sigma, C)
    descent = (w * d).sum(0) - (np.clip(T0, 0, C) * Q).sum(0) < 0
    assert descent.any()
    grid = np.linspace(0, 3, 30001)
    for c in np.flatnonzero(descent):
        values = [
            0.5 * np.sum((w[:, c] + t * d[:, c]) ** 2)
            + psi(T0[:, c] - sigma * t * Q[:, c]).sum() / sigma
            for t in grid
        ]
        assert step[c] == pytest.approx(grid[int(np.argmin(values))], abs=2e-4)
    # Along descent directions the Newton search, the sorted search and the Newton
    # search's fallback agree to rounding; elsewhere the step is 0.
    np.testing.assert_allclose(step[descent], exact[descent], rtol=1e-10)
    np.testing.assert_allclose(few[descent], exact[descent], rtol=1e-10)
    assert (step[~descent] == 0).all()


def test_feature_operator_scales_products_and_rows():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(7, 3))
    operator = FeatureOperator(Z, scale=4.0)
    V = rng.normal(size=(7, 2))
    np.testing.assert_allclose(operator.matmul(operator.rmatmul(V)), Z @ Z.T @ V / 4.0)
    np.testing.assert_allclose(operator.rows(np.array([2, 5])), Z[[2, 5]] / 2.0)


def test_primal_on_float32_features_agrees_with_float64():
    blocks, Y = problem(seed=6)
    Z, _, K = features_of(blocks, np.full(4, 0.25), "linear")
    single = svm_duals_primal(Z.astype(np.float32), Y, 1.0, tol=1e-5)
    double = svm_duals_primal(Z, Y, 1.0, tol=1e-5)
    np.testing.assert_allclose(single.objective, double.objective, rtol=1e-5)


def test_primal_in_torch_on_cpu_matches_numpy():
    torch = pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    blocks, Y = problem(seed=10)
    Z, D, K = features_of(blocks, np.full(4, 0.25), "cross")
    numpy_duals = svm_duals_primal(Z, Y, 1.0, tol=1e-9, scale=D)
    torch_duals = svm_duals_primal(torch.as_tensor(Z), Y, 1.0, tol=1e-9, scale=D)
    info = torch_duals.info
    assert info["violation"].max() <= 1e-9
    np.testing.assert_allclose(torch_duals.objective, numpy_duals.objective, rtol=1e-10)
    np.testing.assert_allclose(decisions(K, torch_duals), decisions(K, numpy_duals), atol=1e-6)


def test_primal_on_gpu_matches_cpu():
    torch = pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine: the GPU path cannot run here")
    blocks, Y = problem(seed=11)
    Z, _, _ = features_of(blocks, np.full(4, 0.25), "linear")
    cpu = svm_duals_primal(Z, Y, 1.0, tol=1e-9)
    gpu = svm_duals_primal(torch.as_tensor(Z, device="cuda"), Y, 1.0, tol=1e-9)
    np.testing.assert_allclose(gpu.objective, cpu.objective, rtol=1e-9)
    np.testing.assert_allclose(gpu.coef, cpu.coef, atol=1e-6)


# MKL fits compared on beta and decisions run at a tight tol (tests/_problems.py).
_FITS = [("linear", 1.0), ("linear", 2.0), ("cross", 1.0)]


@pytest.mark.parametrize("pyramids", ["shared", "per_class"])
@pytest.mark.parametrize("kernel,mkl_norm", _FITS)
def test_primal_mkl_matches_the_libsvm_reference(kernel, mkl_norm, pyramids):
    blocks, Y = problem(seed=1, n=60)
    options = dict(kernel=kernel, mkl_norm=mkl_norm, pyramids=pyramids, tol=1e-6, max_iter=300)
    reference = fit_mkl(blocks, Y, solver="libsvm", **options)
    primal = fit_mkl(blocks, Y, solver="primal", **options)
    assert primal.kernel_cached is False
    # J to the loops' tolerance; beta and decisions to about sqrt(tol) (flat directions).
    # The cross loop stops on a small decrease, not on a certificate, so its weights are
    # compared more loosely.
    assert primal.objective == pytest.approx(reference.objective, rel=1e-5)
    np.testing.assert_allclose(
        primal.beta, reference.beta, atol=3e-3 if kernel == "linear" else 1e-2
    )
    # The primal SVMs are libsvm's at the primal's own weights (decisions to libsvm's
    # accuracy, 1e-3).
    for c in range(Y.shape[1]):
        beta = primal.beta if pyramids == "shared" else primal.beta[c]
        scale = primal.normaliser if pyramids == "shared" else primal.normaliser[c]
        K, _ = combined_kernel(blocks, beta, kernel)
        if kernel == "linear":  # lp fits fold the weights' sum into the normaliser
            K = K / scale
        libsvm = svm_duals(K, Y[:, [c]], 1.0, tol=1e-6)
        np.testing.assert_allclose(
            K @ primal.duals.coef[:, c] + primal.duals.intercept[c],
            decisions(K, libsvm)[:, 0],
            atol=1e-3,
        )


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_estimator_primal_solver_matches_libsvm(kernel):
    X, y = videos(n=48, seed=3)
    options = dict(levels=3, kernel=kernel, mkl_norm=1.0, tol=1e-6, max_iter=300)
    reference = PyramidMKLClassifier(solver="libsvm", **options).fit(X, y)
    primal = PyramidMKLClassifier(solver="primal", **options).fit(X, y)
    X_test, _ = videos(n=30, seed=4)
    assert primal.objective_ == pytest.approx(reference.objective_, rel=1e-5)
    np.testing.assert_allclose(primal.beta_, reference.beta_, atol=3e-3)
    np.testing.assert_allclose(
        primal.decision_function(X_test), reference.decision_function(X_test), atol=2e-2
    )


def test_primal_kkt_of_the_returned_duals_is_below_tol():
    blocks, Y = problem(seed=7, n=80)
    Z, D, K = features_of(blocks, np.full(4, 0.25), "cross")
    duals = svm_duals_primal(Z, Y, 1.0, tol=1e-6, scale=D)
    info = duals.info
    lo, hi = np.where(Y > 0, 0.0, -1.0), np.where(Y > 0, 1.0, 0.0)
    assert kkt_violation(K @ duals.coef - Y, duals.coef, lo, hi).max() <= 1e-6
    np.testing.assert_allclose(
        info["violation"], kkt_violation(K @ duals.coef - Y, duals.coef, lo, hi), atol=1e-9
    )


def test_line_search_in_chunks_of_tasks_gives_the_same_duals(monkeypatch):
    from mkl_tp.solvers import _line_search

    blocks, Y = problem()
    Z, _, K = features_of(blocks, np.full(4, 0.25), "linear")
    whole = svm_duals_primal(Z, Y, 1.0, tol=1e-9)
    monkeypatch.setattr(_line_search, "_LINE_SEARCH_CHUNK", 3 * len(Z))  # one task per chunk
    chunked = svm_duals_primal(Z, Y, 1.0, tol=1e-9)
    np.testing.assert_allclose(chunked.objective, whole.objective, rtol=1e-12)
    np.testing.assert_allclose(decisions(K, chunked), decisions(K, whole), atol=1e-9)


@pytest.mark.parametrize("classes", [2, 4])
def test_coarse_start_reaches_the_libsvm_optimum(monkeypatch, classes):
    # A cold solve on "many" videos starts from the solution on a stratified quarter
    # (recursively: 400 -> 100 -> about 25 videos here); the optimum is the same.
    from mkl_tp.solvers import primal

    blocks, Y = problem(seed=5, n=400, classes=classes)
    Z, _, K = features_of(blocks, np.full(4, 0.25), "linear")
    monkeypatch.setattr(primal, "_COARSE_MIN_VIDEOS", 50)
    starts = []
    solve = primal.svm_duals_primal

    def counted(features, *args, **kwargs):
        starts.append(len(features))
        return solve(features, *args, **kwargs)

    monkeypatch.setattr(primal, "svm_duals_primal", counted)
    duals = solve(Z, Y, 1.0, tol=1e-8)
    info = duals.info
    assert starts[0] == 100 and len(starts) == 2 and 20 <= starts[1] <= 30
    reference = svm_duals(K, Y, 1.0, tol=1e-6)
    assert info["violation"].max() <= 1e-8
    np.testing.assert_allclose(duals.objective, reference.objective, rtol=1e-6)
    np.testing.assert_allclose(decisions(K, duals), decisions(K, reference), atol=1e-3)


def test_newton_systems_in_threads_give_the_one_thread_duals():
    blocks, Y = problem(seed=6, n=120, classes=5)
    Z, _, K = features_of(blocks, np.full(4, 0.25), "cross")
    one = svm_duals_primal(Z, Y, 1.0, tol=1e-9, n_threads=1)
    one_info = one.info
    three = svm_duals_primal(Z, Y, 1.0, tol=1e-9, n_threads=3)
    three_info = three.info
    assert three_info["n_iter"] == one_info["n_iter"]
    np.testing.assert_allclose(three.coef, one.coef, rtol=0, atol=1e-12)
    np.testing.assert_allclose(three.intercept, one.intercept, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel,coarse", [("linear", True), ("cross", False)])
def test_mkl_alpha_steps_use_the_coarse_start_for_the_linear_kernel_only(
    monkeypatch, kernel, coarse
):
    from mkl_tp.solvers import primal

    blocks, Y = problem(seed=8, n=120, classes=3)
    monkeypatch.setattr(primal, "_COARSE_MIN_VIDEOS", 50)
    calls = []
    coarse_start = primal._coarse_start

    def counted(*args, **kwargs):
        calls.append(args[0].shape[0])
        return coarse_start(*args, **kwargs)

    monkeypatch.setattr(primal, "_coarse_start", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # three alpha-steps suffice here
        fit_mkl(blocks, Y, kernel=kernel, solver="primal", max_iter=3, tol=1e-3)
    assert bool(calls) == coarse


def nearly_constant_rows(n=3000, m=16, classes=3, seed=0):
    """float32 rows that differ by 1% around one vector: no class separates, and the
    products' rounding bounds the Newton gradient above ``_NEWTON_RTOL``."""
    rng = np.random.default_rng(seed)
    Z = (1.0 + 1e-2 * rng.standard_normal((n, m))).astype(np.float32)
    return Z, one_vs_rest_labels(rng.integers(0, classes, n), classes)


def test_newton_stops_a_task_whose_line_search_finds_no_descent(monkeypatch):
    # A zero step leaves the task's state unchanged: computing its direction again would
    # repeat the same direction and zero step (up to max_newton times per outer step).
    from mkl_tp.solvers import primal

    Z, Y = nearly_constant_rows()
    seen, repeats = set(), 0
    directions = primal._newton_directions

    def recording(operator, inside, tasks, sigma, G_w, G_b, n_threads):
        nonlocal repeats
        for c in tasks:
            state = (float(sigma), G_w[:, c].tobytes(), float(G_b[c]))
            repeats += state in seen
            seen.add(state)
        return directions(operator, inside, tasks, sigma, G_w, G_b, n_threads)

    monkeypatch.setattr(primal, "_newton_directions", recording)
    duals = svm_duals_primal(Z, Y, 1.0, tol=1e-4)
    info = duals.info
    assert repeats == 0
    assert info["n_iter"] < 50 * info["n_outer"]


def test_returned_duals_keep_bounded_coordinates_on_their_bounds():
    # Where nothing separates, every positive sits at C; balancing 1'a = 0 over all
    # coordinates (the Euclidean projection) moved them a rounding error off C, and the
    # maximal violating pair then read 2 on a solve that had converged.
    Z, Y = nearly_constant_rows()
    duals = svm_duals_primal(Z, Y, 1.0, tol=1e-4)
    info = duals.info
    K = Z.astype(np.float64) @ Z.T.astype(np.float64)
    lo, hi = np.where(Y > 0, 0.0, -1.0), np.where(Y > 0, 1.0, 0.0)
    A = duals.coef
    assert np.all(A >= lo) and np.all(A <= hi)
    np.testing.assert_allclose(A.sum(axis=0), 0.0, atol=1e-9)
    assert kkt_violation(K @ A - Y, A, lo, hi).max() <= 1e-4
    assert info["violation"].max() <= 1e-4


def test_balance_moves_only_free_coordinates_and_falls_back_to_the_projection():
    from mkl_tp.solvers.batch_svm import project
    from mkl_tp.solvers.primal import _balance

    lo = np.tile([[0.0], [0.0], [-1.0], [-1.0]], 3)  # two positives, two negatives
    hi = np.tile([[1.0], [1.0], [0.0], [0.0]], 3)
    # Column 0: residual 0.1 over its two free coordinates, a common shift of 0.05.
    # Column 1: a common shift would leave the box at row 1; the free coordinates are
    # projected with rows 0 and 3 pinned. Column 2: nothing free, the full projection.
    A = np.array([[1.0, 1.0, 1.0], [0.5, 0.05, 1.0], [-0.4, -0.9, 0.0], [-1.0, 0.0, -1.0]])
    balanced = _balance(A, lo, hi)
    np.testing.assert_allclose(balanced[:, 0], [1.0, 0.45, -0.45, -1.0], atol=1e-13)
    alone = _balance(A[:, :1], lo[:, :1], hi[:, :1])  # the shift, without a bisection
    np.testing.assert_allclose(alone[:, 0], [1.0, 0.45, -0.45, -1.0], atol=1e-15)
    np.testing.assert_allclose(balanced[:, 1], [1.0, 0.0, -1.0, 0.0], atol=1e-13)
    np.testing.assert_allclose(balanced[:, 2], project(A[:, [2]], lo[:, [2]], hi[:, [2]])[:, 0])
    assert not np.allclose(balanced[:, 2], A[:, 2])
    np.testing.assert_allclose(balanced.sum(axis=0), 0.0, atol=1e-12)
