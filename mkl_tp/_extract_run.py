"""The extraction run behind ``python -m mkl_tp.extract``: videos in, whole videos written.

:mod:`mkl_tp.extract` parses the command line and calls these steps in turn: choose this
run's videos (``_plan``, :func:`shard_of`), build the networks, open one
:class:`mkl_tp.store.FeatureWriter` per stream, then ``_run`` and ``_report``. The two
errors it turns into exit codes (``_UsageError``: 2, ``_Stopped``: 1) are defined here.

Worker processes (a torch ``DataLoader`` over videos) decode frames and compute optical
flow, sending batches of network inputs; the main process runs batched inference and
writes each video once all its frames are through (``_consume``). A video that
cannot be decoded is recorded under ``/failed`` and the run goes on.
"""

import hashlib
import inspect
import logging
import multiprocessing
import os
import sys
import time

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from mkl_tp import backbone, store
from mkl_tp.backbone import WeightsError, build_backbone, resolve_device
from mkl_tp.video import NetworkInputs, VideoError, find_videos, select_listed

# Logged under the command's name, as before the run had a module of its own.
logger = logging.getLogger("mkl_tp.extract")

_MAX_SHOWN_FAILURES = 10


class _UsageError(Exception):
    """The run cannot start: bad arguments, inputs, weights or output (exit code 2)."""


class _Stopped(Exception):
    """The run stopped part-way (exit code 1): writing failed or a worker died.

    Every video committed before is kept.
    """


def shard_of(video_id, count):
    """Return the shard (0..count-1) that processes ``video_id``.

    The first 8 bytes of the id's SHA-1: deterministic across machines and Python
    runs (unlike ``hash``), well mixed even for near-identical names, and a video keeps
    its shard when the list of videos grows.
    """
    return int.from_bytes(hashlib.sha1(video_id.encode("utf-8")).digest()[:8], "big") % count


