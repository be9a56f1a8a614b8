"""The alternating loops of :func:`~mkl_tp.solvers.mkl.fit_mkl`: alpha-step, beta-step, stop.

``kernel="linear"``, ``p = 1`` (level method or SILP): ``J`` is convex; the best ``J`` seen
is an upper bound and the cutting-plane LP optimum a lower bound on ``min J``, so the
relative gap
``(J_best - theta) / |J_best|`` certifies the solution; stop when it is below ``tol``.
(Certified up to the SVM solver's accuracy: libsvm runs at a tenth of ``tol``, so the
upper bound can be too low only by that solver's error, well below ``tol``.)

``kernel="linear"``, ``p > 1`` (lp-norm MKL): closed-form weights between alpha-steps,
stopping on the certified duality gap of :func:`~mkl_tp.solvers.beta.lp_dual_gap`.

``kernel="cross"``: a gradient step on the simplex with backtracking, either entropic mirror
descent (``"mirror"``, the default) or projected gradient (``"projected"``, the QP
step of docs/maths.rst). A step is accepted when
``J(beta+) <= J(beta) + g.(beta+ - beta) + dist / eta``,
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
from sklearn.exceptions import ConvergenceWarning

from .beta import (
    SimplexProjection,
    beta_least_norm,
    beta_step_level,
    beta_step_lp,
    beta_step_lp_norm,
    beta_step_mirror,
    cross_gradient,
    lp_dual_gap,
    lp_radius,
)
from .svm import SVMDuals

logger = logging.getLogger(__name__)

# Smallest step (times the gradient's spread) of the cross kernel's backtracking; below it
# no decrease is measurable.
_MIN_STEP = 1e-10
# Mirror steps: the first moves weights by factors up to e (step * spread = 1); past
# step * spread = 50 a step already reaches a vertex to within e^-50. Zero starting
# weights are mixed with this much of the uniform weights.
_MIRROR_FIRST, _MIRROR_LONGEST, _MIRROR_MIX = 1.0, 50.0, 1e-3


# Step of the level method: the next level sits this far from the LP bound towards the best
# objective seen. Xu et al. (2008) use 0.9; 0.7 reaches the same certified gap in about
# half the alpha-steps on every problem of benchmarks/bench_level_step.py.
_LEVEL_LAMBDA = 0.7


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


class Iterate(NamedTuple):
    """One alpha-step's outcome at weights ``beta``."""

    beta: np.ndarray
    duals: SVMDuals
    normaliser: float
    objective: float


def make_result(iterate, history, n_iter, gap, converged):
    return MKLResult(
        beta=iterate.beta,
        duals=iterate.duals,
        normaliser=iterate.normaliser,
        objective=iterate.objective,
        history=history,
        n_iter=n_iter,
        gap=gap,
        converged=converged,
    )


