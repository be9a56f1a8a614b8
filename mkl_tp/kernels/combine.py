"""Combined kernels over pyramid nodes (docs/maths.rst), with ``beta`` on the simplex:

- ``kind="linear"``: ``K_beta = sum_p beta_p K_p`` = ``Z Z'`` with ``Z = [sqrt(beta_p) Phi_p]_p``
  (the paper's concatenation (*)).
- ``kind="cross"``: ``K_beta = sum_{p,q} beta_p beta_q Phi_p Phi_q' / D(beta)`` = ``Z Z' / D``
  with ``Z = sum_p beta_p Phi_p`` (the paper's averaging (**)) and ``D(beta)`` the mean
  diagonal of the unnormalised kernel, ``D = beta' G beta``, ``G_pq = mean_i <phi_p(i), phi_q(i)>``.
  Nodes of different streams (different ``d``) never meet: the cross sum runs within each
  stream and the streams' kernels add up before the one normalisation.

Blocks are passed as a list with one ``(N, P_s, m_s)`` array per stream and ``beta`` as one
flat vector of ``sum_s P_s`` weights, stream after stream.
"""

import numpy as np

__all__ = [
    "n_nodes",
    "node_cache_bytes",
    "weighted_features",
    "combined_kernel",
    "gram_matrix",
    "node_gram",
    "node_products",
    "node_weight_blocks",
    "block_decisions",
]


def n_nodes(blocks):
    """``P``: the pyramid nodes of all streams' blocks together."""
    return sum(b.shape[1] for b in blocks)


def node_cache_bytes(blocks):
    """Bytes of the ``P`` float32 node kernels of the training videos, ``4 P N^2``."""
    return n_nodes(blocks) * blocks[0].shape[0] ** 2 * np.dtype(np.float32).itemsize


def _stream_slices(blocks):
    stops = np.cumsum([b.shape[1] for b in blocks])
    return [slice(stop - b.shape[1], stop) for b, stop in zip(blocks, stops)]


def weighted_features(blocks, beta, kind):
    """Explicit features ``Z`` of the combined kernel before normalisation, ``K = Z Z'``.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
        Scaled node features per stream.
    beta : ndarray of shape (sum_s P_s,)
        Node weights on the simplex.
    kind : {"linear", "cross"}

    Returns
    -------
    ndarray of shape (N, n_features)
        ``linear``: ``[sqrt(beta_p) Phi_p]`` over nodes with ``beta_p > 0``; ``cross``:
        ``[sum_{p in s} beta_p Phi_p]`` over streams ``s``.
    """
    parts = []
    for block, part in zip(blocks, _stream_slices(blocks)):
        weights = beta[part]
        if kind == "linear":
            used = np.flatnonzero(weights > 0)
            parts.append(
                (block[:, used] * np.sqrt(weights[used])[None, :, None]).reshape(block.shape[0], -1)
            )
        elif kind == "cross":
            # A batched vector-matrix product over videos: no transposed copy of block.
            # (weights in the block's dtype: a float64 operand would make numpy convert
            # the whole float32 block.)
            parts.append(np.matmul(weights.astype(block.dtype), block))
        else:
            raise ValueError(f"kernel must be 'linear' or 'cross', got {kind!r}")
    return np.concatenate(parts, axis=1)


def combined_kernel(blocks, beta, kind):
    """Combined kernel ``K_beta`` on training blocks and its normaliser ``D``.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
    beta : ndarray of shape (sum_s P_s,)
    kind : {"linear", "cross"}

    Returns
    -------
    K : ndarray of shape (N, N)
        ``sum_p beta_p K_p`` (linear) or the cross kernel divided by its mean diagonal.
    normaliser : float
        ``D(beta)`` for ``cross`` (mean diagonal of ``Z Z'``), 1 for ``linear``.
    """
    if kind == "linear":
        return _linear_kernel(blocks, beta), 1.0
    features = weighted_features(blocks, beta, kind)
    kernel = gram_matrix(features)
    del features
    normaliser = float(np.trace(kernel)) / kernel.shape[0]
    kernel /= normaliser
    return kernel, normaliser


