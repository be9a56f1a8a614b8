"""``python -m mkl_tp.extract``: videos to per-frame ResNet features in HDF5 caches.

Three commands share this entry point (``mkl-tp-extract`` once installed)::

    python -m mkl_tp.extract SRC --out features/NAME --stream rgb|flow|both [options]
    python -m mkl_tp.extract merge features/NAME_rgb.shard-*.h5 --out features/NAME_rgb.h5
    python -m mkl_tp.extract import DIR --out features/NAME_rgb.h5

Worker processes decode videos and compute optical flow (a torch ``DataLoader`` over
videos) while the main process runs batched inference, so the network does not
wait for a video to decode. Every video is written whole (see :mod:`mkl_tp.store`);
running the same command again resumes where a stopped run left off.

This module is the command line; the run itself is in :mod:`mkl_tp._extract_run`.
"""

import argparse
import logging
import math
import os
import signal
import sys

import numpy as np
from tqdm.auto import tqdm

from mkl_tp import __version__, store
from mkl_tp._extract_run import (
    _MAX_SHOWN_FAILURES,
    _build_nets,
    _open_writers,
    _plan,
    _report,
    _run,
    _Stopped,
    _stream_info,
    _Tally,
    _UsageError,
    shard_of,  # noqa: F401 (public here, where --shard is parsed)
)
from mkl_tp.video import OpticalFlow

PROG = "python -m mkl_tp.extract"
STREAMS = ("rgb", "flow")


