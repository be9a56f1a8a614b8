"""Solvers against independent references: cvxpy QPs/QCQPs, finite differences."""

from functools import partial

import cvxpy as cp
import numpy as np
import pytest
from _problems import problem
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold

from mkl_tp.kernels.combine import combined_kernel, node_gram, node_products
from mkl_tp.kernels.feature_maps import unit_diagonal_scales
from mkl_tp.solvers import (
    SimplexProjection,
    beta_least_norm,
    beta_step_level,
    beta_step_lp,
    beta_step_mirror,
    cross_gradient,
    cross_objective,
    fit_mkl,
    svm_duals,
)
from mkl_tp.solvers.mkl import resolve_beta_method
from mkl_tp.solvers.svm import one_vs_rest_labels


def tiny_problem(seed=0, n=24, nodes=3, width=4, classes=3, informative=1):
    """Scaled random node blocks where node ``informative`` carries the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    block = rng.normal(size=(n, nodes, width))
    block[:, informative, :classes] += 2.0 * np.eye(classes)[y]
    block /= np.sqrt(unit_diagonal_scales(block))[None, :, None]
    return [block], one_vs_rest_labels(y, classes)


def reference_svm_dual(K, labels, C):
    """The SVM dual solved by cvxpy (Clarabel): alpha and the optimum."""
    n = K.shape[0]
    alpha = cp.Variable(n)
    factor = np.linalg.cholesky(K + 1e-10 * np.eye(n))
    objective = cp.sum(alpha) - 0.5 * cp.sum_squares(factor.T @ cp.multiply(alpha, labels))
    problem = cp.Problem(cp.Maximize(objective), [alpha >= 0, alpha <= C, labels @ alpha == 0])
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    return alpha.value * labels, problem.value


def reference_linear_mkl(blocks, Y, C):
    """min over the simplex of the summed SVM duals, as one convex QCQP (cvxpy).

    By minimax, min_beta max_alpha sum_c 1'alpha_c - sum_p beta_p S_p(alpha)
    = max_alpha sum_c 1'alpha_c - max_p S_p(alpha); beta are the constraints' duals.
    """
    phi = blocks[0]
    n, nodes, _ = phi.shape
    alphas = [cp.Variable(n) for _ in range(Y.shape[1])]
    t = cp.Variable()
    constraints = []
    for alpha, labels in zip(alphas, Y.T):
        constraints += [alpha >= 0, alpha <= C, labels @ alpha == 0]
    node_constraints = [
        0.5 * sum(cp.sum_squares(phi[:, p].T @ cp.multiply(a, y)) for a, y in zip(alphas, Y.T)) <= t
        for p in range(nodes)
    ]
    problem = cp.Problem(
        cp.Maximize(sum(cp.sum(a) for a in alphas) - t), constraints + node_constraints
    )
    problem.solve(solver=cp.CLARABEL)
    beta = np.array([c.dual_value for c in node_constraints]).ravel()
    return problem.value, beta / beta.sum()


def reference_cross_objective(blocks, Y, C, beta):
    K, _ = combined_kernel(blocks, beta, "cross")
    return sum(reference_svm_dual(K, labels, C)[1] for labels in Y.T)


def test_svm_duals_match_cvxpy_dual():
    blocks, Y = tiny_problem()
    K, _ = combined_kernel(blocks, np.full(3, 1 / 3), "linear")
    duals = svm_duals(K, Y, C=0.7)
    for c, labels in enumerate(Y.T):
        coef, optimum = reference_svm_dual(K, labels, 0.7)
        assert duals.objective[c] == pytest.approx(optimum, rel=1e-6)
        np.testing.assert_allclose(duals.coef[:, c], coef, atol=2e-3)


@pytest.mark.parametrize("seed, n_cuts, n_nodes", [(3, 6, 4), (4, 1, 7), (5, 12, 15), (6, 3, 63)])
def test_lp_step_matches_cvxpy_lp(seed, n_cuts, n_nodes):
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(5, 10, size=n_cuts)
    slopes = rng.uniform(0, 8, size=(n_cuts, n_nodes))
    slopes[:, 1] = slopes[:, 0]  # two identical nodes: the optimum is not unique
    beta, theta = beta_step_lp(offsets, slopes)
    b, t = cp.Variable(n_nodes), cp.Variable()
    problem = cp.Problem(cp.Minimize(t), [offsets - slopes @ b <= t, b >= 0, cp.sum(b) == 1])
    problem.solve(solver=cp.CLARABEL)
    assert theta == pytest.approx(problem.value, rel=1e-7)
    assert beta.sum() == pytest.approx(1.0) and (beta >= 0).all()
    assert np.max(offsets - slopes @ beta) == pytest.approx(theta, rel=1e-7)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("scale", [1e-7, 1e-5, 1.0, 1e5])
def test_lp_step_bound_is_the_lp_optimum_from_below_and_highs_agrees(seed, scale, monkeypatch):
    # theta is the LP dual's value at the solver's multipliers: never above the LP optimum
    # (HiGHS's, an independent simplex solver), equal to it to rounding, on tied nodes and
    # badly scaled cuts; HiGHS takes over when Clarabel fails.
    from mkl_tp.solvers import beta as beta_module

    rng = np.random.default_rng(seed)
    offsets = rng.uniform(5, 10, size=9) * scale
    slopes = rng.uniform(0, 8, size=(9, 31)) * scale
    slopes[:, :10] = slopes[:, :1]
    beta, theta = beta_step_lp(offsets, slopes)
    reference_beta, optimum = beta_module._beta_step_highs(offsets, slopes)
    # HiGHS's weights are feasible: their cutting-plane value bounds the optimum from above.
    upper = np.max(offsets - slopes @ reference_beta)
    assert theta <= upper + 1e-12 * abs(upper)
    assert theta == pytest.approx(upper, rel=1e-8)
    assert theta == pytest.approx(optimum, rel=1e-8)
    assert np.max(offsets - slopes @ beta) == pytest.approx(upper, rel=1e-7)
    monkeypatch.setattr(beta_module, "_clarabel", lambda *args, **kwargs: None)
    fallback_beta, fallback_theta = beta_step_lp(offsets, slopes)
    np.testing.assert_array_equal(fallback_beta, reference_beta)
    assert fallback_theta == optimum


def sort_based_projection(v):
    """Euclidean projection onto the simplex (Held et al. 1974 / Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    rho = np.nonzero(u * np.arange(1, v.size + 1) > css - 1)[0][-1]
    return np.maximum(v - (css[rho] - 1) / (rho + 1.0), 0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_simplex_projection_matches_sort_based_reference(seed, offset):
    # The cross step keeps step * spread(gradient) <= 2, so targets spread over a few units;
    # a large common offset (the projection ignores it) must not hurt.
    v = np.random.default_rng(seed).normal(size=15) * 2 + offset
    np.testing.assert_allclose(SimplexProjection(15)(v), sort_based_projection(v), atol=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_level_step_and_least_norm_match_cvxpy(seed):
    rng = np.random.default_rng(seed)
    slopes = rng.uniform(0, 2, size=(5, 7))
    offsets = rng.uniform(1, 2, size=5)
    center = rng.dirichlet(np.ones(7))
    _, theta = beta_step_lp(offsets, slopes)
    level = theta + 0.3
    for result, target in [
        (beta_step_level(offsets, slopes, level, center), center),
        (beta_least_norm(offsets, slopes, level), np.zeros(7)),
    ]:
        b = cp.Variable(7)
        cp.Problem(
            cp.Minimize(cp.sum_squares(b - target)),
            [offsets - slopes @ b <= level, b >= 0, cp.sum(b) == 1],
        ).solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        np.testing.assert_allclose(result, b.value, atol=1e-6)
        assert np.all(offsets - slopes @ result <= level + 1e-7)
    # Below the LP bound the level set is empty.
    assert beta_step_level(offsets, slopes, theta - 0.1, center) is None
    assert beta_least_norm(offsets, slopes, theta - 0.1) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_mkl_matches_convex_qcqp_reference(seed):
    blocks, Y = tiny_problem(seed)
    result = fit_mkl(blocks, Y, kernel="linear", C=1.0, tol=1e-6, max_iter=200)
    optimum, beta_ref = reference_linear_mkl(blocks, Y, 1.0)
    assert result.converged
    assert result.objective == pytest.approx(optimum, rel=1e-3)
    np.testing.assert_allclose(result.beta, beta_ref, atol=2e-2)
    # The duality-gap certificate: J at the returned beta, re-solved independently.
    K, _ = combined_kernel(blocks, result.beta, "linear")
    recomputed = sum(reference_svm_dual(K, labels, 1.0)[1] for labels in Y.T)
    assert recomputed == pytest.approx(optimum, rel=1e-3)


def test_cross_gradient_matches_finite_differences():
    blocks, Y = tiny_problem(seed=4, n=16, nodes=3, width=3, classes=2)
    beta = np.array([0.5, 0.3, 0.2])
    K, _ = combined_kernel(blocks, beta, "cross")
    coef = np.column_stack([reference_svm_dual(K, labels, 1.0)[0] for labels in Y.T])
    gram, products = node_gram(blocks), node_products(blocks, coef)
    # cross_objective reproduces J at the same duals
    assert cross_objective(beta, np.abs(coef).sum(), products, gram) == pytest.approx(
        reference_cross_objective(blocks, Y, 1.0, beta), rel=1e-7
    )
    analytic = cross_gradient(beta, products, gram)
    step = 1e-5
    numeric = np.array(
        [
            (
                reference_cross_objective(blocks, Y, 1.0, beta + step * e)
                - reference_cross_objective(blocks, Y, 1.0, beta - step * e)
            )
            / (2 * step)
            for e in np.eye(3)
        ]
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["mirror", "projected"])
def test_cross_objective_decreases_monotonically(method):
    blocks, Y = tiny_problem(seed=5, nodes=5, informative=3)
    result = fit_mkl(blocks, Y, kernel="cross", C=1.0, tol=1e-8, max_iter=60, beta_method=method)
    history = np.array(result.history)
    assert len(history) > 2
    assert np.all(np.diff(history) <= 1e-9 * np.abs(history[:-1]))
    assert result.objective < history[0]
    # J reported = J re-solved independently at the returned beta.
    assert result.objective == pytest.approx(
        reference_cross_objective(blocks, Y, 1.0, result.beta), rel=1e-5
    )


@pytest.mark.parametrize("seed", range(3))
def test_mirror_step_matches_cvxpy_entropic_prox(seed):
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.ones(6))
    gradient = rng.normal(size=6) * 3
    step = 0.4
    candidate, divergence = beta_step_mirror(beta, gradient, step)
    b = cp.Variable(6)
    problem = cp.Problem(
        cp.Minimize(gradient @ (b - beta) + cp.sum(cp.rel_entr(b, beta)) / step),
        [cp.sum(b) == 1, b >= 0],
    )
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    # The exponential cone is solved to ~2e-6 here; the closed form must be at least as
    # good a minimiser as the interior point's answer.
    np.testing.assert_allclose(candidate, b.value, atol=2e-5)
    assert divergence == pytest.approx(np.sum(candidate * np.log(candidate / beta)), rel=1e-12)
    prox = lambda x: gradient @ (x - beta) + np.sum(x * np.log(x / beta)) / step  # noqa: E731
    assert prox(candidate) <= prox(np.clip(b.value, 1e-300, None)) + 1e-9
    # Huge steps go to the best vertex and keep every weight positive and finite.
    vertex, _ = beta_step_mirror(beta, gradient, 1e6)
    assert np.argmax(vertex) == np.argmin(gradient) and vertex.min() > 0
    assert np.isfinite(np.log(vertex)).all()


def test_cross_mirror_reaches_a_stationary_point():
    # On the simplex, beta is stationary iff dJ/dbeta_p is minimal wherever beta_p > 0:
    # the Frank-Wolfe gap g.beta - min_p g_p vanishes.
    blocks, Y = tiny_problem(seed=5, nodes=5, informative=3)
    result = fit_mkl(blocks, Y, kernel="cross", C=1.0, tol=1e-10, max_iter=300)
    K, _ = combined_kernel(blocks, result.beta, "cross")
    coef = np.column_stack([reference_svm_dual(K, labels, 1.0)[0] for labels in Y.T])
    gradient = cross_gradient(result.beta, node_products(blocks, coef), node_gram(blocks))
    gap = gradient @ result.beta - gradient.min()
    assert gap <= 1e-3 * abs(result.objective)
    # ...and a better one than the projected-gradient QP step from the same start here.
    projected = fit_mkl(
        blocks, Y, kernel="cross", C=1.0, tol=1e-10, max_iter=300, beta_method="projected"
    )
    assert result.objective <= projected.objective * (1 + 1e-6)


def test_mirror_start_with_zero_weights_can_still_move_them():
    blocks, Y = tiny_problem(seed=6, n=40, nodes=5, informative=2)
    start = np.array([0.5, 0.5, 0.0, 0.0, 0.0])
    result = fit_mkl(blocks, Y, kernel="cross", C=1.0, tol=1e-6, max_iter=200, beta=start)
    assert result.objective < reference_cross_objective(blocks, Y, 1.0, start)
    assert result.beta[2:].max() > 0.05  # weights that started at zero moved


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_planted_informative_node_gets_the_largest_weight(kernel):
    blocks, Y = tiny_problem(seed=6, n=40, nodes=5, informative=2)
    result = fit_mkl(blocks, Y, kernel=kernel, C=1.0, tol=1e-6, max_iter=200)
    assert np.argmax(result.beta) == 2


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_identical_nodes_get_equal_weight(kernel):
    blocks, Y = tiny_problem(seed=7, nodes=3)
    twin = np.concatenate([blocks[0], blocks[0][:, 1:2]], axis=1)  # node 3 == node 1
    result = fit_mkl([twin], Y, kernel=kernel, C=1.0, tol=1e-6, max_iter=200)
    assert result.beta[1] == pytest.approx(result.beta[3], abs=1e-4)


def test_max_iter_warns_and_returns_best_iterate():
    blocks, Y = tiny_problem(seed=8, nodes=6, informative=4)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        result = fit_mkl(blocks, Y, kernel="linear", tol=1e-12, max_iter=2)
    assert not result.converged and result.n_iter == 2
    assert result.objective == min(result.history)


@pytest.mark.parametrize("method", ["mirror", "projected"])
@pytest.mark.parametrize("max_iter", [2, 3, 4, 5])
def test_cross_max_iter_warns_even_while_backtracking(method, max_iter):
    # Running out of alpha-steps inside the line search is not convergence.
    blocks, Y = tiny_problem(seed=5, nodes=5, informative=3)
    with pytest.warns(ConvergenceWarning, match=f"max_iter={max_iter}"):
        result = fit_mkl(
            blocks, Y, kernel="cross", tol=1e-12, max_iter=max_iter, beta_method=method
        )
    assert not result.converged and result.n_iter == max_iter


def test_other_kernels_step_names_fall_back_to_the_default():
    # Like SVC's degree for non-polynomial kernels: a grid may vary kernel with the
    # beta_method fixed.
    assert resolve_beta_method("cross", "level") == "mirror"
    assert resolve_beta_method("linear", "projected") == "level"
    assert resolve_beta_method("cross", "projected") == "projected"
    assert resolve_beta_method("linear", "auto") == "level"
    with pytest.raises(ValueError, match="beta_method must be one of"):
        resolve_beta_method("linear", "simplex")
    blocks, Y = tiny_problem(seed=5, nodes=4)
    default = fit_mkl(blocks, Y, kernel="cross", tol=1e-6)
    legacy = fit_mkl(blocks, Y, kernel="cross", tol=1e-6, beta_method="level")
    np.testing.assert_array_equal(default.beta, legacy.beta)


def test_fixed_beta_runs_one_alpha_step():
    blocks, Y = tiny_problem()
    beta = np.array([0.0, 1.0, 0.0])
    result = fit_mkl(blocks, Y, beta=beta, learn=False)
    assert result.n_iter == 1
    np.testing.assert_array_equal(result.beta, beta)


@pytest.mark.parametrize("kind", ["linear", "cross"])
def test_fit_mkl_with_batch_solver_matches_libsvm(kind):
    blocks, Y = problem(seed=6)
    reference = fit_mkl(blocks, Y, kernel=kind, tol=1e-4)
    fast = fit_mkl(blocks, Y, kernel=kind, tol=1e-4, solver="batch", solver_options={"tol": 1e-9})
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


def test_fit_with_and_without_node_kernel_cache_agree():
    blocks, Y = problem(seed=9)
    cached = fit_mkl(blocks, Y, kernel="linear", tol=1e-4, cache_bytes=1e9)
    uncached = fit_mkl(blocks, Y, kernel="linear", tol=1e-4, cache_bytes=0)
    assert cached.kernel_cached and not uncached.kernel_cached
    assert cached.objective == pytest.approx(uncached.objective, rel=1e-6)
    np.testing.assert_allclose(cached.beta, uncached.beta, atol=1e-4)


# --- lp-norm MKL and per-class weights -----------------------------------------------------


def kloft_dual_reference(blocks, Y, C, p):
    """Kloft et al.'s convex lp-MKL in its dual form, by cvxpy (Clarabel).

    max_alpha sum_c 1'alpha_c - r ||S(alpha)||_{p*},  S_p = 1/2 sum_c a_c' K_p a_c,
    over the SVM dual constraints, with r = P^(1/p - 1); the weights follow from Hoelder's
    equality beta_p = r S_p^(p*-1) / ||S||_{p*}^(p*-1).
    """
    nodes = [b[:, q] for b in blocks for q in range(b.shape[1])]
    n, tasks = Y.shape
    conjugate = p / (p - 1.0)
    radius = len(nodes) ** (1.0 / p - 1.0)
    alphas = [cp.Variable(n) for _ in range(tasks)]
    quadratics = cp.hstack(
        [
            0.5 * sum(cp.sum_squares(x.T @ cp.multiply(alphas[c], Y[:, c])) for c in range(tasks))
            for x in nodes
        ]
    )
    constraints = [
        c for k in range(tasks) for c in (alphas[k] >= 0, alphas[k] <= C, Y[:, k] @ alphas[k] == 0)
    ]
    problem = cp.Problem(
        cp.Maximize(sum(cp.sum(a) for a in alphas) - radius * cp.pnorm(quadratics, conjugate)),
        constraints,
    )
    optimum = problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL
    S = quadratics.value
    beta = S ** (conjugate - 1.0)
    return optimum, beta / beta.sum()


@pytest.mark.parametrize("p", [4.0 / 3.0, 2.0, 4.0])
def test_lp_norm_mkl_matches_kloft_convex_formulation(p):
    blocks, Y = tiny_problem(seed=21, n=18, nodes=3, classes=2)
    optimum, beta = kloft_dual_reference(blocks, Y, 1.0, p)
    result = fit_mkl(blocks, Y, kernel="linear", tol=1e-6, mkl_norm=p, max_iter=500)
    assert result.converged
    # J at the returned weights is certified within tol of the bound: the same optimum.
    assert result.objective == pytest.approx(optimum, rel=1e-5)
    np.testing.assert_allclose(result.beta, beta, atol=2e-3)
    assert result.beta.sum() == pytest.approx(1.0)


def test_lp_norm_limits_are_simplex_and_uniform():
    blocks, Y = tiny_problem(seed=22, n=18, nodes=3)
    uniform = fit_mkl(blocks, Y, kernel="linear", learn=False)
    infinite = fit_mkl(blocks, Y, kernel="linear", mkl_norm=np.inf)
    np.testing.assert_allclose(infinite.beta, np.full(3, 1 / 3))
    assert infinite.objective == pytest.approx(uniform.objective, rel=1e-12)
    # Larger p spreads the weights: the sparse l1 solution is the least uniform.
    spreads = [
        np.abs(fit_mkl(blocks, Y, kernel="linear", tol=1e-5, mkl_norm=p).beta - 1 / 3).sum()
        for p in (1.0, 2.0, 8.0)
    ]
    assert spreads[0] >= spreads[1] >= spreads[2]
    with pytest.raises(ValueError, match="mkl_norm must be >= 1"):
        fit_mkl(blocks, Y, mkl_norm=0.5)


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_per_class_weights_are_independent_binary_fits(kernel):
    blocks, Y = tiny_problem(seed=23, n=24, nodes=3, classes=3)
    joint = fit_mkl(blocks, Y, kernel=kernel, tol=1e-5, pyramids="per_class", n_jobs=2)
    assert joint.beta.shape == (3, 3)
    for c in range(3):
        alone = fit_mkl(blocks, Y[:, [c]], kernel=kernel, tol=1e-5)
        np.testing.assert_allclose(joint.beta[c], alone.beta, atol=1e-9)
        np.testing.assert_allclose(joint.duals.coef[:, c], alone.duals.coef[:, 0], atol=1e-9)
    assert joint.objective == pytest.approx(
        sum(fit_mkl(blocks, Y[:, [c]], kernel=kernel, tol=1e-5).objective for c in range(3))
    )


def test_cross_fit_never_ends_above_any_start(caplog):
    import logging

    from mkl_tp.solvers.mkl import level_starts

    blocks, Y = tiny_problem(seed=24, n=30, nodes=7, informative=5)
    starts = [np.full(7, 1 / 7)] + level_starts(blocks)
    assert len(starts) == 4  # uniform and the three levels of a 7-node pyramid
    with caplog.at_level(logging.INFO, logger="mkl_tp.solvers._alternation"):
        result = fit_mkl(blocks, Y, kernel="cross", tol=1e-6, max_iter=200, verbose=1)
    logged = [r.getMessage() for r in caplog.records if "start" in r.getMessage()]
    assert len(logged) == 4
    returned = reference_cross_objective(blocks, Y, 1.0, result.beta)
    for start in starts:
        assert returned <= reference_cross_objective(blocks, Y, 1.0, start) + 1e-6


def noisy_node_problem(n, seed=0, nodes=8, classes=3, signal=1.0):
    """Node 1 carries a weak class signal; the other nodes are pure noise of equal scale."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    block = rng.normal(size=(n, nodes, 6))
    block[:, 1, :classes] += signal * np.eye(classes)[y]
    block /= np.sqrt(unit_diagonal_scales(block))[None, :, None]
    return [block], y


def recording_fit(log, what):
    """A linear ``fit`` for :func:`select_mkl_norm` that appends ``what(Y, p, kernels)``
    of every call to ``log``."""

    def fit(blocks, Y, mkl_norm, kernels=None, beta=None):
        log.append(what(Y, mkl_norm, kernels))
        return fit_mkl(
            blocks, Y, kernel="linear", tol=1e-3, mkl_norm=mkl_norm, kernels=kernels, beta=beta
        )

    return fit


def test_select_mkl_norm_learns_only_when_the_folds_show_a_gain():
    from functools import partial

    from mkl_tp.solvers.selection import select_mkl_norm

    fit = partial(fit_mkl, kernel="linear", tol=1e-4)
    # Plenty of videos and one informative node among noise: learning pays.
    blocks, y = noisy_node_problem(240)
    p, accuracy, _ = select_mkl_norm(fit, blocks, y, 3, "linear")
    assert p < np.inf
    assert accuracy[p] > accuracy[np.inf] + 0.05
    # The folds' accuracies are out-of-fold: check one candidate independently.
    folds = list(StratifiedKFold(3).split(np.zeros(240), y))
    right = 0
    for train, test in folds:
        result = fit([blocks[0][train]], one_vs_rest_labels(y[train], 3), mkl_norm=np.inf)
        K = combined_kernel([blocks[0]], np.full(8, 1 / 8), "linear")[0]
        scores = K[np.ix_(test, train)] @ result.duals.coef + result.duals.intercept
        right += np.sum(np.argmax(scores, axis=1) == y[test])
    assert accuracy[np.inf] == pytest.approx(right / 240)
    # Six videos per class: no gain can exceed one standard error; the weights stay uniform.
    blocks, y = noisy_node_problem(18, seed=1, signal=0.3)
    assert select_mkl_norm(fit, blocks, y, 3, "linear")[0] == np.inf
    # A class with a single video cannot be held out: uniform without folds.
    assert select_mkl_norm(fit, blocks, np.r_[[0] * 17, 1], 2, "linear") == (np.inf, {}, None)


def test_select_mkl_norm_judges_large_sets_on_astratified_subset():

    from mkl_tp._utils.sampling import stratified_subset
    from mkl_tp.solvers.selection import select_mkl_norm

    y = np.repeat([0, 1, 2], [50, 100, 150])
    keep = stratified_subset(y, 60)
    np.testing.assert_array_equal(np.bincount(y[keep]), [10, 20, 30])
    assert len(np.unique(keep)) == 60
    seen = []

    fit = recording_fit(seen, lambda Y, mkl_norm, kernels: len(Y))

    blocks, y = noisy_node_problem(300)
    select_mkl_norm(fit, blocks, y, 3, "linear", max_videos=90)
    assert max(seen) == 60  # two of three folds of the 90 videos kept
    # With the node kernels of all videos, each fold's are cut from them: same choice.
    from mkl_tp.solvers.gram import TrainingKernels

    full = TrainingKernels(blocks, "linear", cache_bytes=1e9)
    fold = full.subset(np.arange(0, 300, 2))
    np.testing.assert_array_equal(
        fold.combined(np.full(8, 1 / 8))[0],
        TrainingKernels(fold.blocks, "linear", cache_bytes=1e9).combined(np.full(8, 1 / 8))[0],
    )
    assert (
        select_mkl_norm(fit, blocks, y, 3, "linear", max_videos=90, kernels=full)[:2]
        == select_mkl_norm(fit, blocks, y, 3, "linear", max_videos=90)[:2]
    )


@pytest.mark.parametrize("n_folds", [None, 2, 3, 5])
def test_could_be_replaced_is_the_rule_on_every_possible_candidate(n_folds):
    """Brute force: a choice can be replaced iff some candidate's correctness passes the
    one-standard-error rule against it, the rule computed in floating point with the
    corrected variance of k-fold CV written out (Nadeau & Bengio: 1/k + 1/(k - 1) times
    the variance of one fold's mean, k / N times the per-video variance)."""
    from itertools import product

    from mkl_tp.solvers.selection import could_be_replaced, one_standard_error_choice

    def rule(chosen, other):
        """The rule in floating point, as written (exact ties excluded)."""
        d = other.astype(float) - chosen
        variance = d.var(ddof=1) / d.size
        if n_folds is not None:
            k = n_folds
            variance = (1 / k + 1 / (k - 1)) * d.var(ddof=1) / (d.size / k)
        mean, error = d.mean(), np.sqrt(variance)
        return None if np.isclose(mean, error, rtol=1e-9, atol=0) else mean > error

    others = {n: [np.array(o) for o in product([False, True], repeat=n)] for n in (5, 7, 10)}
    least_wrong = set()
    for n, most_wrong in ((5, 5), (7, 7), (10, 3)):  # 10 videos: exact ties of few videos
        for chosen in others[n]:
            if (~chosen).sum() > most_wrong:
                continue
            passes = [
                one_standard_error_choice({"p": chosen, "q": o}, ["p", "q"], n_folds) == "q"
                for o in others[n]
            ]
            for other, passed in zip(others[n], passes):
                assert rule(chosen, other) in (None, passed)
                if rule(chosen, other) is None:  # a tie: never a gain
                    assert not passed
            assert could_be_replaced(chosen, n_folds) == any(passes)
            if any(passes):
                least_wrong.add((n, int((~chosen).sum())))
    # Wrong videos the choice needs before anything can replace it, at 7 and 10 videos
    # (by hand: w (N - 1 + c) > c N with c = 1, 3, 2.5, 2.25; w = 2 at N = 10, k = 5 ties).
    fewest = {n: min(w for m, w in least_wrong if m == n) for n in (7, 10)}
    expected = {None: {7: 2, 10: 2}, 2: {7: 3, 10: 3}, 3: {7: 3, 10: 3}, 5: {7: 2, 10: 3}}
    assert fewest == expected[n_folds]


def test_select_mkl_norm_fits_no_other_candidate_when_uniform_is_right_out_of_fold():
    from mkl_tp.solvers.selection import select_mkl_norm

    norms = []

    fit = recording_fit(norms, lambda Y, mkl_norm, kernels: mkl_norm)

    blocks, y = noisy_node_problem(90, signal=8.0)  # every video right under uniform weights
    p, accuracy, _ = select_mkl_norm(fit, blocks, y, 3, "linear")
    assert (p, accuracy) == (np.inf, {np.inf: 1.0}) and norms == [np.inf] * 3
    # The weak signal leaves videos wrong: every candidate is judged.
    norms.clear()
    blocks, y = noisy_node_problem(90, signal=1.0)
    p, accuracy, _ = select_mkl_norm(fit, blocks, y, 3, "linear")
    assert set(accuracy) == {np.inf, 2.0, 1.0} and len(norms) == 9


def test_select_mkl_norm_computes_the_subsets_node_kernels_once_within_the_budget():
    from mkl_tp.solvers.selection import select_mkl_norm

    given = []

    fit = recording_fit(given, lambda Y, mkl_norm, kernels: kernels)

    blocks, y = noisy_node_problem(300)
    cached = select_mkl_norm(fit, blocks, y, 3, "linear", max_videos=90, cache_bytes=1e9)[:2]
    # Every fold and candidate got node kernels cut from one cached set, one cut per fold
    # shared by the three candidates (the first fold already has two videos wrong)...
    assert len(given) == 9 and all(k is not None and k.cached for k in given)
    assert len({id(k) for k in given}) == 3
    # ... and chose as the fits that compute their own.
    given.clear()
    assert cached == select_mkl_norm(fit, blocks, y, 3, "linear", max_videos=90)[:2]
    assert given == [None] * 9
    # A budget the kernels do not fit: every fit computes its own.
    given.clear()
    select_mkl_norm(fit, blocks, y, 3, "linear", max_videos=90, cache_bytes=1e3)
    assert given == [None] * 9


def test_solver_modules_share_private_helpers_only_through_common():
    # One solver contract: a solver module takes private names (``_x``) of another only
    # from mkl_tp/solvers/_common.py, so no solver depends on another's internals.
    import ast
    from pathlib import Path

    import mkl_tp.solvers

    package = Path(mkl_tp.solvers.__file__).parent
    offending = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module != "_common":
                offending += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert offending == []


def test_describe_choice_states_the_gain_and_its_standard_error():
    from mkl_tp.solvers.selection import describe_choice

    first = np.array([1, 0, 0, 1, 0, 1, 0, 0], bool)
    better = np.array([1, 1, 1, 1, 0, 1, 1, 0], bool)
    correct = {np.inf: first, 1.0: better}
    scores = {k: v.mean() for k, v in correct.items()}
    record = describe_choice(scores, (np.inf, 2.0, 1.0), 1.0, correct)
    d = better.astype(float) - first
    gain, error = d.sum() / d.size, np.sqrt(((d - d.mean()) ** 2).sum() / (d.size - 1) / d.size)
    assert record["candidates"] == {"inf": 0.375, "1": 0.75} and record["chosen"] == "1"
    assert f"{gain:+.4f} out of fold, one standard error {error:.4f}" in record["decision"]
    # From three folds: the corrected error the rule used, sqrt(1 + 3/2) times larger.
    record = describe_choice(scores, (np.inf, 2.0, 1.0), 1.0, correct, n_folds=3)
    corrected = f"one standard error {np.sqrt(2.5) * error:.4f} (corrected for 3 folds)"
    assert corrected in record["decision"]
    kept = describe_choice({np.inf: 0.9}, (np.inf, 2.0, 1.0), np.inf)
    assert kept["candidates"] == {"inf": 0.9} and "were not fitted" in kept["decision"]


def test_select_mkl_norm_fits_later_candidates_on_every_fold_iff_three_videos_are_wrong(
    monkeypatch,
):
    """Brute force over where the first candidate's errors fall (0-2 per fold): the later
    candidates are fitted on every fold exactly when it is wrong on three videos or more
    (30 videos in 3 folds: ``w (29 + 2.5) > 2.5 * 30`` first holds at ``w = 3``), and
    every fold's reused buffers hold the blocks and node kernels fancy indexing gives."""
    from itertools import product
    from types import SimpleNamespace

    from mkl_tp._utils.sampling import stratified_folds
    from mkl_tp.solvers import selection
    from mkl_tp.solvers.gram import TrainingKernels

    blocks, y = noisy_node_problem(30)
    kernels = TrainingKernels(blocks, "linear", cache_bytes=1e9)
    folds = stratified_folds(y, 3)
    calls = []

    def fit(train_blocks, Y, mkl_norm, kernels, beta=None):
        k = next(
            k
            for k, (train, _) in enumerate(folds)
            if len(train) == len(Y) and np.array_equal(train_blocks[0], blocks[0][train])
        )
        train = folds[k][0]
        np.testing.assert_array_equal(kernels._stack, full._stack[:, train][:, :, train])
        calls.append((k, mkl_norm))
        return SimpleNamespace(fold=k, p=mkl_norm, beta=np.full(8, 1 / 8))

    def predict(train_blocks, test_blocks, result, kernel, n_classes):
        k, p = result.fold, result.p
        truth = y[folds[k][1]]
        wrong = np.arange(truth.size) < (errors[k] if p == np.inf else 0)
        return np.where(wrong, (truth + 1) % 3, truth)

    full = kernels
    monkeypatch.setattr(selection, "_predict", predict)
    for errors in product([0, 1, 2], repeat=3):
        calls.clear()
        correct, _ = selection._out_of_fold(
            fit, blocks, y, 3, "linear", kernels, folds, (np.inf, 2.0, 1.0)
        )
        assert sorted(k for k, p in calls if p == np.inf) == [0, 1, 2]
        later = sorted(k for k, p in calls if p != np.inf)
        assert later == ([0, 0, 1, 1, 2, 2] if sum(errors) >= 3 else []), errors
        assert (~correct[np.inf]).sum() == sum(errors)
        assert set(correct) == ({np.inf, 2.0, 1.0} if sum(errors) >= 3 else {np.inf})


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_fit_mkl_from_the_selections_start_reaches_the_cold_optimum(p):
    """The fold weights' mean is a start, not an answer: the fit from it certifies the same
    optimum to ``tol`` as the cold fit (how many alpha-steps it saves is measured by
    benchmarks/bench_learning_cost.py, not here), and the start is where the folds'
    weights lie."""
    from mkl_tp.solvers.selection import select_mkl_norm

    blocks, y = noisy_node_problem(240, nodes=8, signal=1.0)
    Y = one_vs_rest_labels(y, 3)
    tol = 1e-4
    fit = partial(fit_mkl, kernel="linear", tol=tol)
    chosen, _, start = select_mkl_norm(fit, blocks, y, 3, "linear", candidates=(np.inf, p))
    assert chosen == p and start.shape == (8,)
    np.testing.assert_allclose(start.sum(), 1.0)
    cold = fit(blocks, Y, mkl_norm=p)
    warm = fit(blocks, Y, mkl_norm=p, beta=start)
    assert warm.converged and cold.converged
    assert abs(warm.objective - cold.objective) <= tol * abs(cold.objective)
    # The folds found the informative node: the start weighs it most.
    assert np.argmax(start) == 1


def test_select_base_kernel_scores_are_independent_fold_svms_and_the_rule_decides():
    """Each candidate's score is the out-of-fold accuracy of one-vs-rest SVCs on the fixed
    uniform-weight kernel (scikit-learn, precomputed, per fold); the better candidate is
    kept only by the one-standard-error rule from the first."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    from mkl_tp.solvers.selection import select_base_kernel

    y = np.arange(90) % 3
    rng = np.random.default_rng(0)

    def nodes(noise):
        """Every node holds the class in 3 of its 6 features, under Gaussian noise."""
        block = noise * rng.normal(size=(90, 8, 6))
        block[:, :, :3] += np.eye(3)[y][:, None, :]
        return block / np.sqrt(unit_diagonal_scales(block))[None, :, None]

    weak, strong = nodes(4.0), nodes(0.5)
    fit = partial(fit_mkl, learn=False, tol=1e-6, C=10.0)
    beta = np.full(8, 1 / 8)

    def reference(block, kernel):
        right = np.zeros(90, dtype=bool)
        for train, test in StratifiedKFold(3).split(np.zeros(90), y):
            if kernel == "cross":
                Z = np.tensordot(block, beta, axes=([1], [0]))
                K = Z @ Z.T / np.mean(np.sum(Z[train] ** 2, axis=1))
            else:
                K = combined_kernel([block], beta, "linear")[0]
            svc = OneVsRestClassifier(SVC(kernel="precomputed", C=10.0, tol=1e-8))
            svc.fit(K[np.ix_(train, train)], y[train])
            right[test] = svc.predict(K[np.ix_(test, train)]) == y[test]
        return right

    for linear, rbf, expected in ((weak, strong, "rbf"), (strong, weak, "linear")):
        chosen, scores, correct, n_folds = select_base_kernel(
            fit, {"linear": [linear], "rbf": [rbf]}, y, 3
        )
        assert chosen == expected and n_folds == 3
        assert scores[expected] > scores["rbf" if expected == "linear" else "linear"] + 0.2
        for name, block in (("linear", linear), ("rbf", rbf)):
            np.testing.assert_array_equal(correct[name], reference(block, "cross"))
            assert scores[name] == pytest.approx(correct[name].mean())
    # Equal candidates: the simpler one stays.
    assert select_base_kernel(fit, {"linear": [weak], "rbf": [weak]}, y, 3)[0] == "linear"


@pytest.mark.parametrize("per_class", [False, True])
def test_judge_fitted_cross_is_independent_fold_svms_with_the_weights_fixed(per_class):
    """The cross kernel with the given weights (one row per class: one binary SVC per
    class on its own kernel, the largest decision wins) and the uniform linear kernel,
    each against scikit-learn SVCs on precomputed kernels fold by fold."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    from mkl_tp.solvers.selection import judge_fitted_cross

    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    block = 1.0 * rng.normal(size=(60, 7, 5))
    block[:, 1:3, :3] += np.eye(3)[y][:, None, :]  # the class in nodes 1 and 2 only
    block /= np.sqrt(unit_diagonal_scales(block))[None, :, None]
    beta = rng.dirichlet(np.ones(7), size=3) if per_class else rng.dirichlet(np.ones(7))
    fit = partial(fit_mkl, learn=False, tol=1e-6, C=1.0)
    correct, n_folds = judge_fitted_cross(fit, [block], [block], y, 3, beta)
    assert n_folds == 3
    cross, linear = np.zeros(60, dtype=bool), np.zeros(60, dtype=bool)
    margin = np.zeros(60)  # the reference's best decision minus the second best
    for train, test in StratifiedKFold(3).split(np.zeros(60), y):
        decisions = []
        for c, b in enumerate(np.atleast_2d(beta) if per_class else [beta] * 3):
            Z = np.tensordot(block, b, axes=([1], [0]))
            K = Z @ Z.T / np.mean(np.sum(Z[train] ** 2, axis=1))
            svc = SVC(kernel="precomputed", C=1.0, tol=1e-6)
            svc.fit(K[np.ix_(train, train)], np.where(y[train] == c, 1, -1))
            decisions.append(svc.decision_function(K[np.ix_(test, train)]))
        cross[test] = np.argmax(decisions, axis=0) == y[test]
        top = np.sort(decisions, axis=0)
        margin[test] = top[-1] - top[-2]
        K = combined_kernel([block], np.full(7, 1 / 7), "linear")[0]
        svc = OneVsRestClassifier(SVC(kernel="precomputed", C=1.0, tol=1e-6))
        svc.fit(K[np.ix_(train, train)], y[train])
        linear[test] = svc.predict(K[np.ix_(test, train)]) == y[test]
    # Both solvers stop within their tolerance: a tie between two classes (videos on two
    # classes' margins: decisions equal to 1e-6) may go either way.
    clear = margin > 1e-4
    assert clear.sum() >= 50
    np.testing.assert_array_equal(correct["cross"][clear], cross[clear])
    np.testing.assert_array_equal(correct["linear"], linear)
    assert 0.4 < cross.mean() < 1 and 0.4 < linear.mean() < 1
    # A class of one video: no folds.
    assert judge_fitted_cross(fit, [block], [block], np.r_[y[:-1], 3], 4, beta) == ({}, None)


def test_coarse_depth_is_kept_where_the_finer_levels_only_add_noise():
    """Levels 3 (7 nodes), the class only in the level-1 node: uniform weights on level 1
    alone beat the uniform pyramid out of fold, and the Depth candidate's score is that of
    independent per-fold SVCs on the level-1 kernel."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    from mkl_tp.pyramid.weights import coarse_levels
    from mkl_tp.solvers.selection import Depth, norm_candidates, norm_label, select_mkl_norm

    np.testing.assert_allclose(coarse_levels(2, 3, 2), np.tile([1, 1, 1, 0, 0, 0, 0], 2) / 6)
    assert norm_candidates(3) == (np.inf, Depth(1), Depth(2), 2.0, 1.0)
    assert [norm_label(c) for c in norm_candidates(3)] == ["inf", "level 1", "levels 1-2", "2", "1"]
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    block = rng.normal(size=(120, 7, 6))
    block[:, 0, :3] += 1.2 * np.eye(3)[y]
    block /= np.sqrt(unit_diagonal_scales(block))[None, :, None]
    fit = partial(fit_mkl, kernel="linear", tol=1e-4)
    chosen, scores, start = select_mkl_norm(
        fit, [block], y, 3, "linear", candidates=norm_candidates(3)
    )
    assert chosen == Depth(1)
    np.testing.assert_allclose(start, np.eye(7)[0])
    assert scores[Depth(1)] > scores[np.inf] + 0.1
    right = np.zeros(120, dtype=bool)
    K = block[:, 0] @ block[:, 0].T
    for train, test in StratifiedKFold(3).split(np.zeros(120), y):
        svc = OneVsRestClassifier(SVC(kernel="precomputed", tol=1e-8))
        svc.fit(K[np.ix_(train, train)], y[train])
        right[test] = svc.predict(K[np.ix_(test, train)]) == y[test]
    assert scores[Depth(1)] == pytest.approx(right.mean())


def test_selection_folds_stop_early_and_the_final_fit_is_certified_to_tol(monkeypatch):
    """The folds' loops stop at selection_tolerance(tol), their p = 1 objectives within
    that of the convex reference (cvxpy); the final fit on all videos runs at tol."""
    import mkl_tp.estimator as estimator
    from mkl_tp import PyramidMKLClassifier
    from mkl_tp.solvers.selection import selection_tolerance

    assert [selection_tolerance(t) for t in (1e-4, 1e-3, 5e-3, 0.1)] == [1e-3, 1e-2, 1e-2, 0.1]
    calls, checked = [], []

    def spy(blocks, Y, **options):
        result = fit_mkl(blocks, Y, **options)
        calls.append((len(Y), options["tol"]))
        if options["learn"] and options["mkl_norm"] == 1.0 and len(blocks) == 1:
            optimum = reference_linear_mkl(blocks, Y, options["C"])[0]
            assert result.objective == pytest.approx(optimum, rel=options["tol"])
            checked.append(len(Y))
        return result

    monkeypatch.setattr(estimator, "fit_mkl", spy)
    rng = np.random.default_rng(0)
    y = np.arange(45) % 3
    # The class shows in the first half of each video only, among noise.
    X = [rng.normal(size=(8, 4)) + 1.2 * np.eye(4)[c] * (np.arange(8) < 4)[:, None] for c in y]
    PyramidMKLClassifier(levels=2, tol=1e-3).fit(X, y)
    assert {tol for _, tol in calls[:-1]} == {1e-2} and len(calls) >= 3
    assert calls[-1] == (45, 1e-3)
    assert checked and max(checked) == 30  # the p = 1 candidate's folds were checked


def test_the_estimator_judges_at_most_selection_videos(monkeypatch):
    """Above ``selection_videos`` (default 1,000) the folds are cut from a stratified
    subset of that many videos; the final fit takes them all."""
    import mkl_tp.estimator as estimator
    from mkl_tp import PyramidMKLClassifier
    from mkl_tp.solvers.selection import MAX_SELECTION_VIDEOS

    assert PyramidMKLClassifier().selection_videos == MAX_SELECTION_VIDEOS == 1000
    sizes = []

    def spy(blocks, Y, **options):
        sizes.append(len(Y))
        return fit_mkl(blocks, Y, **options)

    monkeypatch.setattr(estimator, "fit_mkl", spy)
    rng = np.random.default_rng(1)
    for n, judged in ((1200, None), (400, 300)):
        sizes.clear()
        y = np.arange(n) % 3
        # A weak class signal: some videos stay wrong, so every candidate's folds are fitted.
        X = [rng.normal(size=(6, 3)) + 0.4 * np.eye(3)[c] for c in y]
        options = {} if judged is None else {"selection_videos": judged}
        PyramidMKLClassifier(levels=2, **options).fit(X, y)
        judged = judged or MAX_SELECTION_VIDEOS
        folds = sizes[:-1]
        assert len(folds) == 3 * 4  # uniform, level 1, p = 2, p = 1 on each of 3 folds
        assert all(abs(size - 2 * judged / 3) <= 1 for size in folds)
        assert sizes[-1] == n
