"""The alternating MKL loop: alpha-step (SVM duals), beta-step (LP or QP), stopping rule.

``kernel="linear"`` (SILP): ``J`` is convex; the best ``J`` seen is an upper bound and the
cutting-plane LP optimum a lower bound on ``min J``, so the relative gap
``(J_best - theta) / |J_best|`` certifies the solution; stop when it is below ``tol``.
(Certified up to the SVM solver's accuracy: libsvm's dual objectives, at a tenth of
``tol`` as its tolerance, were within ~1e-7 relative of the optimum in our measurements,
and the upper bound can only be that much too low.)

``kernel="cross"``: a gradient step on the simplex with backtracking, either entropic mirror
descent (``"mirror"``, the default) or projected gradient (``"projected"``, DESIGN.md's QP
step). A step is accepted when ``J(beta+) <= J(beta) + g.(beta+ - beta) + dist / eta``,
``dist = KL(beta+ || beta)`` or ``||beta+ - beta||^2 / 2``, which makes ``J`` decrease
monotonically (``eta`` halves after a rejected trial and doubles after a step accepted at
its first trial); ``J`` is not convex, so this reaches a stationary point. Stop when the
relative decrease is below ``tol``.

Both warn with ``ConvergenceWarning`` (and return the best iterate) when ``max_iter``
alpha-steps were not enough.
"""

import logging
import warnings
from typing import NamedTuple

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning

from ..kernels import node_gram
from .beta import (
    SimplexProjection,
    beta_least_norm,
    beta_step_level,
    beta_step_lp,
    beta_step_mirror,
    cross_gradient,
)
from .gram import TrainingKernels
from .svm import SVMDuals, libsvm_tolerance, svm_duals

__all__ = ["MKLResult", "fit_mkl", "resolve_beta_method"]

logger = logging.getLogger(__name__)

# Smallest step (times the gradient's spread) of the cross kernel's backtracking; below it
# no decrease is measurable.
_MIN_STEP = 1e-10
# Mirror steps: the first moves weights by factors up to e (step * spread = 1); past
# step * spread = 50 a step already reaches a vertex to within e^-50. Zero starting
# weights are mixed with this much of the uniform weights.
_MIRROR_FIRST, _MIRROR_LONGEST, _MIRROR_MIX = 1.0, 50.0, 1e-3


class MKLResult(NamedTuple):
    """Outcome of :func:`fit_mkl`.

    Attributes
    ----------
    beta : ndarray of shape (P,)
        Node weights on the simplex.
    duals : SVMDuals
        SVM duals on ``K_beta``.
    normaliser : float
        ``D(beta)`` of the cross kernel (1 for linear).
    objective : float
        ``J(beta)``.
    history : list of float
        ``J`` after every accepted alpha-step.
    n_iter : int
        Alpha-steps run (each solves one SVM per one-vs-rest task).
    gap : float
        Final relative duality gap (linear) or relative decrease (cross).
    converged : bool
    n_svm_solves : int
        Binary SVM duals solved (alpha-steps times one-vs-rest tasks).
    n_inner_iter : int
        Gradient iterations of the batched solvers (0 for libsvm).
    kernel_cached : bool
        Whether per-node kernels were cached (see
        :class:`~mkl_tp.solvers.gram.TrainingKernels`).
    """

    beta: np.ndarray
    duals: SVMDuals
    normaliser: float
    objective: float
    history: list
    n_iter: int
    gap: float
    converged: bool
    n_svm_solves: int = 0
    n_inner_iter: int = 0
    kernel_cached: bool = False


SOLVERS = ("libsvm", "batch", "torch")
PYRAMIDS = ("shared", "per_class")
# beta-steps per kernel; "auto" takes the first.
BETA_METHODS = {"linear": ("level", "silp"), "cross": ("mirror", "projected")}
BETA_STEPS = tuple(name for names in BETA_METHODS.values() for name in names)


