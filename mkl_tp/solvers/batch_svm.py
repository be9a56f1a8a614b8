"""alpha-step for all one-vs-rest tasks at once: a batched, warm-started dual solver.

The same problem as :func:`mkl_tp.solvers.svm.svm_duals` (libsvm, the exact reference),

    max_alpha  1'alpha - 1/2 (alpha * y_c)' K (alpha * y_c)
    s.t.       0 <= alpha <= C,  y_c' alpha = 0,

written in the signed variables ``a_c = alpha_c * y_c``:

    min_a  f_c(a) = 1/2 a' K a - y_c' a   s.t.  lo_c <= a <= hi_c,  1' a = 0,

with ``[lo, hi] = [0, C]`` where ``y = +1`` and ``[-C, 0]`` where ``y = -1``. The kernel is
shared by all tasks and the equality constraint no longer depends on the labels, so every
gradient ``K A - Y`` of all tasks is one matrix product, and every task has the same step.

Method: accelerated projected gradient (FISTA, Beck & Teboulle 2009) with the exact
projection onto ``{lo <= a <= hi, 1'a = 0}`` (a monotone one-dimensional root in the
multiplier, found by bisection refined with the breakpoint formula), step ``1/L`` with
``L`` the largest eigenvalue of the centred kernel ``(I - 11'/N) K (I - 11'/N)``, and
gradient restarts (O'Donoghue & Candes 2015). Every ``polish_every`` iterations an
active-set step solves the equality-constrained QP on the free variables exactly, which
ends in finitely many steps once the active set is right, so the answer reaches libsvm's
accuracy. Warm starts (the previous duals, which stay feasible when only ``K`` changes) make
the later alpha-steps of the MKL loop cheap.

Stopping rule and intercept are libsvm's (Fan, Chen & Lin, JMLR 2005): the maximal violating
pair ``max_{a_i < hi_i} -g_i - min_{a_i > lo_i} -g_i <= tol`` with ``g = K a - y``, and
``b = -mean(g_i)`` over the free variables (the middle of the feasible interval when none
is free), so decisions are ``K(x, .) a + b`` exactly as :class:`sklearn.svm.SVC` gives.
"""

import logging
import warnings

import numpy as np
from scipy import linalg

from .svm import SVMDuals

__all__ = ["KernelOperator", "svm_duals_batch", "kkt_violation"]

logger = logging.getLogger(__name__)

# Relative margin under which a coordinate counts as at its bound.
_BOUND_EPS = 1e-12


class KernelOperator:
    """The training kernel as an explicit matrix or as features ``K = Z Z' / scale``.

    The feature form never holds the ``N x N`` matrix: a product costs ``4 N m C`` flops
    instead of ``2 N^2 C``, cheaper when ``m < N / 2`` (e.g. the cross kernel, whose ``Z``
    has one node-width).

    Parameters
    ----------
    kernel : ndarray of shape (N, N), optional
    features : ndarray of shape (N, m), optional
        Exactly one of ``kernel`` and ``features``.
    scale : float, default=1.0
        Divides ``Z Z'``.
    """

    def __init__(self, kernel=None, features=None, scale=1.0):
        if (kernel is None) == (features is None):
            raise ValueError("give exactly one of kernel and features")
        self.kernel = kernel
        self.features = features
        self.scale = float(scale)
        self.n = (kernel if kernel is not None else features).shape[0]
        self.dtype = (kernel if kernel is not None else features).dtype

    def matmul(self, coef):
        """``K @ coef`` for ``coef`` of shape (N, C)."""
        if self.kernel is not None:
            return self.kernel @ coef
        return self.features @ (self.features.T @ coef) / self.scale

    def submatrix(self, rows, cols):
        """``K[rows][:, cols]`` as float64."""
        if self.kernel is not None:
            return np.asarray(self.kernel[np.ix_(rows, cols)], dtype=np.float64)
        return (self.features[rows] @ self.features[cols].T).astype(np.float64) / self.scale

    def top_centred_eigenvalue(self, n_iter=30, seed=0):
        """Largest eigenvalue of ``(I - 11'/N) K (I - 11'/N)`` by power iteration."""
        rng = np.random.default_rng(seed)
        v = rng.normal(size=(self.n, 1)).astype(self.dtype)
        value = 0.0
        for _ in range(n_iter):
            v -= v.mean()
            w = self.matmul(v)
            w -= w.mean()
            value = float(np.linalg.norm(w))
            if value == 0:
                return 0.0
            v = w / value
        # Rayleigh quotient of the last iterate; 5% margin for the unconverged tail.
        return 1.05 * float((v.T @ self.matmul(v - v.mean())).item())


def _bounds(Y, C):
    return np.where(Y > 0, 0.0, -C), np.where(Y > 0, C, 0.0)


