"""beta-step: node weights on the simplex with the SVM duals fixed.

Objective (docs/maths.rst; the min-max reading of the paper's Eq. 3):

    J(beta) = sum_c max_{0 <= alpha_c <= C, y_c' alpha_c = 0}
              1'alpha_c - 1/2 a_c' K_beta a_c,           a_c = alpha_c * y_c,

minimised over the simplex ``{beta >= 0, 1'beta = 1}``.

- ``kernel="linear"``: ``K_beta = sum_p beta_p K_p``; ``J`` is a maximum of affine functions
  of ``beta``, hence convex. Each alpha-step gives the cut
  ``theta >= sum_c 1'alpha_c - beta . S`` with ``S_p = 1/2 sum_c a_c' K_p a_c``; the
  cutting-plane LP (SILP; Sonnenburg et al., JMLR 2006) minimises ``theta`` over all cuts.
- ``kernel="cross"``: ``K_beta = A(beta) / D(beta)`` with ``a' A(beta) a = beta' M beta`` and
  ``D(beta) = beta' G beta`` (see :mod:`mkl_tp.kernels`). ``J`` is not convex; its gradient
  by Danskin's theorem drives either a projected-gradient QP step (docs/maths.rst,
  :func:`beta_step_qp`) or the entropic mirror step (:func:`beta_step_mirror`).
"""

import clarabel
import cvxpy as cp
import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.special import rel_entr

# Clarabel's default gaps (1e-8) leave ~1e-7 on inactive weights; these tiny QPs afford
# tighter ones, which keeps sparse weights sparse after snapping.
_TIGHT = {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11}

__all__ = [
    "beta_step_lp",
    "beta_least_norm",
    "beta_step_level",
    "beta_step_qp",
    "beta_step_mirror",
    "SimplexProjection",
    "cross_objective",
    "cross_gradient",
    "lp_radius",
    "lp_dual_gap",
    "beta_step_lp_norm",
]


def beta_step_lp(offsets, slopes):
    """Cutting-plane LP over the simplex (SILP).

    Solves ``min_{beta, theta} theta`` s.t. ``theta >= offsets[t] - slopes[t] . beta`` for
    every cut ``t``, ``beta >= 0``, ``1'beta = 1``.

    Parameters
    ----------
    offsets : ndarray of shape (n_cuts,)
        ``sum_c 1'alpha_c`` of each alpha-step.
    slopes : ndarray of shape (n_cuts, P)
        ``S_p = 1/2 sum_c a_c' K_p a_c`` of each alpha-step.

    Returns
    -------
    beta : ndarray of shape (P,)
        Minimiser on the simplex.
    theta : float
        A lower bound on ``min J`` (every cut under-estimates the convex ``J``): the LP
        optimum, certified by weak duality.

    Notes
    -----
    Clarabel's interior point, called directly (about 0.25 ms for a few cuts of 15 nodes
    against 0.8 ms through ``scipy.optimize.milp``'s HiGHS, most of it the wrapper's input
    handling; a 100-video fit makes dozens of these steps, docs/performance.rst). ``theta``
    is not the solver's objective but the value of the LP's dual at its multipliers
    ``lambda`` of the cuts (put on the simplex): ``lambda . offsets - max_p (slopes' lambda)_p``
    is at most ``theta`` for any ``lambda >= 0`` summing to 1, so the bound holds to
    rounding whatever the solver's accuracy. Should Clarabel fail, HiGHS solves the LP.
    """
    offsets = np.asarray(offsets, dtype=float)
    slopes = np.atleast_2d(np.asarray(slopes, dtype=float))
    n_cuts, n_nodes_ = slopes.shape
    # Solved on cuts scaled to at most 1 in magnitude: the solver's gaps are absolute.
    scale = max(np.max(np.abs(offsets)), np.max(np.abs(slopes)), np.finfo(float).tiny)
    cost = np.zeros(n_nodes_ + 1)
    cost[-1] = 1.0
    # Variables (beta, theta): theta's column puts it above every cut.
    rows, bounds, cones = _simplex_and_cuts(slopes / scale, -offsets / scale)
    theta_column = np.zeros((rows.shape[0], 1))
    theta_column[1 : 1 + n_cuts] = -1.0
    solution = _clarabel(
        sparse.csc_matrix((n_nodes_ + 1, n_nodes_ + 1)),
        cost,
        np.hstack([rows, theta_column]),
        bounds,
        cones,
        tight=True,
    )
    if solution is not None:
        multipliers = np.clip(np.array(solution.z[1 : 1 + n_cuts]), 0.0, None)
        beta = np.clip(np.array(solution.x[:-1]), 0.0, None)
        if multipliers.sum() > 0 and beta.sum() > 0 and np.all(np.isfinite(beta)):
            multipliers /= multipliers.sum()
            theta = multipliers @ offsets - np.max(slopes.T @ multipliers)
            if np.isfinite(theta):
                return beta / beta.sum(), float(theta)
    return _beta_step_highs(offsets, slopes)


