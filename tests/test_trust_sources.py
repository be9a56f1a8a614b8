"""Issue 22, sources and split files: results you can trust.

Each test reproduces a fault that went unnoticed before (a wrong video picked, an overlap
accepted, a walk that never ends or repeats itself, a FIFO that hangs extraction, a split
CSV misread) and checks that it is now refused or skipped with a line naming it. The rows
of ``docs/faults.rst`` ("Sources and split files") point here.
"""

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from _caches import make_cache

from mkl_tp import fit
from mkl_tp.sources.splits import find_ids, match_ids, read_split
from mkl_tp.sources.walk import find_videos

TESTS = os.path.dirname(os.path.abspath(__file__))


def _csv_split(path, rows):
    path.write_text("video_id,label,subset\n" + "".join(f"{','.join(r)}\n" for r in rows))
    return path


def _toy_rows(ids):
    return [(v, n, "test" if g % 4 == 0 else "train") for v, n, g in ids]


def _fit(*argv):
    return fit.main([str(a) for a in argv])


def _error_lines(err):
    return [line for line in err.splitlines() if ": error:" in line]


# -- 1. ids: exact match first, a case-folded one only when unique ---------------------------
def test_an_exact_id_wins_over_a_case_folded_one():
    assert match_ids(["Run"], ["Run", "run"]) == ["Run"]
    assert match_ids(["run", "Run"], ["Run", "run"]) == ["run", "Run"]
    assert match_ids(["walk/Run.avi"], ["walk/run", "walk/Run"]) == ["walk/Run"]
    # by file name alone, the exact name first too
    assert match_ids(["Run"], ["a/Run", "b/run"]) == ["a/Run"]
    # a unique case-folded match is still a match
    assert match_ids(["RUN"], ["run", "jump"]) == ["run"]


def test_a_case_folded_match_must_be_unique():
    matched, missing = find_ids(["RUN"], ["Run", "run"])
    assert matched == [None] and missing == ["RUN"]
    with pytest.raises(ValueError, match=r"'RUN' could be any of Run, run"):
        match_ids(["RUN"], ["Run", "run"])


# -- 2. train/test overlap and conflicting labels ---------------------------------------------
def test_train_test_overlap_is_refused_unless_allowed(tmp_path, capsys):
    rgb, ids = make_cache(tmp_path)
    rows = _toy_rows(ids)
    rows += [(v, n, "train") for v, n, s in rows if s == "test"][:2]  # two test videos in train
    split = _csv_split(tmp_path / "overlap.csv", rows)
    argv = ["--features", rgb, "--splits", split, "--levels", "1", "--quiet"]
    assert _fit(*argv, "--out", tmp_path / "refused") == 1
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1
    assert "2 videos are in both train and test" in errors[0]
    assert "Archery/v_Archery_g00_c01" in errors[0] and "--allow-overlap" in errors[0]
    assert not (tmp_path / "refused" / "report.json").exists()
    # a user who really wants it says so, and the report records it
    assert _fit(*argv, "--out", tmp_path / "allowed", "--allow-overlap") == 0
    assert "2 videos are in both train and test" in capsys.readouterr().err
    split_info = json.loads((tmp_path / "allowed" / "report.json").read_text())["split"]
    assert split_info["allow_overlap"] is True
    assert split_info["overlap"] == ["Archery/v_Archery_g00_c01", "Archery/v_Archery_g04_c01"]


def test_two_split_ids_naming_one_video_are_an_overlap(tmp_path):
    from mkl_tp._utils.cli import UserError
    from mkl_tp.experiment.inputs import match_split

    rgb, _ = make_cache(tmp_path)
    subsets = {"train": ["Archery/v_Archery_g01_c01"], "test": ["v_archery_g01_c01.avi"]}
    with pytest.raises(UserError, match=r"1 video is in both train and test.*g01_c01"):
        match_split(rgb, subsets)
    assert match_split(rgb, subsets, allow_overlap=True) == {
        "train": ["Archery/v_Archery_g01_c01"],
        "test": ["Archery/v_Archery_g01_c01"],
    }


def test_one_id_with_two_labels_is_refused(tmp_path):
    rows = [("v00", "Run", "train"), ("v01", "Jump", "train"), ("v02", "Run", "test")]
    split = _csv_split(tmp_path / "twice.csv", rows + [("v00.avi", "Jump", "train")])
    with pytest.raises(
        ValueError, match=r"twice\.csv, line 5: video 'v00' has two labels: 'Run' \(line 2\) and"
    ):
        read_split(split, "csv")
    ucf = tmp_path / "ucf"
    ucf.mkdir()
    (ucf / "classInd.txt").write_text("1 Run\n2 Jump\n")
    (ucf / "trainlist01.txt").write_text("Run/a.avi 1\nRun/a.avi 2\nJump/b.avi 2\n")
    (ucf / "testlist01.txt").write_text("Run/c.avi\n")
    with pytest.raises(ValueError, match=r"trainlist01\.txt, line 2: video 'Run/a' has two labels"):
        read_split(ucf, "ucf101")


def test_a_repeated_row_is_kept_once_with_a_warning(tmp_path):
    rows = [("v00", "Run", "train"), ("v01", "Jump", "train"), ("v02", "Run", "test")]
    split = _csv_split(tmp_path / "again.csv", rows + [("v00", "Run", "train")])
    with pytest.warns(UserWarning, match=r"again\.csv, line 5: video 'v00' is listed again"):
        result = read_split(split, "csv")
    assert result.train_ids == ["v00", "v01"] and result.train_labels == ["Run", "Jump"]


