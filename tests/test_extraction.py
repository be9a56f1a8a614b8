"""Tests for mkl_tp.extraction: extract_features called as a library, and shard assignment.

The command line over it (messages, exit codes, signals, worker processes) is tested in
test_extract.py.
"""

import h5py
import numpy as np
import pytest
from _videos import make_tree

from mkl_tp import store
from mkl_tp.extraction.run import (
    STREAMS,
    ExtractionInterrupted,
    extract_features,
    resolve_shard,
    shard_of,
)

SMALL = dict(arch="resnet18", weights="random", short_side=40, crop=32, batch_size=8, workers=0)
SCHEDULER_VARIABLES = (
    "RANK",
    "WORLD_SIZE",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good, bad = make_tree(root)
    return root, good, bad


def test_extract_features_returns_the_summary(tree, tmp_path):
    root, good, _ = tree
    listing = tmp_path / "some.txt"
    listing.write_text("walk/v_walk_g02_c01\njump/single\nbroken/garbage\nnothing/here\n")
    out = str(tmp_path / "lib")
    summary = extract_features(
        root, out, streams="both", video_list=listing, dtype="float32", **SMALL
    )
    paths = {s: f"{out}_{s}.h5" for s in STREAMS}
    assert summary.paths == paths
    assert summary.done == {"rgb": 2, "flow": 2} and summary.skipped == {"rgb": 0, "flow": 0}
    assert summary.failed == {"rgb": 2, "flow": 2}
    assert list(summary.failures) == ["nothing/here", "broken/garbage"]  # listed-but-absent first
    assert "not found under" in summary.failures["nothing/here"]
    assert "garbage.avi" in summary.failures["broken/garbage"]
    assert set(summary.busy_seconds) == {"decode", "flow", "resize", "network"}
    assert summary.busy_seconds["network"] > 0
    for stream, path in paths.items():
        ids, arrays = store.load_features(path)
        assert ids == ["jump/single", "walk/v_walk_g02_c01"]
        assert [len(a) for a in arrays] == [good[i] for i in ids]
        assert store.read_info(path)["stream"] == stream
    again = extract_features(
        root, out, streams=("rgb",), video_list=listing, dtype="float32", **SMALL
    )
    assert again.paths == {"rgb": paths["rgb"]}
    assert (again.done, again.skipped, again.failed) == ({"rgb": 0}, {"rgb": 2}, {"rgb": 2})


def test_bad_options_are_refused_before_anything_is_written(tree, tmp_path):
    root, _, _ = tree
    out = str(tmp_path / "e")
    with pytest.raises(ValueError, match="crop 300 is larger than short_side 40"):
        extract_features(root, out, **dict(SMALL, crop=300))
    with pytest.raises(ValueError, match="two streams write two files"):
        extract_features(root, out + ".h5", **SMALL)
    with pytest.raises(ValueError, match="streams must be 'both' or some of"):
        extract_features(root, out, streams=("depth",), **SMALL)
    with pytest.raises(ValueError, match="2/2: need 0 <= I < N"):
        extract_features(root, out, shard=(2, 2), **SMALL)
    with pytest.raises(ValueError, match="vit_b_16 needs inputs of at least 224x224 pixels"):
        extract_features(root, out, **dict(SMALL, arch="vit_b_16"))
    with pytest.raises(FileNotFoundError, match="source folder .*nowhere does not exist"):
        extract_features(tmp_path / "nowhere", out, **SMALL)
    assert not list(tmp_path.iterdir())


def test_an_interrupted_run_closes_its_files_and_counts_what_it_saved(tree, tmp_path, monkeypatch):
    root, good, _ = tree
    listing = tmp_path / "good.txt"
    listing.write_text("\n".join(good))
    real_write = store.FeatureWriter.write

    def write_then_interrupt(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(store.FeatureWriter, "write", write_then_interrupt)
    with pytest.raises(ExtractionInterrupted) as stopped:
        extract_features(root, str(tmp_path / "i"), streams="rgb", video_list=listing, **SMALL)
    assert stopped.value.saved == 1 and isinstance(stopped.value, KeyboardInterrupt)
    assert store.list_videos(tmp_path / "i_rgb.h5") == list(good)[:1]


# -- shards ---------------------------------------------------------------------------
def test_shard_of_is_pinned():
    # Pinned: a different hash would move videos between the shards of running jobs.
    assert shard_of("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", 4) == 2
    assert [shard_of(f"class/v{i}", 4) for i in range(8)] == [2, 3, 0, 2, 3, 2, 1, 3]


def test_resolve_shard(monkeypatch):
    for name in SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert resolve_shard(None) is None
    assert resolve_shard((1, 3)) == (1, 3) and resolve_shard("2/3") == (2, 3)
    with pytest.raises(ValueError, match="^auto needs RANK/WORLD_SIZE"):
        resolve_shard("auto")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    assert resolve_shard("auto") == (2, 3)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_shard("auto") == (1, 4)  # torchrun's variables first


# -- frame sampling, truncated and damaged videos ----------------------------------------
def test_sampling_is_recorded_and_keeps_the_full_rate_rows(tree, tmp_path):
    root, good, _ = tree
    listing = tmp_path / "one.txt"
    listing.write_text("walk/v_walk_g01_c01\n")  # 12 frames at 25 fps
    options = dict(SMALL, streams="both", video_list=listing, dtype="float32")
    extract_features(root, str(tmp_path / "all"), **options)
    for name, extra, rows, streams in (
        ("fps5", {"sample_fps": 5}, [0, 5, 10], STREAMS),
        ("stride4", {"sample_stride": 4}, [0, 4, 8], ("rgb",)),
    ):
        out = str(tmp_path / name)
        summary = extract_features(root, out, **dict(options, streams=streams), **extra)
        assert summary.done == dict.fromkeys(streams, 1)
        for stream in streams:
            path = f"{out}_{stream}.h5"
            info = store.read_info(path)
            key, value = next(iter(extra.items()))
            assert (
                info[key] == value and info["preprocessing"].split(";")[0] != "every decoded frame"
            )
            assert ("flow_sampling" in info) == (stream == "flow")
            attrs = store.video_attrs(path, "walk/v_walk_g01_c01")
            assert attrs["n_frames"] == len(rows) and attrs["source_frames"] == 12
            assert attrs["fps"] == 25.0  # the source's rate
            (sampled,) = store.load_features(path)[1]
            (full,) = store.load_features(f"{tmp_path / 'all'}_{stream}.h5")[1]
            np.testing.assert_allclose(sampled, full[rows], rtol=1e-4, atol=1e-5)
    # A cache keeps one sampling: extending it with another (or with every frame) is refused.
    with pytest.raises(ValueError, match=r"sample_fps=5\.0 in the file, None now"):
        extract_features(root, str(tmp_path / "fps5"), **options)
    with pytest.raises(ValueError, match=r"sample_stride=None in the file, 4 now"):
        extract_features(
            root, str(tmp_path / "all"), **dict(options, streams="rgb"), sample_stride=4
        )
    assert extract_features(root, str(tmp_path / "all"), **options).skipped == {"rgb": 1, "flow": 1}


def test_truncated_videos_fail_unless_kept_partial(tree, tmp_path):
    root, _, bad = tree
    listing = tmp_path / "cut.txt"
    listing.write_text("broken/cut\n")
    out = str(tmp_path / "t")
    summary = extract_features(root, out, streams="rgb", video_list=listing, **SMALL)
    assert summary.done == {"rgb": 0} and summary.failed == {"rgb": 1}
    assert "cut.avi is truncated: decoded 25 of the 100 frames" in summary.failures["broken/cut"]
    assert "broken/cut" in store.failed_videos(f"{out}_rgb.h5")
    summary = extract_features(
        root, out, streams="rgb", video_list=listing, keep_partial=True, **SMALL
    )
    assert summary.done == {"rgb": 1} and not summary.failures  # the failure is retried
    attrs = store.video_attrs(f"{out}_rgb.h5", "broken/cut")
    assert attrs["partial"] and attrs["declared_frames"] == 100 and attrs["n_frames"] == 25
    assert store.failed_videos(f"{out}_rgb.h5") == {}


def _damage(path, video_id):
    """Overwrite bytes inside the first chunk of a stored video."""
    with h5py.File(path, "r") as h5:
        offset = h5["videos/" + video_id].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 64)
        handle.write(b"\x00\x11\x22\x33\x44\x55\x66\x77")


def test_verify_extracts_damaged_videos_again(tree, tmp_path):
    root, good, _ = tree
    listing = tmp_path / "two.txt"
    listing.write_text("jump/v_jump_g01_c01\nwalk/v_walk_g02_c01\n")
    out = str(tmp_path / "v")
    extract_features(root, out, streams="rgb", video_list=listing, dtype="float32", **SMALL)
    path = f"{out}_rgb.h5"
    ids, before = store.load_features(path)
    _damage(path, "jump/v_jump_g01_c01")
    with pytest.raises(
        ValueError,
        match=r"v_rgb\.h5: video 'jump/v_jump_g01_c01' is damaged: its "
        r"stored features fail their Fletcher-32 checksum .*--verify",
    ):
        store.load_features(path)
    again = extract_features(root, out, streams="rgb", video_list=listing, dtype="float32", **SMALL)
    assert again.skipped == {"rgb": 2}  # checking every video is opt-in: it reads the whole file
    summary = extract_features(
        root, out, streams="rgb", video_list=listing, verify=True, dtype="float32", **SMALL
    )
    assert summary.done == {"rgb": 1} and summary.skipped == {"rgb": 1}
    _, after = store.load_features(path)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_progress_counts_frames_as_they_pass(tree, tmp_path, monkeypatch):
    """A long video moves the frames bar batch by batch, before the videos bar moves."""
    from mkl_tp.extraction import _workers

    events = []

    class Bar:
        def __init__(self, *args, unit, **kwargs):
            self.unit = unit

        def update(self, n=1):
            events.append((self.unit, n))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(_workers, "tqdm", Bar)
    listing = tmp_path / "one.txt"
    listing.write_text("jump/v_jump_g01_c01\n")  # 14 frames, batches of 8
    extract_features(
        tree[0], str(tmp_path / "p"), streams="rgb", video_list=listing, progress=True, **SMALL
    )
    assert events == [("frame", 8), ("frame", 6), ("video", 1)]
