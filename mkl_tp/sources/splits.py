"""Split and label files (UCF-101, HMDB-51, JHMDB, CSV, Kinetics, SSv2, mmaction2 lists) and
matching their ids."""

import csv
import re
from pathlib import Path
from typing import NamedTuple

from . import _annotations
from ._annotations import _lines, _Rows, _strip_extension

__all__ = [
    "Split",
    "SPLIT_FORMATS",
    "read_split",
    "guess_split_format",
    "find_ids",
    "match_ids",
]

SPLIT_FORMATS = ("ucf101", "hmdb51", "jhmdb", "csv", "kinetics_csv", "ssv2", "mmaction2")


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


def _read_ucf101(folder, split):
    class_file = folder / "classInd.txt"
    classes = {}
    for number, fields in _lines(class_file):
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{class_file}, line {number}: expected '<index> <class name>'")
        classes[int(fields[0])] = fields[1]
    names = set(classes.values())
    rows = _Rows()
    for subset in ("train", "test"):
        path = folder / f"{subset}list{split:02d}.txt"
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
            rows.add(subset, _strip_extension(video), label, path, number)
    return rows.split([classes[k] for k in sorted(classes)])


def _read_hmdb_style(folder, split):
    """HMDB-51 and JHMDB: ``<class>_test_split<N>.txt``, 1 = train, 2 = test, 0 = unused."""
    pattern = re.compile(rf"^(?P<label>.+)_test_split{split}\.txt$")
    files = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    if not files:
        raise FileNotFoundError(f"no '<class>_test_split{split}.txt' files in {folder}")
    rows, subsets = _Rows(), {"1": "train", "2": "test"}
    for path in files:
        label = pattern.match(path.name)["label"]
        for number, fields in _lines(path):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(
                    f"{path}, line {number}: expected '<video> <0|1|2>', got {' '.join(fields)!r}"
                )
            if fields[1] in subsets:
                video = f"{label}/{_strip_extension(fields[0])}"
                rows.add(subsets[fields[1]], video, label, path, number)
    return rows.split([pattern.match(p.name)["label"] for p in files])


_CSV_COLUMNS = ("video_id", "label", "subset")


def _read_csv(path, split):
    """``video_id,label,subset`` with subset ``train`` or ``test``; ``val`` or ``validation``
    is the test subset when there are no test rows, ignored otherwise (so are other subsets).

    Read as UTF-8 with or without a byte order mark (as spreadsheets save it). A row whose
    number of fields is not the header's, or with an empty ``video_id`` or ``label``, is
    refused with its line number; so is a split number other than 1 for a single file.
    """
    if path.is_dir():
        path = path / f"split{split}.csv"
    elif split != 1 and path.is_file():
        raise ValueError(
            f"{path} holds one split: split {split} needs a folder of split<N>.csv files "
            "(a single CSV file is split 1)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    rows = _Rows()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in _CSV_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} in the header")
        column = {c: header.index(c) for c in _CSV_COLUMNS}
        number = reader.line_num
        for fields in reader:
            number, start = reader.line_num, number + 1  # a quoted field may span lines
            if not any(f.strip() for f in fields):  # blank, or only commas (spreadsheets)
                continue
            if len(fields) != len(header):
                raise ValueError(
                    f"{path}, line {start}: {len(fields)} fields, expected {len(header)} "
                    f"({','.join(header)})"
                )
            video, label, subset = (fields[column[c]].strip() for c in _CSV_COLUMNS)
            for name, value in (("video_id", video), ("label", label)):
                if not value:
                    raise ValueError(f"{path}, line {start}: empty {name}")
            subset = subset.lower()
            if subset in ("train", "test", "val", "validation"):
                rows.add(subset, _strip_extension(video), label, path, start)
    return rows.split()


_EXPECTED = {
    "ucf101": "a folder holding classInd.txt, trainlist0N.txt and testlist0N.txt",
    "hmdb51": "a folder of <class>_test_splitN.txt files, lines '<video> 0|1|2' (also jhmdb)",
    "csv": "a .csv with the header video_id,label,subset, or a folder of splitN.csv",
    **_annotations.EXPECTED,
}


