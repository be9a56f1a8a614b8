"""Crash-safe updates of one file: a commit reaches the disk whole, or not at all.

HDF5 keeps no journal. When a process is killed (or the disk fills up) while the
library flushes its metadata, some blocks of the file are rewritten and others are
not, and the file can become unreadable: with plain ``h5py`` a SIGKILL during a flush
leaves errors such as "bad symbol table node signature" or "addr overflow". The
feature cache must survive exactly that, so its writer hands HDF5 a
:class:`JournaledFile` (through h5py's ``fileobj`` driver) instead of a path.

:class:`JournaledFile` is a file-like object that keeps every write in memory,
page by page, and lets reads see them. :meth:`JournaledFile.commit` turns the
pending pages into a redo journal next to the file (``<file>.journal``, with a
SHA-256 checksum), makes it durable, copies the pages into the file, and deletes
the journal. If the process dies:

- before the journal is complete, the checksum fails, the journal is dropped and the
  file is exactly as it was after the previous commit;
- after the journal is complete, :func:`recover` (run by the next writer or reader)
  replays it, which is idempotent.

Bytes past the file's old end are written before any byte inside it, so when the
disk fills up during a commit the file is truncated back to its old size and keeps
its previous content. An exclusive ``flock`` on the file keeps two writers apart.
"""

import fcntl
import hashlib
import io
import logging
import os
import struct

logger = logging.getLogger(__name__)

PAGE_SIZE = 4096
_MAGIC = b"MKLTPJN1"
# magic, page size, size before, size after, first byte the commit zeroes, pages
_HEADER = struct.Struct("<8sIQQQQ")
_OFFSET = struct.Struct("<Q")


class FileLockedError(OSError):
    """Another process holds the file open for writing."""


def os_error(code, message):
    """An OSError that prints as ``message`` alone (no "[Errno N]") but keeps ``errno``."""
    error = OSError(message)
    error.errno = code
    return error


def journal_path(path):
    """Return the path of the redo journal that belongs to ``path``."""
    return os.fspath(path) + ".journal"


