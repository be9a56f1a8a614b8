"""The exact line search of the primal solver's semismooth Newton steps.

Along a Newton direction ``d`` the smoothed objective ``Phi(w + t d, b + t d_b)`` of
:mod:`mkl_tp.solvers.primal` is a convex piecewise quadratic in ``t``: its derivative is
piecewise linear with breakpoints where a video enters or leaves the margin, so the
minimiser is found exactly among the breakpoints (one task at a time by sorting, or all
tasks at once by a few bracketing trials).
"""

import numpy as np
from array_api_compat import device as array_device

# Elements of the line search's (3 N, tasks) work arrays per chunk of tasks; some fifteen
# live at once, so 2**22 elements bounds them (docs/performance.rst, "Out of core").
_LINE_SEARCH_CHUNK = 2**22


def sorted_line_search(xp, w_dot_d, d_dot_d, T0, Q, sigma, C):
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
    start_curvature = xp.where(count > 0, xp.take_along_axis(after, last, axis=0)[0], curvature0)
    positive = start_curvature > 0
    return xp.where(positive, start - start_slope / xp.where(positive, start_curvature, 1.0), start)


def line_search(xp, w_dot_d, d_dot_d, T0, Q, sigma, C, n_trials=8):
    """Exact minimiser ``t >= 0`` of ``Phi`` along a direction, for every task.

    Newton's method on the piecewise-linear, non-decreasing ``phi'`` (see
    :func:`_sorted_line_search`) from the Newton step ``t = 1``, kept inside a bracket:
    each trial costs one pass over ``(N, tasks)`` and lands on the root once it reaches
    the root's linear piece (two or three trials near the solution, where ``t = 1`` is
    exact). Tasks not settled after ``n_trials`` get the sorted search (a sort of
    ``3 N`` breakpoints, some 30 times dearer), on their columns only.
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
        inside = (
            (T > 0) & (T < C)
            | ((T == 0) & (Q < 0) & (slope < 0))
            | ((T == C) & (Q > 0) & (slope < 0))
        )
        curvature = d_dot_d + xp.sum(xp.where(inside, bend, 0.0), axis=0)
        newton = step - slope / xp.where(curvature > 0, curvature, 1.0)
        fallback = xp.where(xp.isfinite(high), 0.5 * (low + high), 2.0 * step)
        ok = (curvature > 0) & (newton > low) & (newton < high)
        step = xp.where(settled, step, xp.where(ok, newton, fallback))
    if bool(xp.all(settled)):
        return step
    left = xp.nonzero(~settled)[0]
    exact = sorted_line_search(
        xp,
        xp.take(w_dot_d, left),
        xp.take(d_dot_d, left),
        xp.take(T0, left, axis=1),
        xp.take(Q, left, axis=1),
        sigma,
        C,
    )
    step[left] = exact
    return step


def chunked_line_search(xp, w_dot_d, d_dot_d, T, Q, sigma, C):
    """:func:`line_search` on chunks of tasks, so its work arrays stay bounded."""
    n_samples, n_tasks = T.shape
    chunk = max(1, _LINE_SEARCH_CHUNK // (3 * n_samples))
    if chunk >= n_tasks:
        return line_search(xp, w_dot_d, d_dot_d, T, Q, sigma, C)
    parts = [
        line_search(
            xp,
            w_dot_d[k : k + chunk],
            d_dot_d[k : k + chunk],
            T[:, k : k + chunk],
            Q[:, k : k + chunk],
            sigma,
            C,
        )
        for k in range(0, n_tasks, chunk)
    ]
    return xp.concat(parts)
