"""Input checks at the boundary: variable-length sequences, streams, labels.

The canonical input is a list of ``(T_i, d)`` arrays (one stream) or a mapping
``stream name -> list`` (several streams over the same videos). Everything is checked
once here and trusted inside.
"""

from collections.abc import Mapping

import numpy as np

from ..store import FeatureSequence

SINGLE_STREAM = None  # stream name used internally for plain-list input


def validate_sequences(sequences, stream=None, n_features=None):
    """Check one stream's sequences; return a list of float arrays of shape (T_i, d)
    (a :class:`~mkl_tp.store.FeatureSequence` is returned as it is: its reads check it).

    Raises ``ValueError`` naming the sequence index (and stream) for an empty sequence,
    a wrong rank, NaN/inf, a ``d`` that differs from the first sequence's (or from
    ``n_features`` when given, e.g. the ``d`` seen at fit time).
    """
    where = "" if stream is None else f" of stream {stream!r}"
    if isinstance(sequences, FeatureSequence):
        # Videos in a cache are checked as they are read, a chunk at a time.
        if n_features is not None and sequences.n_features != n_features:
            raise ValueError(
                f"{sequences.path}{where} has d={sequences.n_features} "
                f"features, expected d={n_features} as at fit time"
            )
        return sequences
    if isinstance(sequences, np.ndarray) and sequences.ndim == 3:
        sequences = list(sequences)
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError(
            f"expected a sequence of (T, d) arrays{where}, got {type(sequences).__name__}"
        )
    if len(sequences) == 0:
        raise ValueError(f"expected at least one sequence{where}, got none")
    arrays = []
    for i, seq in enumerate(sequences):
        try:
            x = np.asarray(seq)
            # float32 stays float32 (half the memory of a cache-sized input); sums are
            # accumulated in float64 downstream. Anything else becomes float64.
            if x.dtype not in (np.float32, np.float64):
                x = x.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sequence {i}{where} is not numeric: {exc}") from None
        if x.ndim != 2:
            raise ValueError(f"sequence {i}{where} must be a 2-D (T, d) array, got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"sequence {i}{where} is empty (T = 0 frames)")
        expected = arrays[0].shape[1] if arrays else n_features
        if expected is not None and x.shape[1] != expected:
            origin = "at fit time" if n_features is not None else "in sequence 0"
            raise ValueError(
                f"sequence {i}{where} has d={x.shape[1]} features, expected d={expected} "
                f"as {origin}"
            )
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"sequence {i}{where} contains NaN or inf (first at frame {bad[0]}, "
                f"feature {bad[1]})"
            )
        arrays.append(x)
    return arrays


def validate_streams(X, streams=None, n_features=None):
    """Normalise ``X`` to ``(names, {name: arrays})``.

    ``names`` is ``None`` for a plain list of sequences (one anonymous stream). For a
    mapping, every stream must hold the same number of videos. When ``streams`` is given
    (at predict time) the mapping must have exactly those names; ``n_features`` maps each
    name to the ``d`` seen at fit time.
    """
    if isinstance(X, Mapping):
        if not X:
            raise ValueError("expected at least one stream in the mapping, got none")
        names = [str(name) for name in X]
        if streams is not None and sorted(names) != sorted(streams):
            raise ValueError(f"expected streams {list(streams)}, got {names}")
        order = list(streams) if streams is not None else names
        data = {}
        for name in order:
            d = None if n_features is None else n_features[name]
            data[name] = validate_sequences(X[name], stream=name, n_features=d)
        counts = {name: len(arrays) for name, arrays in data.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"streams hold different numbers of videos: {counts}")
        return order, data
    if streams is not None:
        raise ValueError(
            f"this model was fitted on streams {list(streams)}: pass a mapping "
            "stream name -> sequences"
        )
    d = None if n_features is None else n_features[SINGLE_STREAM]
    return None, {SINGLE_STREAM: validate_sequences(X, n_features=d)}


def validate_labels(y, n_samples):
    """Return ``(classes, y_index)``; ``ValueError`` for wrong length or a single class."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} labels but X holds {n_samples} videos")
    classes, y_index = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(
            f"need at least 2 classes to fit a classifier, got only {classes.tolist()}"
        )
    return classes, y_index


# --- parameter constraints ---------------------------------------------------------------
