"""Extraction: videos in, per-frame ResNet features out, one HDF5 cache per stream.

:func:`extract_features` is the library behind ``python -m mkl_tp.extract``: it chooses the
run's videos (:func:`mkl_tp.sources.find_videos`, a list file, :func:`shard_of`), builds the
networks (:mod:`mkl_tp.backbone`), opens one :class:`mkl_tp.store.FeatureWriter` per stream
and returns a :class:`mkl_tp.store.RunSummary`.

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
import time

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from . import backbone
from .backbone import build_backbone, resolve_device
from .sources import find_videos, select_listed
from .store import FeatureWriter, RunStoppedError, RunSummary, output_path, parse_shard
from .video import NetworkInputs, OpticalFlow, VideoError

__all__ = ["STREAMS", "ExtractionInterrupted", "default_workers", "extract_features", "resolve_shard",
           "shard_of"]

logger = logging.getLogger(__name__)

STREAMS = ("rgb", "flow")


class ExtractionInterrupted(KeyboardInterrupt):
    """SIGINT (or a SIGTERM turned into one) stopped the run; the files are closed.

    Attributes
    ----------
    saved : int
        Videos saved (in every stream) by this run before it stopped; they are kept.
    """

    def __init__(self, saved):
        super().__init__(saved)
        self.saved = saved


def shard_of(video_id, count):
    """Return the shard (0..count-1) that processes ``video_id``.

    The first 8 bytes of the id's SHA-1: deterministic across machines and Python
    runs (unlike ``hash``), well mixed even for near-identical names, and a video keeps
    its shard when the list of videos grows.
    """
    return int.from_bytes(hashlib.sha1(video_id.encode("utf-8")).digest()[:8], "big") % count


def resolve_shard(spec):
    """Return ``(I, N)`` for ``None``, an ``(I, N)`` pair, ``"I/N"`` or ``"auto"``.

    ``"auto"`` reads ``RANK``/``WORLD_SIZE`` (torchrun) or ``SLURM_ARRAY_TASK_ID``/
    ``SLURM_ARRAY_TASK_COUNT`` (minus ``SLURM_ARRAY_TASK_MIN``) from the environment.

    Raises
    ------
    ValueError
        Not I/N, I outside 0..N-1, or ``"auto"`` without a scheduler's variables; the
        message starts with the spec.
    """
    if spec is None:
        return None
    if spec != "auto":
        return parse_shard(spec if isinstance(spec, str) else "{}/{}".format(*spec))
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        index, count = int(env["RANK"]), int(env["WORLD_SIZE"])
    elif "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        count = int(env["SLURM_ARRAY_TASK_COUNT"])
    else:
        raise ValueError("auto needs RANK/WORLD_SIZE (torchrun) or "
                         "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT in the environment")
    return parse_shard(f"{index}/{count}")


def default_workers():
    """Decoding processes by default: the cores less one (for inference), at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def extract_features(src, out, *, streams=STREAMS, video_list=None, arch="resnet101",
                     weights="imagenet", flow_weights=None, seed=0, device="auto", batch_size=64,
                     dtype="float16", short_side=256, crop=224, flow_method="dis", flow_bound=20.0,
                     workers=None, shard=None, progress=False):
    """Extract per-frame features of every video under ``src`` into HDF5 caches.

    Parameters
    ----------
    src : str or os.PathLike
        Folder of video files and frame-image folders (:func:`mkl_tp.sources.find_videos`).
    out : str
        ``NAME``: writes ``NAME_<stream>.h5`` (:func:`mkl_tp.store.output_path`); a name
        ending in ``.h5`` is the file itself when one stream is extracted.
    streams : "both" or sequence of {"rgb", "flow"}, default ("rgb", "flow")
        Appearance and/or motion; a video is decoded once for all of them.
    video_list : str or os.PathLike, optional
        Only the videos listed in this file (:func:`mkl_tp.sources.read_list`); listed
        videos missing under ``src`` are recorded as failures.
    arch, weights, flow_weights, seed, device
        The networks (:func:`mkl_tp.backbone.build_backbone`); ``flow_weights`` defaults
        to ``weights``.
    batch_size : int, default 64
        Frames per network batch.
    dtype : {"float16", "float32"}, default "float16"
        Storage type of the features.
    short_side, crop, flow_method, flow_bound
        Preprocessing (:class:`mkl_tp.video.NetworkInputs`).
    workers : int, optional
        Decoding processes (0: in this process); :func:`default_workers` when omitted.
        They start from a ``forkserver``, which imports the calling script again: call
        this under ``if __name__ == "__main__":``.
    shard : (int, int) or str, optional
        Part I of N (:func:`resolve_shard`): the videos with :func:`shard_of` equal to I,
        written to ``NAME_<stream>.shard-I-of-N.h5``.
    progress : bool, default False
        A progress bar over videos (on a terminal), and the weights download's.

    Returns
    -------
    RunSummary
        Videos already complete in the caches are skipped; videos that fail are recorded
        under ``/failed`` and the run goes on.

    Raises
    ------
    ValueError, OSError
        The run cannot start: options, ``src``, the list, weights, or an output that
        cannot be written or belongs to another extraction. Nothing was written.
    RunStoppedError
        Writing failed or a decoding worker died; the videos saved before are kept.
    ExtractionInterrupted
        Interrupted (a ``KeyboardInterrupt``); the videos saved before are kept.
    """
    streams = STREAMS if streams == "both" else (streams,) if isinstance(streams, str) else tuple(streams)
    workers = default_workers() if workers is None else workers
    _check_options(streams, out, batch_size, short_side, crop, workers, flow_bound)
    shard = resolve_shard(shard)
    if "flow" in streams:
        OpticalFlow(flow_method)
    paths = {s: output_path(out, s, shard) for s in streams}
    videos, missing = _plan(src, video_list, shard)
    nets = _build_nets(streams, arch, weights, flow_weights, seed, device, progress)
    settings = dict(dtype=dtype, short_side=short_side, crop=crop, flow_method=flow_method,
                    flow_bound=flow_bound, shard=shard)
    writers = _open_writers(paths, {s: _stream_info(s, nets[s], **settings) for s in streams})
    tally = _Tally(streams)
    before = set.intersection(*(set(w.completed) for w in writers.values()))
    options = dict(short_side=short_side, crop=crop, flow_method=flow_method, flow_bound=flow_bound)
    try:
        _run(streams, nets, videos, missing, writers, tally, options, batch_size, workers, progress,
             f"listed in {video_list} but not found under {src}")
    except KeyboardInterrupt as exc:
        saved = len(set.intersection(*(w.completed for w in writers.values())) - before)
        raise ExtractionInterrupted(saved) from exc
    finally:
        for writer in writers.values():
            writer.close()
    return RunSummary(paths=paths, done=tally.done, skipped=tally.skipped, failed=tally.failed_in,
                      failures=tally.failed, busy_seconds=dict(tally.worker_s, network=tally.network_s))


