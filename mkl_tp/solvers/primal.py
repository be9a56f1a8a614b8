"""alpha-step without an ``N x N`` kernel: all one-vs-rest SVMs from explicit features.

Every base kernel here is an explicit feature map, so ``K_beta = Z Z'`` with ``Z`` the
weighted node features (:func:`mkl_tp.kernels.weighted_features`, divided by
``sqrt(D(beta))`` for the cross kernel). The problem is the one libsvm solves on ``K``
(:mod:`mkl_tp.solvers.svm`), the C-SVM with an unregularised bias, per task ``c``:

    min_{w, b}  1/2 ||w||^2 + C sum_i max(0, r_i),   r_i = 1 - y_ci (z_i'w + b),

whose dual is ``max 1'alpha - 1/2 a'ZZ'a`` over ``0 <= alpha <= C``, ``y_c'alpha = 0``,
``a = alpha * y_c``, ``w = Z'a``. Nothing of size ``N x N`` is formed: the work is
``(N, m) x (m, n_tasks)`` products and systems of at most ``m + 1`` unknowns.

Method: the proximal-point method on the dual (Rockafellar 1976), i.e. the augmented
Lagrangian method on the primal. With multipliers ``u`` (the current ``alpha``) and a
penalty ``sigma``, each outer step minimises over ``(w, b)``

    Phi(w, b) = 1/2 ||w||^2 + 1/sigma sum_i psi(sigma r_i + u_i),
    psi(t) = 0 (t <= 0),  t^2 / 2 (0 <= t <= C),  C t - C^2 / 2 (t >= C),

a Huber-smoothed hinge: convex, with a piecewise-linear gradient. Semismooth Newton with an
exact line search solves it (the SSNAL approach of Li, Sun & Toh, SIAM J. Optim. 2018,
applied to the SVM by Yan & Li, 2020): the generalised Hessian
``I + sigma Z_J'Z_J`` involves only the videos ``J`` with ``0 < sigma r_i + u_i < C``
(near the margin), and is solved in ``min(|J|, m) + 1`` unknowns. The new multipliers
``u = clip(sigma r + u, 0, C)`` are the next dual iterate: always inside the box, with
``y'u = 0`` from the bias's stationarity. ``sigma`` grows between outer steps, and the
outer iterates converge to the SVM dual optimum for any ``sigma``.

Stopping rule and intercept are libsvm's, as in :mod:`mkl_tp.solvers.batch_svm`: the
maximal violating pair of the dual gradient ``g = Z (Z'a) - y`` below ``tol`` for every
task, and ``b`` from the free variables. Warm starts pass the previous duals (and
intercepts): the first subproblem is then already near its solution.

Written once against the array API, like :mod:`~mkl_tp.solvers.batch_svm`: numpy arrays
run it in numpy, torch tensors in torch on their device. ``Z`` is only touched through
:class:`FeatureOperator` (products and row gathers), so a row-sharded ``Z`` on a Dask
cluster (:class:`mkl_tp.solvers.distributed.ShardedFeatures`) runs the same solver.
"""

import logging

import numpy as np
from array_api_compat import array_namespace, device as array_device

from .._blas import single_threaded_blas
from .batch_svm import _bounds, _intercept, kkt_violation, project
from .svm import SVMDuals

__all__ = ["FeatureOperator", "svm_duals_primal"]

logger = logging.getLogger(__name__)

# sigma of the first outer step in units of C, its growth per outer step, and its cap.
_SIGMA_FIRST, _SIGMA_GROWTH, _SIGMA_MOST = 10.0, 5.0, 1e4
# Newton steps stop at a gradient norm this small relative to max(1, ||w||).
_NEWTON_RTOL = 1e-9
# Elements of the line search's (3 N, tasks) work arrays per chunk of tasks; some fifteen
# live at once, so 2**22 bounds them near 0.5 GB (docs/performance.rst, "Out of core").
_LINE_SEARCH_CHUNK = 2**22


