"""``python -m mkl_tp.extract``: videos to per-frame CNN features in HDF5 caches.

Three commands share this entry point (``mkl-tp-extract`` once installed)::

    python -m mkl_tp.extract SRC --out features/NAME --stream rgb|flow|both [options]
    python -m mkl_tp.extract merge features/NAME_rgb.shard-*.h5 --out features/NAME_rgb.h5
    python -m mkl_tp.extract import DIR --out features/NAME_rgb.h5

A bare ``--out`` name (no folder part) is written under ``./features/`` of the current
working directory: ``--out ucf101`` -> ``features/ucf101_rgb.h5``.

This module is the command line only: it parses the arguments and calls
:func:`mkl_tp.extraction.extract_features`, :func:`mkl_tp.store.merge_shards` or
:func:`mkl_tp.store.import_arrays`, then prints their summary. Exit codes are those of
:mod:`mkl_tp._utils.cli`.
"""

import argparse
import logging
import signal
import sys

from tqdm.contrib.logging import logging_redirect_tqdm

from . import __version__
from ._utils.cli import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    UserError,
    configure_logging,
    one_line_errors,
    run_cli,
)
from .extraction.run import (
    STREAMS,
    ExtractionInterrupted,
    check_options,
    default_workers,
    extract_features,
    resolve_shard,
    shard_of,  # noqa: F401 (public here too, where --shard is parsed)
)
from .store import (
    FEATURES_DIR,
    RunStoppedError,
    import_arrays,
    merge_shards,
    output_path,  # noqa: F401 (public here too, where --out is parsed)
    resolve_out,
)

PROG = "python -m mkl_tp.extract"
_MAX_SHOWN_FAILURES = 10
_BARE_OUT = (
    f"; a bare NAME (no folder part) goes to ./{FEATURES_DIR}/ under the current directory "
    "(the repository root when run from a checkout): pass ./NAME to write here"
)
logger = logging.getLogger(__name__)


# -- arguments ------------------------------------------------------------------------
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except the empty ones (None, False) that would only add noise."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _extract_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Extract per-frame features of every frame (or of the frames --fps / --stride / "
            "--frames keep) of every video under SRC with a frozen "
            "CNN (appearance: RGB frames; motion: stacks of 10 optical flows) into "
            "NAME_rgb.h5 / NAME_flow.h5. Re-running the same command resumes and skips "
            "videos already complete. Two more commands: "
            f"'{PROG} merge SHARDS... --out FILE' joins --shard outputs; "
            f"'{PROG} import DIR --out FILE' stores other tools' features as caches "
            "(each has its own --help)."
        ),
        epilog=(
            "exit status: 0 every video extracted; 1 some videos failed (listed under /failed in "
            "the file, truncated videos included) or writing stopped (videos saved before are "
            "kept); 2 the run could not "
            "start (arguments, SRC, weights or output); 130 interrupted. Defaults: dis flow "
            "because TV-L1 costs ~1.7 s per frame pair on one CPU core (pass --flow-method tvl1 "
            "to match motion networks trained on TV-L1 flow); float16 halves the disk for a "
            "~1e-3 relative rounding of features."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "src",
        metavar="SRC",
        help="folder of videos (.avi .mp4 .mkv .webm .mov ...) or of frame-image folders, "
        "searched recursively; the video id is the path relative to SRC without extension",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="NAME",
        help="output name: writes NAME_rgb.h5 and/or NAME_flow.h5 (a NAME ending "
        "in .h5 is used as the file name when one stream is extracted)" + _BARE_OUT,
    )
    parser.add_argument(
        "--stream",
        choices=("rgb", "flow", "both"),
        default="both",
        help="appearance, motion, or both (decoded once)",
    )
    parser.add_argument(
        "--list",
        metavar="FILE",
        help="only the videos listed (one relative path per line, first field; UCF-101 split "
        "files work)",
    )
    parser.add_argument(
        "--arch",
        default="resnet101",
        help="any torchvision classification model (resnet18..152, alexnet, vgg11, vgg19, "
        "densenet121, efficientnet_b0, vit_b_16, ...), classifier removed: the feature is what "
        "it read (AlexNet / VGG: the last hidden 4096-d layer)",
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        metavar="PATH|imagenet|random",
        help="imagenet: torchvision's ImageNet weights from its cache "
        "($TORCH_HOME/hub/checkpoints), downloaded if missing; PATH: a local state dict; random: "
        "seeded random weights, for tests only (recorded)",
    )
    parser.add_argument(
        "--flow-weights",
        metavar="PATH|imagenet|random",
        help="weights of the motion network (default: --weights); 3-channel weights get the "
        "cross-modality 20-channel first layer",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --weights random")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda or cuda:N (auto: CUDA if available, on $LOCAL_RANK under torchrun)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, metavar="N", help="frames per network batch"
    )
    parser.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default="float16",
        help="storage type of the features",
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=256,
        metavar="PX",
        help="resize frames so that their shorter side has PX pixels",
    )
    parser.add_argument(
        "--crop", type=int, default=224, metavar="PX", help="centre crop (0: whole resized frame)"
    )
    parser.add_argument(
        "--flow-method",
        choices=("dis", "farneback", "tvl1"),
        default="dis",
        help="OpenCV optical flow for the motion stream",
    )
    parser.add_argument(
        "--flow-bound",
        type=float,
        default=20.0,
        metavar="PX",
        help="flow is clipped to +-PX pixels then mapped linearly to 0..255",
    )
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument(
        "--fps",
        type=float,
        metavar="F",
        help="keep the frames on screen every 1/F seconds, by the decoded frames' timestamps "
        "(resampling to F frames per second; frame folders have no timestamps: use --stride); "
        "recorded as the files' sample_fps attribute (default: every frame)",
    )
    sampling.add_argument(
        "--stride",
        type=int,
        metavar="K",
        help="keep every K-th decoded frame; recorded as sample_stride (default: every frame). "
        "Either way a kept frame's motion input stacks the flows between the decoded frames from "
        "it on",
    )
    sampling.add_argument(
        "--frames",
        type=int,
        metavar="N",
        help="keep N frames per video, evenly spaced: the centre frame of each of N equal "
        "segments (as fit --train-frames); a video of at most N frames keeps all, none "
        "repeated. Videos are decoded twice (once to count their frames); recorded as "
        "sample_frames",
    )
    parser.add_argument(
        "--keep-partial",
        action="store_true",
        help="store what decodes of a truncated video (fewer frames or a shorter span than its "
        "container declares), marked partial=True; by default such videos are recorded under "
        "/failed",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="first read every video already in the output files and extract again those whose "
        "stored features fail their checksum (reads the whole files)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        metavar="N",
        help="processes that decode videos and compute flow, overlapped with inference (0: in the "
        "main process; the default is the cores less one, at most 8)",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="process only part I of N (0 <= I < N; videos assigned by a hash of their id) into "
        "NAME_<stream>.shard-I-of-N.h5; 'auto' reads RANK/WORLD_SIZE (torchrun) or "
        "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each saved video")
    parser.add_argument("--version", action="version", version=f"mkl_tp {__version__}")
    return one_line_errors(parser)


