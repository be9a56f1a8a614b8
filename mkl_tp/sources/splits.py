"""Split and label files (UCF-101, HMDB-51, JHMDB, CSV) and matching their ids."""

import csv
import os
import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["Split", "SPLIT_FORMATS", "read_split", "guess_split_format", "find_ids", "match_ids"]

SPLIT_FORMATS = ("ucf101", "hmdb51", "jhmdb", "csv")


class Split(NamedTuple):
    """One train/test split: video ids (without extension) and their labels.

    Attributes
    ----------
    train_ids, test_ids : list of str
    train_labels, test_labels : list of str
    classes : list of str
        Class names in the dataset's own order (``classInd.txt`` for UCF-101, sorted
        otherwise).
    """

    train_ids: list
    train_labels: list
    test_ids: list
    test_labels: list
    classes: list


def _strip_extension(video):
    root, ext = os.path.splitext(video.strip())
    return root if ext else video.strip()


def _lines(path):
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.split()


def _read_ucf101(folder, split):
    class_file = folder / "classInd.txt"
    classes = {}
    for number, fields in _lines(class_file):
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{class_file}, line {number}: expected '<index> <class name>'")
        classes[int(fields[0])] = fields[1]
    names = set(classes.values())
    subsets = {}
    for subset in ("train", "test"):
        path = folder / f"{subset}list{split:02d}.txt"
        ids, labels = [], []
        for number, fields in _lines(path):
            video = fields[0].replace("\\", "/")
            label = video.split("/")[0] if "/" in video else None
            if len(fields) > 1:
                if not fields[1].isdigit() or int(fields[1]) not in classes:
                    raise ValueError(
                        f"{path}, line {number}: class index {fields[1]!r} is not in "
                        f"{class_file.name}"
                    )
                label = classes[int(fields[1])]
            if label not in names:
                raise ValueError(
                    f"{path}, line {number}: label {label!r} of {video!r} is not in "
                    f"{class_file.name}"
                )
            ids.append(_strip_extension(video))
            labels.append(label)
        subsets[subset] = (ids, labels)
    ordered = [classes[k] for k in sorted(classes)]
    return Split(*subsets["train"], *subsets["test"], ordered)


def _read_hmdb_style(folder, split):
    """HMDB-51 and JHMDB: ``<class>_test_split<N>.txt``, 1 = train, 2 = test, 0 = unused."""
    pattern = re.compile(rf"^(?P<label>.+)_test_split{split}\.txt$")
    files = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    if not files:
        raise FileNotFoundError(f"no '<class>_test_split{split}.txt' files in {folder}")
    subsets = {"1": ([], []), "2": ([], [])}
    for path in files:
        label = pattern.match(path.name)["label"]
        for number, fields in _lines(path):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(
                    f"{path}, line {number}: expected '<video> <0|1|2>', got {' '.join(fields)!r}"
                )
            if fields[1] in subsets:
                subsets[fields[1]][0].append(f"{label}/{_strip_extension(fields[0])}")
                subsets[fields[1]][1].append(label)
    classes = [pattern.match(p.name)["label"] for p in files]
    return Split(*subsets["1"], *subsets["2"], classes)


def _read_csv(path, split):
    """``video_id,label,subset`` with subset ``train`` or ``test`` (other subsets ignored)."""
    if path.is_dir():
        path = path / f"split{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    subsets = {"train": ([], []), "test": ([], [])}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"video_id", "label", "subset"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)} in the header")
        for row in reader:
            subset = row["subset"].strip().lower()
            if subset in subsets:
                subsets[subset][0].append(_strip_extension(row["video_id"]))
                subsets[subset][1].append(row["label"].strip())
    classes = sorted(set(subsets["train"][1]) | set(subsets["test"][1]))
    return Split(*subsets["train"], *subsets["test"], classes)


