"""Tests for mkl_tp.extraction: extract_features called as a library, and shard assignment.

The command line over it (messages, exit codes, signals, worker processes) is tested in
test_extract.py.
"""

import pytest

from _videos import make_tree
from mkl_tp import store
from mkl_tp.extraction import STREAMS, ExtractionInterrupted, extract_features, resolve_shard, shard_of

SMALL = dict(arch="resnet18", weights="random", short_side=40, crop=32, batch_size=8, workers=0)
SCHEDULER_VARIABLES = ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
                       "SLURM_ARRAY_TASK_MIN")


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
    summary = extract_features(root, out, streams="both", video_list=listing, dtype="float32", **SMALL)
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
    again = extract_features(root, out, streams=("rgb",), video_list=listing, dtype="float32", **SMALL)
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
