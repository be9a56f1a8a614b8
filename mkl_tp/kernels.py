"""Node normalisation, base kernels as explicit feature maps, and combined kernels.

Every base kernel is handled through an explicit feature map ``phi`` (identity for the
linear kernel; scikit-learn's Nystroem approximation for ``rbf`` and ``chi2``), so a node's
kernel is ``K_p = Phi_p Phi_p'`` with ``Phi_p`` the ``(N, m)`` block of node ``p``. Blocks are
scaled so that every ``K_p`` has unit mean diagonal, which makes node weights comparable.

Combined kernels (DESIGN.md, "MKL"), with ``beta`` on the simplex:

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
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics.pairwise import additive_chi2_kernel

__all__ = [
    "NODE_NORMS",
    "BASE_KERNELS",
    "normalize_nodes",
    "fit_feature_maps",
    "apply_feature_maps",
    "unit_diagonal_scales",
    "weighted_features",
    "combined_kernel",
    "gram_matrix",
    "node_gram",
    "node_products",
    "node_weight_blocks",
    "block_decisions",
]

NODE_NORMS = ("none", "l2", "power")
BASE_KERNELS = ("linear", "rbf", "chi2")


def normalize_nodes(psi, norm, copy=True):
    """Normalise every node descriptor.

    Parameters
    ----------
    psi : ndarray of shape (N, P, d)
        Node descriptors.
    norm : {"none", "l2", "power"}
        ``"l2"`` divides each descriptor by its Euclidean norm; ``"power"`` applies the
        signed square root ``sign(x) sqrt(|x|)`` first, then ``"l2"``. Zero descriptors
        stay zero.
    copy : bool, default=True
        ``False`` normalises ``psi`` in place (no second ``N P d`` array).

    Returns
    -------
    ndarray of shape (N, P, d)
    """
    if norm not in NODE_NORMS:
        raise ValueError(f"node_norm must be one of {NODE_NORMS}, got {norm!r}")
    if norm == "none":
        return psi
    if copy:
        psi = psi.copy()
    if norm == "power":
        sign = np.sign(psi)
        np.sqrt(np.abs(psi, out=psi), out=psi)
        psi *= sign
        del sign
    for p in range(psi.shape[1]):
        # One node at a time: a float64 copy of a node, never of all of psi.
        node = psi[:, p].astype(np.float64)
        length = np.sqrt(np.einsum("nd,nd->n", node, node))[:, None]
        psi[:, p] = node / np.where(length > 0, length, 1.0)
    return psi


# Descriptors used to estimate the chi2 kernel's default width (pairwise, so capped).
_GAMMA_SAMPLE = 500


def _default_gamma(node, base_kernel, rng):
    """``1 / mean distance`` over pairs of distinct descriptors (of one stream).

    The distance is the squared Euclidean one for ``rbf`` (closed form
    ``2 sum_j var_j``, unbiased) and the chi-squared one ``sum_j (x_j - y_j)^2 / (x_j + y_j)``
    for ``chi2`` (on at most ``_GAMMA_SAMPLE`` descriptors).
    """
    if base_kernel == "rbf":
        spread = 2.0 * _total_variance(node)
    else:
        if node.shape[0] > _GAMMA_SAMPLE:
            node = node[rng.choice(node.shape[0], _GAMMA_SAMPLE, replace=False)]
        n = node.shape[0]
        spread = -additive_chi2_kernel(node).sum() / (n * (n - 1))
    return 1.0 / spread if spread > 0 else 1.0


def _total_variance(x, chunk=2**22):
    """``sum_j var_j`` (``ddof=1``) of the rows of ``x``, in float64, a block of rows at a time.

    ``x.var(axis=0)`` would take a temporary as large as ``x`` (5 GB for the N P = 630,000
    descriptors of 2048 dims at UCF scale) and accumulate in ``x``'s dtype.
    """
    if x.shape[0] < 2:
        return 0.0  # no pair of rows: no spread (the width then falls back to 1)
    rows = max(1, chunk // max(1, x.shape[1]))
    blocks = [slice(start, start + rows) for start in range(0, x.shape[0], rows)]
    mean = sum(x[block].sum(axis=0, dtype=np.float64) for block in blocks) / x.shape[0]
    squares = sum(float(np.square(x[block] - mean).sum()) for block in blocks)
    return squares / (x.shape[0] - 1)


def fit_feature_maps(psi, base_kernel, n_components=512, gamma=None, random_state=None):
    """Fit the explicit feature map of one stream on the descriptors of all its nodes.

    One map serves every node of the stream, so ``<phi(psi_p(x)), phi(psi_q(x'))>``
    approximates the base kernel ``k(psi_p(x), psi_q(x'))`` between descriptors of any two
    nodes: the cross-node terms of the paper's Eq. 2 (``kernel="cross"``), and the same
    ``k`` on every node for ``kernel="linear"``.

    Parameters
    ----------
    psi : ndarray of shape (N, P, d)
        Normalised training node descriptors of one stream.
    base_kernel : {"linear", "rbf", "chi2"}
        ``"linear"`` is the identity map. ``"rbf"`` is a Nystroem map of
        ``exp(-gamma ||x - y||^2)``, ``"chi2"`` one of the exponential chi-squared kernel
        ``exp(-gamma sum_j (x_j - y_j)^2 / (x_j + y_j))``, both with
        ``min(n_components, N P)`` landmarks drawn from the ``N P`` training descriptors
        (exact on them when ``n_components >= N P``, and then independent of the seed).
        ``"chi2"`` needs non-negative descriptors (e.g. ReLU features with ``node_norm``
        "none" or "l2").
    n_components : int, default=512
        Landmarks of the Nystroem map.
    gamma : float or None
        Kernel width; ``None`` uses ``1 / mean distance`` between the stream's descriptors.
    random_state : int, RandomState or None
        Seeds the Nystroem landmarks.

    Returns
    -------
    fitted scikit-learn transformer, or None for ``"linear"``
    """
    if base_kernel not in BASE_KERNELS:
        raise ValueError(f"base_kernel must be one of {BASE_KERNELS}, got {base_kernel!r}")
    if base_kernel == "linear":
        return None
    if base_kernel == "chi2":
        _check_non_negative(psi)
    rng = np.random.RandomState(random_state)
    descriptors = psi.reshape(-1, psi.shape[2])
    width = _default_gamma(descriptors, base_kernel, rng) if gamma is None else gamma
    nystroem = Nystroem(kernel=base_kernel, gamma=width,
                        n_components=min(n_components, descriptors.shape[0]),
                        random_state=rng.randint(np.iinfo(np.int32).max))
    return nystroem.fit(descriptors)


def _check_non_negative(psi):
    negative = np.flatnonzero((psi < 0).any(axis=(1, 2)))
    if negative.size:
        raise ValueError(
            f"base_kernel='chi2' needs non-negative features, but video {negative[0]} has "
            "negative node descriptors (use non-negative frame features, e.g. ReLU CNN "
            "features, with node_norm 'none' or 'l2', or another base_kernel)"
        )


def apply_feature_maps(psi, feature_map):
    """Apply a stream's feature map to every node: ``(N, P, d) -> (N, P, m)``.

    Parameters
    ----------
    psi : ndarray of shape (N, P, d)
    feature_map : fitted transformer or None
        From :func:`fit_feature_maps` (``None``: the identity).

    Returns
    -------
    ndarray of shape (N, P, m)
    """
    if feature_map is None:
        return psi
    if feature_map.kernel == "chi2":
        _check_non_negative(psi)
    first = feature_map.transform(psi[:, 0])
    # Written node by node into one array: a list of the nodes' maps, then np.stack, held
    # both at once (2.6 GB beside the descriptors at UCF scale, docs/performance.rst).
    out = np.empty((psi.shape[0], psi.shape[1], first.shape[1]), dtype=first.dtype)
    out[:, 0] = first
    del first
    for p in range(1, psi.shape[1]):
        out[:, p] = feature_map.transform(psi[:, p])
    return out


def unit_diagonal_scales(phi):
    """Per-node scale ``s_p = mean_i ||phi_p(i)||^2`` (1 for an all-zero node).

    Dividing block ``p`` by ``sqrt(s_p)`` gives ``K_p`` unit mean diagonal.

    Parameters
    ----------
    phi : ndarray of shape (N, P, m)

    Returns
    -------
    ndarray of shape (P,)
    """
    scales = np.empty(phi.shape[1])
    for p in range(phi.shape[1]):
        node = phi[:, p].astype(np.float64)
        scales[p] = np.einsum("nm,nm->", node, node) / phi.shape[0]
    return np.where(scales > 0, scales, 1.0)


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
                (block[:, used] * np.sqrt(weights[used])[None, :, None]).reshape(
                    block.shape[0], -1
                )
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
    features = weighted_features(blocks, beta, kind)
    kernel = gram_matrix(features)
    del features
    if kind == "linear":
        return kernel, 1.0
    normaliser = float(np.trace(kernel)) / kernel.shape[0]
    kernel /= normaliser
    return kernel, normaliser


# Rows per tile of gram_matrix: a (tile, m) float64 copy and (tile, tile) output blocks.
_GRAM_TILE = 2048


def gram_matrix(features, out=None, tile=_GRAM_TILE):
    """``F F'`` in float64 by tiled GEMMs, never numpy's ``a @ a.T``.

    numpy sends ``a @ a.T`` to BLAS ``syrk``, which the OpenBLAS bundled with numpy crashes
    in (segmentation fault) at 20,000 x 960 float64 on 2 threads (numpy issue #19685;
    ``a @ a.T.copy()`` does not). Here every product is a GEMM of a row tile by a copied,
    transposed column tile; only the tiles on and above the diagonal are multiplied (the
    half of the flops ``syrk`` saved) and mirrored below it.

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
        right = np.ascontiguousarray(features[cols].T, dtype=np.float64)
        for row in starts:
            if row > col:
                break
            rows = slice(row, min(row + tile, n_samples))
            np.matmul(features[rows].astype(np.float64, copy=False), right, out=out[rows, cols])
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
        part = np.ascontiguousarray(block[start:start + chunk].transpose(1, 0, 2),
                                    dtype=np.float64).reshape(n_nodes_, -1)
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
        return np.concatenate([
            np.square((coef.T.astype(block.dtype) @ block.reshape(block.shape[0], -1))
                      .astype(np.float64))
            .reshape(coef.shape[1], block.shape[1], -1).sum(axis=(0, 2))
            for block in blocks
        ])
    slices = _stream_slices(blocks)
    total = slices[-1].stop
    products = np.zeros((total, total))
    for block, part in zip(blocks, slices):
        n_samples, n_nodes_, width = block.shape
        projected = (coef.T.astype(block.dtype) @ block.reshape(n_samples, -1)).astype(
            np.float64).reshape(-1, n_nodes_, width)
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
    beta = np.broadcast_to(np.atleast_2d(beta), (n_tasks, sum(b.shape[1] for b in blocks)))
    scale = 1.0 / np.broadcast_to(np.asarray(normaliser, dtype=float), (n_tasks,))
    weights = []
    for block, part in zip(blocks, _stream_slices(blocks)):
        n_samples, n_nodes_, width = block.shape
        projected = (coef.T.astype(block.dtype) @ block.reshape(n_samples, -1)).astype(
            np.float64).reshape(n_tasks, n_nodes_, width)
        node_beta = beta[:, part]
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
        flat = block.reshape(block.shape[0], -1)
        total = total + flat.astype(np.float64, copy=False) @ weight.reshape(
            weight.shape[0], -1).T
    return total
