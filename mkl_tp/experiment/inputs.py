"""Reading feature files and split files for a fit: matching ids, loading streams."""

import warnings
from pathlib import Path

from .._utils.cli import UserError
from ..pyramid.descriptors import node_descriptors_batch
from ..pyramid.frames import sample_frames
from ..sources.splits import SPLIT_FORMATS, describe_ambiguous, find_ids, guess_split_format
from ..store import FORMAT, failed_videos, list_videos, load_features, read_info

# Root attributes compared between the streams of one fit.
_EXTRACTOR_ATTRS = ("arch", "mkl_tp_version")
# Split ids, and reasons of failed extractions, shown in one error.
_MAX_SHOWN_IDS = 5
_MAX_SHOWN_REASONS = 3


def add_split_format_arguments(group):
    """``--format`` and ``--split``, shared by fit and predict."""
    group.add_argument(
        "--format",
        choices=SPLIT_FORMATS,
        help="split file format (default: recognised from --splits: ucf101 for a folder "
        "with classInd.txt, hmdb51 (and JHMDB) for <class>_test_splitN.txt files, csv or "
        "kinetics_csv by a .csv file's header, ssv2 for Something-Something v2's JSON "
        "files, mmaction2 for its list files; an unrecognised path names every format tried)",
    )
    group.add_argument("--split", type=int, default=1, help="split number (default: 1)")


def split_format(fmt, splits):
    """``--format`` as given, else the format :func:`mkl_tp.sources.guess_split_format`
    recognises in ``--splits``."""
    return fmt if fmt is not None else guess_split_format(splits)


def stream_name(path, info):
    """Stream name: the file's ``stream`` attribute, else the stem's last ``_`` part."""
    if info.get("stream"):
        return str(info["stream"])
    stem = Path(path).stem
    return stem.rsplit("_", 1)[-1] if "_" in stem else stem


def describe_features(paths):
    """Read every feature file's root attributes; warn about foreign or mixed extractors.

    Returns
    -------
    list of dict
        ``{"path", "stream", "info"}`` per file, in order.
    """
    described, names = [], set()
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"feature file not found: {path}")
        info = read_info(path)
        # Caches in mkl_tp's format (extracted, imported or merged) describe themselves.
        missing = [a for a in _EXTRACTOR_ATTRS if a not in info]
        if missing and info.get("format") != FORMAT:
            warnings.warn(
                f"{path}: no mkl_tp extractor attributes ({', '.join(missing)}); reading it "
                "as plain /videos/<id> -> (T, d) features",
                stacklevel=2,
            )
        name = stream_name(path, info)
        if name in names:
            raise UserError(
                f"two feature files give the stream name {name!r}: rename one "
                "or set its 'stream' attribute"
            )
        names.add(name)
        described.append({"path": str(path), "stream": name, "info": info})
    for key in ("mkl_tp_version", "arch"):
        values = {d["stream"]: d["info"].get(key) for d in described if key in d["info"]}
        if len(set(map(str, values.values()))) > 1:
            warnings.warn(f"feature files differ in {key}: {values}", stacklevel=2)
    return described


# Videos read from HDF5 at a time while compressing them to leaf descriptors.
_LOAD_CHUNK = 256


def _shown(items, limit=_MAX_SHOWN_IDS, sep=", "):
    """The first ``limit`` of ``items`` joined by ``sep``, and ``...`` when there are more."""
    return sep.join(items[:limit]) + (f"{sep}..." if len(items) > limit else "")


def match_split(path, subsets, *, allow_overlap=False):
    """Feature-file ids of every subset of a split; one error for all that are missing.

    Parameters
    ----------
    path : str
        Feature cache.
    subsets : dict of str to list of str
        Subset name (``train``, ``test``) -> split ids.
    allow_overlap : bool, default False
        Accept videos that are in more than one subset (a test video also trained on:
        its accuracy is not a test's). Refused by default.

    Returns
    -------
    dict of str to list of str
        The matching ids in the file (:func:`mkl_tp.sources.find_ids`), per subset.

    Raises
    ------
    UserError
        Naming the file and, for every subset, how many and which ids it lacks; ids that
        the file records under ``/failed`` come with the reason their extraction failed,
        ids that several of the file's ids match come with those candidates. Or naming the
        videos that two different split ids of one subset both match, or (unless
        ``allow_overlap``) the videos that are in two subsets.
    """
    available = list_videos(path)
    matched, missing = {}, {}
    for subset, ids in subsets.items():
        matched[subset], absent = find_ids(ids, available)
        if absent:
            missing[subset] = absent
    if not missing:
        _check_one_video_per_id(path, subsets, matched)
        if not allow_overlap:
            _check_no_overlap(path, subsets, matched)
        return matched
    total = sum(len(m) for m in missing.values())
    parts = [
        f"{subset} {len(ids)} of {len(subsets[subset])} ({_shown(ids)})"
        for subset, ids in missing.items()
    ]
    message = (
        f"{total} of {sum(len(i) for i in subsets.values())} split videos are not in "
        f"{path}: " + "; ".join(parts)
    )
    wanted = [i for ids in missing.values() for i in ids]
    ambiguous = describe_ambiguous(wanted, available, shown=_MAX_SHOWN_IDS)
    if ambiguous:
        message += f". {ambiguous}"
    failed = failed_videos(path)
    found, _ = find_ids(wanted, list(failed))
    reasons = [f"{key!r}: {failed[key]}" for key in dict.fromkeys(k for k in found if k)]
    if reasons:
        message += f". {len(reasons)} of them failed extraction: " + _shown(
            reasons, _MAX_SHOWN_REASONS, "; "
        )
    raise UserError(message)