def guess_split_format(path):
    """The split format that ``path`` looks like, for a command line without ``--format``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        ``"ucf101"`` for a folder holding ``classInd.txt``; ``"csv"`` for a folder of
        ``splitN.csv`` or a ``.csv`` with the header ``video_id,label,subset``;
        ``"hmdb51"`` for a folder of ``<class>_test_splitN.txt`` (JHMDB's files read the
        same way); ``"kinetics_csv"`` for a ``.csv`` (or a folder of them) with the header
        ``label,youtube_id,time_start,time_end,split``; ``"ssv2"`` for a ``*labels.json``,
        ``*train.json`` or ``*validation.json`` (or a folder, or its ``labels/`` folder,
        holding a labels file); ``"mmaction2"`` for a
        ``.txt`` list with ``train`` in its name and lines ``<video> <label>`` or ``<frame
        folder> <n_frames> <label>`` (or a folder holding one). A path that does not exist
        gives ``"csv"`` for a ``.csv`` name, else ``"ucf101"``: the reader names it.

    Raises
    ------
    ValueError
        ``path`` exists and is none of these: naming it, every format tried and what each
        expected.
    """
    path = Path(path)
    if not path.exists():
        return "csv" if path.suffix.lower() == ".csv" else "ucf101"
    if path.is_dir():
        names = [p.name for p in path.iterdir()]
        if "classInd.txt" in names:
            return "ucf101"
        if any(re.match(r"^split\d+\.csv$", n) for n in names):
            return "csv"
        if any(re.match(r"^.+_test_split\d+\.txt$", n) for n in names):
            return "hmdb51"
    elif path.suffix.lower() == ".csv":
        header = _annotations._csv_header(path)
        if all(c in header for c in _CSV_COLUMNS):
            return "csv"
    found = _annotations.guess(path)
    if found is not None:
        return found
    what = "folder" if path.is_dir() else "file"
    tried = "; ".join(f"{fmt} ({expects})" for fmt, expects in _EXPECTED.items())
    raise ValueError(
        f"{path}: the split {what} is in no format mkl_tp recognises; tried {tried}. Pass "
        "--format to read it as one of them"
    )


def read_split(path, fmt, split=1):
    """Read one train/test split.

    Parameters
    ----------
    path : str or path-like
        The folder of split files (``ucf101``: ``classInd.txt``, ``trainlist0N.txt``,
        ``testlist0N.txt``; ``hmdb51`` / ``jhmdb``: ``<class>_test_splitN.txt`` with
        1 = train, 2 = test, 0 = unused), or for ``csv`` a file ``video_id,label,subset``
        (or a folder holding ``splitN.csv``); ``kinetics_csv``, ``ssv2``, ``mmaction2``:
        a file or a folder as :func:`guess_split_format` describes them.
    fmt : {"ucf101", "hmdb51", "jhmdb", "csv", "kinetics_csv", "ssv2", "mmaction2"}
    split : int, default=1

    Returns
    -------
    Split
        Ids without extension. HMDB-51/JHMDB ids are ``<class>/<video>``, the layout of
        their class folders; :func:`match_ids` also matches plain ``<video>`` ids. A video
        listed twice in one subset with one label is kept once (with a warning naming both
        lines); one in train and test is kept in both (the fit refuses that overlap unless
        allowed: ``mkl_tp.experiment.inputs.match_split``). Where there are no test rows,
        a ``val`` / ``validation`` subset (Kinetics' ``validate.csv``, SSv2's
        ``validation.json``, a CSV's or an mmaction2 ``val`` list) is the test subset,
        logged (INFO, logger ``mkl_tp.sources.splits``). Kinetics ids are clip names
        ``<youtube_id>_<start:06d>_<end:06d>``, SSv2 ids the entries' ``id``.

    Raises
    ------
    FileNotFoundError
        A split file or folder is missing.
    ValueError
        Naming the file and line: a malformed line or CSV row (fields missing or extra,
        an empty id or label), a label not in the class list, a video listed with two
        labels; or a ``split`` other than 1 for a single CSV file; or a subset without
        videos.
    """
    if fmt not in SPLIT_FORMATS:
        raise ValueError(f"unknown split format {fmt!r}; expected one of {SPLIT_FORMATS}")
    path = Path(path)
    if fmt in ("ucf101", "hmdb51", "jhmdb") and not path.is_dir():
        raise FileNotFoundError(f"split folder not found: {path}")
    reader = {
        "ucf101": _read_ucf101,
        "hmdb51": _read_hmdb_style,
        "jhmdb": _read_hmdb_style,
        "csv": _read_csv,
        "kinetics_csv": _annotations.read_kinetics,
        "ssv2": _annotations.read_ssv2,
        "mmaction2": _annotations.read_mmaction2,
    }[fmt]
    result = Split(*reader(path, int(split)))
    for subset, ids in (("train", result.train_ids), ("test", result.test_ids)):
        if not ids:
            also = " (nor val/validation videos to hold out)" if subset == "test" else ""
            raise ValueError(f"split {split} in {path} has no {subset} videos{also}")
    return result


def _key(video):
    return _strip_extension(video.replace("\\", "/"))


def _name(key):
    return key.rsplit("/", 1)[-1]


