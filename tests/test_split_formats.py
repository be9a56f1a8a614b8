"""Annotation formats beyond UCF-101/HMDB-51/CSV: Kinetics CSVs, Something-Something v2
JSON, mmaction2 lists, JHMDB's split files; recognising them, and ``val`` as the held-out
subset where a data set publishes no labelled test split."""

import json
import logging

import h5py
import numpy as np
import pytest

from mkl_tp import fit
from mkl_tp.sources.splits import (
    SPLIT_FORMATS,
    find_ids,
    guess_split_format,
    match_ids,
    read_split,
)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# Kinetics-400/600/700 as DeepMind publishes them: kinetics400/{train,validate,test}.csv,
# header label,youtube_id,time_start,time_end,split (Kinetics-400 adds is_cc), labels with
# spaces quoted, split column train / val / test; Kinetics-600 and 700's test.csv has no
# label column (youtube_id,time_start,time_end,split).
def kinetics_folder(folder, test_labelled=False):
    write(
        folder / "train.csv",
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,--07WQ2iBlw,1,11,train,0\n"
        '"air drumming",-5ox0OJuyz8,17,27,train,0\n'
        "abseiling,-3B32lodo2M,59,69,train,0\n",
    )
    write(
        folder / "validate.csv",
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,0wR5jVB-WPk,417,427,val,0\n"
        '"air drumming",1tZpv5OnfwE,0,10,val,0\n',
    )
    if test_labelled:  # Kinetics-400's later test.csv, with labels
        write(
            folder / "test.csv",
            "label,youtube_id,time_start,time_end,split\nabseiling,A1b2C3d4E5f,2,12,test\n",
        )
    else:
        write(folder / "test.csv", "youtube_id,time_start,time_end,split\nzZz9yYy8xXx,3,13,test\n")
    return folder


def test_kinetics_folder_reads_clip_ids_and_holds_out_val(tmp_path, caplog):
    folder = kinetics_folder(tmp_path / "kinetics400")
    with caplog.at_level(logging.INFO, logger="mkl_tp.sources.splits"):
        split = read_split(folder, "kinetics_csv")
    assert split.train_ids == [
        "--07WQ2iBlw_000001_000011",
        "-5ox0OJuyz8_000017_000027",
        "-3B32lodo2M_000059_000069",
    ]
    assert split.train_labels == ["abseiling", "air drumming", "abseiling"]
    assert split.test_ids == ["0wR5jVB-WPk_000417_000427", "1tZpv5OnfwE_000000_000010"]
    assert split.test_labels == ["abseiling", "air drumming"]
    assert split.classes == ["abseiling", "air drumming"]
    held_out = [r.getMessage() for r in caplog.records if "held-out" in r.getMessage()]
    assert len(held_out) == 1 and "'val'" in held_out[0] and "validate.csv" in held_out[0]
    assert any("test.csv: no label column" in r.getMessage() for r in caplog.records)
    assert guess_split_format(folder) == "kinetics_csv"
    assert guess_split_format(folder / "train.csv") == "kinetics_csv"


def test_kinetics_with_labelled_test_rows_tests_on_them(tmp_path):
    folder = kinetics_folder(tmp_path / "k400", test_labelled=True)
    split = read_split(folder, "kinetics_csv")
    assert split.test_ids == ["A1b2C3d4E5f_000002_000012"]  # val is not used then
    assert len(split.train_ids) == 3
    with pytest.raises(ValueError, match=r"train\.csv.* has no test videos"):
        read_split(folder / "train.csv", "kinetics_csv")  # one file: its own rows only
    with pytest.raises(ValueError, match="Kinetics has one split; got split 2"):
        read_split(folder, "kinetics_csv", 2)


