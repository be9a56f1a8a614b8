"""Features computed elsewhere, brought into a cache: :func:`import_arrays`.

Three layouts of per-video files are read (``docs/cli_extract.rst`` shows each):

``arrays``
    One ``.npy`` or ``.npz`` per video; the id is the path without extension.
``video_features``
    What github.com/v-iashin/video_features writes (``utils/utils.py`` ``make_path``,
    ``models/_base/base_extractor.py`` ``action_on_extraction``): ``<stem>_<key>.npy``
    (``.pkl`` with ``on_extraction=save_pickle``) for each key of the extractor's output,
    a feature key (``resnet``, ``clip``, i3d's ``rgb`` and ``flow``...) and the side keys
    ``fps`` and ``timestamps_ms`` of the frame-wise, flow and i3d extractors.
``mmaction2``
    One pickle per video (``tools/misc/clip_feature_extraction.py`` dumps a torch tensor as
    ``<video name>.pkl``, the video name keeping its extension; the older
    ``tools/data/activitynet/tsn_feature_extraction.py`` an ndarray as ``<frame dir>.pkl``).

Each file is read by ``mkl_tp.store._files`` (pickles by an unpickler that builds numpy
arrays and torch tensors and refuses to call anything else); this module finds the videos,
their ids and streams, and runs the import.
"""

import logging
import os
import re
from contextlib import ExitStack

import numpy as np
from tqdm.auto import tqdm

from ..sources.walk import ARRAY_EXTENSIONS, VIDEO_EXTENSIONS, find_videos
from ._files import PICKLE, Video, file_headers, load_array, load_video
from ._format import check_video_id, output_path
from ._read import read_info
from ._runs import RunStoppedError, RunSummary
from ._write import FeatureWriter

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "arrays", "video_features", "mmaction2")
# video_features' side keys, written beside the feature key of every video.
_SIDE_KEYS = ("timestamps_ms", "fps")
# video_features' extractors that write their feature key alone (output_feat_keys =
# [feature_type] in models/r21d, models/s3d, models/vggish): no side file tells the layout.
_BARE_KEYS = ("r21d", "s3d", "vggish")
# Keys that name a stream: a cache of i3d's "rgb" features is never recorded as "flow".
_STREAM_KEYS = ("rgb", "flow")
# The files each layout reads (video_features' save_numpy and save_pickle).
_READS = {
    "arrays": tuple(ARRAY_EXTENSIONS),
    "video_features": (".npy", PICKLE),
    "mmaction2": (PICKLE,),
}
_MAX_NAMED = 3


# -- which files are which videos ---------------------------------------------------
def _named(paths):
    shown = ", ".join(os.path.basename(p) for p in paths[:_MAX_NAMED])
    return shown + (", ..." if len(paths) > _MAX_NAMED else "")


def _split_key(name):
    """``(stem, key)`` of a video_features file name without extension, else ``None``."""
    for key in _SIDE_KEYS:
        if name.endswith("_" + key) and len(name) > len(key) + 1:
            return name[: -len(key) - 1], key
    stem, _, key = name.rpartition("_")
    return (stem, key) if stem and key and "/" not in key else None


def _detect_layout(found, src):
    """The layout of the files ``found`` under ``src`` (name without extension -> path).

    video_features when a side file (``*_fps``, ``*_timestamps_ms``) is there, or when every
    file ends in the key of an extractor that writes no side file (``_r21d``, ``_s3d``,
    ``_vggish``); else mmaction2 for pickles, arrays for .npy/.npz; ValueError for both.
    """
    names = [n for n, p in found.items() if os.path.splitext(p)[1].lower() != ".npz"]
    if any((_split_key(n) or ("", ""))[1] in _SIDE_KEYS for n in names) or (
        names and all((_split_key(n) or ("", ""))[1] in _BARE_KEYS for n in names)
    ):
        return "video_features"
    pickles = sorted(p for p in found.values() if p.lower().endswith(PICKLE))
    arrays = sorted(p for p in found.values() if not p.lower().endswith(PICKLE))
    if pickles and arrays:
        raise ValueError(
            f"cannot tell the layout of {src}: it holds {len(arrays)} .npy/.npz files "
            f"({_named(arrays)}) and {len(pickles)} .pkl files ({_named(pickles)}); pass "
            "--layout arrays (.npy/.npz only) or --layout mmaction2 (.pkl only)"
        )
    return "mmaction2" if pickles else "arrays"


