"""Input checks at the boundary: variable-length sequences, streams, labels.

The canonical input is a list of ``(T_i, d)`` arrays (one stream) or a mapping
``stream name -> list`` (several streams over the same videos). Several streams may also
come as a list of per-video mappings ``[{"rgb": (T_i, d) array, "flow": ...}, ...]``, the
form scikit-learn can index by video (``cross_val_score``, ``GridSearchCV``,
``CalibratedClassifierCV``); :func:`validate_streams` turns it into the mapping. Everything
is checked once here and trusted inside.
"""

import warnings
from collections.abc import Mapping

import numpy as np
from scipy.sparse import issparse

from ..store import FeatureSequence

SINGLE_STREAM = None  # stream name used internally for plain-list input


def validate_sequences(sequences, stream=None, n_features=None, item="sequence"):
    """Check one stream's sequences; return a list of float arrays of shape (T_i, d)
    (a :class:`~mkl_tp.store.FeatureSequence` is returned as it is: its reads check it).

    Raises ``ValueError`` naming the sequence index (and stream) for an empty sequence,
    zero features, a wrong rank, complex or text values, sparse matrices, NaN/inf (a
    numeric 1-D or 2-D array instead of a list of videos is refused as a whole), a ``d``
    that differs from the first
    sequence's (or from ``n_features`` when given, e.g. the ``d`` seen at fit time).
    ``item`` is the word the messages use for one sequence (``"video"`` for sequences
    gathered from per-video mappings).
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
    if issparse(sequences):
        raise ValueError(
            f"sparse input is not supported{where}: pass dense (T, d) arrays, one per video"
        )
    if isinstance(sequences, np.ndarray) and sequences.ndim == 3 and sequences.dtype != object:
        # (n, a, b) is frames first here but channels first in aeon and sktime: either
        # reading would be silently wrong half the time, so the caller says which.
        raise ValueError(
            f"a 3-D array{where} of shape {sequences.shape} is ambiguous: pass list(X) if it "
            "is (n_videos, T, d), frames first, or mkl_tp.sources.from_channels_first(X) if "
            "it is aeon's or sktime's (n_cases, n_channels, n_timepoints)"
        )
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        # A numeric (n, d) table (or a vector) is not a list of videos: iterating it would
        # give rows of frames, each refused as "not 2-D" without saying why.
        raise ValueError(
            f"expected a sequence of (T, d) arrays{where}, got a {sequences.ndim}-D array of "
            f"shape {sequences.shape}. Reshape your data: one frame per video is "
            "X[:, None, :], i.e. (n_videos, 1, d); one video is [X]"
        )
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError(
            f"expected a sequence of (T, d) arrays{where}, got {type(sequences).__name__}"
        )
    if len(sequences) == 0:
        raise ValueError(f"expected at least one sequence{where}, got none")
    arrays = []
    for i, seq in enumerate(sequences):
        if issparse(seq):
            raise ValueError(
                f"{item} {i}{where} is a sparse matrix: sparse input is not supported, "
                "pass a dense (T, d) array"
            )
        try:
            x = np.asarray(seq)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{item} {i}{where} is not numeric: {exc}") from None
        if x.dtype.kind in "cUSV":
            # Casting would drop the imaginary part (numpy only warns) or parse text.
            raise ValueError(
                f"{item} {i}{where} has dtype {x.dtype}: features must be real numbers"
                + (" (Complex data not supported)" if x.dtype.kind == "c" else "")
            )
        # float32 stays float32 (half the memory of a cache-sized input); sums are
        # accumulated in float64 downstream. Anything else becomes float64.
        if x.dtype not in (np.float32, np.float64):
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{item} {i}{where} is not numeric: {exc}") from None
        if x.ndim != 2:
            raise ValueError(f"{item} {i}{where} must be a 2-D (T, d) array, got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{item} {i}{where} is empty (T = 0 frames)")
        if x.shape[1] == 0:
            # Zero features would divide by d downstream (ZeroDivisionError).
            raise ValueError(
                f"{item} {i}{where} has 0 feature(s) (shape={x.shape}) while a minimum of 1 "
                "is required."
            )
        expected = arrays[0].shape[1] if arrays else n_features
        if expected is not None and x.shape[1] != expected:
            origin = "at fit time" if n_features is not None else f"in {item} 0"
            raise ValueError(
                f"{item} {i}{where} has d={x.shape[1]} features, expected d={expected} as {origin}"
            )
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"{item} {i}{where} contains NaN or inf (first at frame {bad[0]}, feature {bad[1]})"
            )
        arrays.append(x)
    return arrays


def _is_per_video(X):
    """Whether ``X`` is a sequence of per-video mappings (any element a mapping).

    A list, a tuple or a 1-D object array (what scikit-learn's ``_safe_indexing`` returns
    for them) is looked at element by element; a mapping, a numeric array, a string or a
    :class:`~mkl_tp.store.FeatureSequence` (whose items are read from a file) never is.
    """
    if isinstance(X, (Mapping, FeatureSequence, str, bytes)):
        return False
    if isinstance(X, np.ndarray):
        return X.dtype == object and X.ndim == 1 and any(isinstance(v, Mapping) for v in X)
    if not isinstance(X, (list, tuple)):
        return False
    return any(isinstance(v, Mapping) for v in X)


def _per_video_to_mapping(X, streams=None):
    """``[{name: (T_i, d) array}, ...]`` -> ``{name: [array, ...]}``, names in order.

    Every video must be a mapping with exactly the stream names of video 0 (or
    ``streams``, the names seen at fit time); a ``ValueError`` names the first video that
    is not a mapping, lacks a stream or has one too many.
    """
    videos = list(X)
    reference = None if streams is None else [str(name) for name in streams]
    origin = "as at fit time" if streams is not None else "as in video 0"
    per_video = []
    for i, video in enumerate(videos):
        if not isinstance(video, Mapping):
            raise ValueError(
                f"video {i} is not a mapping stream name -> (T, d) array (got "
                f"{type(video).__name__}): in a list of per-video mappings every video "
                "must be one"
            )
        named = {str(name): value for name, value in video.items()}
        if reference is None:
            if not named:
                raise ValueError("video 0 has no streams: expected a mapping name -> (T, d) array")
            reference = list(named)
        missing = [name for name in reference if name not in named]
        if missing:
            raise ValueError(
                f"video {i} lacks stream{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))}: expected streams {reference} {origin}"
            )
        extra = [name for name in named if name not in reference]
        if extra:
            raise ValueError(
                f"video {i} has unexpected stream{'s' if len(extra) > 1 else ''} "
                f"{', '.join(map(repr, extra))}: expected streams {reference} {origin}"
            )
        per_video.append(named)
    return {name: [named[name] for named in per_video] for name in reference}


def validate_streams(X, streams=None, n_features=None):
    """Normalise ``X`` to ``(names, {name: arrays})``.

    ``names`` is ``None`` for a plain list of sequences (one anonymous stream). For a
    mapping, every stream must hold the same number of videos. A sequence of per-video
    mappings ``[{"rgb": (T_i, d) array, "flow": (T_i', d') array}, ...]`` (a list, a tuple
    or a 1-D object array: what scikit-learn's indexing of such a list gives) is the same
    videos video by video: it is turned into the mapping here, every video holding the same
    stream names (frame counts may differ between the streams of one video), and errors
    name the video. When ``streams`` is given (at predict time) the mapping, or every
    video, must have exactly those names; ``n_features`` maps each name to the ``d`` seen at
    fit time. Several streams given to a model fitted on a plain list (``n_features``
    without ``streams``), or a list given to a model fitted on streams, is a ``ValueError``
    saying which the model expects.
    """
    item = "sequence"
    if issparse(X):  # before the mapping test: a DOK matrix is a dict
        raise ValueError("sparse input is not supported: pass dense (T, d) arrays, one per video")
    if _is_per_video(X):
        if streams is None and n_features is not None:
            first = next(v for v in X if isinstance(v, Mapping))
            raise ValueError(
                f"this model was fitted on a plain list of sequences (one stream), got a "
                f"list of per-video mappings of streams {[str(name) for name in first]}: "
                "pass the list of sequences itself"
            )
        X, item = _per_video_to_mapping(X, streams), "video"
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
            data[name] = validate_sequences(X[name], stream=name, n_features=d, item=item)
        counts = {name: len(arrays) for name, arrays in data.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"streams hold different numbers of videos: {counts}")
        return order, data
    if streams is not None:
        raise ValueError(
            f"this model was fitted on streams {list(streams)}: pass a mapping "
            "stream name -> sequences, or a list of per-video mappings name -> (T, d) array"
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
        ``y`` is ``None``, not 1-D (a column vector ``(n_samples, 1)`` is ravelled with
        a ``DataConversionWarning``, as scikit-learn does) or has the wrong length;
        holds missing labels (``None`` or NaN, named by position); is continuous, complex
        or otherwise not class labels
        (:func:`sklearn.utils.multiclass.type_of_target` must say ``binary`` or
        ``multiclass``); mixes label types that cannot be sorted; or has a single class.
    """
    from sklearn.exceptions import DataConversionWarning
    from sklearn.utils.multiclass import type_of_target

    if y is None:
        raise ValueError(
            "this classifier requires y to be passed, but the target y is None: "
            "give one label per video"
        )
    try:
        y = np.asarray(y)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"y is not a 1-D array of labels: {exc}") from None
    if y.ndim == 2 and y.shape[1] == 1:
        # A column vector, as scikit-learn's column_or_1d: ravelled with a warning.
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel().",
            DataConversionWarning,
            stacklevel=3,
        )
        y = y.ravel()
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
        # "Unknown label type" is scikit-learn's wording (check_classification_targets).
        raise ValueError(
            f"Unknown label type: y looks like a {kind} target, not class labels{detail}"
        )
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
            f"need at least 2 classes to fit a classifier, got only one class: {classes.tolist()}"
        )
    return classes, y_index


# --- parameter constraints ---------------------------------------------------------------


def video_tags(tags):
    """scikit-learn tags of an estimator whose input is videos, not a 2-D table.

    A list of ``(T_i, d)`` arrays or per-video mappings of streams (a 3-D array is
    refused as ambiguous); dense, finite, real; multi-class labels required.
    ``tags`` is the estimator's ``super().__sklearn_tags__()``; returned changed.
    """
    tags.input_tags.two_d_array = False
    tags.input_tags.three_d_array = False
    tags.input_tags.dict = True
    tags.input_tags.sparse = False
    tags.input_tags.allow_nan = False
    tags.classifier_tags.multi_class = True
    tags.classifier_tags.multi_label = False
    tags.target_tags.required = True
    tags.requires_fit = True
    return tags