# -- arguments ------------------------------------------------------------------------
def _default_workers():
    return max(1, min(8, (os.cpu_count() or 2) - 1))


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
            "Extract per-frame features of every frame of every video under SRC with a frozen "
            "ResNet (appearance: RGB frames; motion: stacks of 10 optical flows) into "
            "NAME_rgb.h5 / NAME_flow.h5. Re-running the same command resumes and skips "
            "videos already complete. Two more commands: "
            f"'{PROG} merge SHARDS... --out FILE' joins --shard outputs; "
            f"'{PROG} import DIR --out FILE' stores .npy/.npz arrays as a cache "
            "(each has its own --help)."
        ),
        epilog=(
            "exit status: 0 every video extracted; 1 some videos failed (listed under /failed in "
            "the file) or writing stopped (videos saved before are kept); 2 the run could not "
            "start (arguments, SRC, weights or output). Defaults: dis flow because TV-L1 costs "
            "~1.7 s per frame pair on one CPU core (pass --flow-method tvl1 to match motion "
            "networks trained on TV-L1 flow); float16 halves the disk for a ~1e-3 relative "
            "rounding of features."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("src", metavar="SRC", help="folder of videos (.avi .mp4 .mkv .webm .mov ...) "
                        "or of frame-image folders, searched recursively; the video id is the path "
                        "relative to SRC without extension")
    parser.add_argument("--out", required=True, metavar="NAME",
                        help="output name: writes NAME_rgb.h5 and/or NAME_flow.h5 (a NAME ending "
                        "in .h5 is used as the file name when one stream is extracted)")
    parser.add_argument("--stream", choices=("rgb", "flow", "both"), default="both",
                        help="appearance, motion, or both (decoded once)")
    parser.add_argument("--list", metavar="FILE", help="only the videos listed (one relative path "
                        "per line, first field; UCF-101 split files work)")
    parser.add_argument("--arch", default="resnet101",
                        choices=("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
                        help="torchvision ResNet, classifier removed")
    parser.add_argument("--weights", default="imagenet", metavar="PATH|imagenet|random",
                        help="imagenet: torchvision's ImageNet weights from its cache "
                        "($TORCH_HOME/hub/checkpoints), downloaded if missing; PATH: a local "
                        "state dict; random: seeded random weights, for tests only (recorded)")
    parser.add_argument("--flow-weights", metavar="PATH|imagenet|random",
                        help="weights of the motion network (default: --weights); 3-channel "
                        "weights get the cross-modality 20-channel first layer")
    parser.add_argument("--seed", type=int, default=0, help="seed of --weights random")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N "
                        "(auto: CUDA if available, on $LOCAL_RANK under torchrun)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="frames per network batch")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                        help="storage type of the features")
    parser.add_argument("--short-side", type=int, default=256, metavar="PX",
                        help="resize frames so that their shorter side has PX pixels")
    parser.add_argument("--crop", type=int, default=224, metavar="PX",
                        help="centre crop (0: whole resized frame)")
    parser.add_argument("--flow-method", choices=("dis", "farneback", "tvl1"), default="dis",
                        help="OpenCV optical flow for the motion stream")
    parser.add_argument("--flow-bound", type=float, default=20.0, metavar="PX",
                        help="flow is clipped to +-PX pixels then mapped linearly to 0..255")
    parser.add_argument("--workers", type=int, default=_default_workers(), metavar="N",
                        help="processes that decode videos and compute flow, overlapped with inference "
                        "(0: in the main process; the default is the cores less one, at most 8)")
    parser.add_argument("--shard", metavar="I/N",
                        help="process only part I of N (0 <= I < N; videos assigned by a hash of "
                        "their id) into NAME_<stream>.shard-I-of-N.h5; 'auto' reads "
                        "RANK/WORLD_SIZE (torchrun) or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each saved video")
    parser.add_argument("--version", action="version", version=f"mkl_tp {__version__}")
    return parser


def _merge_parser():
    parser = argparse.ArgumentParser(
        prog=f"{PROG} merge",
        description="Join the shard files of one extraction (--shard I/N) into one cache. By "
        "default the merged file holds HDF5 external links to the shards (paths relative to "
        "its folder; keep the shards next to it); --copy makes a standalone file.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("shards", nargs="+", metavar="SHARD", help="shard files of one stream")
    parser.add_argument("--out", required=True, metavar="FILE", help="merged cache file")
    parser.add_argument("--copy", action="store_true", help="copy the features instead of linking")
    parser.add_argument("--partial", action="store_true", help="merge even if some shards are missing")
    parser.add_argument("--quiet", action="store_true", help="no summary line")
    return parser


def _import_parser():
    parser = argparse.ArgumentParser(
        prog=f"{PROG} import",
        description="Store per-video arrays (.npy, or .npz holding one array or a 'features' "
        "array, optionally with an 'fps' scalar) found under DIR as a feature cache. The id is "
        "the path relative to DIR without extension. Arrays that are not (T, d) real and "
        "finite, or whose d differs from the cache's, are recorded under /failed and the run "
        "goes on.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("src", metavar="DIR", help="folder of .npy / .npz files, searched recursively")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="cache file (NAME ending in .h5), or NAME to write NAME_<stream>.h5")
    parser.add_argument("--stream", metavar="NAME",
                        help="stream recorded in the file (default: from an --out ending in "
                        "_rgb.h5 or _flow.h5)")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float32",
                        help="storage type")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _parse_shard(spec):
    if spec is None:
        return None
    if spec == "auto":
        env = os.environ
        if "RANK" in env and "WORLD_SIZE" in env:
            index, count = int(env["RANK"]), int(env["WORLD_SIZE"])
        elif "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
            count = int(env["SLURM_ARRAY_TASK_COUNT"])
        else:
            raise _UsageError("--shard auto needs RANK/WORLD_SIZE (torchrun) or "
                              "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT in the environment")
    else:
        try:
            index, count = (int(x) for x in spec.split("/"))
        except ValueError:
            raise _UsageError(f"--shard {spec!r} is not I/N (for example 0/4)") from None
    if not 0 <= index < count:
        raise _UsageError(f"--shard {index}/{count}: need 0 <= I < N")
    return index, count


def output_path(out, stream, shard=None):
    """Return the cache file of one stream: ``NAME_<stream>[.shard-I-of-N].h5``."""
    base = out[:-3] if out.endswith(".h5") else f"{out}_{stream}"
    if shard is not None:
        base += f".shard-{shard[0]}-of-{shard[1]}"
    return base + ".h5"


def _check_args(args):
    if args.batch_size < 1:
        raise _UsageError("--batch-size must be at least 1")
    if args.short_side < 1 or args.crop < 0:
        raise _UsageError("--short-side must be positive and --crop not negative")
    if args.crop > args.short_side:
        raise _UsageError(f"--crop {args.crop} is larger than --short-side {args.short_side}")
    if args.workers < 0:
        raise _UsageError("--workers must be 0 or more")
    if not args.flow_bound > 0:
        raise _UsageError("--flow-bound must be positive")
    if args.stream == "both" and args.out.endswith(".h5"):
        raise _UsageError("--stream both writes two files: give --out a NAME without .h5")


# -- extract and merge -----------------------------------------------------------------
def _extract(argv):
    args = _extract_parser().parse_args(argv)
    _setup_logging(args.verbose)
    _check_args(args)
    args.shard_spec = _parse_shard(args.shard)
    streams = STREAMS if args.stream == "both" else (args.stream,)
    if "flow" in streams:
        try:
            OpticalFlow(args.flow_method)
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
    paths = {s: output_path(args.out, s, args.shard_spec) for s in streams}
    videos, missing = _plan(args, streams)
    nets = _build_nets(args, streams)
    tally = _Tally(streams)
    writers = _open_writers(paths, {s: _stream_info(s, nets[s], args) for s in streams})
    before = set.intersection(*(set(w.completed) for w in writers.values()))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _run(args, streams, nets, videos, missing, writers, tally)
    except KeyboardInterrupt:
        saved = len(set.intersection(*(w.completed for w in writers.values())) - before)
        print(f"{PROG}: stopped; the {saved} videos saved in this run are kept, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        for writer in writers.values():
            writer.close()
    _report(tally, streams, paths)
    return 1 if tally.failed else 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _merge(argv):
    args = _merge_parser().parse_args(argv)
    _setup_logging(False)
    try:
        result = store.merge_shards(args.shards, args.out, copy=args.copy, allow_partial=args.partial)
    except (OSError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    if not args.quiet:
        print(f"merged {len(args.shards)} shards: {result['videos']} videos, {result['failed']} failed -> {args.out}")
    return 0


# -- import ---------------------------------------------------------------------------
def _find_arrays(src):
    if not os.path.isdir(src):
        raise _UsageError(f"{src} does not exist or is not a folder")
    found = {}
    for root, dirs, files in os.walk(src, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in (".npy", ".npz"):
                continue
            rel = os.path.relpath(os.path.join(root, stem), src).replace(os.sep, "/")
            if rel in found:
                raise _UsageError(f"{found[rel]} and {os.path.join(root, name)} both give video id {rel!r}")
            found[rel] = os.path.join(root, name)
    if not found:
        raise _UsageError(f"no .npy or .npz files under {src}")
    return dict(sorted(found.items()))


def _load_array(path):
    """Return (features, fps) from a .npy or .npz file; ValueError names the problem."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if path.endswith(".npy"):
            return loaded, math.nan
        with loaded as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as exc:  # numpy raises many types for a damaged file
        raise ValueError(f"cannot read: {exc}") from None
    fps = float(arrays.pop("fps")) if "fps" in arrays else math.nan
    if "features" in arrays:
        return arrays["features"], fps
    if len(arrays) == 1:
        return arrays.popitem()[1], fps
    raise ValueError(f"holds arrays {sorted(arrays)}; expected one array or one named 'features'")


def _import(argv):
    args = _import_parser().parse_args(argv)
    _setup_logging(False)
    stream = args.stream
    if stream is None:
        stream = next((s for s in STREAMS if args.out.endswith(f"_{s}.h5")), None)
        if stream is None:
            raise _UsageError("cannot tell the stream from --out; pass --stream (e.g. rgb)")
    arrays = _find_arrays(args.src)
    out = output_path(args.out, stream)
    shapes = {}
    for video_id, path in arrays.items():
        try:
            shape = _load_array(path)[0].shape
        except ValueError:
            continue
        if len(shape) == 2:
            shapes[video_id] = shape[1]
    dim = None
    if os.path.exists(out):
        try:
            dim = store.read_info(out).get("feature_dim")
        except (OSError, ValueError) as exc:
            raise _UsageError(str(exc)) from None
    if dim is None and shapes:
        values, counts = np.unique(list(shapes.values()), return_counts=True)
        dim = int(values[np.argmax(counts)])
    info = {"stream": stream, "feature_dim": dim, "dtype": args.dtype, "extractor": "import"}
    done = skipped = 0
    failed = {}
    try:
        writer = store.FeatureWriter(out, info).open()
    except (OSError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    with writer, tqdm(total=len(arrays), unit="video", disable=True if args.quiet else None) as progress:
        for video_id, path in arrays.items():
            progress.update(1)
            if video_id in writer.completed:
                skipped += 1
                continue
            try:
                features, fps = _load_array(path)
                writer.write(video_id, features, fps=fps, source=os.path.abspath(path))
                done += 1
            except ValueError as exc:
                message = str(exc) if str(exc).startswith("video ") else f"video {video_id!r} ({path}): {exc}"
                failed[video_id] = message
                try:
                    writer.record_failure(video_id, message, source=os.path.abspath(path))
                except OSError as err:
                    raise _Stopped(str(err)) from None
            except OSError as exc:
                raise _Stopped(str(exc)) from None
    print(f"{stream}: {done} done, {skipped} skipped, {len(failed)} failed -> {out}")
    for message in list(failed.values())[:_MAX_SHOWN_FAILURES]:
        print(f"failed: {message}", file=sys.stderr)
    return 1 if failed else 0


# -- entry point ----------------------------------------------------------------------
def _setup_logging(verbose):
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if verbose:
        logging.getLogger("mkl_tp").setLevel(logging.INFO)


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
    argv = sys.argv[1:] if argv is None else list(argv)
    command = {"merge": _merge, "import": _import}.get(argv[0] if argv else None)
    try:
        if command is not None:
            return command(argv[1:])
        return _extract(argv)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except _Stopped as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