def test_kinetics_rows_are_checked(tmp_path):
    path = write(
        tmp_path / "train.csv",
        "label,youtube_id,time_start,time_end,split\nabseiling,x,1.5,11,train\n",
    )
    with pytest.raises(ValueError, match=r"train\.csv, line 2: time_start '1\.5' is not a whole"):
        read_split(path, "kinetics_csv")
    write(path, "youtube_id,time_start,time_end,split\nx,1,11,train\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['label'\]"):
        read_split(path, "kinetics_csv")


def test_kinetics_ids_match_a_cache_named_by_clip_or_by_youtube_id(tmp_path):
    split = read_split(kinetics_folder(tmp_path / "k"), "kinetics_csv")
    by_clip = [f"{label}/{v}.mp4" for v, label in zip(split.train_ids, split.train_labels)]
    assert match_ids(split.train_ids, by_clip) == by_clip
    by_video = ["--07WQ2iBlw", "-5ox0OJuyz8", "-3B32lodo2M"]
    assert match_ids(split.train_ids, by_video) == by_video
    assert match_ids(by_video, by_clip) == by_clip  # a split of plain ids finds clips too
    # two cached clips of one YouTube video: a plain id is ambiguous, never a guess
    matched, missing = find_ids(
        ["--07WQ2iBlw"], ["--07WQ2iBlw_000001_000011", "--07WQ2iBlw_000020_000030"]
    )
    assert matched == [None] and missing == ["--07WQ2iBlw"]
    with pytest.raises(ValueError, match="could be any of --07WQ2iBlw_000001_000011"):
        match_ids(["--07WQ2iBlw"], ["--07WQ2iBlw_000001_000011", "--07WQ2iBlw_000020_000030"])
    # an exact clip id wins over the other clip of its video
    assert match_ids(
        ["--07WQ2iBlw_000020_000030"], ["--07WQ2iBlw_000001_000011", "--07WQ2iBlw_000020_000030"]
    ) == ["--07WQ2iBlw_000020_000030"]


# Something-Something v2 as released: something-something-v2-labels.json
# {"<template without brackets>": "<index>"}, -train.json / -validation.json lists of
# {"id", "label", "template", "placeholders"}, -test.json [{"id"}] (no labels).
def ssv2_folder(folder):
    labels = {
        "Approaching something with your camera": "0",
        "Holding something next to something": "1",
        "Putting something into something": "2",
    }
    write(folder / "something-something-v2-labels.json", json.dumps(labels))

    def entry(i, label, template, placeholders):
        return {"id": i, "label": label, "template": template, "placeholders": placeholders}

    train = [
        entry(
            "78687",
            "holding potato next to vicks vaporub bottle",
            "Holding [something] next to [something]",
            ["potato", "vicks vaporub bottle"],
        ),
        entry(
            "42326",
            "approaching a cup with your camera",
            "Approaching [something] with your camera",
            ["a cup"],
        ),
        entry(
            "100904", "putting pen into cup", "Putting [something] into [something]", ["pen", "cup"]
        ),
    ]
    validation = [
        entry(
            "74225",
            "holding a box next to a mug",
            "Holding [something] next to [something]",
            ["a box", "a mug"],
        ),
        entry(
            "116154",
            "putting coin into jar",
            "Putting [something] into [something]",
            ["coin", "jar"],
        ),
    ]
    write(folder / "something-something-v2-train.json", json.dumps(train))
    write(folder / "something-something-v2-validation.json", json.dumps(validation))
    write(folder / "something-something-v2-test.json", json.dumps([{"id": "1420"}]))
    return folder


