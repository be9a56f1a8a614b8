"""Reading feature caches: listing, loading and describing the videos of a file.

Re-exported by :mod:`mkl_tp.store`, which describes the layout; import them from there.
"""

import math
import os
from contextlib import contextmanager

import h5py

from ._format import check_features, check_video_id, complete_ids, is_ours, plain, walk
from ._journal import FileLockedError, recover

_MAX_LISTED = 5
# Arrays up to this size are read without asking how much memory is available.
_ASK_MEMORY_ABOVE = 1 << 26


@contextmanager
def _open_read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"feature cache {path} does not exist")
    recover(path)
    if os.path.getsize(path) == 0:
        raise ValueError(
            f"{path} is empty: its extraction stopped before the first video was saved"
        )
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        if "lock" in str(exc):
            raise FileLockedError(
                f"{path} is being written by another process; wait for it to finish"
            ) from None
        raise ValueError(f"{path} is not a readable HDF5 file ({exc})") from None
    with handle:
        yield handle


def list_videos(path):
    """Return the sorted ids of the complete videos in a feature cache.

    Parameters
    ----------
    path : str or os.PathLike
        An HDF5 feature cache (or a merge of shards, or a bring-your-own file).

    Returns
    -------
    list of str
    """
    with _open_read(path) as handle:
        return complete_ids(handle)


def _listing(ids):
    shown = ", ".join(repr(i) for i in ids[:_MAX_LISTED])
    more = len(ids) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def load_features(path, ids=None):
    """Read the (T, d) frame features of videos from a feature cache.

    Parameters
    ----------
    path : str or os.PathLike
        The cache.
    ids : sequence of str, optional
        Videos to read, in this order; all complete videos (sorted) when omitted.

    Returns
    -------
    ids : list of str
    features : list of ndarray, each (T_i, d)
        In the stored dtype (float16 or float32 for caches written by mkl_tp).

    Raises
    ------
    ValueError
        Naming the file and the videos that are missing, incomplete, failed, or hold
        invalid arrays (wrong rank, NaN/inf, a d that differs from the others).
    """
    with _open_read(path) as handle:
        complete = complete_ids(handle)
        if ids is None:
            ids = complete
        ids = [str(i) for i in ids]
        check_available(handle, ids, complete)
        _check_total(handle, ids)
        arrays, problems, dims = [], [], {}
        for vid in ids:
            try:
                array = check_features(_read_dataset(handle, vid), vid)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            dims.setdefault(array.shape[1], vid)
            arrays.append(array)
        if len(dims) > 1:
            problems.append(
                "videos disagree on d: " + ", ".join(f"d={d} (e.g. {v!r})" for d, v in dims.items())
            )
        if problems:
            raise ValueError(f"{handle.filename}: " + "; ".join(problems[:_MAX_LISTED]))
        return ids, arrays


def _check_total(handle, ids):
    """``ValueError`` when the videos requested together declare more than memory holds."""
    total, largest = 0, (0, None)
    for vid in ids:
        ds = handle["videos/" + vid]
        try:
            _check_shape(vid, ds)
        except ValueError:
            continue  # reported with the other problems of the videos, when it is read
        nbytes = check_declared(handle.filename, f"videos/{vid}", ds.shape, ds.dtype)
        total += nbytes
        largest = max(largest, (nbytes, vid))
    available = _memory_for(total)
    if available is not None and total > available:
        raise ValueError(
            f"{handle.filename}: the {len(ids)} videos requested declare "
            f"{format_bytes(total)} of features (the largest, {largest[1]!r}, "
            f"{format_bytes(largest[0])}), more than the {format_bytes(available)} of "
            "memory available; read them a chunk at a time with FeatureSequence"
        )


def _memory_for(nbytes):
    """Bytes of memory available, asked only for more than ``_ASK_MEMORY_ABOVE`` bytes
    (``None`` below it, or when the platform does not tell)."""
    if nbytes <= _ASK_MEMORY_ABOVE:
        return None
    from .._utils.memory import available_memory

    return available_memory()


def check_available(handle, ids, complete):
    """``ValueError`` naming the requested videos that are not complete in the open cache,
    each with its reason (failed extraction, interrupted, absent)."""
    done = set(complete)
    missing = [i for i in ids if i not in done]
    if not missing:
        return
    failed = {i: msg for i, msg in _failed(handle).items() if i in set(missing)}
    present = {vid for vid, _ in walk(handle, "videos")}
    reasons = []
    if failed:
        first = next(iter(failed))
        reasons.append(f"failed extraction: {_listing(list(failed))} ({first!r}: {failed[first]})")
    partial = [i for i in missing if i in present and i not in failed]
    if partial:
        reasons.append(f"incomplete (interrupted; re-run the extractor): {_listing(partial)}")
    absent = [i for i in missing if i not in present and i not in failed]
    if absent:
        reasons.append(f"not in the file: {_listing(absent)}")
    raise ValueError(
        f"{handle.filename}: {len(missing)} requested videos unavailable; " + "; ".join(reasons)
    )