class FeatureOperator:
    """The features ``Z`` of a kernel ``K = Z Z' / scale``: products and row gathers.

    Parameters
    ----------
    features : array of shape (N, m)
        numpy array or torch tensor (any float dtype; products run in it, results are
        float64).
    scale : float, default=1.0
        Divides ``Z Z'`` (the cross kernel's normaliser ``D(beta)``).
    """

    def __init__(self, features, scale=1.0):
        self.features = features
        self.xp = array_namespace(features)
        self.device = array_device(features)
        self.shape = tuple(features.shape)
        self._root = 1.0 / float(np.sqrt(scale))
        self._max_row_norm = None

    def matmul(self, W):
        """``Z W / sqrt(scale)`` for ``W`` of shape (m, k): (N, k), float64."""
        xp = self.xp
        product = self.features @ xp.astype(W, self.features.dtype)
        return xp.astype(product, xp.float64) * self._root

    def rmatmul(self, V):
        """``Z' V / sqrt(scale)`` for ``V`` of shape (N, k): (m, k), float64."""
        xp = self.xp
        product = self.features.T @ xp.astype(V, self.features.dtype)
        return xp.astype(product, xp.float64) * self._root

    def max_row_norm(self):
        """``max_i ||z_i||^2 / scale``, the kernel's largest diagonal entry."""
        if self._max_row_norm is None:
            xp, largest = self.xp, 0.0
            for start in range(0, self.shape[0], 4096):  # no copy of all of Z
                part = xp.astype(self.features[start:start + 4096, :], xp.float64)
                largest = max(largest, float(xp.max(xp.sum(part * part, axis=1))))
            self._max_row_norm = largest * self._root**2
        return self._max_row_norm

    def rows(self, index):
        """``Z[index] / sqrt(scale)``, float64."""
        xp = self.xp
        return xp.astype(xp.take(self.features, index, axis=0), xp.float64) * self._root


def _sorted_line_search(xp, w_dot_d, d_dot_d, T0, Q, sigma, C):
    """Exact minimiser ``t >= 0`` of ``Phi`` along a direction, for every task.

    Along ``(w, b) + t d``: ``T(t) = T0 - sigma t Q`` and
    ``phi'(t) = w_dot_d + t d_dot_d - sum_i clip(T_i(t), 0, C) Q_i``, piecewise linear and
    non-decreasing (``Phi`` is convex). Each video's term bends where ``T_i`` enters or
    leaves ``[0, C]``; sorting those breakpoints gives ``phi'`` at each of them by
    cumulative sums, and the root is found on its linear piece.
    """
    down, up = Q > 0, Q < 0  # T falls / rises along the direction
    with np.errstate(divide="ignore", invalid="ignore"):
        at_zero = T0 / (sigma * Q)
        at_C = (T0 - C) / (sigma * Q)
    inside = ((T0 > 0) | ((T0 == 0) & up)) & ((T0 < C) | ((T0 == C) & down))
    below = ~inside & (T0 <= 0) & up
    above = ~inside & (T0 >= C) & down
    inf = xp.full_like(T0, xp.inf)
    leave_inside = xp.where(inside & down, at_zero, xp.where(inside & up, at_C, inf))
    enter = xp.where(below, at_zero, xp.where(above, at_C, inf))
    leave_outside = xp.where(below, at_C, xp.where(above, at_zero, inf))
    bend = sigma * Q * Q
    points = xp.concat([enter, leave_outside, leave_inside], axis=0)
    change = xp.concat([bend, -bend, -bend], axis=0)
    order = xp.argsort(points, axis=0)
    points = xp.take_along_axis(points, order, axis=0)
    change = xp.take_along_axis(change, order, axis=0)
    finite = xp.isfinite(points)
    points = xp.where(finite, points, 0.0)  # infinite breakpoints (never reached) at the end
    slope0 = w_dot_d - xp.sum(xp.clip(T0, 0.0, C) * Q, axis=0)
    curvature0 = d_dot_d + xp.sum(xp.where(inside, bend, 0.0), axis=0)
    # Curvature after each breakpoint; slope of phi at each breakpoint.
    after = curvature0 + xp.cumulative_sum(xp.where(finite, change, 0.0), axis=0)
    before = xp.concat([curvature0[None, :], after[:-1, :]], axis=0)
    previous = xp.concat([xp.zeros_like(points[:1, :]), points[:-1, :]], axis=0)
    gaps = points - previous
    slope = slope0 + xp.cumulative_sum(before * gaps, axis=0)
    # The root lies after the last breakpoint with a negative slope (or before the first).
    count = xp.sum(xp.astype(finite & (slope < 0), xp.int64), axis=0)
    last = xp.clip(count - 1, 0, None)[None, :]
    start = xp.where(count > 0, xp.take_along_axis(points, last, axis=0)[0], 0.0)
    start_slope = xp.where(count > 0, xp.take_along_axis(slope, last, axis=0)[0], slope0)
    start_curvature = xp.where(count > 0, xp.take_along_axis(after, last, axis=0)[0],
                               curvature0)
    positive = start_curvature > 0
    return xp.where(positive, start - start_slope / xp.where(positive, start_curvature, 1.0),
                    start)