def test_ssv2_maps_templates_to_labels_and_holds_out_validation(tmp_path, caplog):
    folder = ssv2_folder(tmp_path / "annotations")
    with caplog.at_level(logging.INFO, logger="mkl_tp.sources.splits"):
        split = read_split(folder, "ssv2")
    assert split.train_ids == ["78687", "42326", "100904"]
    assert split.train_labels == [
        "Holding something next to something",
        "Approaching something with your camera",
        "Putting something into something",
    ]
    assert split.test_ids == ["74225", "116154"]
    assert split.test_labels[0] == "Holding something next to something"
    assert split.classes == [  # the labels file's index order
        "Approaching something with your camera",
        "Holding something next to something",
        "Putting something into something",
    ]
    assert any(
        "'validation'" in r.getMessage() and "held-out" in r.getMessage() for r in caplog.records
    )
    labels = folder / "something-something-v2-labels.json"
    assert read_split(labels, "ssv2") == split  # the labels file names its siblings
    train = folder / "something-something-v2-train.json"
    assert read_split(train, "ssv2") == split  # and a list names its labels file
    assert guess_split_format(train) == "ssv2"
    assert guess_split_format(folder) == guess_split_format(labels) == "ssv2"
    assert match_ids(split.test_ids, ["74225.webm", "116154.webm"]) == ["74225.webm", "116154.webm"]


def test_ssv2_template_not_in_labels_names_entry(tmp_path):
    folder = ssv2_folder(tmp_path / "labels")
    train = folder / "something-something-v2-train.json"
    entries = json.loads(train.read_text())
    entries[1]["template"] = "Spinning [something] around"
    train.write_text(json.dumps(entries))
    with pytest.raises(
        ValueError, match=r"train\.json, entry 2: template 'Spinning \[something\] around'"
    ):
        read_split(folder, "ssv2")
    # the newer release's layout: labels/{labels,train,validation,test}.json
    new = tmp_path / "release"
    write(new / "labels" / "labels.json", json.dumps({"Pushing something": "0"}))
    entry = {
        "id": "1",
        "label": "pushing pen",
        "template": "Pushing [something]",
        "placeholders": ["pen"],
    }
    write(new / "labels" / "train.json", json.dumps([entry]))
    write(new / "labels" / "validation.json", json.dumps([{**entry, "id": "2"}]))
    assert guess_split_format(new) == "ssv2"
    split = read_split(new, "ssv2")
    assert (split.train_ids, split.test_ids, split.classes) == (["1"], ["2"], ["Pushing something"])


# mmaction2's annotation lists (tools/data/*/): "<video> <label>" for videos
# (ucf101_train_split_1_videos.txt), "<frame folder> <n_frames> <label>" for raw frames
# (sthv2_train_list_rawframes.txt); held-out lists named with val (or test).
def test_mmaction2_video_lists(tmp_path):
    folder = tmp_path / "ucf101"
    write(
        folder / "ucf101_train_split_1_videos.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0\nYoYo/v_YoYo_g25_c05.avi 100\n"
        "Archery/v_Archery_g08_c01.avi 2\n",
    )
    write(
        folder / "ucf101_val_split_1_videos.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 0\n"
    )
    write(folder / "ucf101_train_split_2_videos.txt", "Archery/v_Archery_g01_c01.avi 2\n")
    write(folder / "ucf101_val_split_2_videos.txt", "Archery/v_Archery_g09_c01.avi 2\n")
    split = read_split(folder, "mmaction2")
    assert split.train_ids == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
        "YoYo/v_YoYo_g25_c05",
        "Archery/v_Archery_g08_c01",
    ]
    assert split.train_labels == ["0", "100", "2"]
    assert split.classes == ["0", "2", "100"]  # numeric order
    assert split.test_ids == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01"]
    assert read_split(folder, "mmaction2", 2).test_ids == ["Archery/v_Archery_g09_c01"]
    train_file = folder / "ucf101_train_split_1_videos.txt"
    assert read_split(train_file, "mmaction2") == split
    with pytest.raises(ValueError, match="is split 1, not split 2"):
        read_split(train_file, "mmaction2", 2)
    assert guess_split_format(folder) == guess_split_format(train_file) == "mmaction2"