def _beta_step_highs(offsets, slopes):
    """:func:`beta_step_lp` by HiGHS (``scipy.optimize.milp`` without integer variables:
    the LP of ``linprog(method="highs")`` with less option handling around it)."""
    n_cuts, n_nodes_ = slopes.shape
    cost = np.zeros(n_nodes_ + 1)
    cost[-1] = 1.0
    # Rows: -slopes . beta - theta <= -offsets (theta >= every cut), then 1'beta = 1.
    rows = np.block([[-slopes, -np.ones((n_cuts, 1))], [np.ones((1, n_nodes_)), np.zeros((1, 1))]])
    lower = np.concatenate([np.full(n_cuts, -np.inf), [1.0]])
    upper = np.concatenate([-offsets, [1.0]])
    result = milp(
        cost,
        constraints=LinearConstraint(rows, lower, upper),
        bounds=Bounds(np.r_[np.zeros(n_nodes_), -np.inf], np.full(n_nodes_ + 1, np.inf)),
    )
    if result.status != 0:
        raise RuntimeError(f"beta-step LP failed: {result.message}")
    beta = np.clip(result.x[:-1], 0.0, None)
    return beta / beta.sum(), float(result.x[-1])


def beta_least_norm(offsets, slopes, level):
    """The most spread-out weights whose cutting-plane model stays below ``level``.

    Solves ``min ||beta||^2`` s.t. ``offsets[t] - slopes[t] . beta <= level`` for every cut,
    ``beta >= 0``, ``1'beta = 1`` (a QP, Clarabel). The LP optimum of :func:`beta_step_lp` is
    often not unique -- nodes with identical kernels can trade weight freely -- and HiGHS
    returns an arbitrary vertex; this picks the unique least-norm point of the optimal face
    (identical nodes get equal weight) when ``level`` is the LP bound plus a tolerance.

    Parameters
    ----------
    offsets : ndarray of shape (n_cuts,)
    slopes : ndarray of shape (n_cuts, P)
    level : float
        Largest accepted value of the cutting-plane model.

    Returns
    -------
    ndarray of shape (P,), or None when the QP is infeasible or fails
    """
    return _level_set_projection(None, offsets, slopes, level, tight=True)


def beta_step_level(offsets, slopes, level, center):
    """Level-method step: project ``center`` onto the level set of the cutting-plane model.

    Solves ``min ||beta - center||^2`` s.t. ``offsets[t] - slopes[t] . beta <= level`` for
    every cut, ``beta >= 0``, ``1'beta = 1`` (a QP, Clarabel).

    Parameters
    ----------
    offsets : ndarray of shape (n_cuts,)
    slopes : ndarray of shape (n_cuts, P)
    level : float
        Between the LP bound and the best ``J`` seen.
    center : ndarray of shape (P,)
        The current weights.

    Returns
    -------
    ndarray of shape (P,), or None when the QP is infeasible or fails

    Notes
    -----
    The extended level method for MKL (Xu, Jin, King & Lyu, NIPS 2008): SILP jumps to a
    vertex of the LP at every step and zig-zags when many nodes share the weight; this
    regularised step stays near the current weights, and needs far fewer alpha-steps for
    the same certified gap (see ``benchmarks/bench_core.py``).
    """
    return _level_set_projection(center, offsets, slopes, level, tight=False)


def _level_set_projection(center, offsets, slopes, level, tight):
    """``argmin ||beta - center||^2`` over the simplex and ``offsets - slopes beta <= level``.

    Clarabel called directly: the number of cuts grows at every alpha-step, so a cvxpy
    problem would be compiled anew each time (about 8 ms of the 10 ms per step at
    N = 500, profiled). ``center=None`` is the origin (least norm). ``None`` when the QP
    is infeasible or fails.
    """
    slopes = np.atleast_2d(np.asarray(slopes, dtype=float))
    n_nodes_ = slopes.shape[1]
    center = np.zeros(n_nodes_) if center is None else np.asarray(center, dtype=float)
    # 1/2 x'(2I)x - 2 center'x = ||x - center||^2 - const.
    quadratic = sparse.identity(n_nodes_, format="csc") * 2.0
    rows, bounds, cones = _simplex_and_cuts(slopes, level - np.asarray(offsets, dtype=float))
    solution = _clarabel(quadratic, -2.0 * center, rows, bounds, cones, tight)
    if solution is None:
        return None
    return _snap_to_simplex(np.array(solution.x))


