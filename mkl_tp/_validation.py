"""Input checks at the boundary: variable-length sequences, streams, labels.

The canonical input is a list of ``(T_i, d)`` arrays (one stream) or a mapping
``stream name -> list`` (several streams over the same videos). Everything is checked
once here and trusted inside.
"""

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np

from .store import FeatureSequence

_SINGLE = None  # stream name used internally for plain-list input


def _validate_sequences(sequences, stream=None, n_features=None):
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
            raise ValueError(f"{sequences.path}{where} has d={sequences.n_features} "
                             f"features, expected d={n_features} as at fit time")
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
            raise ValueError(
                f"sequence {i}{where} must be a 2-D (T, d) array, got shape {x.shape}"
            )
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


def _validate_streams(X, streams=None, n_features=None):
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
            data[name] = _validate_sequences(X[name], stream=name, n_features=d)
        counts = {name: len(arrays) for name, arrays in data.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"streams hold different numbers of videos: {counts}")
        return order, data
    if streams is not None:
        raise ValueError(
            f"this model was fitted on streams {list(streams)}: pass a mapping "
            "stream name -> sequences"
        )
    d = None if n_features is None else n_features[_SINGLE]
    return None, {_SINGLE: _validate_sequences(X, n_features=d)}


def _validate_labels(y, n_samples):
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
# The pattern of scikit-learn's ``_parameter_constraints`` (sklearn.utils._param_validation
# is private, so the few pieces needed are written here): every estimator lists the
# accepted values of each parameter once, and ``fit`` checks them all before any work.


class _Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``; never bool) within bounds, finite."""

    def __init__(self, kind, low=None, high=None, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value):
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if not np.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (
                value == self.low and self.closed not in ("left", "both"))):
            return False
        return self.high is None or value < self.high or (
            value == self.high and self.closed in ("right", "both"))

    @property
    def description(self):
        noun = "an integer" if self.kind is Integral else "a finite number"
        if self.kind is not Integral and self.low == 0 and self.high is None:
            return "a positive finite number" if self.closed in ("neither", "right") else \
                "a finite number >= 0"
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.closed in ('left', 'both') else '>'} {self.low}")
        if self.high is not None:
            parts.append(f"{'<=' if self.closed in ('right', 'both') else '<'} {self.high}")
        return " ".join([noun] + [" and ".join(parts)] if parts else [noun])


class _Options:
    """One of a fixed set of values (strings or dtypes)."""

    def __init__(self, options, dtype=False):
        self.options, self.dtype = tuple(options), dtype

    def accepts(self, value):
        if self.dtype:
            try:
                return np.dtype(value) in [np.dtype(o) for o in self.options]
            except TypeError:
                return False
        return isinstance(value, str) and value in self.options

    @property
    def description(self):
        if len(self.options) == 2:
            return f"{self.options[0]!r} or {self.options[1]!r}"
        return f"one of {self.options}"


class _Kind:
    """Any instance of ``kinds`` (``description`` names them for the message)."""

    def __init__(self, kinds, description):
        self.kinds, self.description = kinds, description

    def accepts(self, value):
        return isinstance(value, self.kinds)


class _Exactly:
    """One special value, e.g. ``inf`` where finite numbers are otherwise required."""

    def __init__(self, value, description):
        self.value, self.description = value, description

    def accepts(self, value):
        return not isinstance(value, bool) and isinstance(value, Real) and value == self.value


_ARRAY_LIKE = _Kind((list, tuple, np.ndarray), "an array of weights")
_NONE = _Kind(type(None), "None")


def _check_parameters(estimator, constraints):
    """Raise ``ValueError`` naming the first parameter that no constraint accepts."""
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        if not any(rule.accepts(value) for rule in allowed):
            described = " or ".join(rule.description for rule in allowed)
            raise ValueError(f"{name} must be {described}, got {value!r}")
