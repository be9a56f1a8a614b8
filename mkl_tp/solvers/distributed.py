"""The primal alpha-step on a Dask cluster: each worker holds a row shard of the node blocks.

:func:`~mkl_tp.solvers.primal.svm_duals_primal` touches the weighted features ``Z`` only
through products ``Z W``, ``Z' V`` and row gathers (:class:`~.primal.FeatureOperator`).
Here the node blocks are scattered once per fit, in row shards, one per worker; at every
alpha-step each worker forms its shard of ``Z`` for the new weights, and the products run
where the shards are: ``Z W`` comes back as row blocks, ``Z' V`` as per-shard sums added
on the client. The client keeps the ``N x n_tasks`` vectors and does the Newton steps, so
the result is the local solver's up to the order of floating-point sums.

Needs ``dask.distributed`` (``pip install "dask[distributed]"``). A fit reaches it through
``device``: ``"dask"`` uses the current client (``distributed.Client(...)`` made before the
fit), ``"tcp://host:8786"`` (any scheduler address) connects to that scheduler.
"""

import numpy as np
from array_api_compat import array_namespace

from ..kernels.combine import weighted_features

__all__ = ["ShardedBlocks", "ShardedFeatures", "dask_client", "is_dask_device"]

_CLIENTS = {}
_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


def is_dask_device(device):
    """Whether ``device`` names a Dask cluster (``"dask"`` or a scheduler address)."""
    return isinstance(device, str) and (device == "dask" or device.startswith(_SCHEMES))


def dask_client(device):
    """The ``distributed.Client`` that ``device`` names.

    Raises
    ------
    ImportError
        Without ``distributed``, saying what to install.
    """
    try:
        from distributed import Client, get_client
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(
            f"device={device!r} runs the primal fit on Dask, which needs "
            "pip install 'dask[distributed]'"
        ) from exc
    if device == "dask":
        return get_client()
    # One connection per scheduler for the whole session (a fit per alpha-step loop would
    # otherwise open one each).
    if device not in _CLIENTS or _CLIENTS[device].status not in ("running", "connecting"):
        _CLIENTS[device] = Client(device, set_as_default=False)
    return _CLIENTS[device]


def _shard_features(shard, beta, kind, root):
    return weighted_features(shard, beta, kind) * root


def _matmul(features, W):
    return (features @ W.astype(features.dtype)).astype(np.float64)


def _rmatmul(features, V):
    return (features.T @ V.astype(features.dtype)).astype(np.float64)


def _rows(features, index):
    return features[index].astype(np.float64)


def _max_row_norm(features):
    return float(np.max(np.einsum("nm,nm->n", features, features)))


class ShardedBlocks:
    """Node blocks scattered to the workers of ``client`` in row shards (once per fit).

    Parameters
    ----------
    client : distributed.Client
    blocks : list of ndarray, each (N, P_s, m_s)
    n_shards : int or None
        Row shards (``None``: one per worker).
    """

    def __init__(self, client, blocks, n_shards=None):
        workers = list(client.scheduler_info()["workers"])
        n_shards = n_shards or max(1, len(workers))
        n_samples = blocks[0].shape[0]
        self.client = client
        self.bounds = np.linspace(0, n_samples, n_shards + 1).astype(int)
        self.shards = [
            # hash=False: a key of its own per fit, so releasing an earlier fit's equal
            # shards cannot take this one's away ("lost dependencies").
            client.scatter(
                [b[start:stop] for b in blocks],
                hash=False,
                workers=[workers[k % len(workers)]] if workers else None,
            )
            for k, (start, stop) in enumerate(zip(self.bounds[:-1], self.bounds[1:]))
        ]

    def features(self, beta, kind, scale=1.0):
        """:class:`ShardedFeatures` of ``weighted_features(blocks, beta, kind) / sqrt(scale)``."""
        root = 1.0 / float(np.sqrt(scale))
        shards = [
            self.client.submit(_shard_features, shard, np.asarray(beta), kind, root, pure=False)
            for shard in self.shards
        ]
        return ShardedFeatures(self.client, shards, self.bounds)


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
