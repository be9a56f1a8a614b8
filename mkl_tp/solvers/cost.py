"""Which alpha-step a fit can afford: the memory and cost model of the dual and primal paths.

The dual path (libsvm, or the batched dual solvers) holds the ``N x N`` float64 kernel
``K_beta`` of every alpha-step: ``8 N^2`` bytes, and as much again for the one ``N x N``
temporary that forming it may take (the node-kernel cache's float32 product, converted
to float64), on top of the node-kernel cache itself when it is used. The primal path
(:mod:`mkl_tp.solvers.primal`) holds the weighted features ``Z`` (``N x m``) and a few
``N x n_tasks`` arrays instead.

``solver="auto"`` takes the primal path when the dual path would not fit the memory
budget, or when it is cheaper by this model: an alpha-step of the dual path costs about
``N^2 m`` flops to form ``K_beta`` and grows as ``N^2`` in libsvm; one of the primal path
about ``6 N m n_tasks`` flops per Newton step (some 40 steps cold, 20 warm) plus Newton
systems of up to ``m + 1`` unknowns per task, so it wins for large ``N`` and narrow ``Z``.
The crossover is measured by ``benchmarks/bench_primal.py --crossover`` (docs/performance.rst,
"Primal or dual"): the primal path from ``PRIMAL_MIN_SAMPLES`` videos on, when
``m <= N / WIDTH_RATIO`` (a wider ``Z`` makes its Newton systems dearer than the kernel).
"""

from .._utils.memory import available_memory
from ..kernels.combine import node_cache_bytes

__all__ = [
    "PRIMAL_MIN_SAMPLES",
    "WIDTH_RATIO",
    "available_memory",
    "dual_memory_bytes",
    "check_dual_memory",
    "choose_solver",
    "resolve_solver",
    "weighted_width",
]

# See the module docstring and docs/performance.rst ("Primal or dual").
PRIMAL_MIN_SAMPLES = 8000
WIDTH_RATIO = 2.0


def dual_memory_bytes(n_samples, cache_bytes=0):
    """Bytes the dual path's kernels take at their peak: ``16 N^2`` plus the node-kernel cache.

    Parameters
    ----------
    n_samples : int
        ``N``, training videos.
    cache_bytes : int, default=0
        Size of the node-kernel cache when it is used (``4 P N^2``).
    """
    return 16 * int(n_samples) ** 2 + int(cache_bytes)


def check_dual_memory(n_samples, budget, cache_bytes=0):
    """Stop before allocating a kernel that would not fit the memory budget.

    Parameters
    ----------
    n_samples : int
    budget : int or None
        Bytes available (``None``: no check).
    cache_bytes : int, default=0

    Raises
    ------
    MemoryError
        Naming ``N``, the bytes needed and the budget, and suggesting ``solver="primal"``.
    """
    needed = dual_memory_bytes(n_samples, cache_bytes)
    if budget is not None and needed > budget:
        raise MemoryError(
            f"the dual solvers need an N x N kernel: N = {n_samples} training videos take "
            f"{needed / 2**30:.1f} GiB ({needed} bytes: 8 N^2 for K_beta, as much again while "
            f"forming it{', plus the node-kernel cache' if cache_bytes else ''}) but "
            f"{budget / 2**30:.1f} GiB are available; use solver='primal' (no N x N "
            "kernel) or solver='auto'"
        )


def choose_solver(n_samples, width, budget=None):
    """``"libsvm"`` or ``"primal"``: the ``solver="auto"`` choice.

    Parameters
    ----------
    n_samples : int
        ``N``, training videos.
    width : int
        ``m``, columns of the weighted features ``Z`` (``sum_s P_s m_s`` for the linear
        kernel, ``sum_s m_s`` for the cross kernel).
    budget : int or None
        Bytes available for the dual path's kernels (``None``: unlimited).

    Returns
    -------
    str
    """
    if budget is not None and dual_memory_bytes(n_samples) > budget:
        return "primal"
    if n_samples >= PRIMAL_MIN_SAMPLES and width * WIDTH_RATIO <= n_samples:
        return "primal"
    return "libsvm"


def resolve_solver(solver, blocks, kernel, beta, cache_bytes, memory_budget):
    """The alpha-step solver of one fit: ``"auto"`` resolved, the dual's memory checked.

    Parameters
    ----------
    solver : str
        As :func:`~mkl_tp.solvers.fit_mkl`.
    blocks : list of ndarray, each (N, P_s, m_s)
    kernel : {"linear", "cross"}
    beta : ndarray of shape (P,)
        Starting weights (the linear kernel's ``Z`` drops nodes of weight 0).
    cache_bytes : float or None
        The node-kernel cache's budget (counted when the cache would be used).
    memory_budget : int, None or "available"

    Returns
    -------
    str

    Raises
    ------
    MemoryError
        A dual solver whose kernels would not fit ``memory_budget``.
    """
    n_samples = blocks[0].shape[0]
    budget = available_memory() if memory_budget == "available" else memory_budget
    if solver == "auto":
        return choose_solver(n_samples, weighted_width(blocks, beta, kernel), budget)
    if solver in ("libsvm", "batch", "torch"):
        cache = node_cache_bytes(blocks)
        used = kernel == "linear" and cache_bytes and cache <= cache_bytes
        check_dual_memory(n_samples, budget, cache if used else 0)
    return solver


def weighted_width(blocks, beta, kernel):
    """Columns of :func:`~mkl_tp.kernels.weighted_features`: ``m`` of ``Z``."""
    if kernel == "cross":
        return sum(b.shape[2] for b in blocks)
    widths = [b.shape[2] for b in blocks for _ in range(b.shape[1])]
    return int(sum(w for w, weight in zip(widths, beta) if weight > 0))