# A Kinetics clip name: <youtube_id>_<time_start:06d>_<time_end:06d>, the download tools'.
_CLIP = re.compile(r"^(?P<youtube_id>.+)_\d{6}_\d{6}$")


def _video_of(name):
    """The YouTube id of a Kinetics clip name, else the name itself."""
    clip = _CLIP.match(name)
    return clip["youtube_id"] if clip else name


def _keys(video):
    """The keys :func:`find_ids` tries for ``video``, in order: the id, the id case-folded,
    the last path component, the last path component case-folded, and that component's
    YouTube id where it is a Kinetics clip name (``<youtube_id>_<start:06d>_<end:06d>``)."""
    key = _key(video)
    name = _name(key)
    return key, key.lower(), name, name.lower(), _video_of(name)


def _indexes(available):
    """One index of ``available`` per key of :func:`_keys`: key -> every id giving it."""
    indexes = ({}, {}, {}, {}, {})
    for v in available:
        for index, key in zip(indexes, _keys(v)):
            index.setdefault(key, []).append(v)
    return indexes


def _candidates(video, available, indexes):
    """The ``available`` ids that ``video`` matches at the first key that matches any."""
    if video in available:
        return [video]
    for index, key in zip(indexes, _keys(video)):
        if key in index:
            return index[key]
    return []


def find_ids(wanted, available):
    """Map split ids to feature-file ids; ``None`` where none or several match.

    Extensions are ignored (``v.avi`` matches ``v``). Each id is looked up in turn by
    itself, by itself ignoring case, by its last path component (so ``brush_hair/clip``
    finds a feature id ``clip`` and vice versa), and by that ignoring case; the first
    look-up that finds anything decides. An exact match is never lost to an id that differs
    only in case (``Run`` finds ``Run`` when ``run`` is there too); a look-up that finds
    several ids (``RUN`` with ``Run`` and ``run``, ``clip`` with ``A/clip`` and ``B/clip``)
    is ambiguous: no match, never one picked at random; :func:`match_ids` names the
    candidates. Last, a Kinetics clip name ``<youtube_id>_<start:06d>_<end:06d>`` and a
    plain ``<youtube_id>`` match each other, so a Kinetics split finds a cache named either
    way (two cached clips of one YouTube video make a plain id ambiguous).

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
    indexes, exact = _indexes(available), set(available)
    matched, missing = [], []
    for w in wanted:
        candidates = _candidates(w, exact, indexes)
        hit = candidates[0] if len(candidates) == 1 else None
        if hit is None:
            missing.append(w)
        matched.append(hit)
    return matched, missing


def _ambiguous(missing, available):
    """``{split id: candidates}`` for the ``missing`` ids that several ``available`` match."""
    indexes, exact = _indexes(available), set(available)
    found = {}
    for w in missing:
        candidates = _candidates(w, exact, indexes)
        if len(candidates) > 1:
            found[w] = candidates
    return found


def describe_ambiguous(missing, available, shown=5):
    """The split ids that :func:`find_ids` left unmatched because several ids match them,
    with their candidates, in words for an error message.

    Parameters
    ----------
    missing : list of str
        Split ids without a match (``find_ids(...)[1]``).
    available : list of str
        Ids in the feature file.
    shown : int, default 5
        Ids listed at most.

    Returns
    -------
    str
        ``"N of them are ambiguous ...: 'RUN' could be any of Run, run"``; ``""`` when
        none is.
    """
    ambiguous = _ambiguous(missing, available)
    if not ambiguous:
        return ""
    listed = [f"{w!r} could be any of {', '.join(c)}" for w, c in list(ambiguous.items())[:shown]]
    return (
        f"{len(ambiguous)} of them are ambiguous (several videos differ from them only in "
        "case or folder): " + "; ".join(listed) + ("; ..." if len(ambiguous) > shown else "")
    )


def match_ids(wanted, available, source="the feature file"):
    """Map split ids to feature-file ids (:func:`find_ids`); every id must match.

    Parameters
    ----------
    wanted, available : list of str
        As :func:`find_ids`'s.
    source : str
        Named in the error message.

    Returns
    -------
    list of str
        The matching ``available`` id for every ``wanted`` id.

    Raises
    ------
    ValueError
        Listing (a few of) the ids that have no match, and for those that match several
        ids of ``available`` (ambiguous: differing in case or folder only), the candidates.
    """
    matched, missing = find_ids(wanted, available)
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        message = f"{len(missing)} of {len(wanted)} split videos are not in {source}: {shown}"
        ambiguous = describe_ambiguous(missing, available)
        raise ValueError(message + (f". {ambiguous}" if ambiguous else ""))
    return matched
