"""Sequence data sets: the ``.ts`` reader and the bundled BasicMotions sample."""

from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "read_ts", "load_basic_motions", "basic_motions_paths", "from_channels_first"]


class Dataset(NamedTuple):
    """Sequences with labels.

    Attributes
    ----------
    X : list of ndarray, each (T_i, d)
        Per-frame (per-step) features.
    y : ndarray of shape (n,)
        Labels.
    ids : list of str
        Sequence identifiers.
    """

    X: list
    y: np.ndarray
    ids: list


def read_ts(path, prefix="seq"):
    """Read a multivariate series file in the UEA/sktime ``.ts`` text format.

    Header lines start with ``@`` (``@data`` ends the header), comments with ``#``; each
    data line holds one series: channels separated by ``:``, values within a channel by
    ``,``, the label last.

    Parameters
    ----------
    path : str or path-like or Traversable
        The ``.ts`` file.
    prefix : str
        Ids are ``f"{prefix}{index:04d}"``.

    Returns
    -------
    Dataset
        ``X[i]`` has shape ``(T_i, n_channels)``: time along the first axis, as frames.
    """
    sequences, labels = [], []
    in_data = False
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                in_data = line.lower().startswith("@data")
                continue
            *channels, label = line.split(":")
            try:
                series = [np.array(c.split(","), dtype=float) for c in channels]
            except ValueError as exc:
                raise ValueError(f"{path}, line {number}: {exc}") from None
            if not series or len({s.shape[0] for s in series}) != 1:
                raise ValueError(f"{path}, line {number}: channels of different lengths")
            sequences.append(np.column_stack(series))
            labels.append(label.strip())
    if not sequences:
        raise ValueError(f"{path}: no series after @data")
    ids = [f"{prefix}{i:04d}" for i in range(len(sequences))]
    return Dataset(sequences, np.array(labels), ids)


_BASIC_MOTIONS_STREAMS = {"accel": slice(0, 3), "gyro": slice(3, 6)}


def basic_motions_paths():
    """Paths of the bundled BasicMotions feature caches and split file.

    Returns
    -------
    dict
        ``"features"``: the HDF5 caches of the ``accel`` (3-D accelerometer) and ``gyro``
        (3-D gyroscope) streams, in mkl_tp's cache format; ``"split"``: the CSV split
        (``video_id,label,subset``) with the archive's own train/test split.
    """
    data = resources.files("mkl_tp") / "data"
    return {
        "features": [str(data / f"basic_motions_{s}.h5") for s in _BASIC_MOTIONS_STREAMS],
        "split": str(data / "basic_motions_split1.csv"),
    }


def load_basic_motions():
    """The bundled BasicMotions data (UEA archive), with its own train/test split.

    Four activities (Standing, Walking, Running, Badminton) recorded by a smartwatch:
    6 channels (3-D accelerometer and gyroscope), 100 steps at 10 Hz; 40 training and 40 test
    sequences. Each step's 6-d vector plays the role of a frame feature. Source: the ``aeon``
    package (BSD-3-Clause); cite Bagnall et al., "The UEA multivariate time series
    classification archive, 2018", arXiv:1811.00075.

    Returns
    -------
    train, test : Dataset
        ``X`` lists of ``(100, 6)`` arrays, string labels, ids ``train0000``... / ``test0000``...
    """
    data = resources.files("mkl_tp") / "data"
    return (
        read_ts(data / "BasicMotions_TRAIN.ts", prefix="train"),
        read_ts(data / "BasicMotions_TEST.ts", prefix="test"),
    )


def from_channels_first(X):
    """Sequences of ``(T_i, d)`` frames from aeon's or sktime's ``(n_channels, n_timepoints)``.

    Those libraries hold a collection as a 3-D array ``(n_cases, n_channels, n_timepoints)``
    (or a list of 2-D ``(n_channels, n_timepoints_i)`` arrays when lengths differ), channels
    first. mkl_tp's estimators take a list of ``(T_i, d)`` arrays, frames first, and refuse
    a 3-D array as ambiguous (``list(X)`` for one that is frames first): convert such a
    collection with this function.

    Parameters
    ----------
    X : ndarray of shape (n_cases, n_channels, n_timepoints), or list of 2-D arrays

    Returns
    -------
    list of ndarray, each (n_timepoints_i, n_channels)

    Raises
    ------
    ValueError
        A case that is not 2-D, naming it.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((5, 3, 100))  # 5 cases, 3 channels, 100 time points
    >>> [x.shape for x in from_channels_first(X)][:2]
    [(100, 3), (100, 3)]
    """
    cases = []
    for i, case in enumerate(X):
        case = np.asarray(case)
        if case.ndim != 2:
            raise ValueError(
                f"case {i} has shape {case.shape}: expected (n_channels, n_timepoints)"
            )
        cases.append(case.T)
    return cases
