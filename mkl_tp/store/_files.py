"""Reading one file of features computed elsewhere, for :func:`~mkl_tp.store.import_arrays`.

``.npy`` / ``.npz`` headers are checked against the file's size before anything is read;
pickles are read by an unpickler that builds numpy arrays and torch tensors (their storage
loaded by ``torch.load(weights_only=True)``) and refuses to call anything else; the side
files of video_features (``fps``, ``timestamps_ms``) become the video's attributes.
"""

import io
import math
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
from numpy.lib import format as npy_format

from ._read import check_declared, format_bytes

PICKLE = ".pkl"


@dataclass(frozen=True)
class Video:
    """One video to import: its feature file and the side files found beside it."""

    features: str
    fps: str = None
    timestamps_ms: str = None


def _npy_header(handle):
    """``(shape, dtype)`` from the header of an open .npy stream; ``None`` if unreadable."""
    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(handle)
        else:
            return None
    except (ValueError, OSError, EOFError):
        return None  # np.load says what is wrong
    return shape, dtype


def file_headers(path):
    """Array name -> ``(shape, dtype, bytes stored)`` from the headers of a .npy (name
    ``None``) or .npz file, read without reading the data; unreadable headers are left out
    (``np.load`` then says what is wrong)."""
    headers = {}
    try:
        if path.endswith(".npy"):
            with open(path, "rb") as handle:
                header = _npy_header(handle)
                stored = os.path.getsize(path) - handle.tell()
            if header is not None:
                headers[None] = (*header, stored)
            return headers
        if not path.endswith(".npz"):
            return headers
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    with archive.open(info) as handle:
                        header = _npy_header(handle)
                        stored = info.file_size - handle.tell()
                    if header is not None:
                        headers[info.filename[: -len(".npy")]] = (*header, stored)
    except (zipfile.BadZipFile, OSError, EOFError):
        pass
    return headers


def _check_header(path):
    """``ValueError`` before reading when an array's header declares more data than the
    file holds or than memory holds (a damaged or hostile file claiming 10^12 rows)."""
    for name, (shape, dtype, stored) in file_headers(path).items():
        if dtype.hasobject:
            continue  # refused by np.load(allow_pickle=False)
        what = "the array" if name is None else f"the array {name!r}"
        nbytes = check_declared(None, what, shape, dtype)
        if nbytes > stored:
            raise ValueError(
                f"{what} declares shape {tuple(shape)} of {dtype} ({format_bytes(nbytes)}) "
                f"but the file holds {format_bytes(max(stored, 0))}: truncated or damaged"
            )


# What a pickle may name: the functions that rebuild numpy arrays and torch tensors.
_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # bytes in pickle protocol 2 (mmengine.dump's)
        ("torch._utils", "_rebuild_tensor_v2"),
    }
)


def _torch_storage(data):
    """A tensor's storage from its pickled bytes, by torch's loader that runs no code."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles arrays and tensors (in dicts, lists...); refuses every other global, so a
    pickle cannot run code through ``os.system`` or the like."""

    def find_class(self, module, name):
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _torch_storage
        if (module, name) not in _PICKLE_GLOBALS:
            raise ValueError(
                f"the pickle calls {module}.{name}, which does not build a numpy array or "
                "a torch tensor: not loaded (a pickle can run code)"
            )
        try:
            with warnings.catch_warnings():  # numpy 2 reads numpy.core's names, warning
                warnings.simplefilter("ignore", DeprecationWarning)
                return super().find_class(module, name)
        except ImportError:
            raise ValueError(f"the pickle needs {module}, which is not installed") from None


def _plain(value):
    """``value`` as an ndarray where it is a torch tensor; otherwise unchanged."""
    if type(value).__module__.startswith("torch") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value


def _load_pickle(path):
    """The object of a .pkl file, through :class:`_ArrayUnpickler`; ValueError says why not."""
    try:
        with open(path, "rb") as handle:
            return _ArrayUnpickler(handle).load()
    except ValueError:
        raise
    except Exception as exc:  # unpickling raises many types for a damaged file
        raise ValueError(f"cannot read: {exc}") from None


def load_array(path):
    """Return (features, fps) from a .npy, .npz or .pkl file; ValueError names the problem."""
    if path.endswith(PICKLE):
        loaded = _plain(_load_pickle(path))
        if isinstance(loaded, np.ndarray):
            return loaded, math.nan
        if not isinstance(loaded, dict):
            raise ValueError(
                f"holds a {type(loaded).__name__}; expected an array, a torch tensor, or a "
                "dict holding one"
            )
        arrays = {name: _plain(value) for name, value in loaded.items()}
    else:
        _check_header(path)
        try:
            loaded = np.load(path, allow_pickle=False)
            if path.endswith(".npy"):
                return loaded, math.nan
            with loaded as archive:
                arrays = {name: archive[name] for name in archive.files}
        except Exception as exc:  # numpy raises many types for a damaged file
            raise ValueError(f"cannot read: {exc}") from None
    fps = float(np.asarray(arrays.pop("fps"))) if "fps" in arrays else math.nan
    if "features" in arrays:
        return arrays["features"], fps
    if len(arrays) == 1:
        return arrays.popitem()[1], fps
    raise ValueError(f"holds arrays {sorted(arrays)}; expected one array or one named 'features'")


def _side_array(path):
    """The array of a video_features side file (.npy or .pkl)."""
    array = _plain(_load_pickle(path)) if path.endswith(PICKLE) else None
    if array is None:
        _check_header(path)
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read: {exc}") from None
    array = np.asarray(array)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"holds {array.dtype} values; expected numbers")
    return array


def load_video(video_id, video, layout):
    """``(features, attributes)`` of one video; ValueError names the file and the problem."""
    where = f"video {video_id!r} ({video.features})"
    try:
        features, fps = load_array(video.features)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if layout == "mmaction2" and np.ndim(features) == 1:
        raise ValueError(
            f"{where}: one pooled vector of shape {np.shape(features)}, not a (T, d) "
            "sequence; mmaction2's clip_feature_extraction.py writes one row per clip "
            "with --long-video-mode"
        )
    attrs = {}
    if video.fps is not None:
        try:
            value = _side_array(video.fps)
            if value.size != 1:
                raise ValueError(f"holds {value.size} values; expected one frame rate")
        except ValueError as exc:
            raise ValueError(f"video {video_id!r} ({video.fps}): {exc}") from None
        # cv2 reports 0 when a container does not say: the rate is then unknown.
        fps = float(value.ravel()[0]) if value.ravel()[0] > 0 else math.nan
    if video.timestamps_ms is not None:
        try:
            stamps = _side_array(video.timestamps_ms)
            rows = np.shape(features)[0] if np.ndim(features) else 0
            if stamps.ndim != 1 or stamps.shape[0] != rows:
                raise ValueError(
                    f"{stamps.size} timestamps (shape {stamps.shape}) for the {rows} feature "
                    f"rows of {os.path.basename(video.features)}"
                )
            if not np.isfinite(stamps).all():
                raise ValueError("the timestamps hold NaN or infinity")
        except ValueError as exc:
            raise ValueError(f"video {video_id!r} ({video.timestamps_ms}): {exc}") from None
        attrs["timestamps_ms"] = stamps.astype(np.float64)
    return features, fps, attrs
