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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace
from array_api_compat import device as array_device

from .._utils.blas import blas_threads, single_threaded_blas
from .._utils.memory import release_free_memory
from .._utils.sampling import stratified_subset
from ._common import (
    BOUND_EPS,
    FeatureOperator,
    SVMDuals,
    bound_masks,
    box_bounds,
    host,
    kkt_violation,
    libsvm_intercept,
    project,
)
from ._line_search import chunked_line_search

__all__ = ["FeatureOperator", "svm_duals_primal"]

logger = logging.getLogger(__name__)

# sigma of the first outer step in units of C, its growth per outer step, and its cap.
_SIGMA_FIRST, _SIGMA_GROWTH, _SIGMA_MOST = 10.0, 5.0, 1e4
# Newton steps stop at a gradient norm this small relative to max(1, ||w||).
_NEWTON_RTOL = 1e-9
# A cold start on at least this many videos first solves the problem on a stratified
# fraction of them (recursively) and starts from that solution: from w = 0 the first
# Newton steps put thousands of videos in every task's system (docs/performance.rst).
_COARSE_MIN_VIDEOS, _COARSE_FRACTION, _COARSE_TOL = 8000, 0.25, 1e-2


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
    system[:width, :width] = sigma * (rows.T @ rows) + xp.eye(width, dtype=dtype, device=device)
    column = sigma * xp.sum(rows, axis=0)
    system[:width, width] = column
    system[width, :width] = column
    system[width, width] = sigma * size
    solution = xp.linalg.solve(system, -xp.concat([g_w, xp.reshape(g_b, (1,))]))
    return solution[:width], solution[width]


