"""Extraction: videos in, per-frame CNN features out, one HDF5 cache per stream.

:func:`extract_features` is the library behind ``python -m mkl_tp.extract``: it chooses the
run's videos (:func:`mkl_tp.sources.find_videos`, a list file, :func:`shard_of`), builds the
networks (:mod:`mkl_tp.extraction.backbone`), opens one :class:`mkl_tp.store.FeatureWriter`
per stream and returns a :class:`mkl_tp.store.RunSummary`.

Worker processes (a torch ``DataLoader`` over videos) decode frames and compute optical
flow, sending batches of network inputs; the main process runs batched inference and
writes each video once all its frames are through (:mod:`mkl_tp.extraction._workers`). A video that
cannot be decoded, or is truncated, is recorded under ``/failed`` and the run goes on.

torch, torchvision, OpenCV and PyAV (the ``extract`` extra) are imported when a run
starts, not with this module, so the command line answers ``--help`` at once.
"""

import hashlib
import logging
import math
import os

from ..sources.walk import find_videos, select_listed
from ..store import (
    FORMAT,
    VOLATILE_INFO,
    FeatureWriter,
    RunStoppedError,
    RunSummary,
    list_videos,
    output_path,
    parse_shard,
    read_info,
)
from ..store._format import check_same_extraction

__all__ = [
    "STREAMS",
    "ExtractionInterrupted",
    "default_workers",
    "extract_features",
    "resolve_shard",
    "shard_of",
]

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
        raise ValueError(
            "auto needs RANK/WORLD_SIZE (torchrun) or "
            "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT in the environment"
        )
    return parse_shard(f"{index}/{count}")


