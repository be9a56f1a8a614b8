"""Per-node PCA: each node kernel replaced by its best low-rank approximation.

The paper's Table 5 reduces 2048-d node descriptors to 128 dimensions. Here every node's
training features ``Phi_p`` are projected on their top right singular vectors (uncentred, so
``K_p`` becomes its best rank-``k`` approximation in the Frobenius norm, Eckart-Young), found
by a randomized range finder (Halko, Martinsson & Tropp 2011).
"""

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state

from .._utils.blas import single_threaded_blas

__all__ = ["fit_node_projections", "apply_node_projections"]


def fit_node_projections(phi, n_components, random_state=None, shared=False):
    """Per-node projections onto the top right singular vectors of the training features.

    Parameters
    ----------
    phi : ndarray of shape (N, P, m)
        Training node features of one stream.
    n_components : int
        Dimensions kept per node (the paper's Table 5 uses 128); capped at ``min(N, m)``.
    random_state : int, RandomState or None
        Seeds the randomized SVD.
    shared : bool, default=False
        One projection for all nodes, fitted on their features stacked (``N P`` rows): the
        cross kernel compares every node with every other, which needs one common basis.

    Returns
    -------
    ndarray of shape (P, m, k)

    Notes
    -----
    Uncentred (``Phi_p V_p`` with ``V_p`` the top-``k`` right singular vectors of
    ``Phi_p``), so ``K_p`` is replaced by its best rank-``k`` approximation in the
    Frobenius norm (Eckart-Young), up to the randomized range finder's error (two power
    iterations, 10 extra directions). Cost ``O(N m k)`` per node instead of ``O(N m^2)``.
    """
    n_samples, n_nodes_, width = phi.shape
    rng = check_random_state(random_state)
    if shared:
        stacked = phi.reshape(n_samples * n_nodes_, width)
        k = int(min(n_components, len(stacked), width))
        top = _top_right_singular_vectors(np.ascontiguousarray(stacked), k, rng)
        return np.repeat(top[None], n_nodes_, axis=0)
    k = int(min(n_components, n_samples, width))
    projections = np.empty((n_nodes_, width, k), dtype=phi.dtype)
    for p in range(n_nodes_):
        projections[p] = _top_right_singular_vectors(np.ascontiguousarray(phi[:, p]), k, rng)
    return projections


def _top_right_singular_vectors(node, k, rng, oversample=10, power_iterations=2):
    """Randomized range finder on ``node' node`` (Halko, Martinsson & Tropp 2011, Alg. 4.4).

    The products run in the dtype of ``node`` (float32 halves their cost); the small
    ``(k + oversample)``-sized steps (Cholesky QR, eigendecomposition) in float64.
    """
    n_samples, width = node.shape
    size = min(k + oversample, width, n_samples)
    basis = node.T @ rng.standard_normal((n_samples, size)).astype(node.dtype)
    for _ in range(power_iterations):
        with single_threaded_blas():
            basis = _orthonormal(basis).astype(node.dtype)
        basis = node.T @ (node @ basis)
    with single_threaded_blas():
        basis = _orthonormal(basis)
    small = (node @ basis.astype(node.dtype)).astype(np.float64)
    gram = small.T @ small
    with single_threaded_blas():
        values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:k]
    return (basis @ vectors[:, top]).astype(node.dtype)


def _orthonormal(basis):
    """Orthonormal basis of the columns (Cholesky QR, twice for accuracy), float64."""
    basis = basis.astype(np.float64)
    for _ in range(2):
        gram = basis.T @ basis
        gram[np.diag_indices_from(gram)] += 1e-12 * max(np.trace(gram), 1e-300)
        factor = np.linalg.cholesky(gram)
        basis = linalg.solve_triangular(factor, basis.T, lower=True).T
    return basis


def apply_node_projections(phi, projections):
    """``(N, P, m) -> (N, P, k)``: node ``p`` times ``projections[p]``.

    One node at a time, so nothing of the size of ``phi`` is allocated.
    """
    out = np.empty(phi.shape[:2] + projections.shape[2:], dtype=np.result_type(phi, projections))
    for p in range(phi.shape[1]):
        out[:, p] = phi[:, p] @ projections[p]
    return out
