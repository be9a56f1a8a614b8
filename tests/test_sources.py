"""Tests for mkl_tp.sources: the folder walk that names videos, and list files."""

import os

import numpy as np
import pytest
from _videos import make_tree, write_garbage

from mkl_tp.sources.walk import ARRAY_EXTENSIONS, find_videos, read_list, select_listed


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good, bad = make_tree(root)
    return root, good, bad


# -- videos ---------------------------------------------------------------------------
def test_find_videos_gives_relative_ids_without_extension(tree):
    root, good, bad = tree
    (root / "walk" / "notes.txt").write_text("not a video")
    videos = find_videos(root)
    assert list(videos) == sorted(set(good) | set(bad))
    assert videos["walk/v_walk_g02_c01"] == os.path.join(root, "walk", "v_walk_g02_c01.avi")
    assert videos["frames/run_1"] == os.path.join(root, "frames", "run_1")


def test_find_videos_refuses_ambiguous_ids(tmp_path):
    write_garbage(tmp_path / "a.avi")
    write_garbage(tmp_path / "a.mp4")
    with pytest.raises(ValueError, match=r"a\.avi and .*a\.mp4 both give video id 'a'"):
        find_videos(tmp_path)
    os.unlink(tmp_path / "a.mp4")
    (tmp_path / "a").mkdir()
    write_garbage(tmp_path / "a" / "b.avi")
    with pytest.raises(ValueError, match=r"video id 'a' \(.*a\.avi\) is also the folder of 'a/b'"):
        find_videos(tmp_path)
    with pytest.raises(FileNotFoundError, match="source folder .*nowhere does not exist"):
        find_videos(tmp_path / "nowhere")


def test_list_files_select_videos(tree, tmp_path):
    root, good, _ = tree
    listing = tmp_path / "trainlist01.txt"
    listing.write_text(
        "# UCF-101 style: path with extension, then a label\n"
        "walk/v_walk_g01_c01.avi 1\n"
        "\n"
        "./jump/single 2\n"
        "jump/not_there.avi 2\n"
        "walk/v_walk_g01_c01.mp4 1\n"
    )
    assert read_list(listing) == ["walk/v_walk_g01_c01", "jump/single", "jump/not_there"]
    selected, missing = select_listed(find_videos(root), listing)
    assert list(selected) == ["walk/v_walk_g01_c01", "jump/single"]
    assert missing == ["jump/not_there"]
    listing.write_text("ok.avi\n../outside.avi\n")
    with pytest.raises(
        ValueError, match=r"trainlist01\.txt:2: '\.\./outside\.avi' is not a path relative"
    ):
        read_list(listing)


def test_the_same_walk_finds_arrays(tmp_path):
    for name in ("a.npy", "sub/b.NPZ", "sub/frames/img_1.png", "notes.txt", "c.avi"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = find_videos(tmp_path, extensions=ARRAY_EXTENSIONS, image_folders=False)
    assert found == {
        "a": os.path.join(tmp_path, "a.npy"),
        "sub/b": os.path.join(tmp_path, "sub", "b.NPZ"),
    }
    (tmp_path / "a.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"a\.npy and .*a\.npz both give video id 'a'"):
        find_videos(tmp_path, extensions=ARRAY_EXTENSIONS, image_folders=False)


def test_channels_first_collections_become_frames_first_sequences():
    from mkl_tp import from_channels_first

    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3, 20))  # aeon: 4 cases, 3 channels, 20 time points
    sequences = from_channels_first(X)
    assert [s.shape for s in sequences] == [(20, 3)] * 4
    np.testing.assert_array_equal(sequences[1][:, 2], X[1, 2])  # channel 2 of case 1
    ragged = from_channels_first([np.ones((3, 5)), np.ones((3, 8))])
    assert [s.shape for s in ragged] == [(5, 3), (8, 3)]
    with pytest.raises(ValueError, match="case 1 has shape"):
        from_channels_first([np.ones((3, 5)), np.ones(5)])


@pytest.mark.parametrize("estimator", ["mkl", "late_fusion", "deep"])
def test_a_3d_array_is_refused_as_ambiguous_never_read_one_way(estimator):
    """aeon's (n_cases, n_channels, n_timepoints) and mkl_tp's (n_videos, T, d) look alike:
    a 3-D array used to be read frames first, silently wrong for aeon data. Every estimator
    refuses it, naming both ways in; ``list(X)`` and ``from_channels_first(X)`` fit."""
    from mkl_tp import LateFusionClassifier, PyramidMKLClassifier, from_channels_first

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 3, 20))
    y = np.arange(12) % 2
    if estimator == "deep":
        deep = pytest.importorskip("mkl_tp.deep")
        make = lambda: deep.DeepPyramidClassifier(levels=1, epochs=2)  # noqa: E731
    elif estimator == "late_fusion":
        make = lambda: LateFusionClassifier(PyramidMKLClassifier(levels=1), cv=2)  # noqa: E731
    else:
        make = lambda: PyramidMKLClassifier(levels=1)  # noqa: E731
    data = {"a": X, "b": X} if estimator == "late_fusion" else X
    with pytest.raises(ValueError, match=r"3-D array.*\(12, 3, 20\) is ambiguous.*list\(X\)"):
        make().fit(data, y)
    frames_first = list(X)
    channels_first = from_channels_first(X)
    for sequences, d in ((frames_first, 20), (channels_first, 3)):
        data = {"a": sequences, "b": sequences} if estimator == "late_fusion" else sequences
        model = make().fit(data, y)
        assert model.predict(data).shape == (12,)
        if estimator == "mkl":
            assert model.n_features_in_ == d