def default_workers():
    """Decoding processes by default: the cores less one (for inference), at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def extract_features(
    src,
    out,
    *,
    streams=STREAMS,
    video_list=None,
    arch="resnet101",
    weights="imagenet",
    flow_weights=None,
    seed=0,
    device="auto",
    batch_size=64,
    dtype="float16",
    short_side=256,
    crop=224,
    flow_method="dis",
    flow_bound=20.0,
    sample_fps=None,
    sample_stride=None,
    sample_frames=None,
    keep_partial=False,
    verify=False,
    workers=None,
    shard=None,
    progress=False,
):
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
        The networks (:func:`mkl_tp.extraction.backbone.build_backbone`); ``flow_weights`` defaults
        to ``weights``.
    batch_size : int, default 64
        Frames per network batch.
    dtype : {"float16", "float32"}, default "float16"
        Storage type of the features.
    short_side, crop, flow_method, flow_bound
        Preprocessing (:class:`mkl_tp.extraction.NetworkInputs`).
    sample_fps : float, optional
        Keep the frames on screen every ``1 / sample_fps`` seconds, by the decoded frames'
        timestamps (:class:`mkl_tp.extraction.FrameSampler`); frame folders have none and
        fail with this option.
    sample_stride : int, optional
        Keep every ``sample_stride``-th decoded frame.
    sample_frames : int, optional
        Keep this many frames per video, evenly spaced: of its T decoded frames, the one
        at the centre of each of ``sample_frames`` equal segments (the rule of
        :func:`mkl_tp.pyramid.sample_frames` and ``fit --train-frames``); a video of
        T <= ``sample_frames`` frames keeps all T (no frame is repeated). T is
        counted by decoding, so such videos are decoded twice. At most one of the three
        options; the one given is recorded in the files' root attributes, and the motion
        input of a kept frame is the stack of flows between the decoded frames from it on.
    keep_partial : bool, default False
        Store the decoded frames of truncated videos (fewer frames, or a shorter span,
        than their container declares), with ``partial=True`` and ``declared_frames`` in
        their attributes; by default they are recorded under ``/failed``.
    verify : bool, default False
        Before extracting, read every video already stored and check its Fletcher-32
        checksums (:meth:`mkl_tp.store.FeatureWriter.remove_damaged`); damaged videos
        are moved under ``/failed`` and extracted again. It reads the whole file.
    workers : int, optional
        Decoding processes (0: in this process); :func:`default_workers` when omitted.
        They start from a ``forkserver``, which imports the calling script again: call
        this under ``if __name__ == "__main__":``.
    shard : (int, int) or str, optional
        Part I of N (:func:`resolve_shard`): the videos with :func:`shard_of` equal to I,
        written to ``NAME_<stream>.shard-I-of-N.h5``.
    progress : bool, default False
        Progress bars over videos and frames (on a terminal), and the weights download's.
        Log records print over them unless they go through
        ``tqdm.contrib.logging.logging_redirect_tqdm``, as the command line does.

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
    from . import _workers
    from .backbone import check_input_size
    from .flow import OpticalFlow

    streams = (
        STREAMS if streams == "both" else (streams,) if isinstance(streams, str) else tuple(streams)
    )
    workers = default_workers() if workers is None else workers
    check_options(
        streams,
        out,
        batch_size,
        short_side,
        crop,
        workers,
        flow_bound,
        sample_fps,
        sample_stride,
        sample_frames=sample_frames,
    )
    shard = resolve_shard(shard)
    if "flow" in streams:
        OpticalFlow(flow_method)
    # An unknown arch, a crop it cannot take (vit_b_16 needs 224 exactly) or a first layer
    # the motion stream cannot use: refused now, on the meta device, before any output.
    for stream in streams:
        check_input_size(arch, crop or short_side, in_channels=3 if stream == "rgb" else 20)
    paths = {s: output_path(out, s, shard) for s in streams}
    videos, missing = _plan(src, video_list, shard)
    # How frames become inputs: recorded in each file and passed to the decoding workers.
    inputs = dict(
        short_side=short_side,
        crop=crop,
        flow_method=flow_method,
        flow_bound=flow_bound,
        sample_fps=sample_fps,
        sample_stride=sample_stride,
        sample_frames=sample_frames,
    )
    # The work is planned before the networks are built (seconds): an output written by
    # another extraction is refused, and a resume with nothing left to do returns, first.
    stored = _check_outputs(
        paths, {s: _stream_info(s, None, dtype=dtype, shard=shard, **inputs) for s in streams}
    )
    requested = {
        s: (arch, _weights_name(arch, weights if s == "rgb" else (flow_weights or weights), seed))
        for s in streams
    }
    if not verify and _nothing_to_do(stored, requested, videos, missing):
        logger.info("every video is already in %s: nothing to do", ", ".join(paths.values()))
        tally = _workers.Tally(streams)
        tally.skipped = dict.fromkeys(streams, len(videos))
        return _summary(paths, tally)
    nets = _build_nets(streams, arch, weights, flow_weights, seed, device, progress)
    infos = {s: _stream_info(s, nets[s], dtype=dtype, shard=shard, **inputs) for s in streams}
    writers = _open_writers(paths, infos)
    tally = _workers.Tally(streams)
    options = dict(keep_partial=keep_partial, **inputs)
    before = None
    try:
        if verify:
            _remove_damaged(writers)
        before = set.intersection(*(set(w.completed) for w in writers.values()))
        _workers.run(
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
            f"listed in {video_list} but not found under {src}",
        )
    except KeyboardInterrupt as exc:
        saved = (
            0
            if before is None
            else len(set.intersection(*(w.completed for w in writers.values())) - before)
        )
        raise ExtractionInterrupted(saved) from exc
    finally:
        for writer in writers.values():
            writer.close()
    return _summary(paths, tally)


def _summary(paths, tally):
    """The :class:`~mkl_tp.store.RunSummary` of a run's counts (``_workers.Tally``)."""
    return RunSummary(
        paths=paths,
        done=tally.done,
        skipped=tally.skipped,
        failed=tally.failed_in,
        failures=tally.failed,
        busy_seconds=dict(tally.worker_s, network=tally.network_s),
    )


