"""The videos of a cache as a sequence read on access: fits on caches larger than memory.

Re-exported by :mod:`mkl_tp.store`; import :class:`FeatureSequence` from there.
"""

import os
from collections.abc import Sequence
from numbers import Integral

import numpy as np

from ._format import check_features, complete_ids
from ._read import _open_read, _read_dataset, check_available


class FeatureSequence(Sequence):
    """The ``(T, d)`` frame features of some videos of a cache, read from the file on access.

    A list of arrays (:func:`~mkl_tp.store.load_features`) holds every frame in memory;
    this holds the path and the ids. :class:`~mkl_tp.PyramidMKLClassifier` takes it
    wherever it takes a list of sequences and reads a chunk of videos at a time, so a fit
    keeps only its reduced node features (``N x P x k``), never all frames nor all node
    descriptors (docs/performance.rst, "Out of core").

    Parameters
    ----------
    path : str or os.PathLike
        The cache.
    ids : sequence of str, optional
        Videos, in this order; all complete videos (sorted) when omitted.

    Attributes
    ----------
    path : str
    ids : list of str
    n_features : int
        ``d``, from the first video; every video read is checked against it.

    Raises
    ------
    ValueError
        On construction, naming requested videos that are not complete in the file (as
        :func:`~mkl_tp.store.load_features`); on access, naming a video whose features
        are invalid (wrong rank, NaN/inf, another ``d``) or damaged.

    Notes
    -----
    An integer index gives one array; a slice or an array of indices gives a list of
    arrays, read in one opening of the file (indexing one video at a time opens it
    every time). Arrays come in the stored dtype (float16 or float32).
    """

    def __init__(self, path, ids=None):
        self.path = os.fspath(path)
        with _open_read(self.path) as handle:
            complete = complete_ids(handle)
            self.ids = complete if ids is None else [str(i) for i in ids]
            check_available(handle, self.ids, complete)
            if not self.ids:
                raise ValueError(f"{self.path}: no videos to read")
            shape = handle["videos/" + self.ids[0]].shape
        if len(shape) != 2:
            raise ValueError(
                f"video {self.ids[0]!r}: expected features of shape (T, d), got {shape}"
            )
        self.n_features = int(shape[1])

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, Integral):
            return self._read([self.ids[index]])[0]
        if isinstance(index, slice):
            return self._read(self.ids[index])
        return self._read([self.ids[i] for i in np.asarray(index, dtype=np.intp).ravel()])

    def __iter__(self):
        step = 256
        for start in range(0, len(self), step):
            yield from self[start : start + step]

    def __repr__(self):
        return f"FeatureSequence({self.path!r}, {len(self)} videos, d={self.n_features})"

    def _read(self, keys):
        with _open_read(self.path) as handle:
            return [
                check_features(_read_dataset(handle, key), key, feature_dim=self.n_features)
                for key in keys
            ]
