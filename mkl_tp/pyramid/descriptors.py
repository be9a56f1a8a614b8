"""Temporal pyramid geometry and node descriptors.

A pyramid of ``L`` levels splits normalised time [0, 1) into ``2**(l-1)`` equal nodes at
level ``l = 1..L``; node ``(k, l)`` covers ``[(k-1)/2**(l-1), k/2**(l-1))``. Nodes are indexed
level-major, ``p = 2**(l-1) - 1 + (k-1)``, so there are ``P = 2**L - 1`` nodes.

Frame ``t`` (0-based) of a sequence of ``T`` frames occupies ``[t/T, (t+1)/T)``. A node
descriptor is the overlap-weighted mean of the frames under the node, i.e. the mean of the
piecewise-constant frame signal over the node's interval: ``psi = W_T X`` with ``W_T[p, t]``
the overlap of frame ``t`` with node ``p`` over the node's width. When ``2**(l-1)``
divides ``T`` this is the plain mean of the node's frames (the paper's membership
``1{t in N_kl}``, Eq. 1); when ``T < 2**(l-1)`` a node inside one frame equals that frame.
No node is ever empty and no resampling is needed.
"""

import numpy as np

__all__ = [
    "n_nodes",
    "node_index",
    "node_level",
    "node_bounds",
    "overlap_weights",
    "node_descriptors",
    "node_descriptors_batch",
]


def _check_levels(levels):
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
    return int(levels)


def n_nodes(levels):
    """Number of nodes ``P = 2**levels - 1`` of a pyramid with ``levels`` levels.

    Parameters
    ----------
    levels : int
        Number of pyramid levels, ``>= 1``.

    Returns
    -------
    int
    """
    return 2 ** _check_levels(levels) - 1


def node_index(level, k):
    """Level-major index ``p = 2**(level-1) - 1 + (k-1)`` of node ``k`` (1-based) of ``level``.

    Parameters
    ----------
    level : int
        Pyramid level, ``>= 1``.
    k : int
        Position of the node in its level, ``1 <= k <= 2**(level-1)``.

    Returns
    -------
    int
    """
    level = _check_levels(level)
    if not 1 <= k <= 2 ** (level - 1):
        raise ValueError(f"k must lie in 1..{2 ** (level - 1)} at level {level}, got {k}")
    return 2 ** (level - 1) - 1 + (k - 1)


def node_level(p):
    """Inverse of :func:`node_index`: the ``(level, k)`` of node ``p`` (0-based).

    Parameters
    ----------
    p : int
        Node index, ``>= 0``.

    Returns
    -------
    level, k : int
    """
    if p < 0:
        raise ValueError(f"node index must be >= 0, got {p}")
    level = int(p + 1).bit_length()
    return level, p - (2 ** (level - 1) - 1) + 1


def node_bounds(levels):
    """Normalised time interval ``[a, b)`` of every node, level-major.

    Parameters
    ----------
    levels : int
        Number of pyramid levels.

    Returns
    -------
    ndarray of shape (P, 2)
        ``[a_p, b_p]`` per node; powers of two, so exact in floating point.
    """
    levels = _check_levels(levels)
    bounds = []
    for level in range(1, levels + 1):
        width = 2.0 ** -(level - 1)
        starts = np.arange(2 ** (level - 1)) * width
        bounds.append(np.column_stack([starts, starts + width]))
    return np.concatenate(bounds)


def overlap_weights(T, levels):
    """Weights ``W`` with ``psi = W X`` for a sequence of ``T`` frames: ``(P, T)``.

    ``W[p, t]`` is the overlap of frame ``t``'s interval ``[t/T, (t+1)/T)`` with node
    ``p``'s interval, divided by the node's width. Both are whole multiples of
    ``1 / (T 2**(L-1))``, so each weight is an exact ratio of integers rounded once.

    Parameters
    ----------
    T : int
        Number of frames, ``>= 1``.
    levels : int
        Number of pyramid levels.

    Returns
    -------
    ndarray of shape (P, T), float64
        Each row sums to one.
    """
    levels = _check_levels(levels)
    fine = 2 ** (levels - 1)
    # Node and frame boundaries in units of 1 / (T * fine): integers.
    ends = np.rint(node_bounds(levels) * fine).astype(np.int64) * T
    frame = np.arange(T, dtype=np.int64)[None, :] * fine
    overlap = np.minimum(ends[:, 1:], frame + fine) - np.maximum(ends[:, :1], frame)
    return np.maximum(overlap, 0) / (ends[:, 1:] - ends[:, :1])


