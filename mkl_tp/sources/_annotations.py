"""Annotation files of Kinetics, Something-Something v2 and mmaction2 read as splits, how
to recognise them, and the row bookkeeping that every split reader shares
(:mod:`mkl_tp.sources.splits` is the public side)."""

import csv
import json
import logging
import os
import re
import warnings
from pathlib import Path

logger = logging.getLogger("mkl_tp.sources.splits")

# Names a held-out subset goes by where a data set publishes no labelled test split.
_VAL_NAMES = ("val", "validation", "validate")
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
# What each format looks like, for the error naming the formats tried.
EXPECTED = {
    "kinetics_csv": (
        "a .csv with the header label,youtube_id,time_start,time_end,split (Kinetics-400/600/"
        "700's train.csv, validate.csv, test.csv), or a folder of them"
    ),
    "ssv2": (
        "Something-Something v2's *labels.json ({class: index}) beside *train.json and "
        "*validation.json (any of the three), or a folder (or its labels/ folder) holding them"
    ),
    "mmaction2": (
        "an mmaction2 list file with 'train' in its name and lines '<video> <label>' or "
        "'<frame folder> <n_frames> <label>', its held-out list named the same with 'test' or "
        "'val', or a folder of them"
    ),
}


def _strip_extension(video):
    root, ext = os.path.splitext(video.strip())
    return root if ext else video.strip()


def _lines(path):
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    with open(path, encoding="utf-8-sig") as handle:  # a byte order mark is not a field
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.split()


class _Rows:
    """The rows of one split as they are read, checked: one label per video.

    A video listed again with another label is refused (naming both rows); listed again
    in the same subset with the same label, it is read once, with a warning. The same
    video in train and test with one label is kept: an overlap, which the fit refuses
    unless allowed (:func:`mkl_tp.experiment.inputs.match_split`). Rows of a ``val`` (or
    ``validation``, ``validate``) subset are the test videos when there are no test rows
    (a data set without a public test split: Kinetics, SSv2), logged; otherwise ignored.
    """

    def __init__(self, unit="line"):
        self.subsets = {"train": ([], []), "test": ([], [])}
        self._first = {}
        self._val = []
        self._unit = unit

    def add(self, subset, video, label, path, number):
        """Add ``video`` with ``label`` to ``subset``, read from ``path`` at line ``number``."""
        if subset in _VAL_NAMES:
            self._val.append((subset, video, label, path, number))
            return
        seen = self._first.get(video)
        if seen is None:
            self._first[video] = (subset, label, path, number)
        else:
            first_subset, first_label, first_path, first_number = seen
            where = f"{self._unit} {first_number}"
            if first_path != path:
                where = f"{first_path}, {where}"
            if first_label != label:
                raise ValueError(
                    f"{path}, {self._unit} {number}: video {video!r} has two labels: "
                    f"{first_label!r} ({where}) and {label!r}"
                )
            if first_subset == subset:
                warnings.warn(
                    f"{path}, {self._unit} {number}: video {video!r} is listed again ({where}); "
                    "read once",
                    stacklevel=4,
                )
                return
        ids, labels = self.subsets[subset]
        ids.append(video)
        labels.append(label)

    def split(self, classes=None):
        """``(train_ids, train_labels, test_ids, test_labels, classes)``; ``classes`` sorted
        from the labels read when not given."""
        if not self.subsets["test"][0] and self._val:
            names = sorted({row[0] for row in self._val})
            files = ", ".join(str(p) for p in dict.fromkeys(row[3] for row in self._val))
            logger.info(
                "no test subset: the %d %s videos (%s) are the held-out test videos",
                len(self._val),
                "/".join(repr(n) for n in names),
                files,
            )
            for _, video, label, path, number in self._val:
                self.add("test", video, label, path, number)
        if classes is None:
            classes = sorted(set(self.subsets["train"][1]) | set(self.subsets["test"][1]))
        return (*self.subsets["train"], *self.subsets["test"], classes)


def _one_split(path, split, what):
    if split != 1:
        raise ValueError(f"{path}: {what} has one split; got split {split}")


