"""Reading feature caches: the format constants, the checks on video ids and features, and
the readers.

Re-exported by :mod:`mkl_tp.store`, which describes the layout; import them from there.
"""

import os
from contextlib import contextmanager

import h5py
import numpy as np

from mkl_tp._journal import FileLockedError, recover

FORMAT = "mkl_tp.features"
FORMAT_VERSION = 1
#: Root attributes that may differ between runs that extend the same cache.
VOLATILE_INFO = frozenset({"mkl_tp_version", "created", "format_version"})
_MAX_LISTED = 5


# -- validation -------------------------------------------------------------------
def check_video_id(video_id):
    """Return ``video_id`` if it can name a dataset under ``/videos``.

    Parameters
    ----------
    video_id : str
        A relative path such as ``"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"``.

    Raises
    ------
    ValueError
        Empty, absolute, or with an empty, ``.`` or ``..`` component.
    """
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"video id must be a non-empty string, got {video_id!r}")
    parts = video_id.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(
            f"video id {video_id!r} is not a clean relative path "
            "(no leading '/', no empty, '.' or '..' parts)"
        )
    return video_id


def check_features(features, video_id, *, feature_dim=None):
    """Validate one video's frame features and return them as an ndarray.

    Parameters
    ----------
    features : array_like, shape (T, d)
        Real-valued features, one row per frame, T >= 1.
    video_id : str
        Named in the error message.
    feature_dim : int, optional
        The d every video of the cache must have.

    Returns
    -------
    ndarray, shape (T, d)

    Raises
    ------
    ValueError
        Wrong rank, no frames, a non-real dtype, NaN/inf, or a d other than
        ``feature_dim``; the message names the video and the problem.
    """
    array = np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"video {video_id!r}: expected features of shape (T, d), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"video {video_id!r}: empty features of shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ValueError(f"video {video_id!r}: features must be real numbers, got dtype {array.dtype}")
    if feature_dim is not None and array.shape[1] != feature_dim:
        raise ValueError(
            f"video {video_id!r}: features have d={array.shape[1]}, the cache holds d={feature_dim}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"video {video_id!r}: {bad} feature values are NaN or infinite")
    return array


# -- reading ----------------------------------------------------------------------
@contextmanager
def _open_read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"feature cache {path} does not exist")
    recover(path)
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty: its extraction stopped before the first video was saved")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        if "lock" in str(exc):
            raise FileLockedError(f"{path} is being written by another process; wait for it to finish") from None
        raise ValueError(f"{path} is not a readable HDF5 file ({exc})") from None
    with handle:
        yield handle


def _plain(value):
    """HDF5 attribute value -> plain Python (str, int, float, bool, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value[()])
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_ours(handle):
    return _plain(handle.attrs.get("format", "")) == FORMAT


def _walk(handle, group_name):
    """Yield (id, dataset) under ``group_name``, following links, in name order."""
    root = handle.get(group_name)
    if root is None:
        return
    stack = [("", root)]
    while stack:
        prefix, group = stack.pop()
        children = []
        for name in group:
            try:
                obj = group[name]
            except (KeyError, OSError) as exc:
                link = group.get(name, getlink=True)
                target = f" -> {link.filename}" if isinstance(link, h5py.ExternalLink) else ""
                raise ValueError(
                    f"{handle.filename}: {group_name}/{prefix}{name}{target} cannot be opened ({exc})"
                ) from None
            children.append((prefix + name, obj))
        for name, obj in reversed(children):
            if isinstance(obj, h5py.Group):
                stack.append((name + "/", obj))
        for name, obj in children:
            if isinstance(obj, h5py.Dataset):
                yield name, obj


def _complete_ids(handle):
    if "videos" not in handle:
        raise ValueError(
            f"{handle.filename} has no /videos group: not a feature cache "
            "(expected /videos/<id> datasets of shape (T, d), see docs/hdf5_layout.rst)"
        )
    strict = _is_ours(handle)
    return sorted(
        vid for vid, ds in _walk(handle, "videos") if not strict or bool(ds.attrs.get("complete", False))
    )


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
        return _complete_ids(handle)


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
        complete = _complete_ids(handle)
        if ids is None:
            ids = complete
        ids = [str(i) for i in ids]
        done = set(complete)
        missing = [i for i in ids if i not in done]
        if missing:
            failed = {i: msg for i, msg in _failed(handle).items() if i in set(missing)}
            present = {vid for vid, _ in _walk(handle, "videos")}
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
            raise ValueError(f"{handle.filename}: {len(missing)} requested videos unavailable; " + "; ".join(reasons))
        arrays, problems, dims = [], [], {}
        for vid in ids:
            try:
                array = check_features(handle["videos/" + vid][()], vid)
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
        return {key: _plain(value) for key, value in handle.attrs.items()}


def _failed(handle):
    return {vid: ds.asstr()[()] for vid, ds in _walk(handle, "failed")}


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
        return {key: _plain(value) for key, value in ds.attrs.items()}