# -- 3. symbolic link loops in the source folder ----------------------------------------------
def _find_in_child(src, timeout=60):
    """find_videos(src) in a child process: a walk that never ends fails the test, not
    the run."""
    code = textwrap.dedent(
        f"""
        import json, logging
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        from mkl_tp.sources.walk import find_videos
        print(json.dumps(find_videos({os.fspath(src)!r})))
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"find_videos({src}) still walking after {timeout} s")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_a_symlink_loop_is_walked_once(tmp_path, caplog):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "v.avi").write_bytes(b"x")
    os.symlink("..", tmp_path / "sub" / "loop")
    with caplog.at_level(logging.WARNING, logger="mkl_tp"):
        videos = find_videos(tmp_path)
    assert videos == {"sub/v": os.path.join(tmp_path, "sub", "v.avi")}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1
    assert "sub/loop (a link to the folder '.', walked under its own name)" in lines[0]


def test_two_loops_to_the_same_folder_end(tmp_path):
    (tmp_path / "v.avi").write_bytes(b"x")
    os.symlink(".", tmp_path / "a")
    os.symlink(".", tmp_path / "b")
    videos, err = _find_in_child(tmp_path)
    assert videos == {"v": os.path.join(tmp_path, "v.avi")}
    assert "WARNING" in err and "a (" in err and "b (" in err


def test_a_link_to_a_folder_outside_is_followed_once(tmp_path):
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "real").mkdir(parents=True)
    (src / "real" / "r.avi").write_bytes(b"x")
    (outside / "deep").mkdir(parents=True)
    (outside / "o.mp4").write_bytes(b"x")
    os.symlink(outside, src / "ext")
    os.symlink(outside, src / "ext2")  # the same folder again
    os.symlink("..", outside / "deep" / "up")  # a loop outside the source folder
    os.symlink("real", src / "alias")  # a second name for a folder walked anyway
    videos, err = _find_in_child(src)
    assert videos == {
        "ext/o": os.path.join(src, "ext", "o.mp4"),
        "real/r": os.path.join(src, "real", "r.avi"),
    }
    assert "alias (" in err and "ext2 (" in err and "ext/deep/up (" in err


# -- 4. FIFOs, sockets and devices are not videos ----------------------------------------------
def test_a_fifo_is_skipped_not_opened(tmp_path, caplog):
    (tmp_path / "good.avi").write_bytes(b"x")
    os.mkfifo(tmp_path / "x.mp4")
    os.symlink("nowhere.avi", tmp_path / "dangling.avi")
    with caplog.at_level(logging.WARNING, logger="mkl_tp"):
        videos = find_videos(tmp_path)
    assert videos == {"good": os.path.join(tmp_path, "good.avi")}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1
    assert "x.mp4 (a FIFO, not a regular file)" in lines[0]
    assert "dangling.avi (" in lines[0]


@pytest.mark.slow
def test_extraction_saves_the_video_beside_a_fifo(tmp_path):
    sys.path.insert(0, TESTS)
    from _videos import write_video

    src = tmp_path / "src"
    write_video(src / "good.mp4", 6)
    os.mkfifo(src / "x.mp4")
    out = tmp_path / "out"
    code = textwrap.dedent(
        f"""
        import json
        from mkl_tp.extraction.run import extract_features
        summary = extract_features(
            {os.fspath(src)!r}, {os.fspath(out)!r}, streams="rgb", dtype="float32",
            arch="resnet18", weights="random", short_side=40, crop=32, batch_size=8, workers=0,
        )
        print(json.dumps([summary.done, summary.failed]))
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        pytest.fail("extraction still running after 240 s: the FIFO x.mp4 was opened")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [{"rgb": 1}, {"rgb": 0}]
    assert "x.mp4 (a FIFO, not a regular file)" in result.stderr


# -- 6. split CSV parsing ---------------------------------------------------------------------
def test_a_short_csv_row_names_the_file_and_line(tmp_path):
    split = tmp_path / "short.csv"
    split.write_text("video_id,label,subset\na,Run,train\nb,Jump\nc,Run,test\n")
    with pytest.raises(ValueError, match=r"short\.csv, line 3: 2 fields, expected 3"):
        read_split(split, "csv")
    split.write_text("video_id,label,subset\na,Run,train\nb,Jump,train,extra\nc,Run,test\n")
    with pytest.raises(ValueError, match=r"short\.csv, line 3: 4 fields, expected 3"):
        read_split(split, "csv")
    split.write_text("video_id,label,subset\na,Run,train\n,Jump,train\nc,Run,test\n")
    with pytest.raises(ValueError, match=r"short\.csv, line 3: empty video_id"):
        read_split(split, "csv")


def test_a_csv_with_a_byte_order_mark_reads(tmp_path):
    split = tmp_path / "excel.csv"
    split.write_bytes("\ufeffvideo_id,label,subset\r\na,Run,train\r\nc,Run,test\r\n".encode())
    result = read_split(split, "csv")
    assert (result.train_ids, result.test_ids, result.classes) == (["a"], ["c"], ["Run"])


def test_a_split_number_on_a_single_csv_is_refused(tmp_path, capsys):
    rgb, ids = make_cache(tmp_path)
    split = _csv_split(tmp_path / "one.csv", _toy_rows(ids))
    with pytest.raises(ValueError, match=r"one\.csv holds one split: split 2 needs a folder"):
        read_split(split, "csv", split=2)
    assert read_split(split, "csv", split=1).classes == ["Archery", "Bowling", "Diving"]
    assert _fit("--features", rgb, "--splits", split, "--split", "2", "--out", tmp_path / "o") == 1
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "one.csv holds one split: split 2 needs a folder" in errors[0]