def _linear_kernel(blocks, beta):
    """``sum_p beta_p K_p`` of :func:`combined_kernel`'s linear case.

    Where a stream's used nodes form one run with equal weights (uniform weights, or the
    coarse levels alone) its product is ``w Phi_run Phi_run'`` on a view of the block, so
    the ``N x sum m_p`` weighted copy of :func:`weighted_features` (as large as the
    blocks) is never written; other weights take that copy.
    """
    kernel = None
    for block, part in zip(blocks, _stream_slices(blocks)):
        weights = beta[part]
        run = _node_run(weights > 0)
        if run.start == run.stop:
            continue
        if np.all(weights[run] == weights[run.start]):  # no gap, equal weights
            features, scale = block[:, run].reshape(block.shape[0], -1), float(weights[run.start])
        else:
            features, scale = weighted_features([block], weights, "linear"), 1.0
        product = gram_matrix(features)
        product *= scale
        if kernel is None:
            kernel = product  # the first stream's product is the sum so far: no extra N^2
        else:
            kernel += product
    return np.zeros((blocks[0].shape[0],) * 2) if kernel is None else kernel


# Rows per tile of gram_matrix: a (tile, m) float64 copy and (tile, tile) output blocks.
_GRAM_TILE = 2048


def gram_matrix(features, out=None, tile=_GRAM_TILE):
    """``F F'`` in float64 by tiled GEMMs, never numpy's ``a @ a.T``.

    numpy sends ``a @ a.T`` to BLAS ``syrk``, which the OpenBLAS bundled with numpy crashes
    in (segmentation fault) at 20,000 x 960 float64 on 2 threads (numpy issue #19685;
    ``a @ a.T.copy()`` does not). Here every product is a GEMM of a row tile by the
    transpose of a copied column tile (another buffer, so never ``syrk``); only the tiles
    on and above the diagonal are multiplied (the half of the flops ``syrk`` saved) and
    mirrored below it. The column tile is copied row by row and handed to BLAS
    transposed: a transposing copy of it took more than half the time at 3,000 x 32,256
    (8.1 s against 3.6 s for the whole product on one core).

    Parameters
    ----------
    features : ndarray of shape (N, m)
    out : ndarray of shape (N, N), float64, optional
        Where to write the product (e.g. a buffer reused across calls).
    tile : int, default=2048
        Rows per tile.

    Returns
    -------
    ndarray of shape (N, N), float64
    """
    n_samples = features.shape[0]
    if out is None:
        out = np.empty((n_samples, n_samples))
    starts = range(0, n_samples, tile)
    for col in starts:
        cols = slice(col, min(col + tile, n_samples))
        right = np.array(features[cols], dtype=np.float64, order="C")
        for row in starts:
            if row > col:
                break
            rows = slice(row, min(row + tile, n_samples))
            np.matmul(features[rows].astype(np.float64, copy=False), right.T, out=out[rows, cols])
            if row < col:
                out[cols, rows] = out[rows, cols].T
    return out


def node_gram(blocks):
    """``G_pq = mean_i <phi_p(i), phi_q(i)>`` within streams (0 across streams).

    ``D(beta) = beta' G beta`` is the mean diagonal of the unnormalised cross kernel.

    Returns
    -------
    ndarray of shape (P, P), P = sum_s P_s
    """
    slices = _stream_slices(blocks)
    total = slices[-1].stop
    gram = np.zeros((total, total))
    for block, part in zip(blocks, slices):
        gram[part, part] = _node_inner_products(block) / block.shape[0]
    return gram


def _node_inner_products(block, chunk=256):
    """``sum_i Phi_i Phi_i'`` over videos for a block ``(N, P, m)``: ``(P, P)``.

    Chunks of videos are laid out node-major and multiplied as one GEMM each, instead of
    ``N`` tiny ``(P, m) x (m, P)`` products (einsum's choice) or a transposed copy of the
    whole block.
    """
    n_samples, n_nodes_, width = block.shape
    total = np.zeros((n_nodes_, n_nodes_))
    for start in range(0, n_samples, chunk):
        part = np.ascontiguousarray(
            block[start : start + chunk].transpose(1, 0, 2), dtype=np.float64
        ).reshape(n_nodes_, -1)
        total += part @ part.T
    return total


