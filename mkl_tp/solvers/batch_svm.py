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

The solver is written once against the array API (``xp = array_namespace(kernel)``, the
pattern of scikit-learn's array-API support): numpy arrays run it in numpy, torch tensors
in torch on their device (:mod:`mkl_tp.solvers.torch_svm` only places the data).
"""

import logging
import warnings

import numpy as np
from array_api_compat import array_namespace, to_device
from array_api_compat import device as array_device
from scipy import linalg

from .svm import SVMDuals

__all__ = ["KernelOperator", "svm_duals_batch", "kkt_violation", "project"]

logger = logging.getLogger(__name__)

# Relative margin under which a coordinate counts as at its bound.
_BOUND_EPS = 1e-12


class KernelOperator:
    """The training kernel as an explicit matrix or as features ``K = Z Z' / scale``.

    The feature form never holds the ``N x N`` matrix: a product costs ``4 N m C`` flops
    instead of ``2 N^2 C``, cheaper when ``m < N / 2`` (e.g. the cross kernel, whose ``Z``
    has one node-width). Either form may be a numpy array or a torch tensor.

    Parameters
    ----------
    kernel : array of shape (N, N), optional
    features : array of shape (N, m), optional
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
        data = kernel if kernel is not None else features
        self.xp = array_namespace(data)
        self.n = data.shape[0]
        self.dtype = data.dtype
        self.device = array_device(data)

    def matmul(self, coef):
        """``K @ coef`` for ``coef`` of shape (N, C)."""
        if self.kernel is not None:
            return self.kernel @ coef
        return self.features @ (self.features.T @ coef) / self.scale

    def submatrix(self, rows, cols):
        """``K[rows][:, cols]`` as float64."""
        xp = self.xp
        if self.kernel is not None:
            block = xp.take(xp.take(self.kernel, rows, axis=0), cols, axis=1)
            return xp.astype(block, xp.float64)
        left = xp.take(self.features, rows, axis=0)
        right = xp.take(self.features, cols, axis=0)
        return xp.astype(left @ right.T, xp.float64) / self.scale

    def top_centred_eigenvalue(self, n_iter=30, seed=0):
        """Largest eigenvalue of ``(I - 11'/N) K (I - 11'/N)`` by power iteration."""
        xp = self.xp
        start = np.random.default_rng(seed).normal(size=(self.n, 1))
        v = xp.asarray(start, dtype=self.dtype, device=self.device)
        value = 0.0
        for _ in range(n_iter):
            v = v - xp.mean(v)
            w = self.matmul(v)
            w = w - xp.mean(w)
            value = float(xp.linalg.vector_norm(w))
            if value == 0:
                return 0.0
            v = w / value
        # Rayleigh quotient of the last iterate; 5% margin for the unconverged tail.
        return 1.05 * float(xp.sum(v * self.matmul(v - xp.mean(v))))


def _bounds(xp, Y, C):
    zero = xp.zeros_like(Y)
    return xp.where(Y > 0, zero, zero - C), xp.where(Y > 0, zero + C, zero)


def project(V, lo, hi, n_bisect=60):
    """Euclidean projection of every column onto ``{lo <= a <= hi, 1'a = 0}``.

    Parameters
    ----------
    V : array of shape (N, C)
    lo, hi : array of shape (N, C)
        Bounds with ``sum(lo) <= 0 <= sum(hi)`` per column.
    n_bisect : int, default=60
        Most bisection steps (they stop once the bracket is below ``1e-13`` relative).

    Returns
    -------
    array of shape (N, C)

    Notes
    -----
    ``a = clip(v - nu, lo, hi)`` with ``nu`` the root of the non-increasing piecewise-linear
    ``s(nu) = 1' clip(v - nu, lo, hi)``. Bisection brackets the root's linear piece; the
    exact root on that piece follows from the free coordinates.
    """
    xp = array_namespace(V)
    low = xp.min(V - hi, axis=0)
    high = xp.max(V - lo, axis=0)
    for _ in range(n_bisect):
        mid = 0.5 * (low + high)
        above = xp.sum(xp.clip(V - mid, lo, hi), axis=0) > 0
        low = xp.where(above, mid, low)
        high = xp.where(above, high, mid)
        if bool(xp.all(high - low <= 1e-13 * (1.0 + xp.abs(high)))):
            break
    nu = 0.5 * (low + high)
    # Exact root on the linear piece around nu: free coordinates move one for one with nu.
    shifted = V - nu
    free = (shifted > lo) & (shifted < hi)
    clipped = xp.clip(shifted, lo, hi)
    n_free = xp.astype(xp.sum(xp.astype(free, V.dtype), axis=0), V.dtype)
    correction = xp.where(
        n_free > 0, xp.sum(clipped, axis=0) / xp.clip(n_free, 1, None), xp.zeros_like(nu)
    )
    refined = xp.clip(V - (nu + correction), lo, hi)
    # Keep the refinement only where it is at least as feasible (it is, on the right piece).
    better = xp.abs(xp.sum(refined, axis=0)) <= xp.abs(xp.sum(clipped, axis=0))
    return xp.where(better, refined, clipped)


def _bound_masks(A, lo, hi, eps):
    """``(at_lo, at_hi)``: coordinates within ``eps`` (relative) of their bounds."""
    xp = array_namespace(A)
    span = xp.clip(hi - lo, 1.0, None)
    return A <= lo + eps * span, A >= hi - eps * span


def kkt_violation(gradient, A, lo, hi):
    """libsvm's maximal violating pair per task, ``max_{up} -g - min_{low} -g``.

    Parameters
    ----------
    gradient : array of shape (N, C)
        ``K A - Y``.
    A, lo, hi : array of shape (N, C)

    Returns
    -------
    array of shape (C,); 0 at an exact optimum
    """
    xp = array_namespace(gradient)
    at_lo, at_hi = _bound_masks(A, lo, hi, _BOUND_EPS)
    top = xp.max(xp.where(~at_hi, -gradient, -xp.inf), axis=0)
    bottom = xp.min(xp.where(~at_lo, -gradient, xp.inf), axis=0)
    return xp.clip(top - bottom, 0.0, None)


def _intercept(gradient, A, lo, hi):
    """libsvm's bias ``b = -rho``: ``rho`` the mean of ``g`` over free variables, else the
    middle of ``[max g at upper bounds, min g at lower bounds]`` (``calculate_rho``)."""
    xp = array_namespace(gradient)
    at_lo, at_hi = _bound_masks(A, lo, hi, _BOUND_EPS)
    free = ~at_lo & ~at_hi
    n_free = xp.sum(xp.astype(free, gradient.dtype), axis=0)
    mean_free = xp.sum(xp.where(free, gradient, 0.0), axis=0) / xp.clip(n_free, 1, None)
    upper = xp.min(xp.where(at_lo, gradient, xp.inf), axis=0)
    lower = xp.max(xp.where(at_hi, gradient, -xp.inf), axis=0)
    upper, lower = (
        xp.where(xp.isfinite(upper), upper, lower),
        xp.where(xp.isfinite(lower), lower, upper),
    )
    # Both infinite only when no variable is bounded: every one is free, mean_free serves.
    finite = xp.isfinite(upper) & xp.isfinite(lower)
    middle = 0.5 * (xp.where(finite, upper, 0.0) + xp.where(finite, lower, 0.0))
    return -xp.where(n_free > 0, mean_free, middle)


def _solve_kkt(system, right):
    """Solve the symmetric KKT system on the host; least squares when it is ill-posed.

    A singular face (more free variables than the kernel's rank) still has a consistent KKT
    system, whose least-norm solution (LAPACK's gelsd) is the step. scipy's condition
    estimate flags ill-posed systems before they give a useless step, so the system (at most
    ``max_free + 1`` unknowns, once every ``polish_every`` iterations) is solved on the host
    whatever the array library: numpy and torch take the same steps.
    """
    xp = array_namespace(system)
    host_system = np.asarray(to_device(system, "cpu"))
    host_right = np.asarray(to_device(right, "cpu"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", linalg.LinAlgWarning)
            solution = linalg.solve(host_system, host_right, assume_a="sym", check_finite=False)
    except (linalg.LinAlgError, linalg.LinAlgWarning, ValueError):
        solution = linalg.lstsq(host_system, host_right, check_finite=False)[0]
    return xp.asarray(solution, dtype=system.dtype, device=array_device(system))


def _polish(operator, A, Y, lo, hi, max_free):
    """Active-set step: the exact minimiser on the current face, projected back.

    On the face where the bounded variables ``B`` stay at their bounds, the KKT system of
    ``min 1/2 a'Ka - y'a`` s.t. ``1'a = 0`` is ``[K_FF 1; 1' 0] [a_F; nu] = [y_F - K_FB a_B;
    -1'a_B]``.
    """
    xp = operator.xp
    at_lo, at_hi = _bound_masks(A, lo, hi, 1e-9)
    free_mask = ~at_lo & ~at_hi
    columns = []
    for c in range(A.shape[1]):
        column = A[:, c]
        free = xp.nonzero(free_mask[:, c])[0]
        size = free.shape[0]
        if size == 0 or size > max_free:
            columns.append(column)
            continue
        bounded = xp.nonzero(~free_mask[:, c])[0]
        a_bounded = xp.astype(xp.take(column, bounded), xp.float64)
        rhs = xp.astype(xp.take(Y[:, c], free), xp.float64)
        active = xp.take(bounded, xp.nonzero(a_bounded != 0)[0])
        if active.shape[0]:
            rhs = rhs - operator.submatrix(free, active) @ xp.take(
                a_bounded, xp.nonzero(a_bounded != 0)[0]
            )
        system = xp.ones((size + 1, size + 1), dtype=xp.float64, device=operator.device)
        system[:-1, :-1] = operator.submatrix(free, free)
        system[-1, -1] = 0.0
        right = xp.concat([rhs, xp.reshape(-xp.sum(a_bounded), (1,))])
        solution = _solve_kkt(system, right)
        column = xp.asarray(column, copy=True)
        column[free] = xp.astype(solution[:-1], column.dtype)
        columns.append(column)
    return project(xp.stack(columns, axis=1), lo, hi)


def _objective(A, KA, Y):
    xp = array_namespace(A)
    return 0.5 * xp.sum(A * KA, axis=0) - xp.sum(Y * A, axis=0)


def _host(x):
    return np.asarray(to_device(x, "cpu"), dtype=np.float64)


def svm_duals_batch(
    kernel, Y, C, tol=1e-4, init=None, max_iter=5000, polish_every=25, max_free=3000, lipschitz=None
):
    """Solve all one-vs-rest SVM duals on one kernel at once.

    Parameters
    ----------
    kernel : array of shape (N, N) or KernelOperator
        Positive semi-definite training kernel (float32 or float64), a numpy array or a
        torch tensor; the solver runs in that array's library and on its device.
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
        As :func:`mkl_tp.solvers.svm.svm_duals` (numpy arrays).
    info : dict
        ``n_iter`` (gradient iterations), ``violation`` (final gap per task, numpy),
        ``lipschitz``.

    Notes
    -----
    Objective per task ``1'alpha - 1/2 a'Ka`` (the dual of the C-SVM with bias; the paper's
    Eq. 3 inner problem). Each iteration costs one ``(N, N) x (N, n_tasks)`` product. The
    duals are kept in float64 whatever the kernel's precision.
    """
    operator = kernel if isinstance(kernel, KernelOperator) else KernelOperator(kernel)
    xp, dtype = operator.xp, operator.dtype
    Y = xp.asarray(np.asarray(Y, dtype=np.float64), device=operator.device)
    lo, hi = _bounds(xp, Y, float(C))
    if lipschitz is None:
        lipschitz = operator.top_centred_eigenvalue()
    step = 1.0 / max(lipschitz, np.finfo(float).tiny)
    if init is None:
        A = xp.zeros_like(Y)
    else:
        A = project(xp.asarray(np.asarray(init, dtype=np.float64), device=operator.device), lo, hi)

    def gradient_of(X):
        return xp.astype(operator.matmul(xp.astype(X, dtype)), xp.float64) - Y

    KA = gradient_of(A) + Y
    violation = kkt_violation(KA - Y, A, lo, hi)
    momentum_point, previous = A, A
    t = xp.ones(Y.shape[1], dtype=xp.float64, device=operator.device)
    n_iter = 0
    while n_iter < max_iter and float(xp.max(violation)) > tol:
        n_iter += 1
        grad_m = gradient_of(momentum_point)
        new = project(momentum_point - step * grad_m, lo, hi)
        # Gradient restart per task: momentum that points uphill is dropped.
        uphill = xp.sum(grad_m * (new - previous), axis=0) > 0
        t_next = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * t * t))
        weight = xp.where(uphill, 0.0, (t - 1.0) / t_next)
        t = xp.where(uphill, 1.0, t_next)
        momentum_point = new + weight * (new - previous)
        previous = new
        if n_iter % polish_every == 0:
            KA_new = gradient_of(new) + Y
            candidate = _polish(operator, new, Y, lo, hi, max_free)
            KA_cand = gradient_of(candidate) + Y
            better = _objective(candidate, KA_cand, Y) <= _objective(new, KA_new, Y)
            A = xp.where(better, candidate, new)
            KA = xp.where(better, KA_cand, KA_new)
            violation = kkt_violation(KA - Y, A, lo, hi)
            momentum_point, previous = A, A
            t = xp.where(better, 1.0, t)
            logger.debug("batch SVM: iter %d max violation %.3e", n_iter, float(xp.max(violation)))
    if n_iter % polish_every != 0 or n_iter == 0:
        A = previous
        KA = gradient_of(A) + Y
        violation = kkt_violation(KA - Y, A, lo, hi)
    gradient = KA - Y
    intercept = _intercept(gradient, A, lo, hi)
    objective = -_objective(A, KA, Y)
    duals = SVMDuals(_host(A), _host(intercept), _host(objective))
    return duals, {"n_iter": n_iter, "violation": _host(violation), "lipschitz": lipschitz}
