"""Training-kernel algebra of one MKL fit: per-node kernels cached within a memory budget.

The memory rule (docs/performance.rst, "Out of core"): keep the per-node kernels only
while ``P N^2`` entries fit a budget, otherwise recompute every combined kernel from the
(scaled) node blocks by GEMMs.
:class:`TrainingKernels` makes that choice once per fit and gives the MKL loop the three
quantities it needs: ``K_beta`` (or, for the primal alpha-step, features ``Z`` with
``K_beta = Z Z' / D``), the linear beta-step's ``a_c' K_p a_c`` and the cross beta-step's
``M``.
"""

import numpy as np

from .._utils.choices import KERNELS
from .._utils.params import check_choice
from ..kernels.combine import (
    combined_kernel,
    gram_matrix,
    n_nodes,
    node_cache_bytes,
    node_gram,
    node_products,
    weighted_features,
)
from ._common import FeatureOperator
from .distributed import ShardedBlocks, dask_client

__all__ = ["node_kernels", "TrainingKernels"]

# Relative cost of reading one byte of the node-kernel cache and of one GEMM flop: the
# cache is used only while a memory-bound pass over it is cheaper than the GEMMs it saves.
_FLOPS_PER_BYTE = 8.0


def node_kernels(blocks, dtype=np.float32):
    """Per-node kernels ``K_p = Phi_p Phi_p'`` of every stream, stacked.

    Each product runs in float64 through :func:`~mkl_tp.kernels.gram_matrix` (tiled GEMMs
    on and above the diagonal: half the flops of a general product, and no BLAS ``syrk``)
    and is stored in ``dtype``. float32 storage (the default) halves the memory; its
    rounding (relative ``6e-8`` per entry) is four orders below any useful ``tol`` of the
    MKL loop. The products stay float64: float32 products gave no reliable gain
    (docs/performance.rst, "Where float32 is safe").

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
    dtype : dtype, default=float32

    Returns
    -------
    ndarray of shape (P, N, N), P = sum_s P_s
    """
    n_samples = blocks[0].shape[0]
    stack = np.empty((n_nodes(blocks), n_samples, n_samples), dtype=dtype)
    product = np.empty((n_samples, n_samples))
    p = 0
    for block in blocks:
        for q in range(block.shape[1]):
            gram_matrix(block[:, q], out=product)
            stack[p] = product
            p += 1
    return stack