def _simplex_and_cuts(slopes, cut_bounds):
    """Clarabel's ``(rows, bounds, cones)`` of ``1'beta = 1`` (zero cone), ``-slopes beta <=
    cut_bounds`` and ``-beta <= 0`` (non-negative cone). Built dense: a few dozen nodes and
    cuts, where sparse.vstack's bookkeeping costs more than the solve (profiled on a
    100-video fit)."""
    n_cuts, n_nodes_ = slopes.shape
    rows = np.vstack([np.ones((1, n_nodes_)), -slopes, -np.eye(n_nodes_)])
    bounds = np.concatenate([[1.0], cut_bounds, np.zeros(n_nodes_)])
    return rows, bounds, [clarabel.ZeroConeT(1), clarabel.NonnegativeConeT(n_cuts + n_nodes_)]


def _clarabel(quadratic, linear, rows, bounds, cones, tight):
    """Clarabel on ``min 1/2 x'Qx + q'x`` s.t. ``rows x + s = bounds``, ``s`` in ``cones``
    (``rows`` dense; ``tight``: :data:`_TIGHT` gaps, and only a solved problem accepted).
    The solution, or ``None`` when the solver fails."""
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    if tight:
        for name, value in _TIGHT.items():
            setattr(settings, name, value)
    try:
        solution = clarabel.DefaultSolver(
            quadratic, linear, sparse.csc_matrix(rows), bounds, cones, settings
        ).solve()
    except (ValueError, RuntimeError, ArithmeticError):
        return None
    accepted = (clarabel.SolverStatus.Solved,) + (
        () if tight else (clarabel.SolverStatus.AlmostSolved,)
    )
    return solution if solution.status in accepted else None


def _snap_to_simplex(beta):
    """Clip an interior-point solution onto the simplex with exact zeros.

    Interior-point solvers leave ~1e-9 mass on inactive nodes; snapping makes sparse
    weights exactly sparse.
    """
    beta = np.clip(beta, 0.0, None)
    beta[beta < 1e-9] = 0.0
    return beta / beta.sum()


class SimplexProjection:
    """The QP ``argmin_beta ||beta - v||^2`` s.t. ``beta >= 0, 1'beta = 1``, compiled once.

    ``v`` is a cvxpy parameter, so repeated steps reuse the canonicalised problem.

    Parameters
    ----------
    n_nodes : int
        Dimension of ``beta``.
    """

    def __init__(self, n_nodes):
        self._target = cp.Parameter(n_nodes)
        self._beta = cp.Variable(n_nodes)
        self._problem = cp.Problem(
            cp.Minimize(cp.sum_squares(self._beta - self._target)),
            [self._beta >= 0, cp.sum(self._beta) == 1],
        )

    def __call__(self, target):
        target = np.asarray(target, dtype=float)
        # The projection is unchanged by adding a constant to every entry; centring keeps
        # the interior-point solver well scaled.
        self._target.value = target - target.mean()
        self._problem.solve(solver=cp.CLARABEL, **_TIGHT)
        if self._problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise RuntimeError(f"beta-step QP failed with status {self._problem.status}")
        return _snap_to_simplex(self._beta.value)


def beta_step_qp(beta, gradient, step, projection=None):
    """Projected-gradient QP step on the simplex.

    Solves ``argmin_b gradient . (b - beta) + ||b - beta||^2 / (2 step)`` over the simplex,
    i.e. the Euclidean projection of ``beta - step * gradient``.

    Parameters
    ----------
    beta : ndarray of shape (P,)
        Current weights.
    gradient : ndarray of shape (P,)
        ``dJ/dbeta`` at ``beta``.
    step : float
        Step size ``eta > 0``.
    projection : SimplexProjection or None
        A compiled QP to reuse across steps.

    Returns
    -------
    ndarray of shape (P,)
    """
    projection = SimplexProjection(beta.shape[0]) if projection is None else projection
    return projection(beta - step * gradient)