def _line_search(xp, w_dot_d, d_dot_d, T0, Q, sigma, C, n_trials=8):
    """Exact minimiser ``t >= 0`` of ``Phi`` along a direction, for every task.

    Newton's method on the piecewise-linear, non-decreasing ``phi'`` (see
    :func:`_sorted_line_search`) from the Newton step ``t = 1``, kept inside a bracket:
    each trial costs one pass over ``(N, tasks)`` and lands on the root once it reaches
    the root's linear piece (two or three trials near the solution, where ``t = 1`` is
    exact). Tasks not settled after ``n_trials`` get the sorted search (a sort of
    ``3 N`` breakpoints, some 30 times dearer).
    """
    n_tasks = T0.shape[1]
    step = xp.ones(n_tasks, dtype=T0.dtype, device=array_device(T0))
    low, high = xp.zeros_like(step), xp.full_like(step, xp.inf)
    slope0 = w_dot_d - xp.sum(xp.clip(T0, 0.0, C) * Q, axis=0)
    settled = slope0 >= 0  # not a descent direction: stay
    step = xp.where(settled, 0.0, step)
    bend = sigma * Q * Q
    for _ in range(n_trials):
        if bool(xp.all(settled)):
            return step
        T = T0 - sigma * step * Q
        slope = w_dot_d + step * d_dot_d - xp.sum(xp.clip(T, 0.0, C) * Q, axis=0)
        settled = settled | (xp.abs(slope) <= 1e-12 * xp.abs(slope0))
        low = xp.where(slope < 0, step, low)
        high = xp.where(slope > 0, step, high)
        # Curvature of the piece towards the root: a video exactly at a bend counts as
        # inside when moving right (negative slope) takes it into [0, C].
        inside = (T > 0) & (T < C) | ((T == 0) & (Q < 0) & (slope < 0)) | (
            (T == C) & (Q > 0) & (slope < 0))
        curvature = d_dot_d + xp.sum(xp.where(inside, bend, 0.0), axis=0)
        newton = step - slope / xp.where(curvature > 0, curvature, 1.0)
        fallback = xp.where(xp.isfinite(high), 0.5 * (low + high), 2.0 * step)
        ok = (curvature > 0) & (newton > low) & (newton < high)
        step = xp.where(settled, step, xp.where(ok, newton, fallback))
    if bool(xp.all(settled)):
        return step
    exact = _sorted_line_search(xp, w_dot_d, d_dot_d, T0, Q, sigma, C)
    return xp.where(settled, step, exact)


def _newton_direction(xp, rows, sigma, g_w, g_b):
    """Solve the generalised Newton system of ``Phi`` for one task.

    ``[I + s Z_J'Z_J, s Z_J'1; s 1'Z_J, s |J|] [d_w; d_b] = -[g_w; g_b]`` with ``rows`` the
    ``(|J|, m)`` features of ``J``; in ``|J| + 1`` unknowns (``v = s (Z_J d_w + d_b)``)
    when ``|J| <= m``.
    """
    size, width = rows.shape
    if size == 0:
        # Phi is linear in b here: any positive multiple of -g_b is a descent direction
        # and the exact line search sizes it.
        return -g_w, -g_b * float(sigma)
    dtype, device = rows.dtype, array_device(rows)
    if size <= width:
        # (Z_J Z_J' + I / s) v - d_b 1 = -Z_J g_w,  1'v = -g_b;  d_w = -g_w - Z_J' v.
        system = xp.zeros((size + 1, size + 1), dtype=dtype, device=device)
        system[:size, :size] = rows @ rows.T + xp.eye(size, dtype=dtype, device=device) / sigma
        system[:size, size] = -1.0
        system[size, :size] = 1.0
        right = xp.concat([-(rows @ g_w), xp.reshape(-g_b, (1,))])
        solution = xp.linalg.solve(system, right)
        return -g_w - rows.T @ solution[:size], solution[size]
    system = xp.zeros((width + 1, width + 1), dtype=dtype, device=device)
    system[:width, :width] = sigma * (rows.T @ rows) + xp.eye(width, dtype=dtype,
                                                               device=device)
    column = sigma * xp.sum(rows, axis=0)
    system[:width, width] = column
    system[width, :width] = column
    system[width, width] = sigma * size
    solution = xp.linalg.solve(system, -xp.concat([g_w, xp.reshape(g_b, (1,))]))
    return solution[:width], solution[width]


