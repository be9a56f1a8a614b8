"""Where videos come from: the one folder walk that names them, and list files of ids.

A video id is a path relative to the source folder without extension, with ``/``
separators (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01``). :func:`find_videos` gives the
ids of video files and frame folders for the extractor (:mod:`mkl_tp.extraction`) and of
per-video arrays for :func:`mkl_tp.store.import_arrays`; :func:`read_list` and
:func:`select_listed` narrow them to a list file such as a UCF-101 split. This module
needs only the standard library, so the store can use it without the ``extract`` extra.
"""

import logging
import os
import re
import stat

VIDEO_EXTENSIONS = frozenset(
    ".avi .mp4 .mkv .webm .mov .m4v .mpg .mpeg .flv .wmv .3gp .ogv .ts .mts .vob".split()
)
IMAGE_EXTENSIONS = frozenset(".jpg .jpeg .png .bmp .tif .tiff .webp .ppm .pgm".split())
#: Files that :func:`mkl_tp.store.import_arrays` reads, one video each.
ARRAY_EXTENSIONS = frozenset({".npy", ".npz"})

logger = logging.getLogger(__name__)

__all__ = [
    "ARRAY_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "find_videos",
    "natural_key",
    "read_list",
    "select_listed",
]


def natural_key(name):
    """Sort key that puts ``img_9`` before ``img_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _strip_video_ext(path):
    root, ext = os.path.splitext(path)
    return root if ext.lower() in VIDEO_EXTENSIONS else path


# What a file that is not a regular file is, for the warning that names it.
_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)
# Skipped entries named in find_videos' warning.
_MAX_SKIPPED_SHOWN = 10


def why_not_regular(path):
    """Why ``path`` is not read as a video file (``None`` for a regular file)."""
    try:
        mode = os.stat(path).st_mode  # through symbolic links
    except OSError as error:
        return f"cannot be read: {error.strerror}" + (
            " (a broken symbolic link)" if os.path.islink(path) else ""
        )
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
    return f"{kind}, not a regular file"


def _walk(src, skipped):
    """``os.walk(src)`` following symbolic links, each real folder once.

    A linked folder inside ``src`` is walked under its own path, never under the link's
    (so a loop such as ``sub/loop -> ..`` ends at once and a folder has one id); a linked
    folder outside is walked the first time a link reaches it (by ``(st_dev, st_ino)``).
    What is not walked, and folders that cannot be listed, go to ``skipped`` as
    ``(path relative to src, reason)``.
    """
    real_src = os.path.realpath(src)

    def relative(path):
        return os.path.relpath(path, src).replace(os.sep, "/")

    def identity(path):
        info = os.stat(path)
        return info.st_dev, info.st_ino

    def unlistable(error):
        skipped.append((relative(error.filename), f"cannot be listed: {error.strerror}"))

    seen = {identity(src)}
    for root, dirs, files in os.walk(src, followlinks=True, onerror=unlistable):
        kept = []
        for name in sorted(dirs):
            path = os.path.join(root, name)
            try:
                key = identity(path)
            except OSError as error:
                skipped.append((relative(path), f"cannot be read: {error.strerror}"))
                continue
            target = os.path.realpath(path)
            inside = os.path.commonpath([real_src, target]) == real_src
            if os.path.islink(path) and inside:
                where = os.path.relpath(target, real_src).replace(os.sep, "/")
                skipped.append(
                    (relative(path), f"a link to the folder {where!r}, walked under its own name")
                )
            elif key in seen:
                skipped.append((relative(path), f"the folder {target}, already walked"))
            else:
                seen.add(key)
                kept.append(name)
        dirs[:] = kept
        yield root, dirs, files


def find_videos(src, *, extensions=VIDEO_EXTENSIONS, image_folders=True):
    """Find the videos under a folder: video files and folders of frame images.

    Parameters
    ----------
    src : str or os.PathLike
        Searched recursively. Symbolic links are followed, each real folder once: a link
        to a folder inside ``src`` (``all -> .``, a loop ``sub/loop -> ..``) is not
        followed, since the folder is walked under its own name; a link to a folder
        outside is followed the first time. A folder that holds images is one video (its
        images, in natural order, are the frames).
    extensions : set of str, default :data:`VIDEO_EXTENSIONS`
        Lower-case file extensions (with the dot) of the files that are one video each,
        matched in any case; :data:`ARRAY_EXTENSIONS` finds per-video feature arrays.
        Only regular files (or links to them) are videos: a FIFO, socket or device named
        ``x.mp4`` is skipped, never opened (reading it could wait forever).
    image_folders : bool, default True
        Whether a folder holding images is a video.

    Returns
    -------
    dict of str to str
        ``{video id: path}`` sorted by id; the id is the path relative to ``src``
        without extension, with ``/`` separators. What was skipped (links not followed,
        files that are not regular, folders that cannot be listed) is named in one
        warning of the ``mkl_tp.sources.walk`` logger.

    Raises
    ------
    FileNotFoundError
        ``src`` is not a folder.
    ValueError
        Two sources give the same id (``a.avi`` and ``a.mp4``), or an id is also a
        folder of other videos (``a.avi`` and ``a/b.avi``).
    """
    src = os.fspath(src)
    if not os.path.isdir(src):
        raise FileNotFoundError(f"source folder {src} does not exist or is not a folder")
    found = {}
    clashes = []
    skipped = []

    def add(video_id, path):
        if video_id in found:
            clashes.append(f"{found[video_id]} and {path} both give video id {video_id!r}")
        found[video_id] = path

    for root, dirs, files in _walk(src, skipped):
        rel = os.path.relpath(root, src).replace(os.sep, "/")
        if image_folders and any(os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS for f in files):
            add(os.path.basename(os.path.abspath(src)) if rel == "." else rel, root)
            dirs[:] = []
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in extensions:
                video_id = (
                    os.path.splitext(name)[0]
                    if rel == "."
                    else f"{rel}/{os.path.splitext(name)[0]}"
                )
                path = os.path.join(root, name)
                reason = why_not_regular(path)
                if reason is not None:
                    skipped.append((f"{video_id}{os.path.splitext(name)[1]}", reason))
                    continue
                add(video_id, path)
    if skipped:
        shown = "; ".join(f"{p} ({why})" for p, why in skipped[:_MAX_SKIPPED_SHOWN])
        more = len(skipped) > _MAX_SKIPPED_SHOWN
        logger.warning(
            "%s: skipped %d entr%s: %s%s",
            src,
            len(skipped),
            "ies" if len(skipped) > 1 else "y",
            shown,
            "; ..." if more else "",
        )
    for video_id in found:
        parts = video_id.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in found:
                clashes.append(
                    f"video id {prefix!r} ({found[prefix]}) is also the folder of {video_id!r}"
                )
    if clashes:
        raise ValueError("ambiguous video ids under " + src + ": " + "; ".join(clashes[:5]))
    return dict(sorted(found.items()))


def read_list(list_file):
    """Read video ids from a list file: one relative path per line.

    Blank lines and ``#`` comments are skipped; only the first whitespace-separated
    field counts, so UCF-101 split files (``ApplyEyeMakeup/v_..._c01.avi 1``) work.
    A video extension is dropped.

    Parameters
    ----------
    list_file : str or os.PathLike

    Returns
    -------
    list of str
        Ids in file order, duplicates removed.

    Raises
    ------
    ValueError
        An entry is an absolute path or leaves the source folder (``..``).
    """
    ids = {}
    with open(list_file, encoding="utf-8-sig") as handle:  # a byte order mark is no id
        for number, line in enumerate(handle, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            entry = fields[0].replace("\\", "/")
            norm = os.path.normpath(entry).replace(os.sep, "/")
            if os.path.isabs(entry) or norm == ".." or norm.startswith("../"):
                raise ValueError(
                    f"{list_file}:{number}: {entry!r} is not a path relative to the source folder"
                )
            ids[_strip_video_ext(norm)] = None
    return list(ids)


def select_listed(videos, list_file):
    """Keep the videos named in a list file.

    Parameters
    ----------
    videos : dict of str to str
        From :func:`find_videos`.
    list_file : str or os.PathLike

    Returns
    -------
    selected : dict of str to str
        In list order.
    missing : list of str
        Listed ids with no video under the source folder.
    """
    wanted = read_list(list_file)
    selected = {i: videos[i] for i in wanted if i in videos}
    return selected, [i for i in wanted if i not in videos]
