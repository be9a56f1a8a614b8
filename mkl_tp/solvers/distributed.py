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

from ..kernels.combine import weighted_features
from ._common import ShardedFeatures

__all__ = ["ShardedBlocks", "ShardedFeatures", "dask_client", "is_dask_device"]

_CLIENTS = {}
_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


def is_dask_device(device):
    """Whether a ``device`` string names a Dask cluster (``"dask"`` or a scheduler address):
    the spelling before the estimator's ``dask`` parameter, still accepted with a warning."""
    return isinstance(device, str) and (device == "dask" or device.startswith(_SCHEMES))


def dask_client(address):
    """The ``distributed.Client`` of ``address``: ``"dask"`` for the session's client, else a
    scheduler address.

    Raises
    ------
    ImportError
        Without ``distributed``, saying what to install.
    """
    try:
        from distributed import Client, get_client
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(
            f"dask={address!r} runs the primal fit on Dask, which needs "
            "pip install 'dask[distributed]'"
        ) from exc
    if address == "dask":
        return get_client()
    # One connection per scheduler for the whole session (a fit per alpha-step loop would
    # otherwise open one each).
    if address not in _CLIENTS or _CLIENTS[address].status not in ("running", "connecting"):
        _CLIENTS[address] = Client(address, set_as_default=False)
    return _CLIENTS[address]


def _shard_features(shard, beta, kind, root):
    return weighted_features(shard, beta, kind) * root


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
