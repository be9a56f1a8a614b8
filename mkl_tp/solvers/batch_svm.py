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

from ._common import (
    KernelOperator,
    SVMDuals,
    bound_masks,
    box_bounds,
    host,
    kkt_violation,
    libsvm_intercept,
    project,
)

__all__ = ["KernelOperator", "svm_duals_batch", "kkt_violation", "project"]

logger = logging.getLogger(__name__)


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
    at_lo, at_hi = bound_masks(A, lo, hi, 1e-9)
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
    SVMDuals
        As :func:`mkl_tp.solvers.svm.svm_duals` (numpy arrays), with ``info``:
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
    lo, hi = box_bounds(xp, Y, float(C))
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
    intercept = libsvm_intercept(gradient, A, lo, hi)
    objective = -_objective(A, KA, Y)
    info = {"n_iter": n_iter, "violation": host(violation), "lipschitz": lipschitz}
    return SVMDuals(host(A), host(intercept), host(objective), info)
