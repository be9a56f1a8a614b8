"""The extraction pipeline: decoding workers feed batched inference, videos are written whole.

Worker processes (a torch ``DataLoader`` over videos, :class:`VideoInputs`) decode frames
and compute optical flow (:class:`mkl_tp.extraction.NetworkInputs`), sending batches of network
inputs; the main process runs the networks and writes each video once all its frames are
through (:func:`run`). A video that fails in a worker arrives as an error item and is
recorded under ``/failed``; the run goes on. :func:`mkl_tp.extraction.extract_features`
sets a run up and calls :func:`run`.
"""

import ctypes
import ctypes.util
import inspect
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from ..store import RunStoppedError
from .frames import VideoError
from .inputs import NetworkInputs

__all__ = ["Tally", "VideoInputs", "loader", "run"]

logger = logging.getLogger(__name__)


def _video_items(video_id, path, streams, options, batch_size):
    """Items for the main process: frame batches per stream, then an end (or error) item."""
    buffers = {stream: [] for stream in streams}
    starts = dict.fromkeys(streams, 0)

    def batch(stream):
        data = torch.from_numpy(np.stack(buffers[stream]))
        item = {
            "kind": "frames",
            "video": video_id,
            "stream": stream,
            "start": starts[stream],
            "data": data,
        }
        starts[stream] += len(buffers[stream])
        buffers[stream].clear()
        return item

    try:
        inputs = NetworkInputs(path, streams, **options)
        for stream, array in inputs:
            buffers[stream].append(array)
            if len(buffers[stream]) == batch_size:
                yield batch(stream)
        for stream in streams:
            if buffers[stream]:
                yield batch(stream)
        yield {
            "kind": "end",
            "video": video_id,
            "source": path,
            "n_frames": inputs.n_frames,
            "source_frames": inputs.source_frames,
            "fps": inputs.fps,
            "partial": inputs.partial,
            "declared_frames": inputs.declared_frames,
            "timings": inputs.timings,
        }
    except Exception as exc:  # one bad video must not stop the others
        logger.debug("failed on %s", path, exc_info=True)
        message = (
            str(exc) if isinstance(exc, VideoError) else f"{path}: {type(exc).__name__}: {exc}"
        )
        yield {"kind": "error", "video": video_id, "source": path, "message": message}


class VideoInputs(torch.utils.data.IterableDataset):
    """Network inputs of a list of videos; each worker takes every n-th video, in order.

    ``owner`` is the process that made it (the run's main process): a decoding worker
    ends when it dies (:func:`_init_worker`).
    """

    def __init__(self, jobs, options, batch_size):
        self.jobs, self.options, self.batch_size = jobs, options, batch_size
        self.owner = os.getpid()

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        mine = self.jobs if info is None else self.jobs[info.id :: info.num_workers]
        for video_id, path, streams in mine:
            yield from _video_items(video_id, path, streams, self.options, self.batch_size)


#: Seconds between a worker's checks that the run's main process is still alive.
_OWNER_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