def resolve_beta_method(kernel, beta_method):
    """The beta-step ``beta_method`` names for ``kernel``.

    ``"auto"`` and the other kernel's step names give ``kernel``'s default step: like
    ``SVC``'s ``degree`` for non-polynomial kernels, a setting of the other kernel is
    ignored, so one grid can vary ``kernel`` with ``beta_method`` fixed (and
    ``beta_method="level"``, the default before the cross kernel had a choice, still fits
    ``kernel="cross"``).

    Raises
    ------
    ValueError
        When ``beta_method`` names no step of either kernel.
    """
    known = ("auto",) + BETA_STEPS
    if beta_method not in known:
        raise ValueError(f"beta_method must be one of {known}, got {beta_method!r}")
    choices = BETA_METHODS[kernel]
    return beta_method if beta_method in choices else choices[0]

# Step of the level method: the next level sits this far from the LP bound towards the best
# objective seen (Xu et al. 2008 use 0.9).
_LEVEL_LAMBDA = 0.9


class _Iterate(NamedTuple):
    """One alpha-step's outcome at weights ``beta``."""

    beta: np.ndarray
    duals: SVMDuals
    normaliser: float
    objective: float


def _result(iterate, history, n_iter, gap, converged):
    return MKLResult(beta=iterate.beta, duals=iterate.duals, normaliser=iterate.normaliser,
                     objective=iterate.objective, history=history, n_iter=n_iter, gap=gap,
                     converged=converged)


class _AlphaStep:
    """The alpha-step of one fit: kernel source, SVM solver, warm start, solve count."""

    def __init__(self, kernels, Y, C, n_jobs, solver, solver_options, tol):
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        self.kernels, self.Y, self.C, self.n_jobs = kernels, Y, C, n_jobs
        self.libsvm_tol = libsvm_tolerance(tol)
        self.solver = solver
        self.options = dict(solver_options or {})
        self.n_solves = 0
        self.inner_iterations = 0
        self._warm = None

    def __call__(self, beta):
        kernel, normaliser = self.kernels.combined(beta)
        if self.solver == "libsvm":
            duals = svm_duals(kernel, self.Y, self.C, n_jobs=self.n_jobs, tol=self.libsvm_tol)
        else:
            if self.solver == "batch":
                from .batch_svm import svm_duals_batch as solve
            else:
                from .torch_svm import svm_duals_torch as solve
            duals, info = solve(kernel, self.Y, self.C, init=self._warm, **self.options)
            self._warm = duals.coef
            self.inner_iterations += info["n_iter"]
        self.n_solves += self.Y.shape[1]
        return _Iterate(beta, duals, normaliser, float(duals.objective.sum()))


def _warn_max_iter(max_iter, kind, gap):
    warnings.warn(
        f"MKL ({kind}) stopped after max_iter={max_iter} alpha-steps with relative "
        f"{'gap' if kind == 'linear' else 'decrease'} {gap:.2e} above tol; increase "
        "max_iter or tol",
        ConvergenceWarning,
    )


def _least_norm_refinement(alpha_step, offsets, slopes, theta, best, tol):
    """Replace the best iterate by the least-norm point of the LP's optimal face.

    Kept only when its true ``J`` is within ``tol`` (relative) of the best ``J`` seen, so the
    certificate still holds; this makes the weights of tied nodes (identical kernels) equal
    instead of an arbitrary LP vertex. Returns ``(iterate, alpha-steps spent)``.
    """
    slack = tol * max(abs(best.objective), np.finfo(float).tiny)
    beta = beta_least_norm(offsets, slopes, theta + slack)
    if beta is None or np.allclose(beta, best.beta, rtol=0, atol=1e-9):
        return best, 0
    refined = alpha_step(beta)
    return (refined if refined.objective <= best.objective + slack else best), 1


