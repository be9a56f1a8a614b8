"""Model files: a safe format by default, pickles only for files the user trusts.

``python -m mkl_tp.fit`` writes ``model.skops`` (:mod:`skops.io`): loading one reads a
description of the objects and builds only types on an allow-list (mkl_tp's estimators,
scikit-learn's and numpy's types); a file naming any other type is refused before anything
is built, so loading runs no code the file brings. A
:class:`~mkl_tp.deep.DeepPyramidClassifier` holds torch modules, which skops cannot store:
it is written as a pickle, ``model.joblib``, and loading a pickle runs whatever code it
names, so :func:`load_model_file` (and ``python -m mkl_tp.predict``) loads pickles only
when told to trust the file (``trust=True``, ``--trust``).

Every mkl_tp estimator records the mkl_tp version that made it
(:class:`VersionedPickleMixin`), in either format.
"""

import os
import secrets
import zipfile
from pathlib import Path

from .. import __version__

__all__ = [
    "SAFE_TYPES",
    "SAFE_SUFFIX",
    "TRUSTED_SUFFIX",
    "UnsafeModelError",
    "EXTRACTOR_KEYS",
    "VersionedPickleMixin",
    "extractor_record",
    "load_model_file",
    "save_model",
    "write_atomically",
]

SAFE_SUFFIX = ".skops"
TRUSTED_SUFFIX = ".joblib"
#: mkl_tp's types that a ``.skops`` model may hold, besides skops' defaults (builtins,
#: numpy, scipy and scikit-learn types).
SAFE_TYPES = ("mkl_tp.estimator.PyramidMKLClassifier", "mkl_tp.fusion.LateFusionClassifier")

#: Root attributes of a feature cache that say how its features were made, kept with a model
#: (``feature_attrs_``) so that ``predict`` can refuse features made otherwise. ``weights``
#: (a path, or torchvision's name) is kept too but compared only where a digest is missing.
EXTRACTOR_KEYS = (
    "stream",
    "arch",
    "weights",
    "weights_digest",
    "input_channels",
    "short_side",
    "crop",
    "sample_fps",
    "sample_stride",
    "sample_frames",
    "flow_method",
    "flow_bound",
    "flow_stack",
    "normalisation_mean",
    "normalisation_std",
)


def extractor_record(info):
    """The :data:`EXTRACTOR_KEYS` of a cache's root attributes (``read_info``), as plain values.

    Parameters
    ----------
    info : dict

    Returns
    -------
    dict
        Only the keys the cache has; ``{}`` for a file without extractor attributes.
    """
    record = {}
    for key in EXTRACTOR_KEYS:
        if key in info and info[key] is not None:
            value = info[key]
            record[key] = list(value) if isinstance(value, (list, tuple)) else value
    return record


# State key listing the attributes whose ``None`` key (the single stream of a plain list of
# sequences) is stored as "": skops cannot store a dict keyed by None.
_NONE_KEYS = "_mkl_tp_none_keys"


class UnsafeModelError(ValueError):
    """A model file that cannot be loaded without running code it brings (a pickle without
    ``trust=True``, or a ``.skops`` file naming types off the allow-list)."""


class VersionedPickleMixin:
    """Record ``_mkl_tp_version`` in the saved state, as scikit-learn records its own.

    ``python -m mkl_tp.predict`` compares it with the running version before predicting.
    Dicts keyed by stream with the ``None`` key of a single stream are stored with the key
    ``""`` (and restored), so the state is one :mod:`skops.io` can write.
    """

    def __getstate__(self):
        state = dict(super().__getstate__())
        state["_mkl_tp_version"] = __version__
        renamed = [
            key
            for key, value in state.items()
            if isinstance(value, dict) and None in value and "" not in value
        ]
        for key in renamed:
            state[key] = {"" if k is None else k: v for k, v in state[key].items()}
        if renamed:
            state[_NONE_KEYS] = renamed
        return state

    def __setstate__(self, state):
        state = dict(state)
        for key in state.pop(_NONE_KEYS, ()):
            state[key] = {None if k == "" else k: v for k, v in state[key].items()}
        super().__setstate__(state)


