"""Runs that write many videos to caches: their summary, and the error that stops one
part-way.

Re-exported by :mod:`mkl_tp.store`; :mod:`mkl_tp.extraction` and
:func:`mkl_tp.store.import_arrays` report their runs this way.
"""

from dataclasses import dataclass, field


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
    not_imported : dict of str to str
        File -> why :func:`~mkl_tp.store.import_arrays` did not read it as a video (a
        side file without features, a name the id pattern does not match, a file of
        another layout); empty for extraction.
    """

    paths: dict
    done: dict
    skipped: dict
    failed: dict
    failures: dict
    busy_seconds: dict = field(default_factory=dict)
    not_imported: dict = field(default_factory=dict)