def damaged_message(video_id, exc):
    """The one-line reason for a video whose stored data cannot be read back.

    Parameters
    ----------
    video_id : str
    exc : OSError
        HDF5's error: a failed Fletcher-32 checksum reads "Can't read data (filter
        returned failure during read)".
    """
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    what = (
        "fail their Fletcher-32 checksum"
        if "filter returned failure" in reason
        else "cannot be read"
    )
    return f"video {video_id!r} is damaged: its stored features {what} ({reason})"


def format_bytes(n):
    """``29.1 TiB``: a byte count for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_declared(filename, what, shape, dtype, available=None):
    """``ValueError`` unless an array declared as ``shape``/``dtype`` fits in memory.

    A file states its arrays' shapes in a header read before any data: a hostile or
    damaged one can declare 10^12 rows, which reading would try to allocate whole.

    Parameters
    ----------
    filename : str or None
        The file, named first in the message (``None``: the caller names it).
    what : str
        The dataset or array, as the message names it (``"videos/v1"``).
    shape : tuple of int
    dtype : numpy.dtype
    available : int, optional
        Bytes available; :func:`mkl_tp._utils.memory.available_memory` when omitted (and
        only asked for arrays over 64 MiB).

    Returns
    -------
    int
        The declared size in bytes.
    """
    nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
    if available is None:
        available = _memory_for(nbytes)
    if available is not None and nbytes > available:
        where = what if filename is None else f"{filename}: {what}"
        raise ValueError(
            f"{where} declares shape {tuple(shape)} of {dtype} "
            f"({format_bytes(nbytes)}), more than the {format_bytes(available)} of memory "
            "available: a damaged or wrong file, not read"
        )
    return nbytes


def _check_shape(video_id, ds):
    """Rank and dtype of a stored video, checked before its data is read."""
    if ds.ndim != 2:
        raise ValueError(f"video {video_id!r}: expected features of shape (T, d), got {ds.shape}")
    if ds.dtype.kind not in "fiu":
        raise ValueError(f"video {video_id!r}: features must be real numbers, got dtype {ds.dtype}")


def _read_dataset(handle, video_id):
    """One video's features; a damaged chunk becomes a ValueError naming the video, and a
    dataset declaring more rows than memory holds is refused before it is read."""
    ds = handle["videos/" + video_id]
    _check_shape(video_id, ds)
    check_declared(handle.filename, f"videos/{video_id}", ds.shape, ds.dtype)
    try:
        return ds[()]
    except OSError as exc:
        repair = (
            "run the extraction again with --verify to extract it again"
            if is_ours(handle)
            else "the file is damaged"
        )
        raise ValueError(f"{damaged_message(video_id, exc)}; {repair}") from None


def read_info(path):
    """Return the root attributes of a feature cache as plain Python values.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The extractor description (``arch``, ``weights_digest``, ``stream``, ...). A
        bring-your-own file without attributes gives ``{}``; the caller decides
        whether to warn.
    """
    with _open_read(path) as handle:
        return {key: plain(value) for key, value in handle.attrs.items()}


def _failed(handle):
    return {vid: ds.asstr()[()] for vid, ds in walk(handle, "failed")}


def failed_videos(path):
    """Return ``{video id: error text}`` for the videos whose extraction failed.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict of str to str
    """
    with _open_read(path) as handle:
        return _failed(handle)


def video_attrs(path, video_id):
    """Return the attributes of one video's dataset as plain Python values.

    Parameters
    ----------
    path : str or os.PathLike
    video_id : str

    Returns
    -------
    dict
        ``n_frames``, ``fps``, ``source``, ``stream``, ``backbone``, ``weights_digest``,
        ``complete`` for caches written by mkl_tp.

    Raises
    ------
    KeyError
        No such video in the file.
    """
    with _open_read(path) as handle:
        ds = handle.get("videos/" + check_video_id(video_id))
        if not isinstance(ds, h5py.Dataset):
            raise KeyError(f"{handle.filename}: no video {video_id!r}")
        return {key: plain(value) for key, value in ds.attrs.items()}