def _fit_linear(alpha_step, beta, tol, max_iter, level, method):
    offsets, slopes, history = [], [], []
    best, gap = None, np.inf
    for iteration in range(1, max_iter + 1):
        current = alpha_step(beta)
        history.append(current.objective)
        if best is None or current.objective < best.objective:
            best = current
        offsets.append(np.abs(current.duals.coef).sum())
        slopes.append(0.5 * alpha_step.kernels.node_quadratics(current.duals.coef))
        lp_beta, theta = beta_step_lp(offsets, slopes)
        gap = (best.objective - theta) / max(abs(best.objective), np.finfo(float).tiny)
        logger.log(level, "MKL linear: iter %d J=%.6g bound=%.6g gap=%.2e", iteration,
                   current.objective, theta, gap)
        if gap < tol:
            extra = 0
            if method == "silp":
                # SILP ends on an arbitrary LP vertex; the level method's projections keep
                # tied nodes tied by symmetry (the QP's minimiser is unique), so only SILP
                # needs the tie-break.
                best, extra = _least_norm_refinement(alpha_step, offsets, slopes, theta,
                                                     best, tol)
            return _result(best, history, iteration + extra, gap, True)
        if method == "level":
            target = theta + _LEVEL_LAMBDA * (best.objective - theta)
            projected = beta_step_level(offsets, slopes, target, center=beta)
            beta = lp_beta if projected is None else projected
        else:
            beta = lp_beta
    _warn_max_iter(max_iter, "linear", gap)
    return _result(best, history, max_iter, gap, False)


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


def _fit_linear_lp(alpha_step, beta, p, tol, max_iter, level):
    """lp-norm MKL (``p > 1``) by alternating SVM duals and the closed-form weights.

    Block-coordinate descent on Kloft et al.'s jointly convex primal, so ``J`` decreases;
    stops when the best ``J`` is within ``tol`` (relative) of the best dual bound
    (:func:`lp_dual_gap`). The returned weights sum to 1 and the kernel's scale
    ``sum(beta)`` goes into the normaliser (``K = K_{beta / s} / normaliser``).
    """
    radius = lp_radius(beta.size, p)
    beta = radius * beta / np.linalg.norm(beta, p)
    history, best, bound, gap = [], None, -np.inf, np.inf
    for iteration in range(1, max_iter + 1):
        current = alpha_step(beta)
        history.append(current.objective)
        if best is None or current.objective < best.objective:
            best = current
        quadratics = 0.5 * alpha_step.kernels.node_quadratics(current.duals.coef)
        bound = max(bound, current.objective - lp_dual_gap(beta, quadratics, p, radius))
        gap = (best.objective - bound) / max(abs(best.objective), np.finfo(float).tiny)
        logger.log(level, "MKL linear (p=%g): iter %d J=%.6g bound=%.6g gap=%.2e", p,
                   iteration, current.objective, bound, gap)
        if gap < tol:
            break
        beta = beta_step_lp_norm(beta, quadratics, p, radius)
    else:
        _warn_max_iter(max_iter, "linear", gap)
    scale = best.beta.sum()
    best = best._replace(beta=best.beta / scale, normaliser=1.0 / scale)
    return _result(best, history, iteration, gap, gap < tol)


def _fit_cross(alpha_step, beta, tol, max_iter, level, method):
    gram = node_gram(alpha_step.kernels.blocks)
    if method == "mirror":
        if np.any(beta <= 0):
            # A mirror step scales weights, so a zero weight would stay zero for ever.
            beta = (1.0 - _MIRROR_MIX) * beta + _MIRROR_MIX / beta.size
        step_to = beta_step_mirror
        first, longest = _MIRROR_FIRST, _MIRROR_LONGEST
    else:
        projection = SimplexProjection(beta.shape[0])

        def step_to(beta, gradient, step):
            candidate = projection(beta - step * gradient)
            return candidate, 0.5 * float((candidate - beta) @ (candidate - beta))

        # Past step * spread = 2 the projection already reaches any vertex; longer steps
        # change nothing but the QP's conditioning.
        first, longest = 0.5, 2.0
    current = alpha_step(beta)
    history, iteration, decrease, step = [current.objective], 1, np.inf, None
    while iteration < max_iter:
        gradient = cross_gradient(current.beta,
                                  alpha_step.kernels.products(current.duals.coef), gram)
        spread = gradient.max() - gradient.min()
        if spread <= 0:
            # Equal partial derivatives: no feasible direction decreases J (stationary).
            return _result(current, history, iteration, 0.0, True)
        step = first / spread if step is None else min(step, longest / spread)
        accepted, trials = None, 0
        while step * spread >= _MIN_STEP and iteration < max_iter:
            candidate, distance = step_to(current.beta, gradient, step)
            move = candidate - current.beta
            if not np.any(move):
                break
            trial = alpha_step(candidate)
            iteration, trials = iteration + 1, trials + 1
            if trial.objective <= current.objective + gradient @ move + distance / step:
                accepted = trial
                break
            step /= 2.0
        if accepted is None:
            if iteration >= max_iter:
                break  # out of alpha-steps while backtracking: not a stationary point
            # No measurable decrease along the descent path: stationary point.
            return _result(current, history, iteration, 0.0, True)
        decrease = (current.objective - accepted.objective) / max(
            abs(current.objective), np.finfo(float).tiny)
        current = accepted
        history.append(current.objective)
        logger.log(level, "MKL cross (%s): iter %d J=%.6g step=%.2e decrease=%.2e", method,
                   iteration, current.objective, step, decrease)
        if decrease < tol:
            return _result(current, history, iteration, decrease, True)
        if trials == 1:
            # Accepted at once: try a longer step next; after a backtrack keep the step
            # that worked (fewer rejected alpha-steps, benchmarks/bench_core.py).
            step *= 2.0
    _warn_max_iter(max_iter, "cross", decrease)
    return _result(current, history, iteration, decrease, False)


