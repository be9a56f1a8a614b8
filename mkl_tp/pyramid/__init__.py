"""The temporal pyramid: frames become node descriptors.

- :mod:`~mkl_tp.pyramid.descriptors`: pyramid geometry and the overlap-weighted node
  descriptors (Eq. 1);
- :mod:`~mkl_tp.pyramid.inputs`: the checks on variable-length sequences, streams and
  labels, done once at the boundary and trusted inside.
"""

from .descriptors import (
    n_nodes,
    node_bounds,
    node_descriptors,
    node_descriptors_batch,
    node_index,
    node_level,
    overlap_weights,
)

__all__ = [
    "n_nodes",
    "node_index",
    "node_level",
    "node_bounds",
    "overlap_weights",
    "node_descriptors",
    "node_descriptors_batch",
]