def _plan(found, layout):
    """``({key: {name: Video}}, {path: why it is not imported})`` for ``layout``; the key
    is ``None`` outside video_features."""
    groups, left_out, sides = {}, {}, {}
    reads = _READS[layout]
    for name, path in found.items():
        ext = os.path.splitext(path)[1].lower()
        if ext not in reads:
            left_out[path] = f"a {ext} file, not read in the {layout} layout"
            continue
        if layout != "video_features":
            if layout == "mmaction2" and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS:
                name = os.path.splitext(name)[0]  # v_x.avi.pkl: the video name kept its .avi
            videos = groups.setdefault(None, {})
            if name in videos:
                raise ValueError(f"{videos[name].features} and {path} both give video id {name!r}")
            videos[name] = Video(path)
            continue
        parts = _split_key(name)
        if parts is None:
            left_out[path] = "not named <stem>_<key> as video_features names its files"
        elif parts[1] in _SIDE_KEYS:
            sides.setdefault(parts[0], {})[parts[1]] = path
        else:
            videos = groups.setdefault(parts[1], {})
            if parts[0] in videos:
                raise ValueError(
                    f"{videos[parts[0]].features} and {path} both hold the {parts[1]!r} "
                    f"features of {parts[0]!r}"
                )
            videos[parts[0]] = Video(path)
    stems = {stem for videos in groups.values() for stem in videos}
    for stem, files in sides.items():
        if stem not in stems:
            for path in files.values():
                left_out[path] = "a video_features side file with no feature file beside it"
    if sides:
        groups = {
            key: {stem: Video(v.features, **sides.get(stem, {})) for stem, v in videos.items()}
            for key, videos in groups.items()
        }
    return groups, left_out


def _mapped_ids(videos, pattern, left_out):
    """``{video id: Video}`` with the ids ``pattern`` gives (the names themselves without
    one); ValueError when two collide, or when an id is also the folder of another."""
    mapped = dict(videos) if pattern is None else _apply_pattern(videos, pattern, left_out)
    for video_id, video in mapped.items():
        parts = video_id.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in mapped:
                raise ValueError(
                    f"video id {prefix!r} ({mapped[prefix].features}) is also the folder of "
                    f"{video_id!r} ({video.features})"
                )
    return dict(sorted(mapped.items()))


def _apply_pattern(videos, pattern, left_out):
    """The ids ``pattern`` finds in the names of ``videos``; the files it finds none in go to
    ``left_out`` with the reason."""
    mapped = {}
    for name, video in videos.items():
        match = pattern.search(name)
        if match is None:
            left_out[video.features] = f"{name!r} does not match the id pattern {pattern.pattern!r}"
            continue
        video_id = match["id"] if "id" in pattern.groupindex else match[1]
        try:
            check_video_id(video_id)
        except ValueError as exc:
            left_out[video.features] = f"the id pattern gives {name!r} the id {video_id!r}: {exc}"
            continue
        if video_id in mapped:
            raise ValueError(
                f"{mapped[video_id].features} and {video.features} both give video id "
                f"{video_id!r} by the id pattern {pattern.pattern!r}; nothing imported"
            )
        mapped[video_id] = video
    return mapped


def _compile(id_pattern):
    if id_pattern is None:
        return None
    try:
        pattern = re.compile(id_pattern)
    except re.error as exc:
        raise ValueError(f"id pattern {id_pattern!r} is not a regular expression: {exc}") from None
    if pattern.groups == 0:
        raise ValueError(
            f"id pattern {id_pattern!r} has no group: its first group, or the group named "
            "'id', is the video id"
        )
    return pattern