def _warn_max_iter(max_iter, kind, gap):
    warnings.warn(
        f"MKL ({kind}) stopped after max_iter={max_iter} alpha-steps with relative "
        f"{'gap' if kind == 'linear' else 'decrease'} {gap:.2e} above tol; increase "
        "max_iter or tol",
        ConvergenceWarning,
        stacklevel=3,
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


def fit_linear(alpha_step, beta, tol, max_iter, level, method):
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
        logger.log(
            level,
            "MKL linear: iter %d J=%.6g bound=%.6g gap=%.2e",
            iteration,
            current.objective,
            theta,
            gap,
        )
        if gap < tol:
            extra = 0
            if method == "silp":
                # SILP ends on an arbitrary LP vertex; the level method's projections keep
                # tied nodes tied by symmetry (the QP's minimiser is unique), so only SILP
                # needs the tie-break.
                best, extra = _least_norm_refinement(alpha_step, offsets, slopes, theta, best, tol)
            return make_result(best, history, iteration + extra, gap, True)
        if method == "level":
            target = theta + _LEVEL_LAMBDA * (best.objective - theta)
            projected = beta_step_level(offsets, slopes, target, center=beta)
            beta = lp_beta if projected is None else projected
        else:
            beta = lp_beta
    _warn_max_iter(max_iter, "linear", gap)
    return make_result(best, history, max_iter, gap, False)


def fit_linear_lp(alpha_step, beta, p, tol, max_iter, level):
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
        logger.log(
            level,
            "MKL linear (p=%g): iter %d J=%.6g bound=%.6g gap=%.2e",
            p,
            iteration,
            current.objective,
            bound,
            gap,
        )
        if gap < tol:
            break
        beta = beta_step_lp_norm(beta, quadratics, p, radius)
    else:
        _warn_max_iter(max_iter, "linear", gap)
    scale = best.beta.sum()
    best = best._replace(beta=best.beta / scale, normaliser=1.0 / scale)
    return make_result(best, history, iteration, gap, gap < tol)


def mirror_ready(beta):
    """Weights a mirror step can move: zeros mixed with a little of the uniform weights
    (a mirror step scales weights, so a zero weight would stay zero for ever)."""
    return (1.0 - _MIRROR_MIX) * beta + _MIRROR_MIX / beta.size if np.any(beta <= 0) else beta


def evaluate_starts(alpha_step, starts, level):
    """One alpha-step at every start over all tasks: ``(iterates, J per task and start)``.

    The cross kernel's ``J`` is not convex; each task then descends from the start of its
    least ``J`` (:func:`task_iterate`), so the fit never ends above its best start.
    """
    iterates = [alpha_step(beta) for beta in starts]
    objectives = np.array([it.duals.objective for it in iterates])
    for k, it in enumerate(iterates):
        logger.log(level, "MKL cross: start %d J=%.6g", k, it.objective)
    return iterates, objectives


def stack_tasks(results):
    """One :class:`MKLResult` of independent one-task results, in task order (the paper's
    multiple pyramids): weights and normalisers one row per task, duals side by side, the
    objectives and solve counts summed."""
    duals = SVMDuals(
        np.hstack([r.duals.coef for r in results]),
        np.concatenate([r.duals.intercept for r in results]),
        np.concatenate([r.duals.objective for r in results]),
    )
    return MKLResult(
        beta=np.stack([r.beta for r in results]),
        duals=duals,
        normaliser=np.array([r.normaliser for r in results], dtype=float),
        objective=float(sum(r.objective for r in results)),
        history=[r.history for r in results],
        n_iter=max(r.n_iter for r in results),
        gap=max(r.gap for r in results),
        converged=all(r.converged for r in results),
        n_svm_solves=sum(r.n_svm_solves for r in results),
        n_inner_iter=sum(r.n_inner_iter for r in results),
        kernel_cached=all(r.kernel_cached for r in results),
    )


def task_iterate(iterates, objectives, task):
    """Task ``task``'s best start as a one-task iterate."""
    best = iterates[int(np.argmin(objectives[:, task]))]
    duals = SVMDuals(
        best.duals.coef[:, [task]], best.duals.intercept[[task]], best.duals.objective[[task]]
    )
    return best._replace(duals=duals, objective=float(duals.objective[0]))


def fit_cross(alpha_step, first, tol, max_iter, level, method, spent=1):
    """Descend from the evaluated iterate ``first`` (``spent`` alpha-steps so far)."""
    gram = alpha_step.kernels.gram()
    if method == "mirror":
        step_to = beta_step_mirror
        first_step, longest = _MIRROR_FIRST, _MIRROR_LONGEST
    else:
        projection = SimplexProjection(first.beta.shape[0])

        def step_to(beta, gradient, step):
            candidate = projection(beta - step * gradient)
            return candidate, 0.5 * float((candidate - beta) @ (candidate - beta))

        # Past step * spread = 2 the projection already reaches any vertex; longer steps
        # change nothing but the QP's conditioning.
        first_step, longest = 0.5, 2.0
    current = first
    history, iteration, decrease, step = [current.objective], spent, np.inf, None
    while iteration < max_iter:
        gradient = cross_gradient(
            current.beta, alpha_step.kernels.products(current.duals.coef), gram
        )
        spread = gradient.max() - gradient.min()
        if spread <= 0:
            # Equal partial derivatives: no feasible direction decreases J (stationary).
            return make_result(current, history, iteration, 0.0, True)
        step = first_step / spread if step is None else min(step, longest / spread)
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
            return make_result(current, history, iteration, 0.0, True)
        decrease = (current.objective - accepted.objective) / max(
            abs(current.objective), np.finfo(float).tiny
        )
        current = accepted
        history.append(current.objective)
        logger.log(
            level,
            "MKL cross (%s): iter %d J=%.6g step=%.2e decrease=%.2e",
            method,
            iteration,
            current.objective,
            step,
            decrease,
        )
        if decrease < tol:
            return make_result(current, history, iteration, decrease, True)
        if trials == 1:
            # Accepted at once: try a longer step next; after a backtrack keep the step
            # that worked (fewer rejected alpha-steps, benchmarks/bench_core.py).
            step *= 2.0
    _warn_max_iter(max_iter, "cross", decrease)
    return make_result(current, history, iteration, decrease, False)
