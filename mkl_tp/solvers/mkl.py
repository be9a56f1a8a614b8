"""The alternating MKL loop: alpha-step (SVM duals), beta-step (LP or QP), stopping rule.

``kernel="linear"`` (SILP): ``J`` is convex; the best ``J`` seen is an upper bound and the
cutting-plane LP optimum a lower bound on ``min J``, so the relative gap
``(J_best - theta) / |J_best|`` certifies the solution; stop when it is below ``tol``.

``kernel="cross"``: projected gradient with backtracking. A step is accepted when
``J(beta+) <= J(beta) + g.(beta+ - beta) + ||beta+ - beta||^2 / (2 eta)``, which makes ``J``
decrease monotonically; ``J`` is not convex, so this reaches a stationary point. Stop when
the relative decrease is below ``tol``.

Both warn with ``ConvergenceWarning`` (and return the best iterate) when ``max_iter``
alpha-steps were not enough.
"""

import logging
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..kernels import combined_kernel, node_gram, node_products
from .beta import SimplexProjection, beta_least_norm, beta_step_lp, cross_gradient
from .svm import SVMDuals, svm_duals

__all__ = ["MKLResult", "fit_mkl"]

logger = logging.getLogger(__name__)

# Smallest step of the cross kernel's backtracking; below it no decrease is measurable.
_MIN_STEP = 1e-10


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
    """

    beta: np.ndarray
    duals: SVMDuals
    normaliser: float
    objective: float
    history: list
    n_iter: int
    gap: float
    converged: bool


def _alpha_step(blocks, beta, kind, Y, C, n_jobs):
    kernel, normaliser = combined_kernel(blocks, beta, kind)
    duals = svm_duals(kernel, Y, C, n_jobs=n_jobs)
    return duals, normaliser, float(duals.objective.sum())


def _warn_max_iter(max_iter, kind, gap):
    warnings.warn(
        f"MKL ({kind}) stopped after max_iter={max_iter} alpha-steps with relative "
        f"{'gap' if kind == 'linear' else 'decrease'} {gap:.2e} above tol; increase "
        "max_iter or tol",
        ConvergenceWarning,
    )


def _least_norm_refinement(blocks, Y, C, n_jobs, offsets, slopes, theta, best, tol):
    """Replace the best iterate by the least-norm point of the LP's optimal face.

    Kept only when its true ``J`` is within ``tol`` (relative) of the best ``J`` seen, so the
    certificate still holds; this makes the weights of tied nodes (identical kernels) equal
    instead of an arbitrary LP vertex.
    """
    slack = tol * max(abs(best[2]), np.finfo(float).tiny)
    beta = beta_least_norm(offsets, slopes, theta + slack)
    if beta is None or np.allclose(beta, best[0], rtol=0, atol=1e-9):
        return best, 0
    duals, _, objective = _alpha_step(blocks, beta, "linear", Y, C, n_jobs)
    if objective <= best[2] + slack:
        return (beta, duals, objective), 1
    return best, 1


def _fit_linear(blocks, Y, C, beta, tol, max_iter, n_jobs, level):
    offsets, slopes, history = [], [], []
    best, gap = None, np.inf
    for iteration in range(1, max_iter + 1):
        duals, normaliser, objective = _alpha_step(blocks, beta, "linear", Y, C, n_jobs)
        history.append(objective)
        if best is None or objective < best[2]:
            best = (beta, duals, objective)
        offsets.append(np.abs(duals.coef).sum())
        slopes.append(0.5 * node_products(blocks, duals.coef, diagonal=True))
        beta, theta = beta_step_lp(offsets, slopes)
        gap = (best[2] - theta) / max(abs(best[2]), np.finfo(float).tiny)
        logger.log(level, "MKL linear: iter %d J=%.6g bound=%.6g gap=%.2e", iteration,
                    objective, theta, gap)
        if gap < tol:
            best, extra = _least_norm_refinement(blocks, Y, C, n_jobs, offsets, slopes,
                                                 theta, best, tol)
            return MKLResult(best[0], best[1], 1.0, best[2], history, iteration + extra,
                             gap, True)
    _warn_max_iter(max_iter, "linear", gap)
    return MKLResult(best[0], best[1], 1.0, best[2], history, max_iter, gap, False)


def _fit_cross(blocks, Y, C, beta, tol, max_iter, n_jobs, level):
    gram = node_gram(blocks)
    projection = SimplexProjection(beta.shape[0])
    duals, normaliser, objective = _alpha_step(blocks, beta, "cross", Y, C, n_jobs)
    history, iteration, decrease, step = [objective], 1, np.inf, None
    while iteration < max_iter:
        gradient = cross_gradient(beta, node_products(blocks, duals.coef), gram)
        spread = gradient.max() - gradient.min()
        if spread <= 0:
            # Equal partial derivatives: no feasible direction decreases J (stationary).
            return MKLResult(beta, duals, normaliser, objective, history, iteration, 0.0, True)
        # Past step * spread = 2 the projection already reaches any vertex; longer steps
        # change nothing but the QP's conditioning.
        step = 0.5 / spread if step is None else min(step, 2.0 / spread)
        accepted = None
        while step >= _MIN_STEP and iteration < max_iter:
            candidate = projection(beta - step * gradient)
            move = candidate - beta
            if not np.any(move):
                break
            trial = _alpha_step(blocks, candidate, "cross", Y, C, n_jobs)
            iteration += 1
            model = objective + gradient @ move + (move @ move) / (2.0 * step)
            if trial[2] <= model:
                accepted = (candidate, *trial)
                break
            step /= 2.0
        if accepted is None:
            # No measurable decrease along the projected gradient: stationary point.
            return MKLResult(beta, duals, normaliser, objective, history, iteration, 0.0, True)
        beta, duals, normaliser, new_objective = accepted
        decrease = (objective - new_objective) / max(abs(objective), np.finfo(float).tiny)
        objective = new_objective
        history.append(objective)
        logger.log(level, "MKL cross: iter %d J=%.6g step=%.2e decrease=%.2e", iteration,
                    objective, step, decrease)
        if decrease < tol:
            return MKLResult(beta, duals, normaliser, objective, history, iteration,
                             decrease, True)
        step *= 2.0
    _warn_max_iter(max_iter, "cross", decrease)
    return MKLResult(beta, duals, normaliser, objective, history, iteration, decrease, False)


def fit_mkl(blocks, Y, kernel="linear", C=1.0, tol=1e-3, max_iter=100, beta=None,
            learn=True, n_jobs=None, verbose=0):
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
        Starting weights (uniform when ``None``).
    learn : bool
        ``False`` keeps ``beta`` fixed: one alpha-step.
    n_jobs : int or None
        joblib workers over one-vs-rest tasks.
    verbose : int
        Log every iteration at INFO level (DEBUG when 0).

    Returns
    -------
    MKLResult

    Notes
    -----
    Minimises ``J(beta) = sum_c max_alpha 1'alpha_c - 1/2 a_c' K_beta a_c`` over the simplex
    (the paper's Eq. 3 read as min over ``beta`` of the SVM dual optimum; see DESIGN.md).
    """
    n_total = sum(b.shape[1] for b in blocks)
    beta = np.full(n_total, 1.0 / n_total) if beta is None else np.asarray(beta, float)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if not learn:
        duals, normaliser, objective = _alpha_step(blocks, beta, kernel, Y, C, n_jobs)
        return MKLResult(beta, duals, normaliser, objective, [objective], 1, 0.0, True)
    level = logging.INFO if verbose else logging.DEBUG
    if kernel == "linear":
        return _fit_linear(blocks, Y, C, beta, tol, max_iter, n_jobs, level)
    if kernel == "cross":
        return _fit_cross(blocks, Y, C, beta, tol, max_iter, n_jobs, level)
    raise ValueError(f"kernel must be 'linear' or 'cross', got {kernel!r}")
