"""Sources: which videos there are and what their labels are.

- :mod:`~mkl_tp.sources.walk`: the one folder walk that names videos, and list files;
- :mod:`~mkl_tp.sources.splits`: split and label files (UCF-101, HMDB-51, JHMDB, CSV) and
  matching their ids to a cache's;
- :mod:`~mkl_tp.sources.samples`: sequence data sets (``.ts`` files, the bundled sample).

Standard library and numpy only: every later stage may use it.
"""

from .samples import Dataset, basic_motions_paths, load_basic_motions, read_ts
from .splits import SPLIT_FORMATS, Split, find_ids, guess_split_format, match_ids, read_split
from .walk import (
    ARRAY_EXTENSIONS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    find_videos,
    natural_key,
    read_list,
    select_listed,
)

__all__ = [
    "ARRAY_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "find_videos",
    "natural_key",
    "read_list",
    "select_listed",
    "SPLIT_FORMATS",
    "Split",
    "read_split",
    "guess_split_format",
    "find_ids",
    "match_ids",
    "Dataset",
    "read_ts",
    "load_basic_motions",
    "basic_motions_paths",
]
