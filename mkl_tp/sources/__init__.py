"""Sources: which videos there are and what their labels are.

- :mod:`~mkl_tp.sources.walk`: the one folder walk that names videos, and list files;
- :mod:`~mkl_tp.sources.splits`: split and label files (UCF-101, HMDB-51, JHMDB, CSV;
  Kinetics CSV, Something-Something v2 JSON and mmaction2 lists through its
  ``_annotations`` readers) and matching their ids to a cache's;
- :mod:`~mkl_tp.sources.samples`: sequence data sets (``.ts`` files, the bundled sample).

Standard library and numpy only: every later stage may use it.
"""

from . import samples, splits, walk
from .samples import *  # noqa: F403 (each module's __all__)
from .splits import *  # noqa: F403 (each module's __all__)
from .walk import *  # noqa: F403 (each module's __all__)

__all__ = walk.__all__ + splits.__all__ + samples.__all__