def test_mmaction2_rawframe_lists(tmp_path):
    folder = tmp_path / "sthv2"
    write(folder / "sthv2_train_list_rawframes.txt", "78687 47 1\n42326 30 0\n")
    write(folder / "sthv2_val_list_rawframes.txt", "74225 52 1\n")
    split = read_split(folder / "sthv2_train_list_rawframes.txt", "mmaction2")
    assert (split.train_ids, split.train_labels) == (["78687", "42326"], ["1", "0"])
    assert (split.test_ids, split.test_labels, split.classes) == (["74225"], ["1"], ["0", "1"])
    assert guess_split_format(folder) == "mmaction2"
    write(folder / "sthv2_val_list_rawframes.txt", "74225 52 1\n1420 3\n")
    with pytest.raises(
        ValueError, match=r"val_list_rawframes\.txt, line 2: a video line in a rawframes"
    ):
        read_split(folder, "mmaction2")
    write(folder / "sthv2_val_list_rawframes.txt", "74225 fifty 1\n")
    with pytest.raises(ValueError, match=r"line 1: expected '<video> <label>' or"):
        read_split(folder, "mmaction2")
    (folder / "sthv2_val_list_rawframes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="sthv2_test_list_rawframes.txt or sthv2_val_list"):
        read_split(folder, "mmaction2")


def test_val_is_the_held_out_subset_of_a_csv_without_test_rows(tmp_path, caplog):
    path = write(
        tmp_path / "split.csv", "video_id,label,subset\na,run,train\nb,walk,train\nc,run,val\n"
    )
    with caplog.at_level(logging.INFO, logger="mkl_tp.sources.splits"):
        split = read_split(path, "csv")
    assert (split.test_ids, split.test_labels) == (["c"], ["run"])
    assert any("are the held-out test videos" in r.getMessage() for r in caplog.records)
    write(path, "video_id,label,subset\na,run,train\nb,walk,validation\n")
    assert read_split(path, "csv").test_ids == ["b"]
    write(path, "video_id,label,subset\na,run,train\nb,walk,test\nc,run,val\n")
    assert read_split(path, "csv").test_ids == ["b"]  # a test subset: val is not read
    write(path, "video_id,label,subset\na,run,train\n")
    with pytest.raises(ValueError, match="has no test videos"):
        read_split(path, "csv")


# JHMDB as published (splits/): <class>_test_split<k>.txt for k = 1, 2, 3, lines
# "<video>.avi 1|2" with 1 = train, 2 = test, the layout of HMDB-51's.
def test_jhmdb_split_files(tmp_path):
    folder = tmp_path / "splits"
    for k in (1, 2, 3):
        write(
            folder / f"brush_hair_test_split{k}.txt",
            f"April_09_brush_hair_u_nm_np1_ba_goo_0.avi {1 if k != 2 else 2}\n"
            f"Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi {2 if k != 2 else 1}\n",
        )
        write(
            folder / f"catch_test_split{k}.txt",
            "Ball_hochwerfen_catch_u_cm_np1_fr_goo_0.avi 1\n"
            "Catch_Me_catch_f_cm_np1_ba_bad_1.avi 2\n",
        )
    assert guess_split_format(folder) == "hmdb51"
    split = read_split(folder, "jhmdb", 1)
    assert split == read_split(folder, "hmdb51", 1)
    assert split.train_ids == [
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0",
        "catch/Ball_hochwerfen_catch_u_cm_np1_fr_goo_0",
    ]
    assert split.test_labels == ["brush_hair", "catch"]
    assert split.classes == ["brush_hair", "catch"]
    assert (
        read_split(folder, "jhmdb", 2).test_ids[0]
        == "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"
    )
    assert match_ids(split.train_ids[:1], ["April_09_brush_hair_u_nm_np1_ba_goo_0"]) == [
        "April_09_brush_hair_u_nm_np1_ba_goo_0"
    ]


def test_an_unrecognised_split_names_the_path_and_every_format_tried(tmp_path):
    folder = write(tmp_path / "mine" / "notes.txt", "a video list without labels\n").parent
    with pytest.raises(ValueError) as error:
        guess_split_format(folder)
    message = str(error.value)
    assert str(folder) in message and "recognises" in message
    for fmt in ("ucf101", "hmdb51", "csv", "kinetics_csv", "ssv2", "mmaction2"):
        assert f"{fmt} (" in message
    assert "classInd.txt" in message and "youtube_id" in message and "labels.json" in message
    bad = write(tmp_path / "other.csv", "clip,class\na,run\n")
    with pytest.raises(
        ValueError, match=r"other\.csv: the split file is in no format .*tried ucf101"
    ):
        guess_split_format(bad)
    # what was recognised before is unchanged
    assert guess_split_format(tmp_path / "missing") == "ucf101"  # the reader names it
    assert guess_split_format(tmp_path / "missing.csv") == "csv"
    good = write(tmp_path / "split.csv", "video_id,label,subset\na,run,train\n")
    assert guess_split_format(good) == "csv"
    assert {"kinetics_csv", "ssv2", "mmaction2"} <= set(SPLIT_FORMATS)


# -- end to end through the fit command line ----------------------------------------------
def youtube_cache(path, split):
    """A cache named by YouTube id (/videos/<youtube_id>), the class in the features."""
    rng = np.random.default_rng(0)
    classes = sorted(set(split.train_labels))
    with h5py.File(path, "w") as h5:
        for clip, label in zip(
            split.train_ids + split.test_ids, split.train_labels + split.test_labels
        ):
            x = rng.normal(size=(int(rng.integers(4, 12)), 3)).astype(np.float32)
            x[:, classes.index(label)] += 1.5
            h5.create_dataset(f"videos/{clip.rsplit('_', 2)[0]}", data=x)
    return path


def test_fit_reads_a_kinetics_folder_without_format(tmp_path, caplog):
    folder = tmp_path / "kinetics"
    rows = [("abseiling" if i % 2 else "air drumming", f"yt{i:03d}X", i, i + 10) for i in range(16)]
    write(
        folder / "train.csv",
        "label,youtube_id,time_start,time_end,split\n"
        + "".join(f'"{c}",{y},{a},{b},train\n' for c, y, a, b in rows[:12]),
    )
    write(
        folder / "validate.csv",
        "label,youtube_id,time_start,time_end,split\n"
        + "".join(f'"{c}",{y},{a},{b},val\n' for c, y, a, b in rows[12:]),
    )
    rgb = youtube_cache(tmp_path / "k_rgb.h5", read_split(folder, "kinetics_csv"))
    out = tmp_path / "run"
    argv = ["--features", rgb, "--splits", folder, "--levels", "1", "--out", out]
    with caplog.at_level(logging.INFO, logger="mkl_tp"):
        assert fit.main([str(a) for a in argv]) == 0
    said = [r.getMessage() for r in caplog.records if r.name == "mkl_tp.sources.splits"]
    assert any("the 4 'val' videos" in m and "held-out" in m for m in said)
    report = json.loads((out / "report.json").read_text())
    assert report["split"]["format"] == "kinetics_csv"
    assert (report["split"]["n_train"], report["split"]["n_test"]) == (12, 4)
    assert report["split"]["classes"] == ["abseiling", "air drumming"]
    argv += ["--format", "kinetics_csv", "--overwrite", "--quiet"]
    assert fit.main([str(a) for a in argv]) == 0


def test_fit_names_the_formats_tried_for_an_unknown_layout(tmp_path, capsys):
    rgb = tmp_path / "x_rgb.h5"
    with h5py.File(rgb, "w") as h5:
        h5.create_dataset("videos/a", data=np.zeros((3, 2), np.float32))
    folder = write(tmp_path / "unknown" / "readme.md", "nothing here\n").parent
    assert fit.main(["--features", str(rgb), "--splits", str(folder)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "tried ucf101" in errors[0] and "mmaction2 (" in errors[0]
