"""What every alpha-step solver shares: its result type, the dual box, libsvm's stopping rule
and bias, the projection onto the feasible set, and the kernel operators.

The solvers (:mod:`~mkl_tp.solvers.svm`, :mod:`~mkl_tp.solvers.batch_svm`,
:mod:`~mkl_tp.solvers.torch_svm`, :mod:`~mkl_tp.solvers.primal`) and the kernel sources
(:mod:`~mkl_tp.solvers.gram`, :mod:`~mkl_tp.solvers.distributed`) import these from here
and from nowhere else, so no solver module depends on another's internals.

Every alpha-step solver returns :class:`SVMDuals`: the duals, biases and dual objectives
as numpy arrays, and the solver's own diagnostics in ``info``.

The signed variables ``a_c = alpha_c * y_c`` of task ``c`` lie in the box ``[lo, hi]``:
``[0, C]`` where ``y = +1`` and ``[-C, 0]`` where ``y = -1`` (:func:`box_bounds`), with
``1'a = 0``.
"""

from typing import NamedTuple

import numpy as np
from array_api_compat import array_namespace, to_device
from array_api_compat import device as array_device
from joblib import Parallel, delayed, effective_n_jobs

__all__ = [
    "BOUND_EPS",
    "SVMDuals",
    "KernelOperator",
    "FeatureOperator",
    "ShardedFeatures",
    "box_bounds",
    "bound_masks",
    "project",
    "kkt_violation",
    "libsvm_intercept",
    "host",
    "in_threads",
]

# Relative margin under which a coordinate counts as at its bound.
BOUND_EPS = 1e-12


class SVMDuals(NamedTuple):
    """Solution of the alpha-step for all classes, as every alpha-step solver returns it.

    Attributes
    ----------
    coef : ndarray of shape (N, C)
        Signed dual coefficients ``a_c = alpha_c * y_c``; decision ``K(x, .) a_c + b_c``.
    intercept : ndarray of shape (C,)
        Biases ``b_c``.
    objective : ndarray of shape (C,)
        Dual optima ``1'alpha_c - 1/2 a_c' K a_c``.
    info : dict or None
        The solver's diagnostics (e.g. ``n_iter``, ``violation``; see each solver), ``None``
        for duals assembled from parts.
    """

    coef: np.ndarray
    intercept: np.ndarray
    objective: np.ndarray
    info: dict | None = None


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


class FeatureOperator:
    """The features ``Z`` of a kernel ``K = Z Z' / scale``: products and row gathers.

    ``Z`` is local (``local = True``): the solver gathers each task's rows from it
    directly; operators without the flag (a row-sharded ``Z``) are asked once per Newton
    step for the rows any task needs.

    Parameters
    ----------
    features : array of shape (N, m)
        numpy array or torch tensor (any float dtype; products run in it, results are
        float64).
    scale : float, default=1.0
        Divides ``Z Z'`` (the cross kernel's normaliser ``D(beta)``).
    """

    local = True

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
                part = xp.astype(self.features[start : start + 4096, :], xp.float64)
                largest = max(largest, float(xp.max(xp.sum(part * part, axis=1))))
            self._max_row_norm = largest * self._root**2
        return self._max_row_norm

    def rows(self, index):
        """``Z[index] / sqrt(scale)``, float64."""
        xp = self.xp
        return xp.astype(xp.take(self.features, index, axis=0), xp.float64) * self._root


# Tasks of ShardedFeatures, run on the workers (each on its row shard of Z).
def _matmul(features, W):
    return (features @ W.astype(features.dtype)).astype(np.float64)


def _rmatmul(features, V):
    return (features.T @ V.astype(features.dtype)).astype(np.float64)


def _rows(features, index):
    return features[index].astype(np.float64)


def _max_row_norm(features):
    return float(np.max(np.einsum("nm,nm->n", features, features)))


