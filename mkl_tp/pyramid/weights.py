"""Node weights given by the user: fixed weights, learning, and starts from a coarser pyramid.

``beta`` is one flat vector over the nodes of every stream, stream after stream, on the
simplex (docs/maths.rst).
"""

import numpy as np

from .descriptors import n_nodes

__all__ = ["initial_node_weights", "coarse_start", "coarse_levels"]


def initial_node_weights(node_weights, levels, n_streams):
    """``(beta0, learn)`` from an estimator's ``node_weights``: ``"learn"``, ``"uniform"``
    or weights; ``beta0`` is flat over the streams' nodes and sums to 1."""
    total = n_streams * n_nodes(levels)
    if isinstance(node_weights, str):
        if node_weights not in ("learn", "uniform"):
            raise ValueError(
                "node_weights must be 'learn', 'uniform' or an array of weights, got "
                f"{node_weights!r}"
            )
        return np.full(total, 1.0 / total), node_weights == "learn"
    beta = np.asarray(node_weights, dtype=float).ravel()
    if beta.shape != (total,) or not np.isfinite(beta).all() or (beta < 0).any() or beta.sum() <= 0:
        raise ValueError(
            f"node_weights must hold {total} non-negative finite weights "
            f"({n_streams} stream(s) x {n_nodes(levels)} nodes) with a positive "
            f"sum, got shape {np.shape(node_weights)}"
        )
    return beta / beta.sum(), False


def coarse_start(beta_init, levels, n_streams):
    """``beta_init``, weights of a pyramid of at most ``levels`` levels per stream, as a
    flat vector on the simplex over ``levels``: the finer nodes get the mean weight."""
    per_stream = n_nodes(levels)
    init = np.asarray(beta_init, dtype=float)
    coarse = init.size // n_streams
    if init.size % n_streams == 0:
        init = init.reshape(n_streams, coarse)
    if (
        init.size % n_streams
        or coarse > per_stream
        or (coarse + 1) & coarse
        or not np.isfinite(init).all()
        or (init < 0).any()
        or init.sum() <= 0
    ):
        raise ValueError(
            f"beta_init must hold non-negative finite weights of a pyramid with at most "
            f"{levels} levels per stream ({n_streams} stream(s)), got shape "
            f"{np.shape(beta_init)}"
        )
    extended = np.full((n_streams, per_stream), init.sum() / init.size)
    extended[:, :coarse] = init
    extended = extended.ravel()
    return extended / extended.sum()


def coarse_levels(depth, levels, n_streams):
    """Uniform weights on the nodes of levels ``1..depth`` of every stream's pyramid of
    ``levels`` levels, zero on the finer nodes; flat over the streams, summing to 1."""
    if not 1 <= depth <= levels:
        raise ValueError(f"depth must be within 1..{levels}, got {depth}")
    per_stream = np.zeros(n_nodes(levels))
    per_stream[: n_nodes(depth)] = 1.0
    beta = np.tile(per_stream, n_streams)
    return beta / beta.sum()
