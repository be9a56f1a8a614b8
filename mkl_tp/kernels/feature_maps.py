"""Node normalisation and base kernels as explicit feature maps.

Every base kernel is handled through an explicit feature map ``phi`` (identity for the
linear kernel; scikit-learn's Nystroem approximation for ``rbf`` and ``chi2``), so a node's
kernel is ``K_p = Phi_p Phi_p'`` with ``Phi_p`` the ``(N, m)`` block of node ``p``. Blocks are
scaled so that every ``K_p`` has unit mean diagonal, which makes node weights comparable.
"""

import numpy as np
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics.pairwise import additive_chi2_kernel

from .._utils.choices import BASE_KERNELS, NODE_NORMS
from .._utils.params import check_choice

__all__ = [
    "NODE_NORMS",
    "BASE_KERNELS",
    "normalize_nodes",
    "fit_feature_maps",
    "apply_feature_maps",
    "unit_diagonal_scales",
]


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
    check_choice("node_norm", norm, NODE_NORMS)
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

    ``x.var(axis=0)`` would take a temporary as large as ``x``, the largest array of a fit
    (docs/performance.rst, "Memory model"), and accumulate in ``x``'s dtype.
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
    check_choice("base_kernel", base_kernel, BASE_KERNELS)
    if base_kernel == "linear":
        return None
    if base_kernel == "chi2":
        _check_non_negative(psi)
    rng = np.random.RandomState(random_state)
    descriptors = psi.reshape(-1, psi.shape[2])
    width = _default_gamma(descriptors, base_kernel, rng) if gamma is None else gamma
    nystroem = Nystroem(
        kernel=base_kernel,
        gamma=width,
        n_components=min(n_components, descriptors.shape[0]),
        random_state=rng.randint(np.iinfo(np.int32).max),
    )
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
    # Written node by node into one array: the nodes' maps must never be held twice (as a
    # list and its stacked copy) beside the descriptors (docs/performance.rst, "Memory model").
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