def split_overlap(matched):
    """The videos in more than one subset of a matched split, sorted.

    Parameters
    ----------
    matched : dict of str to list of str
        Subset -> feature-file ids (:func:`match_split`).

    Returns
    -------
    list of str
    """
    seen, shared = {}, set()
    for subset, keys in matched.items():
        for key in keys:
            if seen.setdefault(key, subset) != subset:
                shared.add(key)
    return sorted(shared)


def _videos_are(count):
    return f"{count} video{'s are' if count != 1 else ' is'}"


def _check_no_overlap(path, subsets, matched):
    shared = split_overlap(matched)
    if shared:
        raise UserError(
            f"{_videos_are(len(shared))} in both {' and '.join(subsets)} (ids of {path}): "
            f"{_shown(shared)}; the test accuracy would count videos the model was trained "
            "on. Fix the split, or pass --allow-overlap (allow_overlap=True) to accept it"
        )


def _check_one_video_per_id(path, subsets, matched):
    """Two different split ids of one subset that match one video: refused."""
    clashes = []
    for subset, keys in matched.items():
        first = {}
        for split_id, key in zip(subsets[subset], keys):
            other = first.setdefault(key, split_id)
            if other != split_id:
                clashes.append(f"{subset} ids {other!r} and {split_id!r} both match {key!r}")
    if clashes:
        raise UserError(
            f"{len(clashes)} video(s) of {path} are listed twice under different ids: "
            + _shown(clashes, sep="; ")
        )


def check_frame_streams(spec, streams, flag):
    """Refuse a per-stream frame count (:func:`mkl_tp.experiment.options.frames`) for a
    stream that no feature file gives."""
    unknown = sorted(set(spec) - set(streams)) if isinstance(spec, dict) else []
    if unknown:
        raise UserError(
            f"{flag} names stream(s) {', '.join(unknown)} but the feature files give "
            f"{', '.join(streams)}"
        )


def load_stream(path, ids, levels, subset="requested", frames=None):
    """Features of the given split ids, compressed to the pyramid's leaf nodes.

    Ids are matched extension-insensitively (:func:`match_split`: missing ids are named,
    with the reason of those that failed extraction). Each video's ``(T, d)`` frames are
    replaced by its ``2**(levels-1)`` finest node descriptors, read ``_LOAD_CHUNK`` videos at
    a time.
    This is exact for every pyramid of at most ``levels`` levels: each node is the mean of
    its two children, so the pyramid of the leaves equals the pyramid of the frames, and
    the memory does not grow with the number of frames.

    Parameters
    ----------
    path : str
    ids : list of str
    levels : int
    subset : str, default "requested"
        What the ids are, for the error message (``train``, ``test``).
    frames : int, optional
        Keep this many evenly spaced frames of each video
        (:func:`mkl_tp.pyramid.sample_frames`) before pooling; every frame by default.

    Returns
    -------
    list of ndarray of shape (2**(levels-1), d), float64
    """
    keys = match_split(path, {subset: ids})[subset]
    leaves = 2 ** (levels - 1)
    compressed = []
    for start in range(0, len(keys), _LOAD_CHUNK):
        chunk = keys[start : start + _LOAD_CHUNK]
        _, arrays = load_features(path, chunk)  # validates rank, NaN/inf, d within the chunk
        if compressed and arrays[0].shape[1] != compressed[0].shape[1]:
            raise UserError(
                f"{path}: video {chunk[0]!r} has d={arrays[0].shape[1]} but "
                f"{keys[0]!r} has d={compressed[0].shape[1]}"
            )
        descriptors = node_descriptors_batch(sample_frames(arrays, frames), levels)[:, -leaves:]
        compressed.extend(descriptors)
    return compressed
