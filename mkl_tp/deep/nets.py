"""The network around the pyramid layer: per-stream heads and their late fusion.

A :class:`StreamHead` reduces every node descriptor, pools the nodes with
:class:`~mkl_tp.deep.pool.TemporalPyramidPool` and classifies; :class:`PyramidNet` fuses
the heads of several streams with learned weights (the paper's Eq. 4, Fig. 2).
"""

import torch
from torch import nn

from .pool import TemporalPyramidPool

__all__ = ["StreamHead", "PyramidNet"]


class StreamHead(nn.Module):
    """One stream: reduce each node to ``node_dim``, pool with ``beta``, fuse, classify.

    Parameters
    ----------
    n_features : int
        ``d`` of the stream's node descriptors.
    n_classes : int
    levels, mode, n_pyramids
        The :class:`~mkl_tp.deep.pool.TemporalPyramidPool` the head builds.
    node_dim : int, default=128
        Per-node reduction (Table 5).
    hidden : int, default=128
        Width of the fusion layer (Table 5).

    Notes
    -----
    The reduction is one ``Linear(d, node_dim)`` shared by all nodes; as a node descriptor is
    a mean of frames, this equals a frame-level FC before pooling (the "last FC layer" the
    paper fine-tunes in Tables 2-3). Fusion is FC + ReLU + BatchNorm (Table 5).
    """

    def __init__(
        self, n_features, n_classes, levels, mode="concat", n_pyramids=1, node_dim=128, hidden=128
    ):
        super().__init__()
        self.reduce = nn.Linear(n_features, node_dim)
        self.pool = TemporalPyramidPool(levels, mode, n_pyramids)
        pool = self.pool
        width = pool.n_pyramids * node_dim * (pool.n_nodes if pool.mode == "concat" else 1)
        self.fuse = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.BatchNorm1d(hidden))
        self.classify = nn.Linear(hidden, n_classes)

    def forward(self, psi):
        if self.pool.mode == "concat":
            pooled = self.pool.aggregate(self.reduce(psi))
        else:  # sum_p beta_p (W psi_p + b) = W (sum_p beta_p psi_p) + b: reduce once, not P times
            pooled = self.reduce(self.pool.aggregate(psi))
        return self.classify(self.fuse(pooled.flatten(1)))


class PyramidNet(nn.Module):
    """Stream heads fused late: ``log sum_s w_s softmax(logits_s)``, ``w = softmax(w_hat)``."""

    def __init__(self, heads):
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.stream_logits = nn.Parameter(torch.zeros(len(heads)))

    def forward(self, psis):
        log_w = torch.log_softmax(self.stream_logits, dim=0)
        per_stream = [
            log_w[s] + torch.log_softmax(head(psi), dim=1)
            for s, (head, psi) in enumerate(zip(self.heads, psis))
        ]
        return torch.logsumexp(torch.stack(per_stream), dim=0)