def fit_mkl(blocks, Y, kernel="linear", C=1.0, tol=1e-3, max_iter=100, beta=None,
            learn=True, n_jobs=None, verbose=0, beta_method="auto", solver="libsvm",
            cache_bytes=None, solver_options=None, mkl_norm=1.0, pyramids="shared"):
    """Learn node weights ``beta`` and one-vs-rest SVMs by alternating optimisation.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
        Scaled node features per stream (unit mean-diagonal node kernels).
    Y : ndarray of shape (N, n_tasks)
        ``{-1, +1}`` one-vs-rest labels.
    kernel : {"linear", "cross"}
        Combination of node kernels (see :mod:`mkl_tp.kernels`).
    C : float
        SVM box constraint.
    tol : float
        Relative duality gap (linear) or relative decrease of ``J`` (cross) to stop at.
    max_iter : int
        Most alpha-steps (SVM solves per task).
    beta : ndarray of shape (P,) or None
        Starting weights (uniform when ``None``), e.g. a coarser pyramid's weights.
    learn : bool
        ``False`` keeps ``beta`` fixed: one alpha-step.
    n_jobs : int or None
        joblib workers over one-vs-rest tasks (``solver="libsvm"``).
    verbose : int
        Log every iteration at INFO level (DEBUG when 0).
    beta_method : {"auto", "level", "silp", "mirror", "projected"}, default="auto"
        beta-step. ``kernel="linear"``: the extended level method (``"level"``, the
        ``"auto"`` choice; a regularised cutting plane,
        :func:`~mkl_tp.solvers.beta.beta_step_level`) or plain SILP; both stop on the
        same certified gap. ``kernel="cross"``: entropic mirror descent (``"mirror"``, the
        ``"auto"`` choice, :func:`~mkl_tp.solvers.beta.beta_step_mirror`) or DESIGN.md's
        projected-gradient QP step (``"projected"``).
    solver : {"libsvm", "batch", "torch"}, default="libsvm"
        alpha-step: libsvm per task (the reference), or the warm-started batched dual
        solver over all tasks at once in numpy (:mod:`~mkl_tp.solvers.batch_svm`) or
        torch (:mod:`~mkl_tp.solvers.torch_svm`, CPU or GPU).
    cache_bytes : float or None
        Memory budget for cached per-node kernels (see
        :class:`~mkl_tp.solvers.gram.TrainingKernels`); ``None`` never caches.
    solver_options : dict or None
        Extra keyword arguments of the batched solvers (``tol``, ``device``, ...).
    mkl_norm : float, default=1.0
        ``p`` of lp-norm MKL for ``kernel="linear"`` (Kloft et al., JMLR 2011): the weights
        lie in the ``lp`` ball of radius ``P^(1/p - 1)`` that holds the uniform weights;
        ``1`` is the simplex (sparse weights), ``inf`` the uniform weights (no learning).
        Ignored by ``kernel="cross"``, whose normalised kernel does not depend on the
        weights' scale.
    pyramids : {"shared", "per_class"}, default="shared"
        One weight vector for all one-vs-rest tasks, or one per task (the paper's
        multiple pyramids): independent binary MKL problems on the same node kernels.

    Returns
    -------
    MKLResult
        With ``pyramids="per_class"``: ``beta`` of shape
        ``(n_tasks, P)``, ``normaliser`` of shape ``(n_tasks,)``, ``history`` one list per
        task, ``objective`` the sum over tasks.

    Notes
    -----
    Minimises ``J(beta) = sum_c max_alpha 1'alpha_c - 1/2 a_c' K_beta a_c`` over the simplex
    (the paper's Eq. 3 read as min over ``beta`` of the SVM dual optimum; see DESIGN.md).
    """
    n_total = sum(b.shape[1] for b in blocks)
    beta = np.full(n_total, 1.0 / n_total) if beta is None else np.asarray(beta, float)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if kernel not in ("linear", "cross"):
        raise ValueError(f"kernel must be 'linear' or 'cross', got {kernel!r}")
    if pyramids not in PYRAMIDS:
        raise ValueError(f"pyramids must be one of {PYRAMIDS}, got {pyramids!r}")
    if not mkl_norm >= 1:
        raise ValueError(f"mkl_norm must be >= 1, got {mkl_norm!r}")
    method = resolve_beta_method(kernel, beta_method)
    # lp-norm weights only shape the linear combination: the cross kernel is normalised,
    # so its weights' scale (and the ball they lie in) does not matter.
    if kernel == "linear" and np.isinf(mkl_norm):
        beta, learn = np.full(n_total, 1.0 / n_total), False
    kernels = TrainingKernels(blocks, kernel, cache_bytes=cache_bytes if learn else None)
    options = dict(kernels=kernels, C=C, tol=tol, max_iter=max_iter, beta=beta, learn=learn,
                   verbose=verbose, method=method, mkl_norm=mkl_norm, solver=solver,
                   solver_options=solver_options)
    if pyramids == "shared":
        result, steps = _fit_tasks(Y=Y, n_jobs=n_jobs, **options)
        return result._replace(n_svm_solves=steps.n_solves,
                               n_inner_iter=steps.inner_iterations,
                               kernel_cached=kernels.cached)
    # One binary MKL per one-vs-rest task (the paper's multiple pyramids): independent
    # problems on the same node kernels, run in threads (libsvm and BLAS release the GIL).
    fits = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fit_tasks)(Y=Y[:, [c]], n_jobs=1, **options) for c in range(Y.shape[1]))
    results = [fit for fit, _ in fits]
    duals = SVMDuals(np.hstack([r.duals.coef for r in results]),
                     np.concatenate([r.duals.intercept for r in results]),
                     np.concatenate([r.duals.objective for r in results]))
    return MKLResult(
        beta=np.stack([r.beta for r in results]), duals=duals,
        normaliser=np.array([r.normaliser for r in results], dtype=float),
        objective=float(sum(r.objective for r in results)),
        history=[r.history for r in results], n_iter=max(r.n_iter for r in results),
        gap=max(r.gap for r in results), converged=all(r.converged for r in results),
        n_svm_solves=sum(steps.n_solves for _, steps in fits),
        n_inner_iter=sum(steps.inner_iterations for _, steps in fits),
        kernel_cached=kernels.cached)


def _fit_tasks(kernels, Y, C, tol, max_iter, beta, learn, n_jobs, verbose, method, mkl_norm,
               solver, solver_options):
    """One MKL problem over the tasks ``Y`` (all of them share ``beta``)."""
    alpha_step = _AlphaStep(kernels, Y, C, n_jobs, solver, solver_options, tol)
    level = logging.INFO if verbose else logging.DEBUG
    if not learn:
        current = alpha_step(beta)
        if kernels.kind == "linear":
            scale = beta.sum()
            current = current._replace(beta=beta / scale, normaliser=1.0 / scale)
        result = _result(current, [current.objective], 1, 0.0, True)
    elif kernels.kind == "cross":
        result = _fit_cross(alpha_step, beta, tol, max_iter, level, method)
    elif mkl_norm == 1:
        result = _fit_linear(alpha_step, beta, tol, max_iter, level, method)
    else:
        result = _fit_linear_lp(alpha_step, beta, mkl_norm, tol, max_iter, level)
    return result, alpha_step