def guess_split_format(path):
    """The split format that ``path`` looks like, for a command line without ``--format``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        ``"csv"`` for a ``.csv`` file or a folder of ``splitN.csv``; ``"ucf101"`` for a
        folder holding ``classInd.txt``; ``"hmdb51"`` for a folder of
        ``<class>_test_splitN.txt`` (JHMDB's files read the same way); otherwise
        ``"ucf101"``, whose reader then names the file it misses.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv" and not path.is_dir():
        return "csv"
    if path.is_dir():
        names = [p.name for p in path.iterdir()]
        if "classInd.txt" in names:
            return "ucf101"
        if any(re.match(r"^split\d+\.csv$", n) for n in names):
            return "csv"
        if any(re.match(r"^.+_test_split\d+\.txt$", n) for n in names):
            return "hmdb51"
    return "ucf101"


def read_split(path, fmt, split=1):
    """Read one train/test split.

    Parameters
    ----------
    path : str or path-like
        The folder of split files (``ucf101``: ``classInd.txt``, ``trainlist0N.txt``,
        ``testlist0N.txt``; ``hmdb51`` / ``jhmdb``: ``<class>_test_splitN.txt`` with
        1 = train, 2 = test, 0 = unused), or for ``csv`` a file ``video_id,label,subset``
        (or a folder holding ``splitN.csv``).
    fmt : {"ucf101", "hmdb51", "jhmdb", "csv"}
    split : int, default=1

    Returns
    -------
    Split
        Ids without extension. HMDB-51/JHMDB ids are ``<class>/<video>``, the layout of
        their class folders; :func:`match_ids` also matches plain ``<video>`` ids.
    """
    if fmt not in SPLIT_FORMATS:
        raise ValueError(f"unknown split format {fmt!r}; expected one of {SPLIT_FORMATS}")
    path = Path(path)
    if fmt != "csv" and not path.is_dir():
        raise FileNotFoundError(f"split folder not found: {path}")
    reader = {
        "ucf101": _read_ucf101,
        "hmdb51": _read_hmdb_style,
        "jhmdb": _read_hmdb_style,
        "csv": _read_csv,
    }[fmt]
    result = reader(path, int(split))
    for subset, ids in (("train", result.train_ids), ("test", result.test_ids)):
        if not ids:
            raise ValueError(f"split {split} in {path} has no {subset} videos")
    return result


def _key(video):
    return _strip_extension(video.replace("\\", "/")).lower()


def find_ids(wanted, available):
    """Map split ids to feature-file ids, ignoring extensions and case; ``None`` where none.

    An id matches exactly (after dropping the extension), or else by its last path
    component when that is unique among ``available`` (so ``brush_hair/clip`` finds a
    feature id ``clip`` and vice versa). A last component shared by several ``available``
    ids (``A/clip`` and ``B/clip`` for a wanted ``clip``) is ambiguous: no match, never
    one picked at random; :func:`match_ids` names the candidates.

    Parameters
    ----------
    wanted : list of str
        Ids from a split file.
    available : list of str
        Ids in the feature file.

    Returns
    -------
    matched : list of str or None
        The matching ``available`` id for every ``wanted`` id, ``None`` for those without.
    missing : list of str
        The ``wanted`` ids without a match, in order.
    """
    exact, by_name = _indexes(available)
    matched, missing = [], []
    for w in wanted:
        key = _key(w)
        hit = exact.get(key)
        if hit is None:
            candidates = by_name.get(_name(key), [])
            hit = candidates[0] if len(candidates) == 1 else None
        if hit is None:
            missing.append(w)
        matched.append(hit)
    return matched, missing


def _name(key):
    return key.rsplit("/", 1)[-1]


def _indexes(available):
    """``available`` by exact key and by last path component (all ids sharing it)."""
    exact = {_key(v): v for v in available}
    by_name = {}
    for v in available:
        by_name.setdefault(_name(_key(v)), []).append(v)
    return exact, by_name


def _ambiguous(missing, available):
    """``{wanted id: candidates}`` for the unmatched ids whose last component several share."""
    _, by_name = _indexes(available)
    found = {}
    for w in missing:
        candidates = by_name.get(_name(_key(w)), [])
        if len(candidates) > 1:
            found[w] = candidates
    return found


def match_ids(wanted, available, source="the feature file"):
    """Map split ids to feature-file ids (:func:`find_ids`); every id must match.

    Parameters
    ----------
    wanted : list of str
        Ids from a split file.
    available : list of str
        Ids in the feature file.
    source : str
        Named in the error message.

    Returns
    -------
    list of str
        The matching ``available`` id for every ``wanted`` id.

    Raises
    ------
    ValueError
        Listing (a few of) the ids that have no match, and for those whose last path
        component matches several ids of ``available`` (ambiguous), the candidates.
    """
    matched, missing = find_ids(wanted, available)
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        message = f"{len(missing)} of {len(wanted)} split videos are not in {source}: {shown}"
        ambiguous = _ambiguous(missing, available)
        if ambiguous:
            listed = [
                f"{w!r} could be any of {', '.join(c)}" for w, c in list(ambiguous.items())[:5]
            ]
            message += (
                f". {len(ambiguous)} of them are ambiguous (their last path component names "
                "several videos): " + "; ".join(listed) + ("; ..." if len(ambiguous) > 5 else "")
            )
        raise ValueError(message)
    return matched
