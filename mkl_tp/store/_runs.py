"""Runs that write many videos to caches: their summary, the error that stops one part-way,
and :func:`import_arrays`, which brings features computed elsewhere into a cache.

Re-exported by :mod:`mkl_tp.store`; :mod:`mkl_tp.extraction` reports its runs the same way.
"""

import math
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np
from numpy.lib import format as npy_format
from tqdm.auto import tqdm

from ..sources.walk import ARRAY_EXTENSIONS, find_videos
from ._format import output_path
from ._read import check_declared, format_bytes, read_info
from ._write import FeatureWriter


class RunStoppedError(RuntimeError):
    """A run stopped part-way (a write failed, a worker died); every video committed before
    is kept, and running it again resumes."""


@dataclass(frozen=True)
class RunSummary:
    """What one run wrote, per stream.

    Attributes
    ----------
    paths : dict of str to str
        Stream -> the cache file written.
    done, skipped, failed : dict of str to int
        Stream -> videos written in this run, videos already complete before it, and videos
        recorded under ``/failed`` in this run.
    failures : dict of str to str
        Video id -> why it failed (in any stream), in the order they failed.
    busy_seconds : dict of str to float
        Where the time went (extraction: ``decode``, ``flow``, ``resize``, ``network``);
        empty when not measured.
    """

    paths: dict
    done: dict
    skipped: dict
    failed: dict
    failures: dict
    busy_seconds: dict = field(default_factory=dict)


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


def _headers(path):
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
    for name, (shape, dtype, stored) in _headers(path).items():
        if dtype.hasobject:
            continue  # refused by np.load(allow_pickle=False)
        what = "the array" if name is None else f"the array {name!r}"
        nbytes = check_declared(None, what, shape, dtype)
        if nbytes > stored:
            raise ValueError(
                f"{what} declares shape {tuple(shape)} of {dtype} ({format_bytes(nbytes)}) "
                f"but the file holds {format_bytes(max(stored, 0))}: truncated or damaged"
            )


def _load_array(path):
    """Return (features, fps) from a .npy or .npz file; ValueError names the problem."""
    _check_header(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if path.endswith(".npy"):
            return loaded, math.nan
        with loaded as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as exc:  # numpy raises many types for a damaged file
        raise ValueError(f"cannot read: {exc}") from None
    fps = float(arrays.pop("fps")) if "fps" in arrays else math.nan
    if "features" in arrays:
        return arrays["features"], fps
    if len(arrays) == 1:
        return arrays.popitem()[1], fps
    raise ValueError(f"holds arrays {sorted(arrays)}; expected one array or one named 'features'")


def _common_dim(out, arrays):
    """The cache's d: the existing file's, else the most common d among the arrays."""
    if os.path.exists(out):
        dim = read_info(out).get("feature_dim")
        if dim is not None:
            return dim
    dims = []
    for path in arrays.values():
        headers = {name: h[0] for name, h in _headers(path).items() if name != "fps"}
        shape = headers.get("features", next(iter(headers.values())) if len(headers) == 1 else ())
        if len(shape) == 2:
            dims.append(shape[1])
    if not dims:
        return None
    values, counts = np.unique(dims, return_counts=True)
    return int(values[np.argmax(counts)])


def import_arrays(src, out, *, stream, dtype="float32", progress=False):
    """Store per-video arrays found under a folder as a feature cache.

    Parameters
    ----------
    src : str or os.PathLike
        Folder searched recursively for ``.npy`` files and ``.npz`` files (one array, or
        an array named ``features`` and optionally an ``fps`` scalar). The video id is the
        path relative to ``src`` without extension (:func:`mkl_tp.sources.find_videos`).
    out : str
        The cache file (ending in ``.h5``), or ``NAME`` to write ``NAME_<stream>.h5``.
    stream : str
        Stream name recorded in the file.
    dtype : {"float32", "float16"}, default "float32"
        Storage type.
    progress : bool, default False
        Show a progress bar over the files (on a terminal).

    Returns
    -------
    RunSummary
        Videos already in the cache are skipped; arrays that are not (T, d) real and
        finite, hold values beyond ``dtype``'s range (``|x| > 65504`` for float16), whose d
        differs from the cache's, or whose header declares more data than the file or
        the memory holds (checked before the data is read), are recorded under
        ``/failed`` and the import goes on.

    Raises
    ------
    FileNotFoundError, ValueError, OSError
        Nothing could be imported: no such folder, no arrays, ambiguous ids, or an output
        that cannot be written or belongs to another extraction. Nothing was written.
    RunStoppedError
        Writing failed part-way; the videos stored before are kept.
    """
    src = os.fspath(src)
    arrays = find_videos(src, extensions=ARRAY_EXTENSIONS, image_folders=False)
    if not arrays:
        raise ValueError(f"no .npy or .npz files under {src}")
    path = output_path(out, stream)
    info = {
        "stream": stream,
        "feature_dim": _common_dim(path, arrays),
        "dtype": dtype,
        "extractor": "import",
    }
    done = skipped = 0
    failures = {}
    writer = FeatureWriter(path, info).open()
    with writer, tqdm(total=len(arrays), unit="video", disable=None if progress else True) as bar:
        for video_id, file in arrays.items():
            bar.update(1)
            if video_id in writer.completed:
                skipped += 1
                continue
            try:
                features, fps = _load_array(file)
                writer.write(video_id, features, fps=fps, source=os.path.abspath(file))
                done += 1
            except ValueError as exc:
                message = (
                    str(exc)
                    if str(exc).startswith("video ")
                    else f"video {video_id!r} ({file}): {exc}"
                )
                failures[video_id] = message
                try:
                    writer.record_failure(video_id, message, source=os.path.abspath(file))
                except OSError as err:
                    raise RunStoppedError(str(err)) from None
            except OSError as exc:
                raise RunStoppedError(str(exc)) from None
    return RunSummary(
        paths={stream: path},
        done={stream: done},
        skipped={stream: skipped},
        failed={stream: len(failures)},
        failures=failures,
    )
