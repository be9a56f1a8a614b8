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
    a wrong rank, complex or text values, NaN/inf, a ``d`` that differs from the first
    sequence's (or from ``n_features`` when given, e.g. the ``d`` seen at fit time).
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
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sequence {i}{where} is not numeric: {exc}") from None
        if x.dtype.kind in "cUSV":
            # Casting would drop the imaginary part (numpy only warns) or parse text.
            raise ValueError(
                f"sequence {i}{where} has dtype {x.dtype}: features must be real numbers"
            )
        # float32 stays float32 (half the memory of a cache-sized input); sums are
        # accumulated in float64 downstream. Anything else becomes float64.
        if x.dtype not in (np.float32, np.float64):
            try:
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
    name to the ``d`` seen at fit time. A mapping given to a model fitted on a plain list
    (``n_features`` without ``streams``), or a list given to a model fitted on a mapping,
    is a ``ValueError`` saying which the model expects.
    """
    if isinstance(X, Mapping):
        if not X:
            raise ValueError("expected at least one stream in the mapping, got none")
        names = [str(name) for name in X]
        if streams is None and n_features is not None:
            raise ValueError(
                f"this model was fitted on a plain list of sequences (one stream), got a "
                f"mapping of streams {names}: pass the list of sequences itself"
            )
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


def _missing_labels(y):
    """Positions of ``y`` (1-D) holding ``None`` or NaN."""
    if y.dtype.kind == "f":
        return np.flatnonzero(np.isnan(y))
    if y.dtype.kind == "O":
        return np.array(
            [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)],
            dtype=np.intp,
        )
    return np.array([], dtype=np.intp)


def _positions(index, limit=5):
    shown = ", ".join(str(int(i)) for i in index[:limit])
    return shown + (f" and {len(index) - limit} more" if len(index) > limit else "")


def validate_labels(y, n_samples):
    """Check classification labels as scikit-learn does; return ``(classes, y_index)``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels: integers, strings, booleans, or floats with integer values.
    n_samples : int
        Number of videos in ``X``.

    Returns
    -------
    classes : ndarray
        The sorted distinct labels.
    y_index : ndarray of int
        ``classes[y_index] == y``.

    Raises
    ------
    ValueError
        ``y`` is not 1-D or has the wrong length; holds missing labels (``None`` or NaN,
        named by position); is continuous, complex or otherwise not class labels
        (:func:`sklearn.utils.multiclass.type_of_target` must say ``binary`` or
        ``multiclass``); mixes label types that cannot be sorted; or has a single class.
    """
    from sklearn.utils.multiclass import type_of_target

    try:
        y = np.asarray(y)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"y is not a 1-D array of labels: {exc}") from None
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} labels but X holds {n_samples} videos")
    if y.dtype.kind == "c":
        raise ValueError(f"y holds complex numbers (dtype {y.dtype}); labels must be classes")
    missing = _missing_labels(y)
    if missing.size:
        raise ValueError(
            f"y holds {missing.size} missing label(s) (None or NaN) at positions "
            f"{_positions(missing)}: label those videos or leave them out"
        )
    try:
        kind = type_of_target(y, input_name="y")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y is not a vector of class labels: {exc}") from None
    if kind not in ("binary", "multiclass"):
        detail = (
            f" ({np.unique(y).shape[0]} distinct values for {y.shape[0]} videos, not all "
            "integers); a classifier needs class labels, e.g. integers or strings"
            if kind == "continuous"
            else "; expected integers, strings or booleans naming the classes"
        )
        raise ValueError(f"y looks like a {kind} target, not class labels{detail}")
    try:
        classes, y_index = np.unique(y, return_inverse=True)
    except TypeError:
        types = sorted({type(v).__name__ for v in y})
        raise ValueError(
            f"y mixes label types that cannot be ordered ({', '.join(types)}); "
            "use one type for all labels"
        ) from None
    if classes.shape[0] < 2:
        raise ValueError(
            f"need at least 2 classes to fit a classifier, got only {classes.tolist()}"
        )
    return classes, y_index


# --- parameter constraints ---------------------------------------------------------------
