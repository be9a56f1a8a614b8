"""Bundled data and label-file readers."""

import numpy as np
import pytest

from mkl_tp.sources.samples import load_basic_motions, read_ts


def test_basic_motions_shapes_labels_and_split():
    train, test = load_basic_motions()
    assert len(train.X) == len(test.X) == 40
    assert all(x.shape == (100, 6) for x in train.X + test.X)
    assert sorted(set(train.y)) == ["Badminton", "Running", "Standing", "Walking"]
    assert all(np.sum(train.y == c) == 10 for c in set(train.y))
    assert train.ids[0] == "train0000" and test.ids[-1] == "test0039"
    # first value of the first training series, as in the archive's file
    assert train.X[0][0, 0] == pytest.approx(0.079106)


def test_read_ts_names_file_and_line_of_a_bad_series(tmp_path):
    path = tmp_path / "bad.ts"
    path.write_text("@problemName x\n@data\n1,2,3:4,5,6:a\n1,2:4,x,6:b\n")
    with pytest.raises(ValueError, match=r"bad.ts, line 4"):
        read_ts(path)
    path.write_text("@problemName x\n@data\n1,2,3:4,5:a\n")
    with pytest.raises(ValueError, match="line 3: channels of different lengths"):
        read_ts(path)
    path.write_text("@problemName x\n@data\n")
    with pytest.raises(ValueError, match="no series after @data"):
        read_ts(path)


from mkl_tp.sources.splits import find_ids, match_ids, read_split  # noqa: E402


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def ucf(tmp_path):
    folder = tmp_path / "ucfTrainTestlist"
    write(folder / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    write(
        folder / "trainlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c02.avi 2\n",
    )
    write(
        folder / "testlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g01_c01.avi\n",
    )
    return folder


def test_ucf101_split(ucf):
    split = read_split(ucf, "ucf101", 1)
    assert split.train_ids == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
        "Archery/v_Archery_g08_c02",
    ]
    assert split.train_labels == ["ApplyEyeMakeup", "Archery"]
    assert split.test_labels == ["ApplyEyeMakeup", "Archery"]
    assert split.classes == ["ApplyEyeMakeup", "Archery"]


def test_ucf101_errors_name_file_and_line(ucf):
    write(ucf / "trainlist01.txt", "ApplyEyeMakeup/v_a.avi 1\nArchery/v_b.avi 7\n")
    with pytest.raises(
        ValueError,
        match=r"trainlist01.txt, line 2: class index '7' is not in "
        r"classInd.txt",
    ):
        read_split(ucf, "ucf101", 1)
    write(ucf / "trainlist01.txt", "ApplyEyeMakeup/v_a.avi 1\n")
    write(ucf / "testlist01.txt", "Bowling/v_Bowling_g01_c01.avi\n")
    with pytest.raises(ValueError, match="testlist01.txt, line 1: label 'Bowling'"):
        read_split(ucf, "ucf101", 1)
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):
        read_split(ucf, "ucf101", 2)


@pytest.mark.parametrize("fmt", ["hmdb51", "jhmdb"])
def test_hmdb_style_split(tmp_path, fmt):
    write(tmp_path / "brush_hair_test_split1.txt", "a.avi 1\nb.avi 2\nc.avi 0\n")
    write(tmp_path / "clap_test_split1.txt", "d.avi 2\ne.avi 1\n")
    write(tmp_path / "clap_test_split2.txt", "d.avi 1\ne.avi 2\n")
    split = read_split(tmp_path, fmt, 1)
    assert split.train_ids == ["brush_hair/a", "clap/e"]
    assert split.test_ids == ["brush_hair/b", "clap/d"]
    assert split.train_labels == ["brush_hair", "clap"]
    assert split.classes == ["brush_hair", "clap"]
    write(tmp_path / "clap_test_split1.txt", "d.avi 3\n")
    with pytest.raises(ValueError, match=r"clap_test_split1.txt, line 1: expected"):
        read_split(tmp_path, fmt, 1)
    with pytest.raises(FileNotFoundError, match="_test_split3.txt"):
        read_split(tmp_path, fmt, 3)


def test_csv_split_and_errors(tmp_path):
    path = write(
        tmp_path / "split.csv",
        "video_id,label,subset\nx/a.mp4,run,train\nb,walk,train\nc,run,test\nd,walk,val\n",
    )
    split = read_split(path, "csv")
    assert split.train_ids == ["x/a", "b"] and split.test_ids == ["c"]
    assert split.classes == ["run", "walk"]
    write(path, "video,label,subset\na,run,train\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['video_id'\]"):
        read_split(path, "csv")
    write(path, "video_id,label,subset\na,run,train\n")
    with pytest.raises(ValueError, match="has no test videos"):
        read_split(path, "csv")


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown split format 'kinetics'"):
        read_split(".", "kinetics")


def test_match_ids_ignores_extensions_case_and_class_folders():
    available = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01",
        "April_09_brush_hair_u_nm_np1_ba_goo_0",
        "clap/x",
    ]
    wanted = [
        "applyeyemakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0",
        "x.avi",
    ]
    assert match_ids(wanted, available) == available
    with pytest.raises(ValueError, match=r"2 of 3 split videos are not in features.h5: a, b"):
        match_ids(["a", "b", "x"], available, source="features.h5")


def test_an_id_whose_last_component_names_two_videos_is_ambiguous():
    # "v_x" could be either cached "A/v_x" or "B/v_x": refused, never one of them picked
    available = ["A/v_x", "B/v_x", "A/v_y"]
    matched, missing = find_ids(["v_x", "other/v_x.avi", "v_y", "b/V_X"], available)
    assert matched == [None, None, "A/v_y", "B/v_x"]
    assert missing == ["v_x", "other/v_x.avi"]
    with pytest.raises(ValueError) as error:
        match_ids(["v_x", "v_y"], available, source="features.h5")
    message = str(error.value)
    assert message.startswith("1 of 2 split videos are not in features.h5: v_x")
    assert "ambiguous" in message and "'v_x' could be any of A/v_x, B/v_x" in message
    # the other way round, a class-folder id whose name one cached video has, still matches
    assert match_ids(["A/v_x"], ["v_x"]) == ["v_x"]


def test_shipped_caches_equal_a_fresh_build_from_the_ts_files(tmp_path):
    from mkl_tp.experiment.bundled import write_basic_motions_cache
    from mkl_tp.sources.samples import basic_motions_paths
    from mkl_tp.store import list_videos, load_features, read_info

    write_basic_motions_cache(tmp_path)
    shipped = basic_motions_paths()
    for path in shipped["features"]:
        fresh = tmp_path / path.rsplit("/", 1)[-1]
        ids, arrays = load_features(path)
        fresh_ids, fresh_arrays = load_features(fresh)
        assert ids == fresh_ids and len(ids) == 80
        for a, b in zip(arrays, fresh_arrays):
            np.testing.assert_array_equal(a, b)
        assert read_info(path)["stream"] in ("accel", "gyro")
        assert list_videos(path)[0] == "test0000"
    assert (tmp_path / "basic_motions_split1.csv").read_text() == open(
        shipped["split"], encoding="utf-8"
    ).read()
    train, _ = load_basic_motions()
    _, accel = load_features(shipped["features"][0], ["train0003"])
    np.testing.assert_allclose(accel[0], train.X[3][:, :3], rtol=1e-6)
