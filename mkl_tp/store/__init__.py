"""HDF5 feature cache: the per-frame features of many videos, one file per stream.

Layout (``docs/hdf5_layout.rst`` has the full table)::

    /                 root attributes describe the extractor: format, format_version,
                      stream, arch, weights, weights_digest, feature_dim, dtype,
                      preprocessing, flow method, mkl_tp_version
    /videos/<id>      float16 or float32 (T, d), chunked by frames; attributes n_frames,
                      fps, source, stream, backbone, weights_digest, complete=True
    /failed/<id>      a string: why the video could not be extracted

Video ids are paths relative to the source folder without extension; their ``/``
separators become HDF5 groups (``/videos/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01``),
so ``h5ls -r`` and ``h5py`` browse a cache like the video folder it came from.

Writes are atomic per video: :class:`FeatureWriter` creates the dataset anonymously,
sets ``complete=True`` last, links it under ``/videos`` and commits the file through
a redo journal (:mod:`mkl_tp.store._journal`), so a killed process or a full disk leaves the
file as it was after the last whole video.

Files without the ``format`` attribute ("bring your own features": only
``/videos/<id>`` datasets) are read too; every dataset under ``/videos`` then counts
as complete.

The package's modules: ``_format`` (constants, checks, naming rules), ``_read`` (readers),
``_write`` (:class:`FeatureWriter`), ``_merge`` (:func:`merge_shards`), ``_journal``
(crash-safe commits), ``_runs`` (:class:`RunSummary`, :class:`RunStoppedError`),
``_import`` (:func:`import_arrays`; ``_files`` reads its files), ``_sequence``
(:class:`FeatureSequence`, videos read on access); import their public names from here.
"""

from ._format import (
    FEATURES_DIR,
    FORMAT,
    FORMAT_VERSION,
    VOLATILE_INFO,
    check_features,
    check_video_id,
    output_path,
    parse_shard,
    resolve_out,
)
from ._import import import_arrays
from ._merge import merge_shards
from ._read import failed_videos, list_videos, load_features, read_info, video_attrs
from ._runs import RunStoppedError, RunSummary
from ._sequence import FeatureSequence
from ._write import FeatureWriter

__all__ = [
    "FEATURES_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "VOLATILE_INFO",
    "FeatureSequence",
    "FeatureWriter",
    "RunStoppedError",
    "RunSummary",
    "check_features",
    "check_video_id",
    "failed_videos",
    "import_arrays",
    "list_videos",
    "load_features",
    "merge_shards",
    "output_path",
    "parse_shard",
    "resolve_out",
    "read_info",
    "video_attrs",
]
