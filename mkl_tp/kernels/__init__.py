"""Kernels: node descriptors become the node blocks that the solvers combine.

- :mod:`~mkl_tp.kernels`: node normalisation, base kernels as explicit feature
  maps, unit-mean-diagonal node scales;
- :mod:`~mkl_tp.kernels.node_pca`: per-node PCA;
- :mod:`~mkl_tp.kernels.streams`: one stream's node features, a chunk of videos at a time
  (descriptors -> normalisation -> feature map -> PCA);
- :mod:`~mkl_tp.kernels.combine`: the combined kernels ``K_beta`` (linear and cross), node
  kernels and decisions from node blocks (docs/maths.rst).
"""

from .combine import (
    block_decisions,
    combined_kernel,
    gram_matrix,
    node_gram,
    node_products,
    node_weight_blocks,
    weighted_features,
)
from .feature_maps import (
    BASE_KERNELS,
    NODE_NORMS,
    apply_feature_maps,
    fit_feature_maps,
    normalize_nodes,
    unit_diagonal_scales,
)

__all__ = [
    "NODE_NORMS",
    "BASE_KERNELS",
    "normalize_nodes",
    "fit_feature_maps",
    "apply_feature_maps",
    "unit_diagonal_scales",
    "weighted_features",
    "combined_kernel",
    "gram_matrix",
    "node_gram",
    "node_products",
    "node_weight_blocks",
    "block_decisions",
]