def svm_duals_primal(features, Y, C, tol=1e-4, init=None, intercept=None, scale=1.0,
                     max_iter=100, max_newton=50):
    """Solve all one-vs-rest SVMs on ``K = Z Z' / scale`` without forming ``K``.

    Parameters
    ----------
    features : array of shape (N, m) or FeatureOperator
        ``Z``: a numpy array or torch tensor (the solver runs in its library and on its
        device), or an operator over it (e.g. a row-sharded one).
    Y, C, tol
        Labels, box constraint and libsvm's stopping gap, as
        :func:`~mkl_tp.solvers.batch_svm.svm_duals_batch`.
    init : ndarray of shape (N, n_tasks) or None
        Signed duals ``alpha * y`` to warm start from (clipped to the box).
    intercept : ndarray of shape (n_tasks,) or None
        Biases to warm start from (``None``: libsvm's bias of ``init``).
    scale : float, default=1.0
        Divides ``Z Z'`` (ignored for an operator, which carries its own).
    max_iter : int, default=100
        Most outer (proximal-point) steps.
    max_newton : int, default=50
        Most Newton steps per outer step.

    Returns
    -------
    duals : SVMDuals
        As :func:`mkl_tp.solvers.svm.svm_duals` (numpy arrays).
    info : dict
        ``n_iter`` (Newton steps), ``n_outer``, ``violation`` (per task), ``weights``
        (``w = Z'a / sqrt(scale)``, shape (m, n_tasks), numpy).

    Notes
    -----
    The dual objectives are computed from the returned duals (projected onto
    ``1'a = 0``), ``1'|a| - 1/2 ||Z'a||^2 / scale``: the same numbers
    :func:`~mkl_tp.solvers.svm.svm_duals` reports, the paper's Eq. 3 inner problem.
    """
    # Any object with FeatureOperator's methods serves (e.g. distributed.ShardedFeatures).
    operator = features if hasattr(features, "rmatmul") else FeatureOperator(features, scale)
    xp, device = operator.xp, operator.device
    C = float(C)
    Y = xp.asarray(np.asarray(Y, dtype=np.float64), device=device)
    lo, hi = _bounds(xp, Y, C)
    if init is None:
        U = xp.zeros_like(Y)
    else:
        U = xp.clip(xp.asarray(np.asarray(init, dtype=np.float64), device=device) * Y, 0.0, C)
    W = operator.rmatmul(U * Y)
    F = operator.matmul(W)
    # Bound on ||z_i||^2 (|z_i' v| <= ||z_i|| ||v||) from the kernel's diagonal.
    row_norm = operator.max_row_norm()
    if intercept is not None:
        b = xp.asarray(np.asarray(intercept, dtype=np.float64), device=device)
    elif init is not None:
        # libsvm's bias of the starting duals: the first subproblem starts near its optimum.
        b = _intercept(F - Y, U * Y, lo, hi)
    else:
        b = xp.zeros(Y.shape[1], dtype=xp.float64, device=device)
    active = xp.ones(Y.shape[1], dtype=xp.bool, device=device)
    sigma = _SIGMA_FIRST * C
    n_newton = n_outer = 0
    violation = None
    while n_outer < max_iter:
        n_outer += 1
        W, b, F, U, G_w, n_steps = _outer_step(operator, Y, C, sigma, U, W, b, F, active,
                                               max_newton)
        n_newton += n_steps
        # Dual gradient at the new multipliers: w_U = Z'(U y) = W - G_w exactly, so
        # g = Z w_U - y = F - Z G_w - y; the product is skipped (one pass over Z) when
        # G_w is too small to move g by a thousandth of the tolerance.
        if float(xp.max(xp.sum(G_w * G_w, axis=0))) * row_norm <= (1e-3 * tol) ** 2:
            gradient = F - Y
        else:
            gradient = F - operator.matmul(G_w) - Y
        violation = kkt_violation(gradient, U * Y, lo, hi)
        logger.debug("primal SVM: outer %d sigma %.3g Newton %d max violation %.3e",
                     n_outer, sigma, n_newton, float(xp.max(violation)))
        active = active & (violation > tol)
        if not bool(xp.any(active)):
            break
        sigma = min(sigma * _SIGMA_GROWTH, _SIGMA_MOST * C)
    A = project(U * Y, lo, hi)
    weights = operator.rmatmul(A)
    gradient = operator.matmul(weights) - Y
    violation = kkt_violation(gradient, A, lo, hi)
    objective = xp.sum(xp.abs(A), axis=0) - 0.5 * xp.sum(weights * weights, axis=0)
    duals = SVMDuals(_host(A), _host(_intercept(gradient, A, lo, hi)), _host(objective))
    return duals, {"n_iter": n_newton, "n_outer": n_outer, "violation": _host(violation),
                   "weights": _host(weights)}


