"""The temporal pyramid: frames become node descriptors.

- :mod:`~mkl_tp.pyramid.descriptors`: pyramid geometry and the overlap-weighted node
  descriptors (Eq. 1);
- :mod:`~mkl_tp.pyramid.inputs`: the checks on variable-length sequences, streams and
  labels, done once at the boundary and trusted inside.
"""

from . import descriptors
from .descriptors import *  # noqa: F403 (each module's __all__)

__all__ = descriptors.__all__