def recover(path):
    """Finish or drop an interrupted commit of ``path``, if one is pending.

    Parameters
    ----------
    path : str or os.PathLike
        The journaled file (not the journal).

    Returns
    -------
    str or None
        ``"replayed"`` when a complete journal was applied, ``"dropped"`` when an
        incomplete one was discarded, ``None`` when there was nothing to do or a
        live writer holds the file (it will finish its own commit).

    Raises
    ------
    PermissionError
        A journal is pending but the file cannot be opened for writing.
    """
    if not os.path.exists(journal_path(path)):
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except PermissionError:
        raise PermissionError(
            f"{path} has an unfinished commit ({journal_path(path)}) that needs write "
            "access to repair; open it once with write permission"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return _recover_locked(fd, os.fspath(path), journal_path(path))
    finally:
        os.close(fd)


class JournaledFile(io.RawIOBase):
    """A read/write binary file whose changes reach the disk only at :meth:`commit`.

    Parameters
    ----------
    path : str or os.PathLike
        The file; created empty if missing. A pending journal is recovered first.
    durable : bool, default True
        ``fsync`` the journal, its folder and the file at each commit, so that a
        commit also survives a power loss (a killed process needs no fsync).

    Raises
    ------
    FileLockedError
        Another process is writing the file.
    """

    def __init__(self, path, *, durable=True):
        super().__init__()
        self.path = os.fspath(path)
        self.durable = durable
        self._journal = journal_path(self.path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise FileLockedError(f"{self.path} is being written by another process") from None
        try:
            _recover_locked(self._fd, self.path, self._journal)
        except BaseException:
            os.close(self._fd)
            raise
        self._base_size = os.fstat(self._fd).st_size
        self._pos = 0
        self._forget_pending()

    # -- state ------------------------------------------------------------------
    def _forget_pending(self):
        self._pages = {}
        self._size = self._base_size
        self._zero_from = self._base_size

    @property
    def committed_size(self):
        """Size of the file on disk as of the last commit, in bytes."""
        return self._base_size

    @property
    def has_pending(self):
        """Whether there are writes that :meth:`commit` would apply."""
        return bool(self._pages) or self._size != self._base_size

    # -- io.RawIOBase -----------------------------------------------------------
    def readable(self):
        return True

    def writable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self):
        return self._pos

    def readinto(self, buffer):
        out = memoryview(buffer).cast("B")
        end = min(self._pos + len(out), self._size)
        if end <= self._pos:
            return 0
        n = end - self._pos
        out[:n] = self._read_range(self._pos, end)
        self._pos = end
        return n

    def write(self, data):
        src = memoryview(data).cast("B")
        pos, end = self._pos, self._pos + len(src)
        while pos < end:
            index, start = divmod(pos, PAGE_SIZE)
            take = min(PAGE_SIZE - start, end - pos)
            page = self._page(index)
            page[start : start + take] = src[pos - self._pos : pos - self._pos + take]
            pos += take
        self._size = max(self._size, end)
        self._pos = end
        return len(src)

    def truncate(self, size=None):
        size = self._pos if size is None else size
        if size < self._size:
            last = size // PAGE_SIZE
            for index in [i for i in self._pages if i > last or i * PAGE_SIZE >= size]:
                del self._pages[index]
            if last in self._pages:
                self._pages[last][size % PAGE_SIZE :] = bytes(PAGE_SIZE - size % PAGE_SIZE)
            self._zero_from = min(self._zero_from, size)
        self._size = size
        return size

    def flush(self):
        # Nothing reaches the disk before commit(): that is the point of the class.
        pass

    def close(self):
        """Release the lock and the descriptor; uncommitted writes are discarded."""
        if not self.closed and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()

    # -- pages ------------------------------------------------------------------
    def _disk_bytes(self, start, end):
        """Committed bytes in [start, end), zero-filled where the file is shorter."""
        limit = min(self._base_size, self._zero_from)
        data = bytearray(end - start)
        if start < limit:
            chunk = os.pread(self._fd, min(end, limit) - start, start)
            data[: len(chunk)] = chunk
        return data

    def _page(self, index):
        page = self._pages.get(index)
        if page is None:
            start = index * PAGE_SIZE
            page = self._pages[index] = self._disk_bytes(start, start + PAGE_SIZE)
        return page

    def _read_range(self, start, end):
        data = self._disk_bytes(start, end)
        for index in range(start // PAGE_SIZE, (end - 1) // PAGE_SIZE + 1):
            page = self._pages.get(index)
            if page is not None:
                lo, hi = max(start, index * PAGE_SIZE), min(end, (index + 1) * PAGE_SIZE)
                data[lo - start : hi - start] = page[
                    lo - index * PAGE_SIZE : hi - index * PAGE_SIZE
                ]
        return data

    # -- commit -----------------------------------------------------------------
    def commit(self):
        """Make every write since the last commit durable, all or nothing.

        Raises
        ------
        OSError
            The journal or the file could not be written (disk full, I/O error). The
            file keeps the content of the previous commit and the pending writes are
            kept, so the caller decides whether to stop.
        """
        if not self.has_pending and self._zero_from >= self._base_size:
            return
        header = _HEADER.pack(
            _MAGIC, PAGE_SIZE, self._base_size, self._size, self._zero_from, len(self._pages)
        )
        pages = sorted(self._pages.items())
        body = b"".join(_OFFSET.pack(i * PAGE_SIZE) + bytes(p) for i, p in pages)
        record = header + body
        record += hashlib.sha256(record).digest()
        try:
            _write_file(self._journal, record, durable=self.durable)
        except OSError as exc:
            _remove_quietly(self._journal)
            raise os_error(exc.errno, f"cannot write {self._journal}: {exc.strerror}") from exc
        _apply(
            self._fd,
            self.path,
            self._journal,
            self._base_size,
            self._size,
            self._zero_from,
            [(i * PAGE_SIZE, p) for i, p in pages],
            durable=self.durable,
            rollback=True,
        )
        self._base_size = self._size
        self._forget_pending()


def _write_file(path, data, *, durable):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    if durable:
        _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the data fsync still held
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _apply(fd, path, journal, base_size, final_size, zero_from, pages, *, durable, rollback):
    """Copy journaled pages into the file: appends first, then in-place bytes.

    Only the appends can need new disk space. When they fail during a commit
    (``rollback=True``) the file is cut back to ``base_size``, which leaves its
    committed content untouched, and the journal is removed; during a replay the
    journal stays so that a later attempt can finish.
    """
    try:
        for offset, page in pages:
            if offset + len(page) > base_size:
                cut = max(0, base_size - offset)
                os.pwrite(fd, bytes(page[cut:]), offset + cut)
        os.ftruncate(fd, max(final_size, base_size))
        if durable:
            os.fsync(fd)
    except OSError as exc:
        if not rollback:
            raise os_error(
                exc.errno, f"cannot finish the commit recorded in {journal}: {exc.strerror}"
            ) from exc
        try:
            os.ftruncate(fd, base_size)
        finally:
            _remove_quietly(journal)
        raise os_error(exc.errno, f"cannot write {path}: {exc.strerror}") from exc
    # From here on the journal can replay every step, so a failure leaves it in place.
    for offset, page in pages:
        if offset < base_size:
            os.pwrite(fd, bytes(page[: base_size - offset]), offset)
    _zero_gaps(fd, zero_from, min(base_size, final_size), pages)
    os.ftruncate(fd, final_size)
    if durable:
        os.fsync(fd)
    os.unlink(journal)


def _zero_gaps(fd, start, end, pages):
    """Zero the bytes in [start, end) that no page covers (a shrink, then a regrow)."""
    covered = {offset // PAGE_SIZE for offset, _ in pages}
    pos = start
    while pos < end:
        index = pos // PAGE_SIZE
        stop = min(end, (index + 1) * PAGE_SIZE)
        if index not in covered:
            os.pwrite(fd, bytes(stop - pos), pos)
        pos = stop


def _parse_journal(data):
    """Return the journal's fields, or None when it is incomplete or damaged."""
    if len(data) < _HEADER.size + 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
        return None
    magic, page_size, base_size, final_size, zero_from, n_pages = _HEADER.unpack_from(data)
    step = _OFFSET.size + page_size
    if magic != _MAGIC or len(data) != _HEADER.size + n_pages * step + 32:
        return None
    pages = []
    for k in range(n_pages):
        at = _HEADER.size + k * step
        (offset,) = _OFFSET.unpack_from(data, at)
        pages.append((offset, data[at + _OFFSET.size : at + step]))
    return base_size, final_size, zero_from, pages


def _recover_locked(fd, path, journal):
    try:
        with open(journal, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    parsed = _parse_journal(data)
    if parsed is None:
        logger.warning("dropping incomplete journal %s (its commit never started)", journal)
        os.unlink(journal)
        return "dropped"
    base_size, final_size, zero_from, pages = parsed
    logger.warning("replaying journal %s (a commit was interrupted)", journal)
    _apply(fd, path, journal, base_size, final_size, zero_from, pages, durable=True, rollback=False)
    return "replayed"