def _outer_step(operator, Y, C, sigma, U, W, b, F, active, max_newton):
    """Minimise ``Phi`` of the active tasks by semismooth Newton; the new multipliers.

    Returns ``(W, b, F, U, G_w, n_steps)`` with ``F = Z W`` and ``G_w`` the final gradient
    in ``w`` (frozen tasks keep their ``U`` and get ``G_w = 0``).
    """
    xp = operator.xp
    n_steps = 0
    for _ in range(max_newton + 1):
        T = sigma * (1.0 - Y * (F + b)) + U
        multipliers = xp.clip(T, 0.0, C)
        G_w = W - operator.rmatmul(Y * multipliers)
        G_b = -xp.sum(Y * multipliers, axis=0)
        norm = xp.sqrt(xp.sum(G_w * G_w, axis=0) + G_b * G_b)
        size = xp.sqrt(xp.sum(W * W, axis=0))
        moving = active & (norm > _NEWTON_RTOL * xp.clip(size, 1.0, None))
        if not bool(xp.any(moving)) or n_steps == max_newton:
            break
        n_steps += 1
        D_w = xp.zeros_like(W)
        D_b = xp.zeros_like(b)
        inside = (T > 0) & (T < C)
        tasks = [int(c) for c in np.flatnonzero(_host(xp.astype(moving, xp.float64)))]
        # One gather of the rows near any task's margin (one round trip on a cluster).
        needed = xp.any(inside[:, tasks], axis=1)
        union = xp.nonzero(needed)[0]
        position = xp.cumulative_sum(xp.astype(needed, xp.int64)) - 1
        rows_needed = operator.rows(union)
        with single_threaded_blas():
            # Small systems, one per task: BLAS threads only cost here (see
            # mkl_tp._blas).
            for c in tasks:
                rows = xp.take(rows_needed, xp.take(position, xp.nonzero(inside[:, c])[0]),
                               axis=0)
                d_w, d_b = _newton_direction(xp, rows, sigma, G_w[:, c], G_b[c])
                D_w[:, c] = d_w
                D_b[c] = d_b
        ZD = operator.matmul(D_w)
        Q = Y * (ZD + D_b)
        step = _chunked_line_search(xp, xp.sum(W * D_w, axis=0), xp.sum(D_w * D_w, axis=0),
                                    T, Q, sigma, C)
        step = xp.where(moving, step, 0.0)
        W = W + step * D_w
        b = b + step * D_b
        F = F + step * ZD
    U = xp.where(active, multipliers, U)
    G_w = xp.where(active, G_w, 0.0)
    return W, b, F, U, G_w, n_steps


def _chunked_line_search(xp, w_dot_d, d_dot_d, T, Q, sigma, C):
    """:func:`_line_search` on chunks of tasks, so its work arrays stay bounded."""
    n_samples, n_tasks = T.shape
    chunk = max(1, _LINE_SEARCH_CHUNK // (3 * n_samples))
    if chunk >= n_tasks:
        return _line_search(xp, w_dot_d, d_dot_d, T, Q, sigma, C)
    parts = [_line_search(xp, w_dot_d[k:k + chunk], d_dot_d[k:k + chunk], T[:, k:k + chunk],
                          Q[:, k:k + chunk], sigma, C) for k in range(0, n_tasks, chunk)]
    return xp.concat(parts)


def _host(x):
    from array_api_compat import to_device

    return np.asarray(to_device(x, "cpu"), dtype=np.float64)

