"""Joining the shard files of one extraction into one cache (``extract merge``).

The merged file links (HDF5 external links) or copies each shard's videos and failure
records; its root attributes are the extraction's, plus ``merged_from`` and ``layout``.
"""

import os

import h5py

from ._format import FORMAT, LIBVER, VOLATILE_INFO, parse_shard
from ._read import failed_videos, list_videos, read_info
from ._write import written_attrs

# Root attributes that differ between the shards of one extraction.
_SHARD_INFO = VOLATILE_INFO | {"shard"}


def _file_shard(spec, path):
    try:
        return parse_shard(spec)
    except ValueError as exc:
        raise ValueError(f"{path}: shard attribute {exc}") from None


def _copy_into(src, group, video_id, dest):
    parent, _, leaf = f"{group}/{video_id}".rpartition("/")
    src.copy(src[f"{group}/{video_id}"], dest.require_group(parent), name=leaf)


def merge_shards(shards, out, *, copy=False, allow_partial=False):
    """Join the shard files of one extraction into one cache file.

    Parameters
    ----------
    shards : sequence of path
        Caches written with ``--shard I/N`` (or any caches of the same extraction).
    out : path
        The merged file; written to a temporary name and renamed, so it appears whole.
        An existing merged file is replaced; any other existing file is refused.
    copy : bool, default False
        Copy the features into ``out`` (a standalone file) instead of linking them
        with HDF5 external links (paths relative to ``out``'s folder; keep the shards).
    allow_partial : bool, default False
        Merge even when some of the N shards are missing.

    Returns
    -------
    dict
        ``{"videos": count, "failed": count}``.

    Raises
    ------
    ValueError
        Shards of different extractions, a video in two shards, missing shards, or an
        ``out`` that would overwrite real data; the message names the files.
    """
    shards = [os.fspath(s) for s in shards]
    out = os.fspath(out)
    infos = _check_shards(shards, out, allow_partial)
    owner, failures = _owners(shards)
    _check_replaceable(out)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w", libver=LIBVER) as dest:
            for key, value in infos[0].items():
                if key not in _SHARD_INFO:
                    dest.attrs[key] = value
            dest.attrs.update(written_attrs())
            dest.attrs["merged_from"] = [os.path.relpath(s, folder) for s in shards]
            dest.attrs["layout"] = "copy" if copy else "external-links"
            videos = dest.create_group("videos")
            dest.create_group("failed")
            for shard in shards:
                link_path = os.path.relpath(shard, folder)
                with h5py.File(shard, "r") as src:
                    for vid in sorted(v for v, s in owner.items() if s == shard):
                        if copy:
                            _copy_into(src, "videos", vid, dest)
                        else:
                            videos[vid] = h5py.ExternalLink(link_path, "/videos/" + vid)
                    for vid in sorted(v for v, s in failures.items() if s == shard):
                        _copy_into(src, "failed", vid, dest)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {"videos": len(owner), "failed": len(failures)}


def _check_shards(shards, out, allow_partial):
    """The shards' root attributes, once they are known to be one extraction's parts."""
    if not shards:
        raise ValueError("no shard files given")
    real = [os.path.realpath(s) for s in shards]
    if len(set(real)) != len(real):
        raise ValueError("the same shard file is given twice")
    if os.path.realpath(out) in real:
        raise ValueError(f"the output {out} is one of the shards")
    infos = [read_info(s) for s in shards]
    for shard, info in zip(shards, infos):
        if info.get("format") != FORMAT:
            raise ValueError(f"{shard} is not an mkl_tp feature cache")
    ref = infos[0]
    for shard, info in zip(shards[1:], infos[1:]):
        keys = (set(ref) | set(info)) - _SHARD_INFO
        differ = sorted(k for k in keys if ref.get(k) != info.get(k))
        if differ:
            k = differ[0]
            raise ValueError(
                f"{shard} has {k}={info.get(k)!r} but {shards[0]} has {k}={ref.get(k)!r}: "
                "only shards of one extraction can be merged"
            )
    specs = [info.get("shard") for info in infos]
    if all(spec is not None for spec in specs):
        _check_shard_specs(shards, specs, allow_partial)
    return infos


def _check_shard_specs(shards, specs, allow_partial):
    seen = {}
    counts = set()
    for shard, spec in zip(shards, specs):
        index, count = _file_shard(spec, shard)
        counts.add(count)
        if index in seen:
            raise ValueError(f"{shard} and {seen[index]} are both shard {spec}")
        seen[index] = shard
    if len(counts) > 1:
        raise ValueError(
            f"shards come from splits into different numbers of parts: {sorted(counts)}"
        )
    missing = sorted(set(range(counts.pop())) - set(seen))
    if missing and not allow_partial:
        n = _file_shard(specs[0], shards[0])[1]
        raise ValueError(
            "missing shards "
            + ", ".join(f"{i}/{n}" for i in missing)
            + " (pass --partial to merge anyway)"
        )


def _owners(shards):
    """The shard of each complete video (one only), and of each failure no shard completed."""
    owner, failures = {}, {}
    for shard in shards:
        for vid in list_videos(shard):
            if vid in owner:
                raise ValueError(f"video {vid!r} is in both {owner[vid]} and {shard}")
            owner[vid] = shard
        for vid in failed_videos(shard):
            failures.setdefault(vid, shard)
    return owner, {vid: shard for vid, shard in failures.items() if vid not in owner}


def _check_replaceable(out):
    if os.path.exists(out):
        try:
            previous = read_info(out)
        except (OSError, ValueError):
            previous = {}
        if "merged_from" not in previous:
            raise ValueError(
                f"refusing to replace {out}: it is not a merge of shards; "
                "remove it or choose another --out"
            )
