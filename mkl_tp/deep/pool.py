"""The temporal pyramid as a differentiable torch layer, for variable-length videos.

:class:`TemporalPyramidPool` pools packed frames over the ``2**levels - 1`` pyramid nodes
with exactly the descriptors of :mod:`mkl_tp.pyramid` (overlap-weighted means; any
``T >= 1``), so shallow and deep models see the same nodes, and weights them with
``beta = softmax(beta_hat)`` (the paper's Eq. 5, Section 3.2).
"""

from numbers import Integral

import torch
from torch import nn

from ..pyramid.descriptors import n_nodes, node_bounds

__all__ = ["MODES", "TemporalPyramidPool"]


MODES = ("concat", "average")


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class TemporalPyramidPool(nn.Module):
    """Temporal pyramid pooling with learned node weights, for variable-length videos.

    Parameters
    ----------
    levels : int
        Pyramid levels ``L``; ``P = 2**L - 1`` nodes, level-major (see :mod:`mkl_tp.pyramid`).
    mode : {"concat", "average"}, default="concat"
        ``"concat"``: ``(beta_1 psi_1, ..., beta_P psi_P)``, the paper's (*) in Eq. 1;
        ``"average"``: ``sum_p beta_p psi_p``, the paper's (**).
    n_pyramids : int, default=1
        Independent weight vectors over the same nodes (the multiple pyramids of Table 5).

    Attributes
    ----------
    beta_hat : torch.nn.Parameter of shape (n_pyramids, P)
        Free parameters; zeros, i.e. uniform ``beta``, at construction.

    Notes
    -----
    ``beta = softmax(beta_hat)`` row-wise: Eq. 5 with ``h = exp``, so every pyramid's weights
    stay on the simplex of Eq. 4 whatever the optimiser does, and autograd's Jacobian is the
    paper's ``beta_k (delta_pk - beta_p)``.
    """

    def __init__(self, levels, mode="concat", n_pyramids=1):
        super().__init__()
        self.n_nodes = n_nodes(levels)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.levels = int(levels)
        self.mode = mode
        self.n_pyramids = _positive_int(n_pyramids, "n_pyramids")
        self.beta_hat = nn.Parameter(torch.zeros(self.n_pyramids, self.n_nodes))
        # Node p spans the leaf boundaries q = lo_p .. hi_p (q / 2**(L-1) in normalised time):
        # it holds the leaf segments lo_p <= q < hi_p (Eq. 6's membership at segment
        # resolution), plus the partial frames at its two ends.
        leaves = 2 ** (self.levels - 1)
        lo, hi = (torch.as_tensor(node_bounds(levels) * leaves).round().long()).T
        q = torch.arange(leaves + 1)
        self.register_buffer(
            "membership", ((lo[:, None] <= q) & (q < hi[:, None])).double(), persistent=False
        )
        self.register_buffer(
            "ends", (q == hi[:, None]).double() - (q == lo[:, None]).double(), persistent=False
        )
        self.register_buffer("width", (hi - lo).double() / leaves, persistent=False)

    def extra_repr(self):
        return f"levels={self.levels}, mode={self.mode!r}, n_pyramids={self.n_pyramids}"

    @property
    def beta(self):
        """Node weights ``softmax(beta_hat)``, shape ``(n_pyramids, P)``, rows on the simplex."""
        return torch.softmax(self.beta_hat, dim=-1)

    def node_descriptors(self, frames, lengths):
        """Node descriptors of a packed batch of videos, differentiable in the frames.

        Parameters
        ----------
        frames : Tensor of shape (sum_i T_i, d)
            The frames of all videos, one after the other (no padding).
        lengths : Tensor or array-like of int, shape (N,)
            ``T_i >= 1`` per video, summing to ``frames.shape[0]``.

        Returns
        -------
        Tensor of shape (N, P, d), in ``frames.dtype``
            ``psi[i, p]``: mean of video ``i``'s piecewise-constant frame signal over node
            ``p``, equal to :func:`mkl_tp.pyramid.node_descriptors_batch`.

        Notes
        -----
        Eq. 1 with the membership ``1{t in N_kl}`` of Eq. 6 when ``2**(l-1)`` divides ``T``,
        overlap-weighted otherwise: ``psi_p = T (F(b_p) - F(a_p)) / ((b_p - a_p) T)`` with
        ``F`` the integral of the piecewise-constant frame signal. The ``2**(L-1) + 1`` leaf
        boundaries ``x_q = q / 2**(L-1)`` fall in frames ``j_q = min(floor(x_q T), T - 1)``
        at fractions ``f_q = x_q T - j_q``; the frames ``j_q <= t < j_(q+1)`` form segment
        ``q`` (the last frame its own segment). Then
        ``T (F(b) - F(a)) = sum_{lo <= q < hi} segment_q + f_hi X[j_hi] - f_lo X[j_lo]``.
        Vectorised over the batch: one ``segment_reduce`` over all frames (a contiguous
        row-wise sum, cheaper on CPU than a scattered ``index_add``) for the segment sums,
        a gather of the boundary frames and two small matrix products with the fixed node
        membership; no loop over videos. No prefix sums either: a running sum over the packed
        batch would cancel catastrophically across videos in float32, and torch's dim-0
        ``cumsum`` costs more than the segment sums on CPU. The pooling pass is timed by
        ``benchmarks/bench_deep.py`` (table 2 in ``docs/deep.rst``).
        """
        if frames.ndim != 2:
            raise ValueError(f"frames must be (sum T_i, d), got shape {tuple(frames.shape)}")
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=frames.device)
        if (
            lengths.ndim != 1
            or lengths.numel() == 0
            or bool((lengths < 1).any())
            or int(lengths.sum()) != frames.shape[0]
        ):
            raise ValueError(
                f"lengths must be >= 1 and sum to frames.shape[0]={frames.shape[0]}, got "
                f"{lengths.tolist() if lengths.numel() <= 20 else lengths.shape}"
            )
        n_videos, leaves = lengths.shape[0], 2 ** (self.levels - 1)
        starts = torch.cumsum(lengths, 0) - lengths
        q = torch.arange(leaves + 1, device=frames.device)
        scaled = q[None] * lengths[:, None]  # leaves * x_q * T, exact integers
        j = torch.minimum(scaled // leaves, (lengths - 1)[:, None])
        fraction = ((scaled - j * leaves).double() / leaves).to(frames.dtype)
        partial = fraction[..., None] * frames[starts[:, None] + j]
        # segment q < 2**(L-1) holds frames j_q .. j_(q+1) - 1 (j_(2**(L-1)) = T - 1); the
        # last frame is a segment of its own. Segments are contiguous runs of packed frames.
        counts = torch.cat([j.diff(dim=1), torch.ones_like(j[:, :1])], dim=1)
        sums = torch.segment_reduce(frames, "sum", lengths=counts.reshape(-1), axis=0).view(
            n_videos, leaves + 1, -1
        )
        total = self.membership.to(frames.dtype) @ sums + self.ends.to(frames.dtype) @ partial
        width = self.width.double()[None] * lengths[:, None].double()
        return total / width.to(frames.dtype)[..., None]

    def aggregate(self, psi):
        """Combine node descriptors with ``beta`` (Eq. 1).

        Parameters
        ----------
        psi : Tensor of shape (N, P, d)

        Returns
        -------
        Tensor of shape (N, n_pyramids, P * d) for "concat", (N, n_pyramids, d) for "average"
        """
        beta = self.beta.to(psi.dtype)
        if self.mode == "concat":
            return (beta[None, :, :, None] * psi[:, None]).flatten(2)
        return torch.einsum("mp,npd->nmd", beta, psi)

    def forward(self, frames, lengths):
        """Pooled representation of a packed batch of videos.

        Parameters
        ----------
        frames : Tensor of shape (sum_i T_i, d)
        lengths : Tensor or array-like of int, shape (N,)

        Returns
        -------
        Tensor of shape (N, n_pyramids, P * d) ("concat") or (N, n_pyramids, d) ("average")
        """
        return self.aggregate(self.node_descriptors(frames, lengths))
