"""The network around the pyramid layer: per-stream heads and their late fusion.

A :class:`StreamHead` reduces every node descriptor, pools the nodes with
:class:`~mkl_tp.deep.pool.TemporalPyramidPool` and classifies; :class:`PyramidNet` fuses
the heads of several streams with learned weights (the paper's Eq. 4, Fig. 2).
"""

import torch
from torch import nn

__all__ = ["StreamHead", "PyramidNet"]


class StreamHead(nn.Module):
    """One stream: reduce each node to ``node_dim``, pool with ``beta``, fuse, classify.

    The reduction is one ``Linear(d, node_dim)`` shared by all nodes; as a node descriptor is
    a mean of frames, this equals a frame-level FC before pooling (the "last FC layer" the
    paper fine-tunes in Tables 2-3). Fusion is FC + ReLU + BatchNorm (Table 5). ``pool`` is a
    :class:`~mkl_tp.deep.TemporalPyramidPool`, passed in so that this module need not import
    :mod:`mkl_tp.deep`.
    """

    def __init__(self, n_features, n_classes, pool, node_dim, hidden):
        super().__init__()
        self.reduce = nn.Linear(n_features, node_dim)
        self.pool = pool
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
        per_stream = [log_w[s] + torch.log_softmax(head(psi), dim=1)
                      for s, (head, psi) in enumerate(zip(self.heads, psis))]
        return torch.logsumexp(torch.stack(per_stream), dim=0)