# -- setting up a run ------------------------------------------------------------------
def _check_options(streams, out, batch_size, short_side, crop, workers, flow_bound):
    unknown = set(streams) - set(STREAMS)
    if unknown or not streams:
        raise ValueError(f"streams must be 'both' or some of {STREAMS}, got {streams!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if short_side < 1 or crop < 0:
        raise ValueError("short_side must be positive and crop not negative")
    if crop > short_side:
        raise ValueError(f"crop {crop} is larger than short_side {short_side}")
    if workers < 0:
        raise ValueError("workers must be 0 or more")
    if not flow_bound > 0:
        raise ValueError("flow_bound must be positive")
    if len(streams) > 1 and str(out).endswith(".h5"):
        raise ValueError("two streams write two files: give out a NAME without .h5")


def _plan(src, video_list, shard):
    """Videos of this run: {id: path}, listed-but-missing ids."""
    videos = find_videos(src)
    missing = []
    if video_list is not None:
        try:
            videos, missing = select_listed(videos, video_list)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot use --list {video_list}: {exc}") from None
        if not videos:
            raise ValueError(f"none of the videos listed in {video_list} is under {src}")
    elif not videos:
        raise ValueError(f"no videos or frame folders under {src}")
    if shard is not None:
        index, count = shard
        videos = {i: p for i, p in videos.items() if shard_of(i, count) == index}
        missing = [i for i in missing if shard_of(i, count) == index]
    return videos, missing


def _build_nets(streams, arch, weights, flow_weights, seed, device, progress):
    device = resolve_device(device)
    nets = {}
    for stream in streams:
        stream_weights = weights if stream == "rgb" else (flow_weights or weights)
        nets[stream] = build_backbone(arch, stream_weights, in_channels=3 if stream == "rgb" else 20,
                                      seed=seed, device=device, progress=progress)
    return nets


def _stream_info(stream, net, *, dtype, short_side, crop, flow_method, flow_bound, shard):
    info = {
        "stream": stream,
        "arch": net.arch,
        "weights": net.weights,
        "weights_digest": net.digest,
        "feature_dim": net.feature_dim,
        "dtype": dtype,
        "input_channels": net.in_channels,
        "short_side": short_side,
        "crop": crop,
        "preprocessing": "every decoded frame; shorter side resized to short_side (OpenCV area "
        "interpolation when shrinking), centre crop, divided by 255, normalised with "
        "normalisation_mean/std",
    }
    if stream == "rgb":
        info["normalisation_mean"], info["normalisation_std"] = list(backbone.RGB_MEAN), list(backbone.RGB_STD)
    else:
        info["normalisation_mean"], info["normalisation_std"] = [backbone.FLOW_MEAN], [backbone.FLOW_STD]
        info.update(
            flow_method=flow_method,
            flow_bound=flow_bound,
            flow_stack=10,
            flow_encoding="flow from frame j to j+1 on grey resized frames, clipped to "
            "+-flow_bound px, u8 = round((f + bound) * 255 / (2 * bound)); stack of frame t = "
            "flows min(t + k, T - 2), k = 0..9, x/y interleaved; a 1-frame video gets zero motion (128)",
        )
    if shard is not None:
        info["shard"] = "{}/{}".format(*shard)
    return info


def _open_writers(paths, infos):
    writers = {}
    try:
        for stream, path in paths.items():
            writers[stream] = FeatureWriter(path, infos[stream]).open()
    except BaseException:
        for writer in writers.values():
            writer.close()
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


def _run(streams, nets, videos, missing, writers, tally, options, batch_size, workers, progress,
         missing_message):
    """Extract every video that some stream still lacks, writing each as it completes."""
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
    loader = _loader(_VideoInputs(jobs, options, batch_size), min(workers, len(jobs)), device.type == "cuda")
    with tqdm(total=len(jobs), unit="video", disable=None if progress else True, dynamic_ncols=True) as bar:
        _consume(loader, writers, nets, {j[0]: j[2] for j in jobs}, tally, bar)


def _fail(writers, tally, video_id, message, source):
    tally.failed[video_id] = message
    for stream, writer in writers.items():
        try:
            writer.record_failure(video_id, message, source=source)
        except OSError as exc:
            raise RunStoppedError(str(exc)) from None
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
            raise RunStoppedError(f"a decoding worker died ({exc}); videos in progress: {busy}. The videos "
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
                raise RunStoppedError(str(exc)) from None
            else:
                tally.done[stream] += 1
        if video_id not in tally.failed:
            logger.info("saved %s (%d frames)", video_id, item["n_frames"])