def _is_safe_type(model):
    """Whether skops can store ``model``: anything but a torch-holding deep model."""
    name = f"{type(model).__module__}.{type(model).__qualname__}"
    if name == "mkl_tp.fusion.LateFusionClassifier":  # by name: _utils imports no stage
        return all(_is_safe_type(m) for m in model.estimators_.values())
    return name in SAFE_TYPES


def save_model(model, folder, name="model"):
    """Write a fitted model to ``folder/name.skops`` (or ``.joblib``); return the path.

    The file is written beside its final name and renamed into place, so a fit killed
    while saving leaves no half-written model; the other format's file of the same name
    (an earlier fit into the folder) is removed.

    Parameters
    ----------
    model : estimator
        A fitted :class:`~mkl_tp.PyramidMKLClassifier` or
        :class:`~mkl_tp.LateFusionClassifier` (written with :mod:`skops.io`, safe to load),
        or :class:`~mkl_tp.deep.DeepPyramidClassifier` (its torch modules need a pickle:
        ``.joblib``, loadable only with ``trust=True``).
    folder : str or os.PathLike
    name : str, default "model"

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OSError
        The file could not be written (a full disk, no permission); the message names it.
    """
    safe = _is_safe_type(model)
    path = Path(folder) / (name + (SAFE_SUFFIX if safe else TRUSTED_SUFFIX))
    if safe:
        from skops.io import dump
    else:
        from joblib import dump
    write_atomically(path, lambda temporary: dump(model, temporary), "the model ")
    # The other format's file of an earlier fit into this folder is this model's past.
    stale = path.with_suffix(TRUSTED_SUFFIX if safe else SAFE_SUFFIX)
    if stale.is_file():
        stale.unlink()
    return path


def write_atomically(path, write, what=""):
    """Write ``path`` through ``write(temporary)``, a file beside it, then rename it into place.

    Readers see the previous file or the new one whole, never a part; a failure (a full
    disk, an interrupt) leaves the previous file and no temporary one.

    Raises
    ------
    OSError
        ``cannot write {what}PATH: reason``, with the errno (printed without ``[Errno N]``,
        as the store's write errors).
    """
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        try:
            write(temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        error = OSError(f"cannot write {what}{path}: {exc.strerror or exc}")
        error.errno = exc.errno
        raise error from None


def _untrusted_message(path, types):
    shown = ", ".join(sorted(types))
    return (
        f"{path} names types that are not mkl_tp models nor scikit-learn or numpy types "
        f"({shown}); it was not loaded, as building them could run code the file brings"
    )


def load_model_file(path, *, trust=False):
    """Load a model file written by :func:`save_model`, running no code from an untrusted one.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.skops`` file (recognised by its content, a zip archive, whatever its name) or a
        pickle written by joblib.
    trust : bool, default False
        Load a pickle (joblib) file. Unpickling runs whatever code the file names: pass it
        only for a file you made or whose source you trust.

    Returns
    -------
    object
        What the file holds; the caller checks it is the model it expects.

    Raises
    ------
    UnsafeModelError
        A pickle without ``trust``, or a ``.skops`` file naming a type off the allow-list
        (:data:`SAFE_TYPES` and skops' defaults); nothing from the file was built.
    Exception
        Whatever skops or joblib raises for a damaged file.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        import skops.io

        # Reads the file's schema only: nothing is imported or built yet.
        unknown = set(skops.io.get_untrusted_types(file=path)) - set(SAFE_TYPES)
        if unknown:
            raise UnsafeModelError(_untrusted_message(path, unknown))
        return skops.io.load(path, trusted=list(SAFE_TYPES))
    if not trust:
        raise UnsafeModelError(
            f"{path} is not a .skops model: a pickle (joblib) file, or no model at all. "
            "Loading a pickle runs whatever code it holds, so it is loaded only with --trust "
            "(trust=True): pass it only for a file you made or trust"
        )
    import joblib

    return joblib.load(path)