def node_descriptors_batch(sequences, levels, chunk_bytes=2**28, dtype=np.float64, out=None):
    """Node descriptors of many sequences at once: one matrix product per length.

    Parameters
    ----------
    sequences : sequence of array-like, each of shape (T_i, d)
        Per-frame features, ``T_i >= 1``, the same ``d`` for all.
    levels : int
        Number of pyramid levels.
    chunk_bytes : int, default=2**28
        Sequences are processed in groups whose float64 frames and descriptors take about
        this many bytes, which bounds the temporary memory beside the output.
    dtype : dtype, default=float64
        Storage of the output. Accumulation is in float64 either way; float32 halves the
        ``N P d`` output (each entry rounded once, relative error below ``6e-8``).
    out : ndarray of shape (N, P, d), optional
        Floating point; written in place and returned (its dtype is the storage;
        ``dtype`` is then ignored), e.g. a slice of a larger array: no second copy of the
        descriptors.

    Returns
    -------
    ndarray of shape (N, P, d), of ``dtype`` (or ``out``'s)
        ``psi[i, p]`` is the overlap-weighted mean of sequence ``i`` over node ``p``.

    Notes
    -----
    ``psi = W_T X`` with ``W_T`` of :func:`overlap_weights`: the paper's Eq. 1 when
    ``2**(l-1)`` divides ``T``, and its natural extension to any ``T``. Sequences of one
    length share ``W_T``, so each group of them is one batched matrix product (BLAS) of
    cost ``O(P T d)`` per sequence, written once into the output; no prefix sums, so no
    cancellation. Accumulation is in float64.
    """
    levels = _check_levels(levels)
    arrays = [np.asarray(x) for x in sequences]
    if not arrays:
        raise ValueError("node_descriptors_batch needs at least one sequence")
    for i, x in enumerate(arrays):
        if x.ndim != 2 or x.shape[0] < 1:
            raise ValueError(
                f"sequence {i} must have shape (T, d) with T >= 1, got shape {x.shape}"
            )
        if x.shape[1] != arrays[0].shape[1]:
            raise ValueError(
                f"sequence {i} has d={x.shape[1]} but sequence 0 has d={arrays[0].shape[1]}"
            )
    d, P = arrays[0].shape[1], n_nodes(levels)
    if out is None:
        out = np.empty((len(arrays), P, d), dtype=dtype)
    elif not (isinstance(out, np.ndarray) and np.issubdtype(out.dtype, np.floating)):
        raise ValueError(
            f"out must be a floating-point ndarray, got {type(out).__name__} "
            f"of dtype {getattr(out, 'dtype', None)}"
        )
    elif out.shape != (len(arrays), P, d):
        raise ValueError(f"out must have shape {(len(arrays), P, d)}, got {out.shape}")
    lengths = np.array([x.shape[0] for x in arrays])
    for T in np.unique(lengths):
        weights = overlap_weights(int(T), levels)
        same = np.flatnonzero(lengths == T)
        step = max(1, int(chunk_bytes) // max(1, 8 * (int(T) + P) * d))
        for start in range(0, same.size, step):
            rows = same[start : start + step]
            frames = np.stack([arrays[i] for i in rows], dtype=np.float64)
            out[rows] = np.matmul(weights, frames)
    return out


def node_descriptors(X, levels):
    """Node descriptors of one sequence of frame features.

    Parameters
    ----------
    X : array-like of shape (T, d)
        Per-frame features, ``T >= 1``.
    levels : int
        Number of pyramid levels.

    Returns
    -------
    ndarray of shape (P, d), float64
        One descriptor per node, level-major (see :func:`node_descriptors_batch`).
    """
    return node_descriptors_batch([X], levels)[0]