class TrainingKernels:
    """Training-kernel algebra of one MKL fit, kept within a memory budget.

    For ``kind="linear"`` the per-node kernels are computed once and cached (float32,
    ``P N^2 4`` bytes) when that fits ``cache_bytes``; then ``K_beta`` is one pass over
    the cache (``P N^2`` memory reads) instead of a product on ``[sqrt(beta_p) Phi_p]``
    (``N^2 sum_{beta_p > 0} m_p`` flops), and the beta-step's ``a_c' K_p a_c`` are one
    matrix-vector product with ``sum_c a_c a_c'``. Beyond the budget, or for
    ``kind="cross"`` (whose ``Z`` has one node's width, and whose cross products would
    need ``P^2`` kernels), everything is recomputed from the blocks.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
    kind : {"linear", "cross"}
    cache_bytes : float or None
        Budget for the node-kernel cache; ``None`` or 0 never caches.
    """

    def __init__(self, blocks, kind, cache_bytes=None, *, _stack=None):
        check_choice("kernel", kind, KERNELS)
        self.blocks = blocks
        self.kind = kind
        self.cache_nbytes = node_cache_bytes(blocks)
        self.cached = _stack is not None or bool(
            kind == "linear" and cache_bytes and self.cache_nbytes <= cache_bytes
        )
        self._stack = (
            _stack if _stack is not None else (node_kernels(blocks) if self.cached else None)
        )
        self._node_gram = None
        self._sharded = None

    def combined(self, beta):
        """``(K_beta, normaliser)`` as :func:`combined_kernel`, float64."""
        if not self.cached:
            kernel, normaliser = combined_kernel(self.blocks, beta, self.kind)
            # libsvm wants float64: convert once here, not once per one-vs-rest task.
            return kernel.astype(np.float64, copy=False), normaliser
        used = np.flatnonzero(beta > 0)
        n_samples = self._stack.shape[1]
        # One GEMV over the nodes used when they are most nodes or one run of them (the
        # coarse levels of a pyramid): a view of the cache, no copy.
        run = slice(0, beta.size) if used.size * 2 > beta.size else None
        if run is None and used.size and used[-1] - used[0] + 1 == used.size:
            run = slice(used[0], used[-1] + 1)
        if run is not None:
            stack = self._stack[run].reshape(run.stop - run.start, -1)
            flat = beta[run].astype(np.float32) @ stack
            return flat.reshape(n_samples, n_samples).astype(np.float64), 1.0
        kernel = np.zeros((n_samples, n_samples))
        for p in used:
            kernel += beta[p] * self._stack[p]
        return kernel, 1.0

    def features(self, beta, device=None, dask=None):
        """``(Z, normaliser)`` with ``K_beta = Z Z' / normaliser``, never forming ``K_beta``.

        ``Z`` is :func:`~mkl_tp.kernels.weighted_features` as a
        :class:`~mkl_tp.solvers.primal.FeatureOperator` (a torch tensor on ``device`` when
        one is given; row shards on Dask workers when ``dask`` is ``"dask"`` (the session's
        client) or a scheduler address, see :mod:`~mkl_tp.solvers.distributed`); the
        normaliser is
        ``D(beta) = beta' G beta`` for the cross kernel.
        """
        normaliser = 1.0
        if self.kind == "cross":
            if self._node_gram is None:
                self._node_gram = node_gram(self.blocks)
            normaliser = float(beta @ self._node_gram @ beta)
        if dask is not None:
            # Blocks scattered once per fit; each alpha-step forms Z on the workers.
            if self._sharded is None:
                self._sharded = ShardedBlocks(dask_client(dask), self.blocks)
            return self._sharded.features(beta, self.kind, normaliser), normaliser
        features = weighted_features(self.blocks, beta, self.kind)
        if device is not None:
            import torch

            from .._utils.devices import resolve_device

            features = torch.as_tensor(features, device=resolve_device(device))
        return FeatureOperator(features, normaliser), normaliser

    def subset_buffer(self, n_rows):
        """Room for :meth:`subset`'s node kernels of up to ``n_rows`` videos (``None``
        without a cache), to reuse from one subset to the next."""
        if self._stack is None:
            return None
        return np.empty(self._stack.shape[0] * n_rows**2, dtype=self._stack.dtype)

    def subset(self, rows, blocks=None, out=None):
        """The same algebra on the videos ``rows``, its node kernels cut from this cache.

        A fit on a subset (a cross-validation fold) then needs no ``P N^2`` products of its
        own; without a cache only the blocks are cut. ``blocks``: the blocks' rows when
        already cut; ``out``: a :meth:`subset_buffer` to cut the node kernels into.
        """
        stack = None
        if self._stack is not None:
            # One node at a time (not fancy indexing of the whole stack, which copies it), into
            # one C-ordered array that combined() reads as a (P, n^2) matrix.
            rows = np.asarray(rows)
            n_nodes_, n_samples = self._stack.shape[:2]
            size = n_nodes_ * rows.size**2
            flat = np.empty(size, self._stack.dtype) if out is None else out[:size]
            stack = flat.reshape(n_nodes_, rows.size, rows.size)
            between = np.empty((rows.size, n_samples), dtype=self._stack.dtype)
            for p in range(n_nodes_):
                np.take(self._stack[p], rows, axis=0, out=between, mode="clip")
                np.take(between, rows, axis=1, out=stack[p], mode="clip")
        blocks = [b[rows] for b in self.blocks] if blocks is None else blocks
        return TrainingKernels(blocks, self.kind, _stack=stack)

    def gram(self):
        """``G`` of :func:`~mkl_tp.kernels.node_gram` (the cross normaliser's matrix), once."""
        if self._node_gram is None:
            self._node_gram = node_gram(self.blocks)
        return self._node_gram

    def node_quadratics(self, coef):
        """``M_pp = sum_c a_c' K_p a_c``, as :func:`node_products` with ``diagonal=True``.

        From the cache only where reading its ``P N^2`` float32 entries is cheaper than the
        product ``coef' Phi`` on the blocks (``2 N C sum_s P_s m_s`` flops), taking one
        cache byte as dear as ``_FLOPS_PER_BYTE`` flops (docs/performance.rst).
        """
        flops = (
            2.0 * coef.shape[0] * coef.shape[1] * sum(b.shape[1] * b.shape[2] for b in self.blocks)
        )
        if not self.cached or flops < _FLOPS_PER_BYTE * self.cache_nbytes:
            return node_products(self.blocks, coef, diagonal=True)
        return self._cached_quadratics(coef)

    def _cached_quadratics(self, coef):
        outer = gram_matrix(coef).astype(np.float32).ravel()
        return (self._stack.reshape(self._stack.shape[0], -1) @ outer).astype(np.float64)

    def products(self, coef):
        """``M`` of :func:`node_products` (always from the blocks: ``P^2`` is small)."""
        return node_products(self.blocks, coef)
