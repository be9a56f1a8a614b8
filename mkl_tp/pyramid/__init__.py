"""The temporal pyramid: frames become node descriptors.

- :mod:`~mkl_tp.pyramid.descriptors`: pyramid geometry and the overlap-weighted node
  descriptors (Eq. 1);
- :mod:`~mkl_tp.pyramid.frames`: a fixed number of evenly spaced frames per video;
- :mod:`~mkl_tp.pyramid.inputs`: the checks on variable-length sequences, streams and
  labels, done once at the boundary and trusted inside.
"""

from . import descriptors, frames
from .descriptors import *  # noqa: F403 (each module's __all__)
from .frames import *  # noqa: F403

__all__ = descriptors.__all__ + frames.__all__
