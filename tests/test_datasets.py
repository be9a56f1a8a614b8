"""Bundled data and label-file readers."""

import numpy as np
import pytest

from mkl_tp.datasets import load_basic_motions, read_ts


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