def project(V, lo, hi, n_bisect=60):
    """Euclidean projection of every column onto ``{lo <= a <= hi, 1'a = 0}``.

    Parameters
    ----------
    V : ndarray of shape (N, C)
    lo, hi : ndarray of shape (N, C)
        Bounds with ``sum(lo) <= 0 <= sum(hi)`` per column.

    Returns
    -------
    ndarray of shape (N, C)

    Notes
    -----
    ``a = clip(v - nu, lo, hi)`` with ``nu`` the root of the non-increasing piecewise-linear
    ``s(nu) = 1' clip(v - nu, lo, hi)``. Bisection brackets the root's linear piece; the
    exact root on that piece follows from the free coordinates.
    """
    low = (V - hi).min(axis=0)
    high = (V - lo).max(axis=0)
    for _ in range(n_bisect):
        mid = 0.5 * (low + high)
        total = np.clip(V - mid, lo, hi).sum(axis=0)
        above = total > 0
        low = np.where(above, mid, low)
        high = np.where(above, high, mid)
        if np.all(high - low <= 1e-13 * (1.0 + np.abs(high))):
            break
    nu = 0.5 * (low + high)
    # Exact root on the linear piece around nu: free coordinates move one for one with nu.
    shifted = V - nu
    free = (shifted > lo) & (shifted < hi)
    clipped = np.clip(shifted, lo, hi)
    n_free = free.sum(axis=0)
    correction = np.where(n_free > 0, clipped.sum(axis=0) / np.maximum(n_free, 1), 0.0)
    refined = np.clip(V - (nu + correction), lo, hi)
    # Keep the refinement only where it is at least as feasible (it is, on the right piece).
    better = np.abs(refined.sum(axis=0)) <= np.abs(clipped.sum(axis=0))
    return np.where(better, refined, clipped)


def kkt_violation(gradient, A, lo, hi):
    """libsvm's maximal violating pair per task, ``max_{up} -g - min_{low} -g``.

    Parameters
    ----------
    gradient : ndarray of shape (N, C)
        ``K A - Y``.
    A, lo, hi : ndarray of shape (N, C)

    Returns
    -------
    ndarray of shape (C,); 0 at an exact optimum
    """
    span = np.maximum(hi - lo, 1.0)
    can_rise = A < hi - _BOUND_EPS * span
    can_fall = A > lo + _BOUND_EPS * span
    top = np.where(can_rise, -gradient, -np.inf).max(axis=0)
    bottom = np.where(can_fall, -gradient, np.inf).min(axis=0)
    return np.maximum(top - bottom, 0.0)


def _intercept(gradient, A, lo, hi):
    """libsvm's bias ``b = -rho``: ``rho`` the mean of ``g`` over free variables, else the
    middle of ``[max g at upper bounds, min g at lower bounds]`` (``calculate_rho``)."""
    span = np.maximum(hi - lo, 1.0)
    at_lo = A <= lo + _BOUND_EPS * span
    at_hi = A >= hi - _BOUND_EPS * span
    free = ~at_lo & ~at_hi
    n_free = free.sum(axis=0)
    mean_free = np.where(free, gradient, 0.0).sum(axis=0) / np.maximum(n_free, 1)
    upper = np.where(at_lo, gradient, np.inf).min(axis=0)
    lower = np.where(at_hi, gradient, -np.inf).max(axis=0)
    middle = 0.5 * (np.where(np.isfinite(upper), upper, lower)
                    + np.where(np.isfinite(lower), lower, upper))
    return -np.where(n_free > 0, mean_free, middle)


def _polish(operator, A, Y, lo, hi, max_free):
    """Active-set step: the exact minimiser on the current face, projected back.

    On the face where the bounded variables ``B`` stay at their bounds, the KKT system of
    ``min 1/2 a'Ka - y'a`` s.t. ``1'a = 0`` is ``[K_FF 1; 1' 0] [a_F; nu] = [y_F - K_FB a_B;
    -1'a_B]``.
    """
    span = np.maximum(hi - lo, 1.0)
    free_mask = (A > lo + 1e-9 * span) & (A < hi - 1e-9 * span)
    target = A.copy()
    for c in range(A.shape[1]):
        free = np.flatnonzero(free_mask[:, c])
        if free.size == 0 or free.size > max_free:
            continue
        bounded = np.flatnonzero(~free_mask[:, c])
        k_ff = operator.submatrix(free, free)
        rhs = Y[free, c].astype(np.float64)
        if bounded.size:
            a_b = A[bounded, c].astype(np.float64)
            active = bounded[a_b != 0]
            if active.size:
                rhs -= operator.submatrix(free, active) @ A[active, c].astype(np.float64)
            fixed_sum = a_b.sum()
        else:
            fixed_sum = 0.0
        system = np.zeros((free.size + 1, free.size + 1))
        system[:-1, :-1] = k_ff
        system[:-1, -1] = 1.0
        system[-1, :-1] = 1.0
        right = np.append(rhs, -fixed_sum)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", linalg.LinAlgWarning)
                solution = linalg.solve(system, right, assume_a="sym", check_finite=False)
        except (linalg.LinAlgError, linalg.LinAlgWarning, ValueError):
            # Singular face (more free variables than the kernel's rank): the least-norm
            # solution still solves the consistent KKT system.
            solution = linalg.lstsq(system, right, check_finite=False)[0]
        target[free, c] = solution[:-1]
    return project(target, lo, hi)