def _merge_parser():
    parser = argparse.ArgumentParser(
        prog=f"{PROG} merge",
        description="Join the shard files of one extraction (--shard I/N) into one cache. By "
        "default the merged file holds HDF5 external links to the shards (paths relative to "
        "its folder; keep the shards next to it); --copy makes a standalone file.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("shards", nargs="+", metavar="SHARD", help="shard files of one stream")
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="merged cache file" + _BARE_OUT
    )
    parser.add_argument("--copy", action="store_true", help="copy the features instead of linking")
    parser.add_argument(
        "--partial", action="store_true", help="merge even if some shards are missing"
    )
    parser.add_argument("--quiet", action="store_true", help="no summary line")
    return one_line_errors(parser)


def _import_parser():
    parser = argparse.ArgumentParser(
        prog=f"{PROG} import",
        description="Store per-video features under DIR as caches: .npy/.npz (id: the path less "
        "extension), video_features' <stem>_<key>.npy (id: the stem; a cache per key), mmaction2's "
        ".pkl (read as arrays only, never run). Bad arrays go under /failed; the run goes on.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("src", metavar="DIR", help="folder of feature files, searched recursively")
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="cache file (NAME ending in .h5), or NAME to write NAME_<stream>.h5" + _BARE_OUT,
    )
    parser.add_argument(
        "--stream",
        metavar="NAME",
        help="stream recorded in the file (default: from an --out ending in _rgb.h5 or "
        "_flow.h5, else video_features' key); over several keys, the one to import",
    )
    layouts = ("auto", "arrays", "video_features", "mmaction2")
    parser.add_argument("--layout", choices=layouts, default="auto", help="auto: by the names")
    parser.add_argument(
        "--id-pattern",
        metavar="REGEX",
        help="its group 'id', else its first group, found in an id is the id; files it "
        "does not match are listed, not imported",
    )
    parser.add_argument(
        "--dtype", choices=("float16", "float32"), default="float32", help="storage type"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return one_line_errors(parser)


# The command line's name of each option check_options speaks of.
_FLAGS = {"sample_fps": "--fps", "sample_stride": "--stride", "sample_frames": "--frames"}


def _flag(name):
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _check_args(args):
    streams = STREAMS if args.stream == "both" else (args.stream,)
    try:
        check_options(
            streams,
            args.out,
            args.batch_size,
            args.short_side,
            args.crop,
            args.workers,
            args.flow_bound,
            args.fps,
            args.stride,
            spell=_flag,
            sample_frames=args.frames,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _print_summary(summary, with_ids):
    """Counts per stream on stdout; the first failures on stderr."""
    for stream, path in summary.paths.items():
        print(
            f"{stream}: {summary.done[stream]} done, {summary.skipped[stream]} skipped, "
            f"{summary.failed[stream]} failed -> {path}"
        )
    for video_id, message in list(summary.failures.items())[:_MAX_SHOWN_FAILURES]:
        print(f"failed: {video_id + ': ' if with_ids else ''}{message}", file=sys.stderr)
    if len(summary.failures) > _MAX_SHOWN_FAILURES:
        more = len(summary.failures) - _MAX_SHOWN_FAILURES
        print(f"... and {more} more (see /failed in the files)", file=sys.stderr)


def _library_call(function, *args, **kwargs):
    """Call the library: errors before the run starts are usage errors, a stop part-way is not."""
    try:
        return function(*args, **kwargs)
    except RunStoppedError as exc:
        raise UserError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# -- the three commands ---------------------------------------------------------------
def _extract(argv):
    args = _extract_parser().parse_args(argv)
    args.out = resolve_out(args.out)
    configure_logging(quiet=not args.verbose)
    _check_args(args)
    try:
        shard = resolve_shard(args.shard)
    except ValueError as exc:
        raise UsageError(f"--shard {exc}") from None
    same = ("arch", "weights", "flow_weights", "seed", "device", "batch_size", "dtype")
    same += ("short_side", "crop", "flow_method", "flow_bound", "keep_partial", "verify", "workers")
    options = {name: getattr(args, name) for name in same}
    options.update(
        streams=args.stream,
        video_list=args.list,
        sample_fps=args.fps,
        sample_stride=args.stride,
        sample_frames=args.frames,
        shard=shard,
        progress=not args.quiet,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with logging_redirect_tqdm():  # log lines above the progress bars, not over them
            summary = _library_call(extract_features, args.src, args.out, **options)
    except ExtractionInterrupted as exc:
        print(
            f"{PROG}: stopped; the {exc.saved} videos saved in this run are kept, run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(summary, with_ids=True)
    busy = sum(summary.busy_seconds.values())
    shares = (f"{k} {v:.1f} s ({100 * v / busy:.0f}%)" for k, v in summary.busy_seconds.items())
    if busy:
        logger.info("busy time: " + ", ".join(shares))
    return EXIT_FAILURE if summary.failures else EXIT_OK


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _merge(argv):
    args = _merge_parser().parse_args(argv)
    args.out = resolve_out(args.out)
    configure_logging(quiet=True)
    result = _library_call(
        merge_shards, args.shards, args.out, copy=args.copy, allow_partial=args.partial
    )
    if not args.quiet:
        print(
            f"merged {len(args.shards)} shards: {result['videos']} videos, "
            f"{result['failed']} failed -> {args.out}"
        )
    return EXIT_OK


def _import(argv):
    args = _import_parser().parse_args(argv)
    args.out = resolve_out(args.out)
    configure_logging(quiet=True)
    stream = args.stream or next((s for s in STREAMS if args.out.endswith(f"_{s}.h5")), None)
    options = {name: getattr(args, name) for name in ("layout", "id_pattern", "dtype")}
    with logging_redirect_tqdm():
        summary = _library_call(
            import_arrays, args.src, args.out, stream=stream, progress=not args.quiet, **options
        )
    _print_summary(summary, with_ids=False)
    left_out = [f"not imported: {path}: {why}" for path, why in summary.not_imported.items()]
    more = [f"... and {len(left_out) - _MAX_SHOWN_FAILURES} more"] * (len(left_out) > 10)
    if left_out:
        print("\n".join(left_out[:_MAX_SHOWN_FAILURES] + more), file=sys.stderr)
    return EXIT_FAILURE if summary.failures or summary.not_imported else EXIT_OK


# -- entry point ----------------------------------------------------------------------
def _main(argv):
    argv = list(argv)
    command = {"merge": _merge, "import": _import}.get(argv[0] if argv else None)
    if command is not None:
        return command(argv[1:])
    return _extract(argv)


def main(argv=None):
    """Run the extractor command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name (default ``sys.argv[1:]``). A first word
        ``merge`` or ``import`` selects that command.

    Returns
    -------
    int
        0 success; 1 some videos failed or writing stopped; 2 the run could not start;
        130 interrupted (the videos saved so far are kept).

    Notes
    -----
    With ``--workers`` > 0 the decoding workers are started by a ``forkserver``, which
    re-imports the calling script: call ``main`` under ``if __name__ == "__main__":``.
    """
    return run_cli(_main, sys.argv[1:] if argv is None else argv, PROG)


if __name__ == "__main__":
    sys.exit(main())
