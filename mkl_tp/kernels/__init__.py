"""Kernels: node descriptors become the node blocks that the solvers combine.

- :mod:`~mkl_tp.kernels`: node normalisation, base kernels as explicit feature
  maps, unit-mean-diagonal node scales;
- :mod:`~mkl_tp.kernels.node_pca`: per-node PCA;
- :mod:`~mkl_tp.kernels.streams`: one stream's node features, a chunk of videos at a time
  (descriptors -> normalisation -> feature map -> PCA);
- :mod:`~mkl_tp.kernels.combine`: the combined kernels ``K_beta`` (linear and cross), node
  kernels and decisions from node blocks (docs/maths.rst).
"""

from . import combine, feature_maps
from .combine import *  # noqa: F403 (each module's __all__)
from .feature_maps import *  # noqa: F403 (each module's __all__)

__all__ = feature_maps.__all__ + combine.__all__