def _objective(A, KA, Y):
    return 0.5 * np.einsum("nc,nc->c", A, KA) - np.einsum("nc,nc->c", Y, A)


def svm_duals_batch(kernel, Y, C, tol=1e-4, init=None, max_iter=5000, polish_every=25,
                    max_free=3000, lipschitz=None):
    """Solve all one-vs-rest SVM duals on one kernel at once.

    Parameters
    ----------
    kernel : ndarray of shape (N, N) or KernelOperator
        Positive semi-definite training kernel (float32 or float64).
    Y : ndarray of shape (N, n_tasks)
        ``{-1, +1}`` labels, one column per binary task.
    C : float
        Box constraint.
    tol : float, default=1e-4
        Stop when libsvm's maximal-violating-pair gap is below ``tol`` for every task.
    init : ndarray of shape (N, n_tasks) or None
        Signed duals to warm start from (e.g. the previous alpha-step's ``coef``); projected
        onto the feasible set first.
    max_iter : int, default=5000
        Most gradient iterations.
    polish_every : int, default=25
        Iterations between active-set steps.
    max_free : int, default=3000
        Largest free set an active-set step solves directly (a dense ``O(F^3)`` solve).
    lipschitz : float or None
        ``L`` of the centred kernel when known (computed otherwise).

    Returns
    -------
    duals : SVMDuals
        As :func:`mkl_tp.solvers.svm.svm_duals`.
    info : dict
        ``n_iter`` (gradient iterations), ``violation`` (final gap per task),
        ``lipschitz``.

    Notes
    -----
    Objective per task ``1'alpha - 1/2 a'Ka`` (the dual of the C-SVM with bias; the paper's
    Eq. 3 inner problem). Each iteration costs one ``(N, N) x (N, n_tasks)`` product.
    """
    operator = kernel if isinstance(kernel, KernelOperator) else KernelOperator(kernel)
    dtype = operator.dtype
    Y = np.asarray(Y, dtype=np.float64)
    lo, hi = _bounds(Y, float(C))
    if lipschitz is None:
        lipschitz = operator.top_centred_eigenvalue()
    step = 1.0 / max(lipschitz, np.finfo(float).tiny)
    A = np.zeros_like(Y) if init is None else project(np.asarray(init, float), lo, hi)

    def gradient_of(X):
        return operator.matmul(X.astype(dtype, copy=False)).astype(np.float64) - Y

    KA = gradient_of(A) + Y
    violation = kkt_violation(KA - Y, A, lo, hi)
    momentum_point, previous, t = A, A, np.ones(Y.shape[1])
    n_iter = 0
    while n_iter < max_iter and violation.max() > tol:
        n_iter += 1
        grad_m = gradient_of(momentum_point)
        new = project(momentum_point - step * grad_m, lo, hi)
        # Gradient restart per task: momentum that points uphill is dropped.
        uphill = np.einsum("nc,nc->c", grad_m, new - previous) > 0
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        weight = np.where(uphill, 0.0, (t - 1.0) / t_next)
        t = np.where(uphill, 1.0, t_next)
        momentum_point = new + weight * (new - previous)
        previous = new
        if n_iter % polish_every == 0:
            KA_new = gradient_of(new) + Y
            candidate = _polish(operator, new, Y, lo, hi, max_free)
            KA_cand = gradient_of(candidate) + Y
            better = _objective(candidate, KA_cand, Y) <= _objective(new, KA_new, Y)
            A = np.where(better, candidate, new)
            KA = np.where(better, KA_cand, KA_new)
            violation = kkt_violation(KA - Y, A, lo, hi)
            momentum_point, previous = A, A
            t = np.where(better, 1.0, t)
            logger.debug("batch SVM: iter %d max violation %.3e", n_iter, violation.max())
    if n_iter % polish_every != 0 or n_iter == 0:
        A = previous
        KA = gradient_of(A) + Y
        violation = kkt_violation(KA - Y, A, lo, hi)
    gradient = KA - Y
    intercept = _intercept(gradient, A, lo, hi)
    objective = -_objective(A, KA, Y)
    duals = SVMDuals(A, intercept, objective)
    return duals, {"n_iter": n_iter, "violation": violation, "lipschitz": lipschitz}