# -- setting up a run ------------------------------------------------------------------
def _plan(args, streams):
    """Videos of this run: {id: path}, listed-but-missing ids, and the shard filter."""
    try:
        videos = find_videos(args.src)
    except (FileNotFoundError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    missing = []
    if args.list:
        try:
            videos, missing = select_listed(videos, args.list)
        except (OSError, ValueError) as exc:
            raise _UsageError(f"cannot use --list {args.list}: {exc}") from None
        if not videos:
            raise _UsageError(f"none of the videos listed in {args.list} is under {args.src}")
    elif not videos:
        raise _UsageError(f"no videos or frame folders under {args.src}")
    if args.shard_spec is not None:
        index, count = args.shard_spec
        videos = {i: p for i, p in videos.items() if shard_of(i, count) == index}
        missing = [i for i in missing if shard_of(i, count) == index]
    return videos, missing


def _build_nets(args, streams):
    try:
        device = resolve_device(args.device)
        nets = {}
        for stream in streams:
            weights = args.weights if stream == "rgb" else (args.flow_weights or args.weights)
            nets[stream] = build_backbone(args.arch, weights, in_channels=3 if stream == "rgb" else 20,
                                          seed=args.seed, device=device, progress=not args.quiet)
        return nets
    except (WeightsError, ValueError) as exc:
        raise _UsageError(str(exc)) from None


def _stream_info(stream, net, args):
    info = {
        "stream": stream,
        "arch": net.arch,
        "weights": net.weights,
        "weights_digest": net.digest,
        "feature_dim": net.feature_dim,
        "dtype": args.dtype,
        "input_channels": net.in_channels,
        "short_side": args.short_side,
        "crop": args.crop,
        "preprocessing": "every decoded frame; shorter side resized to short_side (OpenCV area "
        "interpolation when shrinking), centre crop, divided by 255, normalised with "
        "normalisation_mean/std",
    }
    if stream == "rgb":
        info["normalisation_mean"], info["normalisation_std"] = list(backbone.RGB_MEAN), list(backbone.RGB_STD)
    else:
        info["normalisation_mean"], info["normalisation_std"] = [backbone.FLOW_MEAN], [backbone.FLOW_STD]
        info.update(
            flow_method=args.flow_method,
            flow_bound=args.flow_bound,
            flow_stack=10,
            flow_encoding="flow from frame j to j+1 on grey resized frames, clipped to "
            "+-flow_bound px, u8 = round((f + bound) * 255 / (2 * bound)); stack of frame t = "
            "flows min(t + k, T - 2), k = 0..9, x/y interleaved; a 1-frame video gets zero motion (128)",
        )
    if args.shard_spec is not None:
        info["shard"] = "{}/{}".format(*args.shard_spec)
    return info


def _open_writers(paths, infos):
    writers = {}
    try:
        for stream, path in paths.items():
            writers[stream] = store.FeatureWriter(path, infos[stream]).open()
    except BaseException as exc:
        for writer in writers.values():
            writer.close()
        if isinstance(exc, (OSError, ValueError)):  # unwritable, locked, another extraction's file
            raise _UsageError(str(exc)) from None
        raise
    return writers


# -- the pipeline ---------------------------------------------------------------------
def _video_items(video_id, path, streams, options, batch_size):
    """Items for the main process: frame batches per stream, then an end (or error) item."""
    buffers = {stream: [] for stream in streams}
    starts = dict.fromkeys(streams, 0)

    def batch(stream):
        data = torch.from_numpy(np.stack(buffers[stream]))
        item = {"kind": "frames", "video": video_id, "stream": stream, "start": starts[stream], "data": data}
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
        yield {"kind": "end", "video": video_id, "source": path, "n_frames": inputs.n_frames,
               "fps": inputs.fps, "timings": inputs.timings}
    except Exception as exc:  # one bad video must not stop the others
        logger.debug("failed on %s", path, exc_info=True)
        message = str(exc) if isinstance(exc, VideoError) else f"{path}: {type(exc).__name__}: {exc}"
        yield {"kind": "error", "video": video_id, "source": path, "message": message}


class _VideoInputs(torch.utils.data.IterableDataset):
    """Network inputs of a list of videos; each worker takes every n-th video, in order."""

    def __init__(self, jobs, options, batch_size):
        self.jobs, self.options, self.batch_size = jobs, options, batch_size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        mine = self.jobs if info is None else self.jobs[info.id :: info.num_workers]
        for video_id, path, streams in mine:
            yield from _video_items(video_id, path, streams, self.options, self.batch_size)


def _init_worker(_):
    cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV threads would oversubscribe


def _loader(dataset, workers, pin_memory):
    if workers and multiprocessing.current_process().daemon:
        logger.warning("running inside a daemon process (e.g. a Dask worker): decoding in the main process")
        workers = 0
    kwargs = {"batch_size": None, "num_workers": workers, "pin_memory": pin_memory}
    if workers:
        # Forked workers deadlock when the parent has already used OpenCV's thread pool
        # (a second extraction in the same process); forkserver children start clean.
        context = multiprocessing.get_context("forkserver")
        # Heavy imports once in the server; not mkl_tp.extract itself, which the
        # children run as their __main__ when it is the program.
        context.set_forkserver_preload(["av", "mkl_tp.backbone", "mkl_tp.video"])
        kwargs.update(prefetch_factor=4, worker_init_fn=_init_worker, multiprocessing_context=context)
        if "in_order" in inspect.signature(torch.utils.data.DataLoader).parameters:
            kwargs["in_order"] = False  # a long video in one worker must not hold up the others
    return torch.utils.data.DataLoader(dataset, **kwargs)


class _Tally:
    """Counts for the summary, per stream, and where the time went."""

    def __init__(self, streams):
        self.done = dict.fromkeys(streams, 0)
        self.skipped = dict.fromkeys(streams, 0)
        self.failed_in = dict.fromkeys(streams, 0)
        self.failed = {}
        self.frames = 0
        self.network_s = 0.0
        self.worker_s = {"decode": 0.0, "flow": 0.0, "resize": 0.0}


def _run(args, streams, nets, videos, missing, writers, tally):
    """Extract every video that some stream still lacks, writing each as it completes."""
    jobs = []
    for video_id, path in videos.items():
        todo = tuple(s for s in streams if video_id not in writers[s].completed)
        for stream in set(streams) - set(todo):
            tally.skipped[stream] += 1
        if todo:
            jobs.append((video_id, path, todo))
    for video_id in missing:
        _fail(writers, tally, video_id, f"listed in {args.list} but not found under {args.src}", "")
    if not jobs:
        return
    options = dict(short_side=args.short_side, crop=args.crop, flow_method=args.flow_method,
                   flow_bound=args.flow_bound)
    device = nets[streams[0]].device
    loader = _loader(_VideoInputs(jobs, options, args.batch_size), min(args.workers, len(jobs)),
                     device.type == "cuda")
    with tqdm(total=len(jobs), unit="video", disable=True if args.quiet else None, dynamic_ncols=True) as progress:
        _consume(loader, writers, nets, {j[0]: j[2] for j in jobs}, tally, progress)


def _fail(writers, tally, video_id, message, source):
    tally.failed[video_id] = message
    for stream, writer in writers.items():
        try:
            writer.record_failure(video_id, message, source=source)
        except OSError as exc:
            raise _Stopped(str(exc)) from None
        tally.failed_in[stream] += 1
    logger.info("failed %s: %s", video_id, message)


def _items(loader, pending):
    """Iterate the loader; a worker that dies (a crash inside a decoder) stops the run."""
    iterator = iter(loader)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except RuntimeError as exc:
            if "DataLoader worker" not in str(exc):
                raise
            busy = ", ".join(repr(v) for v in pending) or "unknown"
            raise _Stopped(f"a decoding worker died ({exc}); videos in progress: {busy}. The videos "
                           "saved so far are kept: run again to resume, with --workers 0 to see the culprit") from None


def _consume(loader, writers, nets, todo, tally, progress):
    pending = {}
    start = time.perf_counter()
    for item in _items(loader, pending):
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
                rate = tally.frames / (time.perf_counter() - start)
                progress.set_postfix_str(f"{rate:.1f} frames/s", refresh=False)
            continue
        progress.update(1)
        parts = pending.pop(video_id, {})
        streams_todo = {s: writers[s] for s in todo[video_id]}
        if item["kind"] == "error":
            _fail(streams_todo, tally, video_id, item["message"], item["source"])
            continue
        for key, seconds in item["timings"].items():
            tally.worker_s[key] += seconds
        for stream, writer in streams_todo.items():
            try:
                writer.write(video_id, np.concatenate(parts[stream]), fps=item["fps"],
                             source=os.path.abspath(item["source"]))
            except ValueError as exc:  # features the cache refuses (NaN from a broken checkpoint)
                _fail({stream: writer}, tally, video_id, str(exc), item["source"])
            except OSError as exc:
                raise _Stopped(str(exc)) from None
            else:
                tally.done[stream] += 1
        if video_id not in tally.failed:
            logger.info("saved %s (%d frames)", video_id, item["n_frames"])


def _report(tally, streams, paths):
    for stream in streams:
        print(f"{stream}: {tally.done[stream]} done, {tally.skipped[stream]} skipped, "
              f"{tally.failed_in[stream]} failed -> {paths[stream]}")
    for video_id, message in list(tally.failed.items())[:_MAX_SHOWN_FAILURES]:
        print(f"failed: {video_id}: {message}", file=sys.stderr)
    if len(tally.failed) > _MAX_SHOWN_FAILURES:
        print(f"... and {len(tally.failed) - _MAX_SHOWN_FAILURES} more (see /failed in the files)", file=sys.stderr)
    shares = dict(tally.worker_s, network=tally.network_s)
    busy = sum(shares.values())
    if busy:
        logger.info("busy time: " + ", ".join(f"{k} {v:.1f} s ({100 * v / busy:.0f}%)" for k, v in shares.items()))