def _streams(groups, left_out, layout, stream, out, src):
    """``{stream: (key, cache path)}``: what goes where."""
    if layout != "video_features":
        if stream is None:
            raise ValueError(
                "cannot tell the stream: pass --stream NAME (stream=), or an --out ending in "
                "_rgb.h5 or _flow.h5"
            )
        return {stream: (None, output_path(out, stream))}
    keys = sorted(groups)
    if not keys:
        found = "; ".join(f"{path}: {why}" for path, why in list(left_out.items())[:_MAX_NAMED])
        raise ValueError(
            f"no video_features feature files under {src}" + f" ({found})" * bool(found)
        )
    if len(keys) > 1 and stream in keys:
        keys = [stream]  # --out NAME_rgb.h5 over i3d's rgb and flow: the rgb features
    if len(keys) == 1:
        if stream is not None and stream != keys[0] and keys[0] in _STREAM_KEYS:
            raise ValueError(
                f"{src} holds the video_features {keys[0]!r} features; the {stream!r} stream "
                f"asked for (--stream or --out) is not there"
            )
        name = stream or keys[0]
        return {name: (keys[0], output_path(out, name))}
    if stream is not None or str(out).endswith(".h5"):
        asked = f"the stream {stream!r}" if stream is not None else f"the one file {out}"
        raise ValueError(
            f"{src} holds the video_features keys {', '.join(map(repr, keys))}, one cache "
            f"each; {asked} names none of them: pass --out NAME to write "
            + " and ".join(os.path.basename(output_path("NAME", k)) for k in keys)
            + ", or --stream KEY for one"
        )
    return {key: (key, output_path(out, key)) for key in keys}


def _common_dim(out, videos):
    """The cache's d: the existing file's, else the most common d in the arrays' headers,
    else (pickles: no header) the d of the first video that loads as (T, d)."""
    if os.path.exists(out):
        dim = read_info(out).get("feature_dim")
        if dim is not None:
            return dim
    dims = []
    for video in videos.values():
        headers = {name: h[0] for name, h in file_headers(video.features).items() if name != "fps"}
        shape = headers.get("features", next(iter(headers.values())) if len(headers) == 1 else ())
        if len(shape) == 2:
            dims.append(shape[1])
    if dims:
        values, counts = np.unique(dims, return_counts=True)
        return int(values[np.argmax(counts)])
    for video in videos.values():
        if video.features.endswith(PICKLE):
            try:
                features = load_array(video.features)[0]
            except ValueError:
                continue
            if np.ndim(features) == 2:
                return int(np.shape(features)[1])
    return None