def _alive(pid):
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def _watch_owner(owner):
    """End this worker when ``owner`` (the run's main process) is gone.

    Workers are forked by the forkserver, not by the main process, and hold the
    forkserver's and the resource tracker's pipes open: after a ``kill -9`` of the main
    process, torch's own check (its parent, the forkserver, is alive) kept the three of
    them, and the memory they hold, alive indefinitely. On Linux the kernel also kills a
    worker whose parent (the forkserver) dies.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch():
        while _alive(owner):
            time.sleep(_OWNER_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="mkl_tp-owner-watch", daemon=True).start()


def _init_worker(_):
    cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV threads would oversubscribe
    info = torch.utils.data.get_worker_info()
    owner = getattr(info.dataset, "owner", None) if info is not None else None
    if owner is not None and owner != os.getpid():
        _watch_owner(owner)


def loader(dataset, workers, pin_memory):
    """A ``DataLoader`` over a :class:`VideoInputs`, with ``workers`` decoding processes."""
    if workers and multiprocessing.current_process().daemon:
        logger.warning(
            "running inside a daemon process (e.g. a Dask worker): decoding in the main process"
        )
        workers = 0
    kwargs = {"batch_size": None, "num_workers": workers, "pin_memory": pin_memory}
    if workers:
        # Forked workers deadlock when the parent has already used OpenCV's thread pool
        # (a second extraction in the same process); forkserver children start clean.
        context = multiprocessing.get_context("forkserver")
        # Heavy imports once in the server; not mkl_tp.extract itself, which the
        # children run as their __main__ when it is the program.
        context.set_forkserver_preload(
            ["av", "mkl_tp.extraction.backbone", "mkl_tp.extraction", "mkl_tp.extraction._workers"]
        )
        kwargs.update(
            prefetch_factor=4, worker_init_fn=_init_worker, multiprocessing_context=context
        )
        if "in_order" in inspect.signature(torch.utils.data.DataLoader).parameters:
            kwargs["in_order"] = False  # a long video in one worker must not hold up the others
    return torch.utils.data.DataLoader(dataset, **kwargs)


class Tally:
    """Counts for the summary, per stream, and where the time went."""

    def __init__(self, streams):
        self.done = dict.fromkeys(streams, 0)
        self.skipped = dict.fromkeys(streams, 0)
        self.failed_in = dict.fromkeys(streams, 0)
        self.failed = {}
        self.frames = 0
        self.network_s = 0.0
        self.worker_s = {"decode": 0.0, "flow": 0.0, "resize": 0.0}


def run(
    streams,
    nets,
    videos,
    missing,
    writers,
    tally,
    options,
    batch_size,
    workers,
    progress,
    missing_message,
):
    """Extract every video that some stream still lacks, writing each as it completes.

    With ``progress``, one bar counts videos and a second one frames, so that a long
    video shows movement; both stay off when stderr is not a terminal.
    """
    jobs = []
    for video_id, path in videos.items():
        todo = tuple(s for s in streams if video_id not in writers[s].completed)
        for stream in set(streams) - set(todo):
            tally.skipped[stream] += 1
        if todo:
            jobs.append((video_id, path, todo))
    for video_id in missing:
        _fail(writers, tally, video_id, missing_message, "")
    if not jobs:
        return
    device = nets[streams[0]].device
    items = loader(
        VideoInputs(jobs, options, batch_size), min(workers, len(jobs)), device.type == "cuda"
    )
    disable = None if progress else True
    with (
        tqdm(
            total=len(jobs), unit="video", desc="videos", disable=disable, dynamic_ncols=True
        ) as videos_bar,
        tqdm(unit="frame", desc="frames", disable=disable, dynamic_ncols=True) as frames_bar,
    ):
        _consume(items, writers, nets, {j[0]: j[2] for j in jobs}, tally, (videos_bar, frames_bar))


def _fail(writers, tally, video_id, message, source):
    tally.failed[video_id] = message
    for stream, writer in writers.items():
        try:
            writer.record_failure(video_id, message, source=source)
        except OSError as exc:
            raise RunStoppedError(str(exc)) from None
        tally.failed_in[stream] += 1
    logger.info("failed %s: %s", video_id, message)


def _items(batches, pending):
    """Iterate the loader; a worker that dies (a crash inside a decoder) stops the run."""
    iterator = iter(batches)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except RuntimeError as exc:
            if "DataLoader worker" not in str(exc):
                raise
            busy = ", ".join(repr(v) for v in pending) or "unknown"
            raise RunStoppedError(
                f"a decoding worker died ({exc}); videos in progress: {busy}. The videos "
                "saved so far are kept: run again to resume, with --workers 0 to see the culprit"
            ) from None


def _consume(batches, writers, nets, todo, tally, bars):
    videos_bar, frames_bar = bars
    pending = {}
    for item in _items(batches, pending):
        video_id = item["video"]
        if item["kind"] == "frames":
            stream = item["stream"]
            parts = pending.setdefault(video_id, {}).setdefault(stream, [])
            if item["start"] != sum(len(p) for p in parts):
                raise RuntimeError(f"frames of {video_id!r} arrived out of order")
            clock = time.perf_counter()
            parts.append(nets[stream](item["data"]))
            tally.network_s += time.perf_counter() - clock
            if stream == todo[video_id][0]:
                tally.frames += len(item["data"])
                frames_bar.update(len(item["data"]))
            continue
        videos_bar.update(1)
        parts = pending.pop(video_id, {})
        streams_todo = {s: writers[s] for s in todo[video_id]}
        if item["kind"] == "error":
            _fail(streams_todo, tally, video_id, item["message"], item["source"])
            continue
        for key, seconds in item["timings"].items():
            tally.worker_s[key] += seconds
        # Truncated videos kept by keep_partial say so in their attributes.
        marks = (
            {"partial": True, "declared_frames": item["declared_frames"]} if item["partial"] else {}
        )
        for stream, writer in streams_todo.items():
            try:
                writer.write(
                    video_id,
                    np.concatenate(parts[stream]),
                    fps=item["fps"],
                    source=os.path.abspath(item["source"]),
                    source_frames=item["source_frames"],
                    **marks,
                )
            except ValueError as exc:  # features the cache refuses (NaN from a broken checkpoint)
                _fail({stream: writer}, tally, video_id, str(exc), item["source"])
            except OSError as exc:
                raise RunStoppedError(str(exc)) from None
            else:
                tally.done[stream] += 1
        if video_id not in tally.failed:
            logger.info("saved %s (%d frames)", video_id, item["n_frames"])