def _csv_header(path):
    """The stripped names of a CSV file's first row (``[]`` if it cannot be read)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _is_kinetics_header(header):
    return all(c in header for c in KINETICS_COLUMNS if c != "label")


def _kinetics_files(path):
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"split file not found: {path}")
    files = sorted(p for p in path.glob("*.csv") if _is_kinetics_header(_csv_header(p)))
    if not files:
        raise FileNotFoundError(f"no Kinetics CSV ({','.join(KINETICS_COLUMNS)}) in {path}")
    return files


def _second(value, path, number, column):
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is None or not seconds.is_integer() or seconds < 0:
        raise ValueError(f"{path}, line {number}: {column} {value!r} is not a whole second")
    return int(seconds)


def read_kinetics(path, split):
    """Kinetics-400/600/700 CSVs: ``label,youtube_id,time_start,time_end,split``.

    ``path`` is one CSV or a folder of them (``train.csv``, ``validate.csv``,
    ``test.csv``); a file of the folder without ``label`` (an unlabelled test set) is
    skipped. Ids are the clip names of the Kinetics download tools,
    ``<youtube_id>_<time_start:06d>_<time_end:06d>``; :func:`mkl_tp.sources.find_ids`
    matches them to a cache named by clip or by ``youtube_id``. ``split`` column ``val``
    is the test subset when no labelled test rows exist.
    """
    path = Path(path)
    _one_split(path, split, "Kinetics")
    files, rows = _kinetics_files(path), _Rows()
    for file in files:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [c for c in KINETICS_COLUMNS if c not in header]
            if missing == ["label"] and len(files) > 1:
                logger.info("%s: no label column (an unlabelled test set); not read", file)
                continue
            if missing:
                raise ValueError(
                    f"{file}: missing column(s) {missing} in the header (Kinetics: "
                    f"{','.join(KINETICS_COLUMNS)})"
                )
            column = {c: header.index(c) for c in KINETICS_COLUMNS}
            number = reader.line_num
            for fields in reader:
                number, start = reader.line_num, number + 1
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(header):
                    raise ValueError(
                        f"{file}, line {start}: {len(fields)} fields, expected {len(header)} "
                        f"({','.join(header)})"
                    )
                label, youtube_id, t0, t1, subset = (
                    fields[column[c]].strip() for c in KINETICS_COLUMNS
                )
                for name, value in (("label", label), ("youtube_id", youtube_id)):
                    if not value:
                        raise ValueError(f"{file}, line {start}: empty {name}")
                t0 = _second(t0, file, start, "time_start")
                t1 = _second(t1, file, start, "time_end")
                subset = subset.lower()
                if subset in ("train", "test", *_VAL_NAMES):
                    rows.add(subset, f"{youtube_id}_{t0:06d}_{t1:06d}", label, file, start)
    return rows.split()


_SSV2_NAMES = ("labels.json", "train.json", "validation.json")


def _ssv2_labels_file(path):
    if path.is_dir():
        for folder in (path, path / "labels"):
            found = sorted(folder.glob("*labels.json")) if folder.is_dir() else []
            if found:
                return found[0]
        raise FileNotFoundError(f"no '*labels.json' (Something-Something v2) in {path}")
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    for listed in ("train.json", "validation.json"):  # a list names its labels file too
        if path.name.endswith(listed):
            return path.with_name(path.name[: -len(listed)] + "labels.json")
    if not path.name.endswith("labels.json"):
        raise ValueError(f"{path}: an SSv2 labels file is named '*labels.json'")
    return path


def _json(path):
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    with open(path, encoding="utf-8-sig") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None


def read_ssv2(path, split):
    """Something-Something v2: ``*labels.json`` ``{template without brackets: "index"}``,
    ``*train.json`` and ``*validation.json`` lists of ``{"id", "label", "template",
    "placeholders"}``.

    An entry's class is its ``template`` with the brackets removed (``Holding [something]
    next to [something]`` -> ``Holding something next to something``), as the release maps
    them; classes in the labels file's index order. The validation list is the test subset
    (the release's test labels are not public). Ids are the entries' ``id``
    (``78687`` for ``78687.webm``).
    """
    path = Path(path)
    _one_split(path, split, "Something-Something v2")
    labels_path = _ssv2_labels_file(path)
    labels = _json(labels_path)
    if not isinstance(labels, dict) or not all(str(v).strip().isdigit() for v in labels.values()):
        raise ValueError(f"{labels_path}: expected {{class name: index}}")
    prefix = labels_path.name[: -len("labels.json")]
    rows = _Rows(unit="entry")
    for subset in ("train", "validation"):
        file = labels_path.with_name(f"{prefix}{subset}.json")
        entries = _json(file)
        if not isinstance(entries, list):
            raise ValueError(f"{file}: expected a list of entries")
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not entry.get("id") or "template" not in entry:
                raise ValueError(f"{file}, entry {number}: expected 'id' and 'template'")
            label = str(entry["template"]).replace("[", "").replace("]", "")
            if label not in labels:
                raise ValueError(
                    f"{file}, entry {number}: template {entry['template']!r} ({label!r}) "
                    f"is not in {labels_path.name}"
                )
            rows.add(subset, str(entry["id"]), label, file, number)
    return rows.split(sorted(labels, key=lambda c: int(labels[c])))


def _token(word):
    return re.compile(rf"(?<![A-Za-z]){word}(?![A-Za-z])", re.IGNORECASE)


_TRAIN = _token("train")
_SPLIT_NUMBER = re.compile(r"(?<![A-Za-z])split_?(\d+)", re.IGNORECASE)


def _list_shape(fields):
    """``"video"`` for ``<video> <label>``, ``"rawframes"`` for ``<dir> <n> <label>``."""
    if len(fields) == 2 and fields[1].isdigit():
        return "video"
    if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
        return "rawframes"
    return None


def looks_like_list(path):
    """Whether ``path`` is a ``.txt`` file whose first lines are mmaction2 list lines."""
    if path.suffix.lower() != ".txt" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.split() for line in handle.readlines(1 << 16) if line.strip()]
    except (OSError, UnicodeDecodeError):
        return False
    shapes = {_list_shape(fields) for fields in lines[:20]}
    return len(shapes) == 1 and None not in shapes


def _list_train_file(path, split):
    if path.is_file():
        number = _SPLIT_NUMBER.search(path.name)
        if split != (int(number[1]) if number else 1):
            raise ValueError(
                f"{path} is split {int(number[1]) if number else 1}, not split {split}: pass "
                "the list file of that split"
            )
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"split file not found: {path}")
    found = [p for p in sorted(path.glob("*.txt")) if _TRAIN.search(p.name) and looks_like_list(p)]
    numbered = [p for p in found if _SPLIT_NUMBER.search(p.name)]
    if numbered:
        found = [p for p in numbered if int(_SPLIT_NUMBER.search(p.name)[1]) == split]
    elif split != 1:
        found = []
    if len(found) != 1:
        named = ", ".join(p.name for p in found) or "none"
        raise FileNotFoundError(
            f"{path}: expected one mmaction2 training list (named '*train*', split {split}), "
            f"found {named}; pass the list file"
        )
    return found[0]


def _read_list(file, subset, rows):
    shape = None
    for number, fields in _lines(file):
        this = _list_shape(fields)
        if this is None:
            raise ValueError(
                f"{file}, line {number}: expected '<video> <label>' or '<frame folder> "
                f"<n_frames> <label>' (an mmaction2 list), got {' '.join(fields)!r}"
            )
        shape = shape or (this, number)
        if this != shape[0]:
            raise ValueError(f"{file}, line {number}: a {this} line in a {shape[0]} list")
        video = _strip_extension(fields[0]) if this == "video" else fields[0].rstrip("/")
        rows.add(subset, video.replace("\\", "/"), str(int(fields[-1])), file, number)


def read_mmaction2(path, split):
    """mmaction2 annotation lists: ``<video> <label>`` (videos) or ``<frame folder>
    <n_frames> <label>`` (raw frames), labels integers.

    ``path`` is the training list (its name holds ``train``: ``ucf101_train_split_1_videos
    .txt``, ``kinetics400_train_list_videos.txt``) or a folder holding it; the held-out list
    is named the same with ``test`` or else ``val``. A name with ``split_<N>`` is split N,
    others split 1. Labels are kept as the class names ``"0"``, ``"1"``, ..., in numeric
    order.
    """
    path = Path(path)
    train = _list_train_file(path, split)
    if not _TRAIN.search(train.name):
        raise ValueError(f"{train}: an mmaction2 training list has 'train' in its name")
    rows = _Rows()
    _read_list(train, "train", rows)
    held_out = [
        (name, train.with_name(_TRAIN.sub(name, train.name, count=1))) for name in ("test", "val")
    ]
    held_out = [(name, p) for name, p in held_out if p.is_file()]
    if not held_out:
        tried = " or ".join(_TRAIN.sub(n, train.name, count=1) for n in ("test", "val"))
        raise FileNotFoundError(f"split file not found: {tried} beside {train}")
    for name, file in held_out:
        _read_list(file, name, rows)
    train_ids, train_labels, test_ids, test_labels, classes = rows.split()
    return train_ids, train_labels, test_ids, test_labels, sorted(classes, key=int)


def guess(path):
    """The new formats' names for ``path``, or ``None``: an existing file or folder."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".csv" and _is_kinetics_header(_csv_header(path)):
            return "kinetics_csv"
        if suffix == ".json" and path.name.endswith(_SSV2_NAMES):
            return "ssv2"
        if looks_like_list(path) and _TRAIN.search(path.name):
            return "mmaction2"
        return None
    if any(_is_kinetics_header(_csv_header(p)) for p in path.glob("*.csv")):
        return "kinetics_csv"
    if any(path.glob("*labels.json")) or any(path.glob("labels/*labels.json")):
        return "ssv2"
    if any(_TRAIN.search(p.name) and looks_like_list(p) for p in path.glob("*.txt")):
        return "mmaction2"
    return None