# -- the run ------------------------------------------------------------------------
def import_arrays(
    src,
    out,
    *,
    stream=None,
    dtype="float32",
    progress=False,
    layout="auto",
    id_pattern=None,
):
    """Store per-video arrays found under a folder as feature caches.

    Parameters
    ----------
    src : str or os.PathLike
        Folder searched recursively for ``.npy``, ``.npz`` and ``.pkl`` files.
    out : str
        The cache file (ending in ``.h5``), or ``NAME`` to write ``NAME_<stream>.h5``.
    stream : str, optional
        Stream name recorded in the file; required for the arrays and mmaction2 layouts.
        Over a video_features folder it defaults to the feature key, and where the folder
        holds several keys (i3d's ``rgb`` and ``flow``) it picks the one to import;
        without it each key goes to its own ``NAME_<key>.h5``.
    dtype : {"float32", "float16"}, default "float32"
        Storage type.
    progress : bool, default False
        Show a progress bar over the files (on a terminal).
    layout : {"auto", "arrays", "video_features", "mmaction2"}, default "auto"
        How the files are named and what they hold (the module's docstring); ``auto``
        tells it from the names, never from the contents: video_features when a
        ``*_fps`` or ``*_timestamps_ms`` file is there (or every file ends in ``_r21d``,
        ``_s3d`` or ``_vggish``, extractors that write no side file), else mmaction2 for
        ``.pkl`` files and arrays for ``.npy``/``.npz``, both together being an error.
        Arrays: every ``.npy``, and ``.npz`` holding one array or an array named
        ``features`` and optionally an ``fps`` scalar, is a video whose id is its path
        relative to ``src`` without extension. video_features: ``<stem>_<key>`` files
        grouped by stem, the id being the stem's path; ``fps`` becomes the video's fps and
        ``timestamps_ms`` its ``timestamps_ms`` attribute (one per feature row).
        mmaction2: each ``.pkl`` (an array, a torch tensor, or a dict holding one) is a
        video, a video extension left in its name dropped from the id.
    id_pattern : str, optional
        Regular expression searched in each id found as above; its group named ``id``,
        else its first group, is the video id. Files it does not match are not imported
        and listed in the summary's ``not_imported``.

    Returns
    -------
    RunSummary
        Videos already in a cache are skipped; arrays that are not (T, d) real and finite,
        hold values beyond ``dtype``'s range (``|x| > 65504`` for float16), whose d differs
        from the cache's, whose header declares more data than the file or the memory
        holds (checked before the data is read), pickles that would call anything but
        numpy's and torch's array builders, and side files that do not fit their video
        (timestamps not one per feature row) are recorded under ``/failed`` and the
        import goes on.

    Raises
    ------
    FileNotFoundError, ValueError, OSError
        Nothing could be imported: no such folder, no files, a layout that cannot be told,
        ambiguous ids (two files giving one id, before or after ``id_pattern``), an ``out``
        that does not fit the streams found, or an output that cannot be written or
        belongs to another extraction. Nothing was written.
    RunStoppedError
        Writing failed part-way; the videos stored before are kept.
    """
    src = os.fspath(src)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    pattern = _compile(id_pattern)
    found = find_videos(src, extensions=ARRAY_EXTENSIONS | {PICKLE}, image_folders=False)
    if layout == "auto":
        layout = _detect_layout(found, src)
        logger.info("%s: %s layout", src, layout)
    groups, left_out = _plan(found, layout)
    if not any(groups.values()) and layout != "video_features":
        wanted = ".pkl" if layout == "mmaction2" else ".npy or .npz"
        others = f" (only {_named(sorted(left_out))})" if left_out else ""
        raise ValueError(f"no {wanted} files under {src}{others}")
    targets = _streams(groups, left_out, layout, stream, out, src)
    plan = {name: _mapped_ids(groups[key], pattern, left_out) for name, (key, _) in targets.items()}
    if not any(plan.values()):
        raise ValueError(
            f"nothing to import under {src}: "
            + "; ".join(f"{path}: {why}" for path, why in list(left_out.items())[:_MAX_NAMED])
        )
    done, skipped, failed, failures = {}, {}, {}, {}
    with ExitStack() as stack:
        writers = {}
        # Every output opens before any is written, the existing ones (which may belong to
        # another extraction) before any new one is created.
        for name, (_, path) in sorted(targets.items(), key=lambda t: not os.path.exists(t[1][1])):
            info = {
                "stream": name,
                "feature_dim": _common_dim(path, plan[name]),
                "dtype": dtype,
                "extractor": "import",
            }
            writers[name] = stack.enter_context(FeatureWriter(path, info).open())
        total = sum(len(videos) for videos in plan.values())
        bar = stack.enter_context(
            tqdm(total=total, unit="video", disable=None if progress else True)
        )
        for name, videos in plan.items():
            counts = _import_stream(writers[name], videos, layout, bar, failures)
            done[name], skipped[name], failed[name] = counts
    return RunSummary(
        paths={name: path for name, (_, path) in targets.items()},
        done=done,
        skipped=skipped,
        failed=failed,
        failures=failures,
        not_imported=left_out,
    )


def _import_stream(writer, videos, layout, bar, failures):
    """Write ``videos`` with ``writer``; return (done, skipped, failed) counts."""
    done = skipped = failed = 0
    for video_id, video in videos.items():
        bar.update(1)
        if video_id in writer.completed:
            skipped += 1
            continue
        source = os.path.abspath(video.features)
        try:
            features, fps, attrs = load_video(video_id, video, layout)
            writer.write(video_id, features, fps=fps, source=source, **attrs)
            done += 1
        except ValueError as exc:
            message = str(exc) if str(exc).startswith("video ") else f"video {video_id!r}: {exc}"
            failures[video_id] = (
                f"{failures[video_id]}; {message}" if video_id in failures else message
            )
            failed += 1
            try:
                writer.record_failure(video_id, message, source=source)
            except OSError as err:
                raise RunStoppedError(str(err)) from None
        except OSError as exc:
            raise RunStoppedError(str(exc)) from None
    return done, skipped, failed