# -- setting up a run ------------------------------------------------------------------
def check_options(
    streams,
    out,
    batch_size,
    short_side,
    crop,
    workers,
    flow_bound,
    sample_fps=None,
    sample_stride=None,
    spell=str,
    *,
    sample_frames=None,
):
    """Refuse options :func:`extract_features` cannot run with, before anything is built.

    ``spell`` turns a parameter name into the name the caller's user knows (the command
    line passes ``batch_size -> --batch-size``), so both speak of the option they were given.
    """
    unknown = set(streams) - set(STREAMS)
    if unknown or not streams:
        raise ValueError(f"streams must be 'both' or some of {STREAMS}, got {streams!r}")
    if batch_size < 1:
        raise ValueError(f"{spell('batch_size')} must be at least 1")
    if short_side < 1 or crop < 0:
        raise ValueError(f"{spell('short_side')} must be positive and {spell('crop')} not negative")
    if crop > short_side:
        raise ValueError(
            f"{spell('crop')} {crop} is larger than {spell('short_side')} {short_side}"
        )
    if workers < 0:
        raise ValueError(f"{spell('workers')} must be 0 or more")
    if not flow_bound > 0:
        raise ValueError(f"{spell('flow_bound')} must be positive")
    if len(streams) > 1 and str(out).endswith(".h5"):
        raise ValueError(f"two streams write two files: give {spell('out')} a NAME without .h5")
    given = [
        spell(name)
        for name, value in (
            ("sample_fps", sample_fps),
            ("sample_stride", sample_stride),
            ("sample_frames", sample_frames),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"sample by {' or '.join(given)}, not both")
    if sample_fps is not None and not (math.isfinite(sample_fps) and sample_fps > 0):
        raise ValueError(
            f"{spell('sample_fps')} must be a positive number of frames per second, "
            f"got {sample_fps}"
        )
    if sample_stride is not None and (int(sample_stride) != sample_stride or sample_stride < 1):
        raise ValueError(f"{spell('sample_stride')} must be at least 1, got {sample_stride}")
    if sample_frames is not None and (int(sample_frames) != sample_frames or sample_frames < 1):
        raise ValueError(f"{spell('sample_frames')} must be at least 1, got {sample_frames}")


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


# Root attributes that only the built network knows; the others are known before it is built.
_NET_INFO = frozenset({"arch", "weights", "weights_digest", "feature_dim", "input_channels"})


def _check_outputs(paths, infos):
    """Refuse outputs written by another extraction, before the networks are built.

    ``infos`` are the streams' descriptions without the network's attributes
    (:data:`_NET_INFO`, checked when the writers open). Returns ``{stream: (root
    attributes, complete ids)}`` of the outputs that exist and can be read; an output
    that cannot be read here is left to :class:`~mkl_tp.store.FeatureWriter` to explain.
    """
    stored = {}
    for stream, path in paths.items():
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            continue
        try:
            attrs = read_info(path)
            if attrs.get("format") != FORMAT:
                continue
            completed = set(list_videos(path))
        except (OSError, ValueError):
            continue
        info = {key: value for key, value in infos[stream].items() if value is not None}
        ignored = _NET_INFO | VOLATILE_INFO | {"format", "merged_from", "layout"}
        check_same_extraction(path, attrs, info, (set(info) | set(attrs)) - ignored)
        stored[stream] = (attrs, completed)
    return stored


def _weights_name(arch, weights, seed):
    """The ``weights`` attribute a network built from ``weights`` records (None: unknown)."""
    from .backbone import WeightsError, _imagenet_entry, _is_imagenet

    if weights == "random":
        return f"random(seed={seed})"
    if _is_imagenet(weights):
        try:  # torchvision's name, e.g. ResNet101_Weights.IMAGENET1K_V2: no download
            return str(_imagenet_entry(arch, weights))
        except (WeightsError, ValueError):
            return None
    return os.path.abspath(weights)


def _nothing_to_do(stored, requested, videos, missing):
    """Whether every stream's output already holds every video, from the same networks.

    ``requested`` maps a stream to ``(arch, weights name)`` (:func:`_weights_name`); an
    unknown name (None) is never a match, so the networks are built and the writers decide.
    """
    if missing or len(stored) < len(requested):
        return False
    for stream, (arch, weights) in requested.items():
        attrs, completed = stored[stream]
        if weights is None or (attrs.get("arch"), attrs.get("weights")) != (arch, weights):
            return False
        if not set(videos) <= completed:
            return False
    return True


def _build_nets(streams, arch, weights, flow_weights, seed, device, progress):
    from .backbone import build_backbone, check_weights, resolve_device

    # Every stream's weights are found first: a missing file is one line before any
    # network is built, not after the first one.
    for stream in streams:
        check_weights(
            arch, weights if stream == "rgb" else (flow_weights or weights), progress=progress
        )
    device = resolve_device(device)
    nets = {}
    for stream in streams:
        stream_weights = weights if stream == "rgb" else (flow_weights or weights)
        nets[stream] = build_backbone(
            arch,
            stream_weights,
            in_channels=3 if stream == "rgb" else 20,
            seed=seed,
            device=device,
            progress=progress,
        )
    return nets


def _stream_info(
    stream,
    net,
    *,
    dtype,
    short_side,
    crop,
    flow_method,
    flow_bound,
    sample_fps,
    sample_stride,
    sample_frames,
    shard,
):
    from . import backbone

    info = {
        "stream": stream,
        "dtype": dtype,
        "short_side": short_side,
        "crop": crop,
        "preprocessing": "every decoded frame; shorter side resized to short_side (OpenCV area "
        "interpolation when shrinking), centre crop, divided by 255, normalised with "
        "normalisation_mean/std",
    }
    # Sampling attributes exist only in sampled caches, so caches of every frame written
    # before sampling existed keep the same description and can still be extended.
    if sample_fps is not None:
        info["sample_fps"] = float(sample_fps)
        info["preprocessing"] = (
            "the frames on screen at t0 + k / sample_fps seconds (t0: the first frame's "
            "timestamp); " + info["preprocessing"].split("; ", 1)[1]
        )
    if sample_stride is not None:
        info["sample_stride"] = int(sample_stride)
        info["preprocessing"] = (
            "every sample_stride-th decoded frame; " + info["preprocessing"].split("; ", 1)[1]
        )
    if sample_frames is not None:
        info["sample_frames"] = int(sample_frames)
        info["preprocessing"] = (
            "sample_frames decoded frames per video, floor((k + 1/2) T / sample_frames) for "
            "k < sample_frames (all T when T <= sample_frames); "
            + info["preprocessing"].split("; ", 1)[1]
        )
    if stream == "rgb":
        info["normalisation_mean"], info["normalisation_std"] = (
            list(backbone.RGB_MEAN),
            list(backbone.RGB_STD),
        )
    else:
        info["normalisation_mean"], info["normalisation_std"] = (
            [backbone.FLOW_MEAN],
            [backbone.FLOW_STD],
        )
        info.update(
            flow_method=flow_method,
            flow_bound=flow_bound,
            flow_stack=10,
            flow_encoding="flow from frame j to j+1 on grey resized frames, clipped to "
            "+-flow_bound px, u8 = round((f + bound) * 255 / (2 * bound)); stack of frame t = "
            "flows min(t + k, T - 2), k = 0..9, x/y interleaved; "
            "a 1-frame video gets zero motion (128)",
        )
        if sample_fps is not None or sample_stride is not None or sample_frames is not None:
            info["flow_sampling"] = (
                "t, j and T count decoded frames: the stack of a kept frame "
                "holds the flows between the decoded frames from it on"
            )
    if shard is not None:
        info["shard"] = "{}/{}".format(*shard)
    if net is not None:
        info.update(
            arch=net.arch,
            weights=net.weights,
            weights_digest=net.digest,
            feature_dim=net.feature_dim,
            input_channels=net.in_channels,
        )
    return info


def _remove_damaged(writers):
    """Move the stored videos that fail their checksums under /failed, to extract again."""
    for stream, writer in writers.items():
        try:
            damaged = writer.remove_damaged()
        except OSError as exc:
            raise RunStoppedError(str(exc)) from None
        for message in damaged.values():
            logger.warning("%s: %s; extracting it again", stream, message)


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