def beta_step_mirror(beta, gradient, step):
    """Entropic mirror-descent step on the simplex (exponentiated gradient).

    Solves ``argmin_b gradient . (b - beta) + KL(b || beta) / step`` over the simplex, in
    closed form ``b_p ~ beta_p exp(-step gradient_p)``: the QP step of
    :func:`beta_step_qp` with the Kullback-Leibler divergence in place of the squared
    distance. Every weight moves by a factor, so a small weight is never pushed to an
    exact zero by a step sized for the large ones, and no QP is solved.

    Parameters
    ----------
    beta : ndarray of shape (P,)
        Current weights, all positive.
    gradient : ndarray of shape (P,)
        ``dJ/dbeta`` at ``beta``.
    step : float
        Step size ``eta > 0``.

    Returns
    -------
    candidate : ndarray of shape (P,)
        The new weights, all positive (floored at the smallest normal float before the
        normalisation), so the next step's logarithm stays finite.
    divergence : float
        ``KL(candidate || beta)``, the step's distance term.
    """
    logits = np.log(beta) - step * (gradient - gradient.min())
    candidate = np.maximum(np.exp(logits - logits.max()), np.finfo(float).tiny)
    candidate /= candidate.sum()
    return candidate, float(rel_entr(candidate, beta).sum())


def cross_objective(beta, sum_alpha, products, gram):
    """``J = sum_alpha - beta' M beta / (2 beta' G beta)`` at fixed duals.

    Parameters
    ----------
    beta : ndarray of shape (P,)
    sum_alpha : float
        ``sum_c 1'alpha_c``.
    products : ndarray of shape (P, P)
        ``M`` from :func:`mkl_tp.kernels.node_products`.
    gram : ndarray of shape (P, P)
        ``G`` from :func:`mkl_tp.kernels.node_gram`.

    Returns
    -------
    float
    """
    return float(sum_alpha - (beta @ products @ beta) / (2.0 * (beta @ gram @ beta)))


def cross_gradient(beta, products, gram):
    """Gradient of ``J`` for ``kernel="cross"`` by Danskin's theorem.

    ``dJ/dbeta = -M beta / D + (beta' M beta) G beta / D^2`` with ``D = beta' G beta``; the
    second term is the normalisation's.

    Parameters
    ----------
    beta : ndarray of shape (P,)
    products : ndarray of shape (P, P)
    gram : ndarray of shape (P, P)

    Returns
    -------
    ndarray of shape (P,)
    """
    normaliser = beta @ gram @ beta
    quadratic = beta @ products @ beta
    return -(products @ beta) / normaliser + quadratic * (gram @ beta) / normaliser**2


def lp_radius(n_weights, p):
    """Radius ``r = P^(1/p - 1)`` of the ``lp`` ball: the uniform weights ``1/P`` lie on it.

    With this radius ``p = 1`` is the simplex and ``p = inf`` the box ``beta <= 1/P``, whose
    optimum is the uniform weights; between them the kernels' scale stays that of the
    uniform combination at the uniform point.
    """
    return float(n_weights) ** (1.0 / p - 1.0)


def lp_dual_gap(beta, quadratics, p, radius):
    """Duality gap ``r ||S||_{p*} - beta . S`` of lp-norm MKL at fixed duals (``>= 0``).

    ``J(beta) = 1'alpha - beta . S`` with ``S_p = 1/2 sum_c a_c' K_p a_c``; the dual of
    ``min_{||beta||_p <= r} J`` is ``max_alpha 1'alpha - r ||S(alpha)||_{p*}``, ``p* = p/(p-1)``
    (Hoelder), so the difference certifies ``beta`` to the SVM solver's accuracy.
    """
    conjugate = np.inf if p == 1 else p / (p - 1.0)
    return radius * float(np.linalg.norm(quadratics, conjugate)) - float(beta @ quadratics)


def beta_step_lp_norm(beta, quadratics, p, radius):
    """Closed-form lp-norm MKL weights for fixed duals (Kloft et al., JMLR 2011, Eq. 12).

    ``beta_p ~ ||w_p||^(2/(p+1))`` with ``||w_p||^2 = beta_p^2 sum_c a_c' K_p a_c``, scaled
    to ``||beta||_p = radius``: the minimiser of the primal ``sum_p ||w_p||^2 / beta_p`` over
    the lp ball at fixed ``w``.
    """
    norms = np.maximum(beta * beta * 2.0 * quadratics, 0.0) ** (1.0 / (p + 1.0))
    total = np.linalg.norm(norms, p)
    if total <= 0:
        return beta
    return radius * norms / total