def node_products(blocks, coef, diagonal=False):
    """``M_pq = sum_c <U_c[p], U_c[q]>`` with ``U_c[p] = sum_i coef[i, c] phi_p(i)``.

    With ``coef[:, c] = alpha_c * y_c`` this gives both betas' steps their quadratic terms:
    ``a_c' K_p a_c = M_pp`` summed over classes, and ``a' A(beta) a = beta' M beta`` for the
    unnormalised cross kernel. Zero across streams.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
    coef : ndarray of shape (N, C)
    diagonal : bool, default=False
        Return only the diagonal ``M_pp`` (all the linear kernel's beta-step needs).

    Returns
    -------
    ndarray of shape (P, P), or (P,) when ``diagonal``
    """
    # (C, N) x (N, P m) reads each block row by row (the transposed product is slower).
    # coef is cast to the block's dtype: a float64 operand would make numpy convert the
    # whole (float32) block at every call.
    if diagonal:
        return np.concatenate(
            [
                np.square(
                    (coef.T.astype(block.dtype) @ block.reshape(block.shape[0], -1)).astype(
                        np.float64
                    )
                )
                .reshape(coef.shape[1], block.shape[1], -1)
                .sum(axis=(0, 2))
                for block in blocks
            ]
        )
    slices = _stream_slices(blocks)
    total = slices[-1].stop
    products = np.zeros((total, total))
    for block, part in zip(blocks, slices):
        n_samples, n_nodes_, width = block.shape
        projected = (
            (coef.T.astype(block.dtype) @ block.reshape(n_samples, -1))
            .astype(np.float64)
            .reshape(-1, n_nodes_, width)
        )
        projected = projected.transpose(1, 0, 2).reshape(n_nodes_, -1)
        products[part, part] = projected @ projected.T
    return products


def node_weight_blocks(blocks, beta, coef, kind, normaliser=1.0):
    """The SVMs' primal weights per node: decisions are linear in the node features.

    With ``U_c[p] = sum_i coef[i, c] phi_p(i)`` (one product per stream), the decision of
    task ``c`` is ``sum_p <W_c[p], phi_p(x)> + b_c`` with

    - ``kind="linear"``: ``W_c[p] = beta_cp U_c[p] / n_c`` (``K = sum_p beta_p K_p / n``);
    - ``kind="cross"``: ``W_c[p] = beta_cp sum_{q in s(p)} beta_cq U_c[q] / n_c`` (the kernel
      of the weighted mean feature divided by its normaliser ``n_c = D(beta_c)``).

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
        Scaled training node features per stream.
    beta : ndarray of shape (P,) or (n_tasks, P)
        Weights shared by all tasks, or one row per task; ``P = sum_s P_s``.
    coef : ndarray of shape (N, n_tasks)
        Signed SVM duals ``alpha_c * y_c``.
    kind : {"linear", "cross"}
    normaliser : float or ndarray of shape (n_tasks,)
        The kernel's normaliser (per task with per-task weights).

    Returns
    -------
    list of ndarray, each (n_tasks, P_s, m_s)
    """
    n_tasks = coef.shape[1]
    beta = np.broadcast_to(np.atleast_2d(beta), (n_tasks, n_nodes(blocks)))
    scale = 1.0 / np.broadcast_to(np.asarray(normaliser, dtype=float), (n_tasks,))
    weights = []
    for block, part in zip(blocks, _stream_slices(blocks)):
        n_samples, n_nodes_, width = block.shape
        node_beta = beta[:, part]
        # Nodes no task weighs get zero weights: only the run of the others is read.
        run = _node_run(np.any(node_beta > 0, axis=0))
        projected = np.zeros((n_tasks, n_nodes_, width))
        projected[:, run] = (
            coef.T.astype(block.dtype) @ block[:, run].reshape(n_samples, -1)
        ).reshape(n_tasks, -1, width)
        if kind == "linear":
            weight = node_beta[:, :, None] * projected
        elif kind == "cross":
            mean = np.einsum("cp,cpm->cm", node_beta, projected)
            weight = node_beta[:, :, None] * mean[:, None, :]
        else:
            raise ValueError(f"kernel must be 'linear' or 'cross', got {kind!r}")
        weights.append(weight * scale[:, None, None])
    return weights


def block_decisions(blocks, weights):
    """``sum_s sum_p <W_c[p], phi_p(x)>`` for every video and task: ``(N, n_tasks)``.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
    weights : list of ndarray, each (n_tasks, P_s, m_s)
        From :func:`node_weight_blocks`.
    """
    total = 0.0
    for block, weight in zip(blocks, weights):
        # Nodes with zero weights add nothing: only the run of the others is read.
        run = _node_run(np.any(weight != 0, axis=(0, 2)))
        flat = block[:, run].reshape(block.shape[0], -1)
        part = weight[:, run].reshape(weight.shape[0], -1)
        total = total + flat.astype(np.float64, copy=False) @ part.T
    return total


def _node_run(used):
    """The slice from the first to the last ``True`` node of ``used`` (an empty slice
    when none): the nodes a product must read, the unused ones between them included."""
    nodes = np.flatnonzero(used)
    return slice(0, 0) if nodes.size == 0 else slice(int(nodes[0]), int(nodes[-1]) + 1)
