"""Writing feature caches: :class:`FeatureWriter` adds videos and failure records.

Re-exported by :mod:`mkl_tp.store`, which describes the layout; import it from there (its
docstring also tells how writes stay atomic).
"""

import logging
import math
import os
from contextlib import contextmanager
from datetime import datetime, timezone

import h5py
import numpy as np

from .. import __version__
from ._format import (
    FORMAT,
    FORMAT_VERSION,
    LIBVER,
    VOLATILE_INFO,
    check_features,
    check_same_extraction,
    check_video_id,
    complete_ids,
    plain,
)
from ._journal import FileLockedError, JournaledFile, os_error

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 18
# Root attributes of merged files (merge_shards), which no extraction writes.
_MERGE_ATTRS = frozenset({"merged_from", "layout"})


def written_attrs():
    """Root attributes that say which mkl_tp wrote a file, and when."""
    return {
        "format_version": FORMAT_VERSION,
        "mkl_tp_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _write_failure(h5, video_id, message, source):
    """``/failed/<video_id>``: the reason as a string, the source path as an attribute."""
    name = "failed/" + video_id
    if name in h5:
        del h5[name]
    ds = h5.create_dataset(name, data=str(message), dtype=h5py.string_dtype())
    ds.attrs["source"] = str(source)


def _stored(array, dtype, video_id):
    """``array`` converted to the storage ``dtype``; ``ValueError`` if a value does not fit.

    ``check_features`` has refused NaN/inf already, so a non-finite value here is one that
    overflowed the cast (float16 holds up to 65504): stored, it would read back as inf.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        stored = np.ascontiguousarray(array, dtype=dtype)
    if dtype.kind == "f" and not np.isfinite(stored).all():
        bad = int(np.count_nonzero(~np.isfinite(stored)))
        largest = float(np.max(np.abs(np.asarray(array, dtype=np.float64))))
        raise ValueError(
            f"video {video_id!r}: {bad} feature values (largest |x| = {largest:.4g}) are "
            f"outside the range of {dtype} (|x| <= {float(np.finfo(dtype).max):.6g}) and would "
            "be stored as inf; store the cache as float32 (--dtype float32)"
        )
    return stored


def _chunk_shape(shape, itemsize):
    frames = max(1, min(shape[0], _CHUNK_BYTES // (shape[1] * itemsize)))
    return (frames, shape[1])


class FeatureWriter:
    """Append whole videos to a feature cache; use it as a context manager.

    Parameters
    ----------
    path : str or os.PathLike
        The cache; created with ``info`` as root attributes when missing.
    info : dict
        Extractor description (``stream``, ``arch``, ``weights_digest``,
        ``feature_dim``, ``dtype``, ...). Extending an existing cache requires the same
        description, apart from :data:`VOLATILE_INFO`.
    durable : bool, default True
        ``fsync`` every commit (see ``mkl_tp.store._journal.JournaledFile``).

    Notes
    -----
    Each :meth:`write` / :meth:`record_failure` is one commit: after it returns the
    video is on disk whole; if the process dies first, it is not there at all. After
    a failed write (disk full, I/O error) the writer refuses further writes; the file
    keeps every video committed before.
    """

    def __init__(self, path, info, *, durable=True):
        self.path = os.fspath(path)
        self.info = {k: v for k, v in info.items() if v is not None}
        self.durable = durable
        self.dtype = np.dtype(self.info.get("dtype", "float32"))
        self._jf = None
        self._h5 = None
        self._broken = None
        self.completed = set()

    def __enter__(self):
        if self._h5 is None:
            self.open()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def open(self):
        """Open (or create) the file, check it matches ``info``, list complete videos."""
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            self._jf = JournaledFile(self.path, durable=self.durable)
        except FileLockedError:
            raise
        except OSError as exc:
            raise os_error(exc.errno, f"cannot write {self.path}: {exc.strerror or exc}") from None
        try:
            if self._jf.committed_size == 0:
                self._h5 = h5py.File(self._jf, "w", libver=LIBVER)
                self._h5.attrs.update(self._root_attrs())
                self._h5.create_group("videos")
                self._h5.create_group("failed")
                self._commit()
            else:
                try:
                    # Groups a later run adds (a new class folder) in 1.8's format too; a
                    # file of the default format keeps its existing groups as they are.
                    self._h5 = h5py.File(self._jf, "r+", libver=LIBVER)
                except OSError as exc:
                    raise ValueError(
                        f"{self.path} exists and is not an HDF5 file ({exc})"
                    ) from None
                self._check_matches()
            self.completed = set(complete_ids(self._h5))
        except BaseException:
            self._discard()
            raise
        return self

    def _root_attrs(self):
        return {"format": FORMAT, **written_attrs(), **self.info}

    def _check_matches(self):
        stored = {k: plain(v) for k, v in self._h5.attrs.items()}
        if stored.get("format") != FORMAT:
            raise ValueError(
                f"{self.path} is not an mkl_tp feature cache (no format={FORMAT!r} attribute); "
                "choose another output"
            )
        # A description the file has and this run lacks counts too (a cache of sampled
        # frames must not be extended with every frame).
        keys = set(self.info) | (set(stored) - set(self._root_attrs()))
        check_same_extraction(self.path, stored, self.info, keys - VOLATILE_INFO - _MERGE_ATTRS)

    def _check_usable(self):
        if self._h5 is None:
            raise ValueError(f"{self.path} is not open for writing")
        if self._broken is not None:
            raise OSError(f"{self.path}: an earlier write failed ({self._broken}); no more writes")

    def _commit(self):
        self._h5.flush()
        self._jf.commit()

    def _check_free_name(self, group, video_id):
        parts = video_id.split("/")
        for depth in range(1, len(parts)):
            obj = self._h5.get(f"{group}/" + "/".join(parts[:depth]))
            if isinstance(obj, h5py.Dataset):
                raise ValueError(
                    f"video id {video_id!r} clashes with video {'/'.join(parts[:depth])!r}"
                )
        if isinstance(self._h5.get(f"{group}/{video_id}"), h5py.Group):
            raise ValueError(f"video id {video_id!r} clashes with videos under {video_id + '/'!r}")

    @contextmanager
    def _transaction(self, what):
        """Commit the changes made in the block, or leave the writer closed to writes."""
        try:
            yield
            self._commit()
        except Exception as exc:
            self._broken = exc
            where = "" if self.path in str(exc) else f" to {self.path}"
            raise os_error(
                getattr(exc, "errno", None), f"cannot write {what}{where}: {exc}"
            ) from exc
        except BaseException as exc:  # KeyboardInterrupt: close() must not commit half of it
            self._broken = exc
            raise

    def write(self, video_id, features, *, fps=math.nan, source="", **attrs):
        """Store one video's features, whole, and mark it complete.

        Parameters
        ----------
        video_id : str
        features : array_like, shape (T, d)
            Converted to the cache's dtype.
        fps : float, optional
            Frame rate of the source (NaN when unknown, e.g. image folders).
        source : str, optional
            Path of the video or folder the features came from.
        **attrs
            More per-video attributes.

        Raises
        ------
        ValueError
            Invalid id or features (including values beyond the storage dtype's range,
            such as ``|x| > 65504`` for float16), or the video is already complete: nothing
            written. Extraction and import record it under ``/failed`` and go on.
        OSError
            The file could not be written; the writer is then closed to writes.
        """
        self._check_usable()
        check_video_id(video_id)
        array = check_features(features, video_id, feature_dim=self.info.get("feature_dim"))
        if video_id in self.completed:
            raise ValueError(f"video {video_id!r} is already complete in {self.path}")
        self._check_free_name("videos", video_id)
        array = _stored(array, self.dtype, video_id)
        with self._transaction(f"video {video_id!r}"):
            # Fletcher-32: every chunk carries a checksum, so damaged bytes are detected on
            # read (store._read) instead of coming back as plausible numbers.
            ds = self._h5.create_dataset(
                None,
                data=array,
                chunks=_chunk_shape(array.shape, array.itemsize),
                fletcher32=True,
                track_order=True,
            )
            ds.attrs["n_frames"] = array.shape[0]
            ds.attrs["fps"] = float(fps)
            ds.attrs["source"] = str(source)
            for key, name in (
                ("stream", "stream"),
                ("backbone", "arch"),
                ("weights_digest", "weights_digest"),
            ):
                if name in self.info:
                    ds.attrs[key] = self.info[name]
            for key, value in attrs.items():
                ds.attrs[key] = value
            ds.attrs["complete"] = True
            name = "videos/" + video_id
            if name in self._h5:  # an incomplete leftover written by something else
                del self._h5[name]
            self._h5[name] = ds
            if "failed/" + video_id in self._h5:
                del self._h5["failed/" + video_id]
        self.completed.add(video_id)

    def remove_damaged(self):
        """Read every complete video; move those whose data cannot be read under ``/failed``.

        A damaged video (a chunk failing its Fletcher-32 checksum, or otherwise unreadable)
        is unlinked from ``/videos`` and recorded under ``/failed`` with the reason, in one
        commit; it then counts as not done, so an extraction run extracts it again. Videos
        written without checksums (caches from before they were added) are only checked
        for readability. This reads the whole file.

        Returns
        -------
        dict of str to str
            Video id -> the reason, for the videos removed.

        Raises
        ------
        OSError
            The file could not be written; the writer is then closed to writes.
        """
        from ._read import damaged_message

        self._check_usable()
        damaged = {}
        for video_id in sorted(self.completed):
            try:
                self._h5["videos/" + video_id][()]
            except OSError as exc:
                damaged[video_id] = damaged_message(video_id, exc)
        if damaged:
            with self._transaction(f"the removal of {len(damaged)} damaged videos"):
                for video_id, message in damaged.items():
                    source = plain(self._h5["videos/" + video_id].attrs.get("source", ""))
                    del self._h5["videos/" + video_id]
                    _write_failure(self._h5, video_id, message, source)
            self.completed -= set(damaged)
        return damaged

    def record_failure(self, video_id, message, *, source=""):
        """Record why a video could not be extracted, under ``/failed/<id>``.

        Parameters
        ----------
        video_id : str
        message : str
        source : str, optional
        """
        self._check_usable()
        check_video_id(video_id)
        self._check_free_name("failed", video_id)
        with self._transaction(f"the failure of {video_id!r}"):
            _write_failure(self._h5, video_id, message, source)

    def _discard(self):
        if self._h5 is not None:
            try:
                self._h5.close()
            except Exception:  # the journal drops whatever this close wrote
                logger.debug("closing %s after a failure", self.path, exc_info=True)
            self._h5 = None
        if self._jf is not None:
            self._jf.close()
            self._jf = None

    def close(self):
        """Commit what is pending (unless a write failed) and release the file."""
        if self._broken is not None or self._h5 is None:
            self._discard()
            return
        try:
            self._h5.close()
            self._h5 = None
            self._jf.commit()
        finally:
            self._discard()