def svm_duals_primal(
    features,
    Y,
    C,
    tol=1e-4,
    init=None,
    intercept=None,
    scale=1.0,
    max_iter=100,
    max_newton=50,
    n_threads=None,
    coarse_start=True,
):
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
    n_threads : int or None, default=None
        Threads solving the tasks' Newton systems (numpy only); ``None``: as many as
        BLAS uses.
    coarse_start : bool, default=True
        Start a cold solve on ``_COARSE_MIN_VIDEOS`` or more videos (local ``Z``) from
        the solution on a stratified fraction of them. The optimum is the same, the duals
        differ within ``tol``.

    Returns
    -------
    SVMDuals
        As :func:`mkl_tp.solvers.svm.svm_duals` (numpy arrays), with ``info``:
        ``n_iter`` (Newton steps), ``n_outer``, ``violation`` (per task), ``weights``
        (``w = Z'a / sqrt(scale)``, shape (m, n_tasks), numpy).

    Notes
    -----
    The dual objectives are computed from the returned duals (balanced onto ``1'a = 0``
    with the bounded coordinates kept on their bounds), ``1'|a| - 1/2 ||Z'a||^2 / scale``:
    the same numbers :func:`~mkl_tp.solvers.svm.svm_duals` reports, the paper's Eq. 3
    inner problem.
    """
    # Any object with FeatureOperator's methods serves (e.g. distributed.ShardedFeatures).
    operator = features if hasattr(features, "rmatmul") else FeatureOperator(features, scale)
    n_threads = blas_threads() if n_threads is None else int(n_threads)
    xp, device = operator.xp, operator.device
    C = float(C)
    if init is None and coarse_start and getattr(operator, "local", False):
        init, intercept = _coarse_start(
            operator, np.asarray(Y, dtype=np.float64), C, tol, max_iter, max_newton, n_threads
        )
    Y = xp.asarray(np.asarray(Y, dtype=np.float64), device=device)
    warm = init is not None
    if warm:
        U = xp.asarray(np.asarray(init, dtype=np.float64), device=device) * Y
        del init  # N x tasks arrays are the solver's memory (docs/performance.rst)
        U = xp.clip(U, 0.0, C)
    else:
        U = xp.zeros_like(Y)
    W = operator.rmatmul(U * Y)
    F = operator.matmul(W)
    # Bound on ||z_i||^2 (|z_i' v| <= ||z_i|| ||v||) from the kernel's diagonal.
    row_norm = operator.max_row_norm()
    if intercept is not None:
        b = xp.asarray(np.asarray(intercept, dtype=np.float64), device=device)
    elif warm:
        # libsvm's bias of the starting duals: the first subproblem starts near its optimum.
        b = libsvm_intercept(F - Y, U * Y, *box_bounds(xp, Y, C))
    else:
        b = xp.zeros(Y.shape[1], dtype=xp.float64, device=device)
    active = xp.ones(Y.shape[1], dtype=xp.bool, device=device)
    sigma = _SIGMA_FIRST * C
    n_newton = n_outer = 0
    while n_outer < max_iter:
        n_outer += 1
        W, b, F, U, G_w, n_steps = _outer_step(
            operator, Y, C, sigma, U, W, b, F, active, max_newton, n_threads
        )
        n_newton += n_steps
        # Dual gradient at the new multipliers: w_U = Z'(U y) = W - G_w exactly, so
        # g = Z w_U - y = F - Z G_w - y; the product is skipped (one pass over Z) when
        # G_w is too small to move g by a thousandth of the tolerance.
        gradient = F - Y
        if float(xp.max(xp.sum(G_w * G_w, axis=0))) * row_norm > (1e-3 * tol) ** 2:
            gradient -= operator.matmul(G_w)
        violation = kkt_violation(gradient, U * Y, *box_bounds(xp, Y, C))
        del gradient
        logger.debug(
            "primal SVM: outer %d sigma %.3g Newton %d max violation %.3e",
            n_outer,
            sigma,
            n_newton,
            float(xp.max(violation)),
        )
        active = active & (violation > tol)
        if not bool(xp.any(active)):
            break
        sigma = min(sigma * _SIGMA_GROWTH, _SIGMA_MOST * C)
    del F
    # The bounds once for the three uses below (F gone, so no more arrays than in the loop).
    lo, hi = box_bounds(xp, Y, C)
    A = _balance(U * Y, lo, hi)
    weights = operator.rmatmul(A)
    gradient = operator.matmul(weights) - Y
    violation = kkt_violation(gradient, A, lo, hi)
    objective = xp.sum(xp.abs(A), axis=0) - 0.5 * xp.sum(weights * weights, axis=0)
    coef, bias, objective = host(A), host(libsvm_intercept(gradient, A, lo, hi)), host(objective)
    release_free_memory()  # the N x tasks temporaries of the Newton steps
    info = {
        "n_iter": n_newton,
        "n_outer": n_outer,
        "violation": host(violation),
        "weights": host(weights),
    }
    return SVMDuals(coef, bias, objective, info)


def _balance(A, lo, hi):
    """``A`` made feasible (``1'a = 0``) by moving only its free coordinates.

    The multipliers satisfy ``1'a = 0`` only as closely as the bias's gradient vanishes.
    The Euclidean projection (:func:`~mkl_tp.solvers._common.project`) would shift every
    coordinate, taking the bounded ones a rounding error off their bounds: libsvm's
    maximal violating pair then counts them as free (a violation of 2 on a task where
    nothing separates) and the intercept averages their gradients. Here the bounded
    coordinates are pinned to their bounds and the free ones projected (a common shift
    when it stays in the box); columns whose free coordinates cannot absorb the residual
    take the full projection.
    """
    xp = array_namespace(A)
    at_lo, at_hi = bound_masks(A, lo, hi, BOUND_EPS)
    free = ~at_lo & ~at_hi
    pinned_lo = xp.where(at_lo, lo, xp.where(at_hi, hi, lo))
    pinned_hi = xp.where(at_hi, hi, xp.where(at_lo, lo, hi))
    # The common shift first: no bisection over N x tasks when it stays in the box.
    snapped = xp.where(free, A, pinned_lo)
    n_free = xp.sum(xp.astype(free, A.dtype), axis=0)
    any_free = n_free > 0
    shifted = xp.where(free, A - xp.sum(snapped, axis=0) / xp.clip(n_free, 1.0, None), snapped)
    if bool(xp.all(any_free)) and bool(xp.all((shifted >= lo) & (shifted <= hi))):
        return shifted
    room = (xp.sum(pinned_lo, axis=0) <= 0.0) & (xp.sum(pinned_hi, axis=0) >= 0.0) & any_free
    return project(A, xp.where(room, pinned_lo, lo), xp.where(room, pinned_hi, hi))


def _coarse_start(operator, Y, C, tol, max_iter, max_newton, n_threads):
    """Duals and intercepts to start a cold solve from: ``(None, None)`` on fewer than
    ``_COARSE_MIN_VIDEOS`` videos, else the solution (at tolerance ``_COARSE_TOL``) on a
    stratified ``_COARSE_FRACTION`` of them, zero elsewhere."""
    n_samples = operator.shape[0]
    if n_samples < _COARSE_MIN_VIDEOS:
        return None, None
    classes = Y[:, 0] > 0 if Y.shape[1] == 1 else np.argmax(Y, axis=1)
    keep = stratified_subset(classes, int(_COARSE_FRACTION * n_samples))
    xp = operator.xp
    sample = operator.rows(xp.asarray(keep, device=operator.device))
    duals = svm_duals_primal(
        sample,
        Y[keep],
        C,
        tol=max(tol, _COARSE_TOL),
        max_iter=max_iter,
        max_newton=max_newton,
        n_threads=n_threads,
    )
    init = np.zeros_like(Y)
    init[keep] = duals.coef
    return init, duals.intercept


def _outer_step(operator, Y, C, sigma, U, W, b, F, active, max_newton, n_threads):
    """Minimise ``Phi`` of the active tasks by semismooth Newton; the new multipliers.

    Returns ``(W, b, F, U, G_w, n_steps)`` with ``F = Z W`` and ``G_w`` the final gradient
    in ``w`` (frozen tasks keep their ``U`` and get ``G_w = 0``). ``U, W, b, F`` are the
    solver's own arrays, updated in place. Once at most half of the working tasks still
    move, the others leave the working columns (final) and the rest are copied: the later
    steps cost about as much as the tasks still moving, and the copies take at most half
    of ``Y, U, F`` more memory.
    """
    xp = operator.xp
    G_w_all = xp.zeros_like(W)
    cols = xp.nonzero(active)[0]
    if int(cols.shape[0]) == 0:
        return W, b, F, U, G_w_all, 0
    whole = int(cols.shape[0]) == Y.shape[1]  # every task works: no column copies
    Yc, Uc, Wc, bc, Fc = (Y, U, W, b, F) if whole else _columns(xp, cols, Y, U, W, b, F)
    # Tasks whose exact line search found no descent (step 0): their state is unchanged, so
    # another Newton step would repeat the same direction and step. Where the products'
    # rounding (float32 Z) bounds the gradient above _NEWTON_RTOL, this ends the outer step
    # instead of max_newton identical steps.
    stalled = xp.zeros(int(cols.shape[0]), dtype=xp.bool, device=operator.device)
    n_steps = 0
    while True:
        T = sigma * (1.0 - Yc * (Fc + bc)) + Uc
        multipliers = xp.clip(T, 0.0, C)
        G_w = Wc - operator.rmatmul(Yc * multipliers)
        G_b = -xp.sum(Yc * multipliers, axis=0)
        norm = xp.sqrt(xp.sum(G_w * G_w, axis=0) + G_b * G_b)
        size = xp.sqrt(xp.sum(Wc * Wc, axis=0))
        moving = (norm > _NEWTON_RTOL * xp.clip(size, 1.0, None)) & ~stalled
        n_moving = int(xp.sum(xp.astype(moving, xp.int64)))
        finished = n_moving == 0 or n_steps == max_newton
        if finished or 2 * n_moving <= int(cols.shape[0]):
            # The tasks that stopped are final: write them back, work on the others.
            stop = xp.nonzero(xp.ones_like(moving) if finished else ~moving)[0]
            into = xp.take(cols, stop)
            if not whole:  # else W, b, F are the working arrays, already updated
                W[:, into] = xp.take(Wc, stop, axis=1)
                b[into] = xp.take(bc, stop)
                F[:, into] = xp.take(Fc, stop, axis=1)
            U[:, into] = xp.take(multipliers, stop, axis=1)
            G_w_all[:, into] = xp.take(G_w, stop, axis=1)
            if finished:
                return W, b, F, U, G_w_all, n_steps
            keep = xp.nonzero(moving)[0]
            cols = xp.take(cols, keep)
            T, G_w, G_b, moving, stalled = _columns(xp, keep, T, G_w, G_b, moving, stalled)
            Yc, Uc, Wc, bc, Fc = _columns(xp, keep, Yc, Uc, Wc, bc, Fc)
            whole = False
        n_steps += 1
        inside = (T > 0) & (T < C)
        tasks = [int(c) for c in np.flatnonzero(host(xp.astype(moving, xp.float64)))]
        directions = _newton_directions(operator, inside, tasks, sigma, G_w, G_b, n_threads)
        del inside, multipliers
        D_w = xp.zeros_like(Wc)
        D_b = xp.zeros_like(bc)
        for c, (d_w, d_b) in zip(tasks, directions):
            D_w[:, c] = d_w
            D_b[c] = d_b
        ZD = operator.matmul(D_w)
        Q = ZD + D_b
        Q *= Yc
        step = chunked_line_search(
            xp, xp.sum(Wc * D_w, axis=0), xp.sum(D_w * D_w, axis=0), T, Q, sigma, C
        )
        step = xp.where(moving, step, 0.0)
        stalled = stalled | (moving & (step == 0))
        del Q, T
        Wc += step * D_w
        bc += step * D_b
        ZD *= step
        Fc += ZD
        del ZD


def _columns(xp, index, *arrays):
    """The columns ``index`` of each array (the entries, for vectors)."""
    return tuple(xp.take(x, index, axis=x.ndim - 1) for x in arrays)


def _newton_directions(operator, inside, tasks, sigma, G_w, G_b, n_threads):
    """:func:`_newton_direction` of every task in ``tasks``: a list of ``(d_w, d_b)``.

    Each task's system holds the rows of its videos near the margin (``inside``). A local
    ``Z`` gives each task its rows directly, and numpy solves the tasks' systems in
    ``n_threads`` threads (one BLAS thread each: the systems are small, and numpy releases
    the GIL in BLAS and LAPACK); other operators are asked once for the union of the rows
    (one round trip on a cluster).
    """
    xp = operator.xp
    if getattr(operator, "local", False):

        def rows_of(c):
            return operator.rows(xp.nonzero(inside[:, c])[0])
    else:
        needed = xp.any(inside[:, tasks], axis=1)
        rows_needed = operator.rows(xp.nonzero(needed)[0])
        position = xp.cumulative_sum(xp.astype(needed, xp.int64)) - 1

        def rows_of(c):
            return xp.take(rows_needed, xp.take(position, xp.nonzero(inside[:, c])[0]), axis=0)

    def direction(c):
        return _newton_direction(xp, rows_of(c), sigma, G_w[:, c], G_b[c])

    threads = min(n_threads, len(tasks)) if is_numpy_namespace(xp) else 1
    with single_threaded_blas():
        if threads <= 1:
            return [direction(c) for c in tasks]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(direction, tasks))
