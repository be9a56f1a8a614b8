"""The cache format's rules, shared by the readers and the writer of :mod:`mkl_tp.store`.

:mod:`mkl_tp.store` re-exports the public names (the format constants, the checks,
:func:`output_path`, :func:`parse_shard`). :func:`plain`, :func:`is_ours`, :func:`walk` and
:func:`complete_ids` are package-internal: they serve ``_read``, ``_write`` and ``_import``.
"""

import os

import h5py
import numpy as np

FORMAT = "mkl_tp.features"
FORMAT_VERSION = 1
#: Root attributes that may differ between runs that extend the same cache.
VOLATILE_INFO = frozenset({"mkl_tp_version", "created", "format_version"})
# HDF5 file format of new caches: 1.8's (readable by HDF5 1.8 and later). Its groups keep
# their links in a B-tree and a fractal heap, so adding a video rewrites a bounded number
# of pages. The library's default ("earliest") keeps every name of a group in one local
# heap, rewritten whole at each commit, so a commit's cost would grow with the number of
# videos in the group (docs/performance.rst, "Writing a large cache").
LIBVER = ("v108", "v108")


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
        raise ValueError(
            f"video {video_id!r}: expected features of shape (T, d), got {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"video {video_id!r}: empty features of shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ValueError(
            f"video {video_id!r}: features must be real numbers, got dtype {array.dtype}"
        )
    if feature_dim is not None and array.shape[1] != feature_dim:
        raise ValueError(
            f"video {video_id!r}: features have d={array.shape[1]}, the cache holds d={feature_dim}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"video {video_id!r}: {bad} feature values are NaN or infinite")
    return array


# -- names ------------------------------------------------------------------------
#: Folder, relative to the current directory, that a bare ``--out`` NAME is written to.
FEATURES_DIR = "features"


def resolve_out(out):
    """Return where ``--out`` writes: a bare name (no folder part) under ``./features/``.

    ``"ucf101"`` -> ``"features/ucf101"`` (hence ``features/ucf101_rgb.h5``), relative to
    the current working directory; ``"./ucf101"``, ``"data/ucf101"`` or an absolute path
    are kept as given.
    """
    out = str(out)
    if out and not os.path.dirname(out):
        return os.path.join(FEATURES_DIR, out)
    return out


def output_path(out, stream, shard=None):
    """Return the cache file of one stream: ``NAME_<stream>[.shard-I-of-N].h5``.

    Parameters
    ----------
    out : str
        ``NAME``; a name ending in ``.h5`` is the file itself (one stream only).
    stream : str
    shard : tuple of int, optional
        ``(I, N)``: this file holds part I of N of an extraction.
    """
    out = str(out)
    base = out[:-3] if out.endswith(".h5") else f"{out}_{stream}"
    if shard is not None:
        base += f".shard-{shard[0]}-of-{shard[1]}"
    return base + ".h5"


def parse_shard(spec):
    """Return ``(I, N)`` from a shard spec ``"I/N"`` with ``0 <= I < N``.

    Raises
    ------
    ValueError
        The message starts with the spec, for the caller to prefix (``--shard``, a file).
    """
    try:
        index, count = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise ValueError(f"{spec!r} is not I/N (for example 0/4)") from None
    if not 0 <= index < count:
        raise ValueError(f"{index}/{count}: need 0 <= I < N")
    return index, count


# -- navigating a file --------------------------------------------------------------
def plain(value):
    """HDF5 attribute value -> plain Python (str, int, float, bool, list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()] if value.ndim else plain(value[()])
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_same_extraction(path, stored, info, keys):
    """Refuse to add to ``path`` when its extraction differs from this run's.

    ``stored`` are the file's root attributes (:func:`plain` values), ``info`` this run's
    description and ``keys`` the attributes compared; a key one side lacks counts as
    ``None``, so a description the file has and the run lacks differs too.

    Raises
    ------
    ValueError
        Naming every differing attribute with the file's value and the run's.
    """
    new = {
        key: plain(np.asarray(value)) if isinstance(value, (list, tuple)) else plain(value)
        for key, value in info.items()
    }
    differ = [
        f"{key}={stored.get(key)!r} in the file, {new.get(key)!r} now"
        for key in sorted(keys)
        if stored.get(key) != new.get(key)
    ]
    if differ:
        raise ValueError(
            f"{path} was written by a different extraction ({'; '.join(differ)}); "
            "use another output name or remove the file"
        )


def is_ours(handle):
    return plain(handle.attrs.get("format", "")) == FORMAT


def _group_key(group):
    """Identity of an HDF5 group, the same whichever link reached it."""
    return (group.file.filename, h5py.h5o.get_info(group.id).addr)


def walk(handle, group_name):
    """Yield (id, dataset) under ``group_name``, following links, in name order.

    Datasets are opened one at a time as they are yielded: every open dataset holds its
    own HDF5 metadata, so holding them all would make a listing's memory grow with the
    cache (docs/performance.rst, "Out of core").

    Raises
    ------
    ValueError
        Naming the file and the link: a link that cannot be followed (dangling, a soft
        link loop, an external file that is missing), or a group reached a second time (a
        hard link back to a group above it would make the listing endless).
    """
    root = handle.get(group_name)
    if root is None:
        return

    def open_child(group, prefix, name):
        try:
            return group[name]
        except (KeyError, OSError, RuntimeError) as exc:
            # RuntimeError: HDF5's "too many links" for a soft link that loops.
            link = group.get(name, getlink=True)
            target = ""
            if isinstance(link, h5py.ExternalLink):
                target = f" -> {link.filename}:{link.path}"
            elif isinstance(link, h5py.SoftLink):
                target = f" -> {link.path}"
            what = "is a link that loops" if "too many links" in str(exc) else "cannot be opened"
            raise ValueError(
                f"{handle.filename}: {group_name}/{prefix}{name}{target} {what} ({exc})"
            ) from None

    seen = {_group_key(root)}
    stack = [("", root)]
    while stack:
        prefix, group = stack.pop()
        subgroups = []
        for name in group:
            obj = open_child(group, prefix, name)
            if isinstance(obj, h5py.Group):
                key = _group_key(obj)
                if key in seen:
                    raise ValueError(
                        f"{handle.filename}: {group_name}/{prefix}{name} links to a group "
                        "already listed: a link cycle or a group linked twice; "
                        "each group of videos must be reached by one path"
                    )
                seen.add(key)
                subgroups.append((prefix + name + "/", obj))
            elif isinstance(obj, h5py.Dataset):
                yield prefix + name, obj
            del obj
        stack.extend(reversed(subgroups))


def complete_ids(handle):
    if "videos" not in handle:
        raise ValueError(
            f"{handle.filename} has no /videos group: not a feature cache "
            "(expected /videos/<id> datasets of shape (T, d), see docs/hdf5_layout.rst)"
        )
    strict = is_ours(handle)
    return sorted(
        vid
        for vid, ds in walk(handle, "videos")
        if not strict or bool(ds.attrs.get("complete", False))
    )