class ShardedFeatures:
    """A :class:`~mkl_tp.solvers.primal.FeatureOperator` over row shards on Dask workers.

    Parameters
    ----------
    client : distributed.Client
    shards : list of Future
        Row shards of ``Z`` (already divided by ``sqrt(scale)``).
    bounds : ndarray of shape (n_shards + 1,)
        First row of every shard, then ``N``.
    """

    def __init__(self, client, shards, bounds):
        self.client, self.shards, self.bounds = client, shards, np.asarray(bounds)
        self.xp = array_namespace(np.zeros(1))
        self.device = "cpu"
        self._max_row_norm = None

    def matmul(self, W):
        W = np.asarray(W)
        parts = self.client.gather(
            [self.client.submit(_matmul, s, W, pure=False) for s in self.shards]
        )
        return np.concatenate(parts, axis=0)

    def rmatmul(self, V):
        V = np.asarray(V)
        futures = [
            self.client.submit(_rmatmul, s, V[a:b], pure=False)
            for s, a, b in zip(self.shards, self.bounds[:-1], self.bounds[1:])
        ]
        return sum(self.client.gather(futures))

    def rows(self, index):
        index = np.asarray(index)
        shard_of = np.searchsorted(self.bounds, index, side="right") - 1
        order = np.argsort(shard_of, kind="stable")
        sorted_index, sorted_shard = index[order], shard_of[order]
        futures = []
        for k, shard in enumerate(self.shards):
            local = sorted_index[sorted_shard == k] - self.bounds[k]
            if local.size:
                futures.append(self.client.submit(_rows, shard, local, pure=False))
        gathered = self.client.gather(futures)
        width = gathered[0].shape[1] if gathered else 0
        stacked = np.concatenate(gathered, axis=0) if gathered else np.zeros((0, width))
        out = np.empty_like(stacked)
        out[order] = stacked
        return out

    def max_row_norm(self):
        if self._max_row_norm is None:
            self._max_row_norm = max(
                self.client.gather(
                    [self.client.submit(_max_row_norm, s, pure=False) for s in self.shards]
                )
            )
        return self._max_row_norm


def box_bounds(xp, Y, C):
    """``(lo, hi)``: the box of the signed duals, ``[0, C]`` where ``Y > 0``, else ``[-C, 0]``."""
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


def bound_masks(A, lo, hi, eps):
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
    at_lo, at_hi = bound_masks(A, lo, hi, BOUND_EPS)
    top = xp.max(xp.where(~at_hi, -gradient, -xp.inf), axis=0)
    bottom = xp.min(xp.where(~at_lo, -gradient, xp.inf), axis=0)
    return xp.clip(top - bottom, 0.0, None)


def libsvm_intercept(gradient, A, lo, hi):
    """libsvm's bias ``b = -rho``: ``rho`` the mean of ``g`` over free variables, else the
    middle of ``[max g at upper bounds, min g at lower bounds]`` (``calculate_rho``)."""
    xp = array_namespace(gradient)
    at_lo, at_hi = bound_masks(A, lo, hi, BOUND_EPS)
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


def host(x):
    """``x`` (any array library, any device) as a float64 numpy array."""
    return np.asarray(to_device(x, "cpu"), dtype=np.float64)


def in_threads(function, items, n_jobs):
    """``[function(item) for item in items]``, in joblib threads when ``n_jobs`` (or an
    active ``joblib.parallel_config``) asks for more than one worker.

    With one worker the list is built here: joblib's dispatch costs about 0.1 ms a call,
    as long as a binary solve on a hundred videos, and a small training set's fit makes
    hundreds of them (``benchmarks/bench_learning_cost.py``, table 3). libsvm and BLAS
    release the GIL, so threads share the kernel where processes would copy it.
    """
    if effective_n_jobs(n_jobs) == 1:
        return [function(item) for item in items]
    return Parallel(n_jobs=n_jobs, prefer="threads")(delayed(function)(item) for item in items)
