"""Tests for mkl_tp.store: the HDF5 feature cache."""

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from mkl_tp import store
from mkl_tp.store import FeatureWriter, _journal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFO = {
    "stream": "rgb",
    "arch": "resnet18",
    "weights": "random(seed=0)",
    "weights_digest": "d1g35t",
    "feature_dim": 8,
    "dtype": "float32",
}


def _features(seed, n_frames, dim=8):
    return np.random.default_rng(seed).random((n_frames, dim), dtype=np.float32)


@pytest.fixture
def cache(tmp_path):
    path = tmp_path / "feats_rgb.h5"
    with FeatureWriter(path, INFO) as writer:
        writer.write("walk/v1", _features(1, 5), fps=25.0, source="/data/walk/v1.avi")
        writer.write("walk/v2", _features(2, 1), fps=30.0, source="/data/walk/v2.avi")
        writer.write("jump", _features(3, 3))
        writer.record_failure(
            "walk/bad",
            "cannot open video /data/walk/bad.avi: Invalid data",
            source="/data/walk/bad.avi",
        )
    return path


# -- writing and reading back ---------------------------------------------------------
def test_round_trip_layout_and_attributes(cache):
    assert store.list_videos(cache) == ["jump", "walk/v1", "walk/v2"]
    ids, arrays = store.load_features(cache, ["walk/v2", "walk/v1"])
    assert ids == ["walk/v2", "walk/v1"]
    np.testing.assert_array_equal(arrays[1], _features(1, 5))
    assert arrays[0].shape == (1, 8) and arrays[0].dtype == np.float32
    with h5py.File(cache, "r") as handle:  # the documented layout, read without mkl_tp
        ds = handle["videos"]["walk"]["v1"]
        assert ds.shape == (5, 8) and ds.chunks[1] == 8
        assert ds.attrs["complete"] and ds.attrs["n_frames"] == 5 and ds.attrs["fps"] == 25.0
        assert ds.attrs["source"] == "/data/walk/v1.avi" and ds.attrs["backbone"] == "resnet18"
        assert ds.attrs["weights_digest"] == "d1g35t" and ds.attrs["stream"] == "rgb"
        assert list(ds.attrs)[-1] == "complete"  # written last
    attrs = store.video_attrs(cache, "jump")
    assert np.isnan(attrs["fps"]) and attrs["source"] == ""
    info = store.read_info(cache)
    assert (
        info["format"] == store.FORMAT and info["arch"] == "resnet18" and info["feature_dim"] == 8
    )
    assert isinstance(info["feature_dim"], int) and "mkl_tp_version" in info
    assert store.failed_videos(cache) == {
        "walk/bad": "cannot open video /data/walk/bad.avi: Invalid data"
    }


def test_float16_storage(tmp_path):
    path = tmp_path / "half.h5"
    with FeatureWriter(path, dict(INFO, dtype="float16")) as writer:
        writer.write("v", _features(0, 4))
    _, (array,) = store.load_features(path)
    assert array.dtype == np.float16
    np.testing.assert_array_equal(array, _features(0, 4).astype(np.float16))


def test_resume_sees_complete_videos_and_a_success_clears_the_failure(cache):
    with FeatureWriter(cache, INFO) as writer:
        assert writer.completed == {"jump", "walk/v1", "walk/v2"}
        with pytest.raises(ValueError, match="'jump' is already complete"):
            writer.write("jump", _features(0, 2))
        writer.write("walk/bad", _features(4, 2))
    assert store.failed_videos(cache) == {}
    assert "walk/bad" in store.list_videos(cache)


@pytest.mark.parametrize(
    "video_id, features, message",
    [
        (
            "v",
            np.zeros(8, np.float32),
            r"video 'v': expected features of shape \(T, d\), got \(8,\)",
        ),
        ("v", np.zeros((0, 8), np.float32), r"video 'v': empty features"),
        ("v", np.zeros((2, 7), np.float32), r"video 'v': features have d=7, the cache holds d=8"),
        (
            "v",
            np.full((2, 8), np.inf, np.float32),
            r"video 'v': 16 feature values are NaN or infinite",
        ),
        ("v", np.array([["a"] * 8]), r"video 'v': features must be real numbers"),
        ("/abs", _features(0, 2), r"video id '/abs' is not a clean relative path"),
        ("a/../b", _features(0, 2), r"video id 'a/../b' is not a clean relative path"),
        ("walk/v1/x", _features(0, 2), r"video id 'walk/v1/x' clashes with video 'walk/v1'"),
        ("walk", _features(0, 2), r"video id 'walk' clashes with videos under 'walk/'"),
    ],
)
def test_bad_videos_are_refused_with_their_id(cache, video_id, features, message):
    before = os.path.getsize(cache)
    with FeatureWriter(cache, INFO) as writer:
        with pytest.raises(ValueError, match=message):
            writer.write(video_id, features)
        writer.write("after", _features(9, 2))  # a refused video does not stop the writer
    assert store.list_videos(cache) == ["after", "jump", "walk/v1", "walk/v2"]
    assert os.path.getsize(cache) >= before


def test_extending_with_another_extraction_is_refused(cache):
    with pytest.raises(
        ValueError,
        match=r"feats_rgb\.h5 was written by a different extraction "
        r"\(arch='resnet18' in the file, 'resnet50' now\)",
    ):
        FeatureWriter(cache, dict(INFO, arch="resnet50")).open()
    with FeatureWriter(cache, dict(INFO, mkl_tp_version="9.9")):
        pass  # the package version may change between runs


def test_foreign_files_are_refused_for_writing(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = 1
    with pytest.raises(ValueError, match=r"other\.h5 is not an mkl_tp feature cache"):
        FeatureWriter(other, INFO).open()
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.h5 exists and is not an HDF5 file"):
        FeatureWriter(text, INFO).open()
    assert text.read_text() == "hello"


def test_extending_needs_the_same_description_both_ways(cache):
    """A description the file has and this run lacks (a sampled cache) also refuses."""
    sampled = cache.parent / "sampled_rgb.h5"
    with FeatureWriter(sampled, dict(INFO, sample_fps=5.0)) as writer:
        writer.write("a", _features(1, 2))
    with pytest.raises(ValueError, match=r"sample_fps=5\.0 in the file, None now"):
        FeatureWriter(sampled, INFO).open()
    with pytest.raises(ValueError, match=r"sample_fps=None in the file, 5\.0 now"):
        FeatureWriter(cache, dict(INFO, sample_fps=5.0)).open()


# -- checksums --------------------------------------------------------------------------
def _damage(path, video_id):
    """Overwrite bytes inside the first chunk of a stored video, as a bad disk would."""
    with h5py.File(path, "r") as handle:
        offset = handle["videos/" + video_id].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 16)
        handle.write(b"\x7f\x7f\x7f\x7f\x01\x02\x03\x04")


def test_every_video_is_checksummed_and_damage_is_named(cache):
    with h5py.File(cache, "r") as handle:
        assert all(handle["videos/" + v].fletcher32 for v in ("walk/v1", "walk/v2", "jump"))
    _damage(cache, "walk/v1")
    with pytest.raises(ValueError) as info:
        store.load_features(cache)
    message = str(info.value)
    assert message.startswith(
        f"{cache}: video 'walk/v1' is damaged: its stored features fail "
        "their Fletcher-32 checksum ("
    )
    assert "--verify" in message and "\n" not in message
    ids, arrays = store.load_features(cache, ["jump", "walk/v2"])  # the rest still reads
    np.testing.assert_array_equal(arrays[0], _features(3, 3))


def test_remove_damaged_moves_them_under_failed(cache):
    _damage(cache, "walk/v1")
    with FeatureWriter(cache, INFO) as writer:
        removed = writer.remove_damaged()
        assert list(removed) == ["walk/v1"] and "Fletcher-32" in removed["walk/v1"]
        assert writer.completed == {"jump", "walk/v2"}
        writer.write("walk/v1", _features(1, 5))  # extracted again
    np.testing.assert_array_equal(store.load_features(cache, ["walk/v1"])[1][0], _features(1, 5))
    assert "walk/v1" not in store.failed_videos(cache)


def test_caches_written_without_checksums_still_read_and_extend(tmp_path):
    path = tmp_path / "old_rgb.h5"
    with h5py.File(path, "w") as handle:  # as FeatureWriter wrote them before checksums
        handle.attrs.update(format=store.FORMAT, format_version=1, mkl_tp_version="0.1.0", **INFO)
        handle.create_group("failed")
        ds = handle.create_dataset("videos/a", data=_features(1, 4), chunks=(4, 8))
        ds.attrs["complete"] = True
    assert store.load_features(path)[0] == ["a"]
    with FeatureWriter(path, INFO) as writer:
        assert writer.remove_damaged() == {}
        writer.write("b", _features(2, 3))
    ids, arrays = store.load_features(path)
    assert ids == ["a", "b"]
    np.testing.assert_array_equal(arrays[0], _features(1, 4))


# -- reading errors and bring-your-own files ------------------------------------------
def test_load_errors_name_the_file_and_the_videos(cache):
    with pytest.raises(ValueError) as info:
        store.load_features(cache, ["walk/v1", "walk/bad", "nope"])
    message = str(info.value)
    assert str(cache) in message and "2 requested videos unavailable" in message
    assert "failed extraction: 'walk/bad'" in message and "Invalid data" in message
    assert "not in the file: 'nope'" in message
    with pytest.raises(FileNotFoundError, match="feature cache .*missing.h5 does not exist"):
        store.list_videos(cache.parent / "missing.h5")


def test_incomplete_video_is_absent_and_named(cache):
    with h5py.File(cache, "r+") as handle:  # what an interrupted foreign writer could leave
        handle["videos/half"] = np.zeros((2, 8), np.float32)
    assert "half" not in store.list_videos(cache)
    with pytest.raises(
        ValueError, match=r"incomplete \(interrupted; re-run the extractor\): 'half'"
    ):
        store.load_features(cache, ["half"])
    with FeatureWriter(cache, INFO) as writer:  # a resumed run overwrites it
        writer.write("half", _features(5, 3))
    assert store.load_features(cache, ["half"])[1][0].shape == (3, 8)


def test_bring_your_own_file_without_attributes(tmp_path):
    path = tmp_path / "byo.h5"
    with h5py.File(path, "w") as handle:
        handle["videos/a/x"] = np.ones((4, 3))
        handle["videos/b"] = np.ones((2, 3))
    assert store.read_info(path) == {}
    assert store.list_videos(path) == ["a/x", "b"]
    ids, arrays = store.load_features(path)
    assert ids == ["a/x", "b"] and arrays[0].dtype == np.float64


@pytest.mark.parametrize(
    "contents, message",
    [
        (
            {"videos/a": np.ones((4, 3)), "videos/b": np.ones((2, 5))},
            r"videos disagree on d: d=3 \(e.g. 'a'\), d=5 \(e.g. 'b'\)",
        ),
        ({"videos/a": np.array([[1.0, np.nan]])}, r"video 'a': 1 feature values are NaN"),
        ({"videos/a": np.ones(3)}, r"video 'a': expected features of shape \(T, d\)"),
        ({"features/a": np.ones((2, 2))}, r"has no /videos group"),
    ],
)
def test_bad_bring_your_own_files(tmp_path, contents, message):
    path = tmp_path / "byo.h5"
    with h5py.File(path, "w") as handle:
        for name, value in contents.items():
            handle[name] = value
    with pytest.raises(ValueError, match=message) as info:
        store.load_features(path)
    assert "byo.h5" in str(info.value)


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "junk.h5").write_bytes(b"\x00junk")
    with pytest.raises(ValueError, match=r"junk\.h5 is not a readable HDF5 file"):
        store.list_videos(tmp_path / "junk.h5")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"empty\.h5 is empty: its extraction stopped before the first video"
    ):
        store.read_info(tmp_path / "empty.h5")


def test_reader_waits_for_nobody_but_reports_a_live_writer(cache):
    with FeatureWriter(cache, INFO):
        with pytest.raises(OSError, match=r"feats_rgb\.h5 is being written by another process"):
            store.list_videos(cache)
        with pytest.raises(OSError, match=r"feats_rgb\.h5 is being written by another process"):
            FeatureWriter(cache, INFO).open()


# -- failures while writing -----------------------------------------------------------
def test_failed_write_keeps_every_committed_video(cache, monkeypatch):
    writer = FeatureWriter(cache, INFO).open()
    real_write = _journal.JournaledFile.write
    calls = {"n": 0}

    def failing_write(self, data):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(_journal.JournaledFile, "write", failing_write)
    with pytest.raises(
        OSError, match=r"cannot write video 'big' to .*feats_rgb\.h5: .*No space left on device"
    ):
        writer.write("big", _features(7, 4000))
    with pytest.raises(OSError, match="an earlier write failed"):
        writer.write("next", _features(8, 2))
    writer.close()
    monkeypatch.undo()
    assert store.list_videos(cache) == ["jump", "walk/v1", "walk/v2"]
    np.testing.assert_array_equal(store.load_features(cache, ["walk/v1"])[1][0], _features(1, 5))
    with FeatureWriter(cache, INFO) as writer:
        writer.write("big", _features(7, 4000))
    assert store.list_videos(cache) == ["big", "jump", "walk/v1", "walk/v2"]


def test_output_under_a_regular_file_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"cannot write .*file/sub/x\.h5"):
        FeatureWriter(blocker / "sub" / "x.h5", INFO).open()


def _unwritable(folder):
    """Make ``folder`` read-only for this process; root needs the immutable attribute."""
    os.chmod(folder, 0o555)
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    try:
        open(os.path.join(folder, "probe"), "w").close()
    except OSError:
        return True
    os.unlink(os.path.join(folder, "probe"))
    return False


def test_read_only_folder_gives_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    try:
        if not _unwritable(folder):  # root on a filesystem without chattr: simulate it
            real_open = os.open

            def refuse(path, flags, *args):
                if str(path).startswith(str(folder)) and flags & os.O_CREAT:
                    raise PermissionError(errno.EACCES, "Permission denied", str(path))
                return real_open(path, flags, *args)

            monkeypatch.setattr(_journal.os, "open", refuse)
        with pytest.raises(
            OSError, match=r"cannot write .*ro/x_rgb\.h5: Permission denied|Operation not permitted"
        ):
            FeatureWriter(folder / "x_rgb.h5", INFO).open()
    finally:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        os.chmod(folder, 0o755)
    assert not (folder / "x_rgb.h5").exists()


_WRITER_LOOP = textwrap.dedent(
    """
    import sys, numpy as np
    from mkl_tp.store import FeatureWriter
    info = {info!r}
    rng = np.random.default_rng(int(sys.argv[2]))
    with FeatureWriter(sys.argv[1], info, durable=False) as writer:
        k = 0
        while True:
            k += 1
            vid = f"c{{k % 5}}/v{{sys.argv[2]}}_{{k}}"
            writer.write(vid, rng.random((int(rng.integers(1, 60)), 8), dtype=np.float32))
            print(vid, flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_while_writing_leaves_a_readable_file(tmp_path):
    path = tmp_path / "killed.h5"
    script = _WRITER_LOOP.format(info=INFO)
    env = dict(os.environ, PYTHONPATH=ROOT)
    saved = []
    for run in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(path), str(run)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines = [proc.stdout.readline() for _ in range(3 + 7 * run)]  # it is busy writing
        time.sleep(0.01 * run)
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        saved += [line.strip() for line in lines + rest.splitlines() if line.strip()]
        ids, arrays = store.load_features(path)  # readable, and every reported video is there
        assert set(saved) <= set(ids)
        assert all(a.shape[1] == 8 and a.shape[0] >= 1 for a in arrays)
    assert not os.path.exists(_journal.journal_path(path))


@pytest.mark.slow
def test_file_size_limit_mid_run_keeps_earlier_videos(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), like a full disk.
    path = tmp_path / "full.h5"
    script = _WRITER_LOOP.format(info=INFO)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, 120_000))

    proc = subprocess.run(
        [sys.executable, "-c", script, str(path), "0"],
        env=dict(os.environ, PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=60,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "full.h5" in last and "File too large" in last
    written = proc.stdout.split()
    assert len(written) > 3
    assert store.list_videos(path) == sorted(written)
    with FeatureWriter(path, INFO) as writer:
        writer.write("more", _features(0, 3))
    assert len(store.list_videos(path)) == len(written) + 1


def _groups(handle):
    found = []
    handle.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Group) else None)
    return found


def _header_version(group):
    return h5py.h5o.get_info(group.id).hdr.version


def test_new_caches_have_new_style_groups(cache, tmp_path):
    # HDF5 1.8's groups (object header version 2: link messages, past 8 links a B-tree
    # and a fractal heap) instead of a symbol table whose one local heap of names is
    # rewritten whole at every commit (version 1): a commit stays small as a cache grows.
    with FeatureWriter(cache, INFO) as writer:  # a later run adds a class folder
        writer.write("run/v1", _features(4, 2))
    with h5py.File(cache, "r") as handle:
        groups = _groups(handle)
        assert {"videos", "videos/walk", "videos/run", "failed", "failed/walk"} <= set(groups)
        assert all(_header_version(handle[name]) == 2 for name in groups)
    out = tmp_path / "merged" / "x_rgb.h5"
    store.merge_shards(_shards(tmp_path), out, copy=True)
    with h5py.File(out, "r") as handle:
        assert all(_header_version(handle[name]) == 2 for name in _groups(handle))


def test_caches_in_the_earliest_format_still_extend(tmp_path):
    path = tmp_path / "old.h5"
    with h5py.File(path, "w", libver="earliest") as handle:
        handle.attrs.update({k: v for k, v in INFO.items()})
        handle.attrs.update(format="mkl_tp.features", format_version=1)
        handle.create_group("videos")
        handle.create_group("failed")
    with FeatureWriter(path, INFO) as writer:
        writer.write("walk/v1", _features(1, 4))
    with FeatureWriter(path, INFO) as writer:
        assert writer.completed == {"walk/v1"}
        writer.write("jump", _features(2, 3))
    ids, arrays = store.load_features(path)
    assert ids == ["jump", "walk/v1"]
    np.testing.assert_array_equal(arrays[1], _features(1, 4))
    with h5py.File(path, "r") as handle:
        assert _header_version(handle["videos"]) == 1  # an old group keeps its format
        assert _header_version(handle["videos/walk"]) == 2  # a group added later: 1.8's


# -- shards ---------------------------------------------------------------------------
def _shards(tmp_path, n=2):
    paths = []
    for index in range(n):
        path = tmp_path / f"x_rgb.shard-{index}-of-{n}.h5"
        with FeatureWriter(path, dict(INFO, shard=f"{index}/{n}")) as writer:
            for k in range(3):
                writer.write(f"c{k}/s{index}", _features(10 * index + k, k + 1))
            writer.record_failure(f"bad/s{index}", f"broken {index}", source=f"/src/bad{index}.avi")
        paths.append(path)
    return paths


@pytest.mark.parametrize("copy", [False, True])
def test_merge_equals_the_shards(tmp_path, copy, monkeypatch):
    shards = _shards(tmp_path)
    out = tmp_path / "merged" / "x_rgb.h5"
    assert store.merge_shards(shards, out, copy=copy) == {"videos": 6, "failed": 2}
    monkeypatch.chdir(tmp_path.parent)  # links are relative to the merged file, not the cwd
    ids, arrays = store.load_features(out)
    assert ids == sorted(f"c{k}/s{i}" for k in range(3) for i in range(2))
    for vid, array in zip(ids, arrays):
        index, k = int(vid[-1]), int(vid[1])
        np.testing.assert_array_equal(array, _features(10 * index + k, k + 1))
    info = store.read_info(out)
    assert "shard" not in info and info["arch"] == "resnet18"
    assert info["layout"] == ("copy" if copy else "external-links")
    assert store.failed_videos(out) == {"bad/s0": "broken 0", "bad/s1": "broken 1"}
    with h5py.File(out, "r") as handle:
        link = handle["videos/c0"].get("s0", getlink=True)
        assert isinstance(link, h5py.HardLink if copy else h5py.ExternalLink)
    assert store.merge_shards(shards, out, copy=copy)["videos"] == 6  # a merge may be redone


def test_merge_refuses_what_does_not_belong_together(tmp_path):
    shards = _shards(tmp_path)
    with pytest.raises(ValueError, match=r"missing shards 1/2 \(pass --partial"):
        store.merge_shards(shards[:1], tmp_path / "m.h5")
    assert store.merge_shards(shards[:1], tmp_path / "m.h5", allow_partial=True)["videos"] == 3
    other = tmp_path / "other.h5"
    with FeatureWriter(other, dict(INFO, arch="resnet50", shard="1/2")):
        pass
    with pytest.raises(
        ValueError,
        match=r"other\.h5 has arch='resnet50' but .*shard-0-of-2\.h5 has arch='resnet18'",
    ):
        store.merge_shards([shards[0], other], tmp_path / "m.h5")
    dup = tmp_path / "dup.h5"
    with FeatureWriter(dup, dict(INFO, shard="1/2")) as writer:
        writer.write("c0/s0", _features(0, 1))
    with pytest.raises(
        ValueError, match=r"video 'c0/s0' is in both .*shard-0-of-2\.h5 and .*dup\.h5"
    ):
        store.merge_shards([shards[0], dup], tmp_path / "m.h5")
    twin = tmp_path / "copy0.h5"
    shutil.copy(shards[0], twin)
    with pytest.raises(ValueError, match=r"copy0\.h5 and .*shard-0-of-2\.h5 are both shard 0/2"):
        store.merge_shards([shards[0], twin], tmp_path / "m.h5")


def test_merge_never_replaces_real_data(tmp_path, cache):
    shards = _shards(tmp_path)
    with pytest.raises(
        ValueError, match=r"refusing to replace .*feats_rgb\.h5: it is not a merge of shards"
    ):
        store.merge_shards(shards, cache)
    assert store.list_videos(cache) == ["jump", "walk/v1", "walk/v2"]
    with pytest.raises(ValueError, match="is one of the shards"):
        store.merge_shards(shards, shards[0])


def test_merge_names_a_bad_shard_attribute(tmp_path):
    shards = _shards(tmp_path)
    odd = tmp_path / "odd.h5"
    with FeatureWriter(odd, dict(INFO, shard="half")):
        pass
    with pytest.raises(ValueError, match=r"odd\.h5: shard attribute 'half' is not I/N"):
        store.merge_shards([shards[0], odd], tmp_path / "m.h5")


# -- naming rules ---------------------------------------------------------------------
def test_output_path_and_shard_specs():
    assert store.output_path("features/ucf", "rgb", (2, 8)) == "features/ucf_rgb.shard-2-of-8.h5"
    assert store.output_path("features/ucf_flow.h5", "flow") == "features/ucf_flow.h5"
    assert store.output_path("features/ucf", "flow") == "features/ucf_flow.h5"
    assert store.parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match=r"^'half' is not I/N \(for example 0/4\)$"):
        store.parse_shard("half")
    with pytest.raises(ValueError, match=r"^4/4: need 0 <= I < N$"):
        store.parse_shard("4/4")


# -- importing arrays -----------------------------------------------------------------
def _arrays(folder):
    (folder / "sub").mkdir(parents=True)
    good = {"a": _features(1, 5), "sub/b": _features(2, 3)}
    np.save(folder / "a.npy", good["a"])
    np.savez(folder / "sub" / "b.npz", features=good["sub/b"], fps=30.0)
    np.save(folder / "nan.npy", np.full((2, 8), np.nan))
    return good


def test_import_arrays_returns_a_summary(tmp_path):
    good = _arrays(tmp_path / "arrays")
    summary = store.import_arrays(
        tmp_path / "arrays", str(tmp_path / "feats"), stream="flow", dtype="float16"
    )
    path = str(tmp_path / "feats_flow.h5")
    assert summary == store.RunSummary(
        paths={"flow": path},
        done={"flow": 2},
        skipped={"flow": 0},
        failed={"flow": 1},
        failures={"nan": "video 'nan': 16 feature values are NaN or infinite"},
    )
    ids, arrays = store.load_features(path)
    assert ids == ["a", "sub/b"]
    for vid, array in zip(ids, arrays):
        assert array.dtype == np.float16
        np.testing.assert_array_equal(array, good[vid].astype(np.float16))
    assert store.video_attrs(path, "sub/b")["fps"] == 30.0
    assert store.video_attrs(path, "a")["source"] == str(tmp_path / "arrays" / "a.npy")
    info = store.read_info(path)
    assert info["stream"] == "flow" and info["feature_dim"] == 8 and info["extractor"] == "import"
    again = store.import_arrays(tmp_path / "arrays", path, stream="flow", dtype="float16")
    assert (again.done, again.skipped, again.failed) == ({"flow": 0}, {"flow": 2}, {"flow": 1})


def test_import_arrays_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        store.import_arrays(tmp_path / "nowhere", str(tmp_path / "f_rgb.h5"), stream="rgb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \.npy or \.npz files under .*empty"):
        store.import_arrays(tmp_path / "empty", str(tmp_path / "f_rgb.h5"), stream="rgb")
    assert not (tmp_path / "f_rgb.h5").exists()
    _arrays(tmp_path / "arrays")
    real_write = FeatureWriter.write

    def full_after_one(self, video_id, *args, **kwargs):
        if self.completed:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, video_id, *args, **kwargs)

    monkeypatch.setattr(FeatureWriter, "write", full_after_one)
    with pytest.raises(store.RunStoppedError, match="No space left on device"):
        store.import_arrays(tmp_path / "arrays", str(tmp_path / "f_rgb.h5"), stream="rgb")
    assert store.list_videos(tmp_path / "f_rgb.h5") == ["a"]


def test_feature_sequence_reads_videos_on_access(tmp_path):
    path = tmp_path / "cache.h5"
    with FeatureWriter(path, {"stream": "rgb", "dtype": "float16"}, durable=False) as writer:
        for i in range(5):
            writer.write(f"v{i}", np.full((i + 1, 3), i, dtype=np.float32))
        writer.record_failure("broken", "cannot decode")
    videos = store.FeatureSequence(path, ["v3", "v1", "v4"])
    assert len(videos) == 3 and videos.n_features == 3
    assert videos[0].shape == (4, 3) and videos[0].dtype == np.float16
    assert [x.shape[0] for x in videos[1:]] == [2, 5]
    assert [x[0, 0] for x in videos[[2, 0]]] == [4, 3]
    assert [x.shape[0] for x in videos] == [4, 2, 5]
    assert store.FeatureSequence(path).ids == ["v0", "v1", "v2", "v3", "v4"]
    with pytest.raises(ValueError, match="'broken': cannot decode"):
        store.FeatureSequence(path, ["v1", "broken"])
    with pytest.raises(ValueError, match="not in the file: 'v9'"):
        store.FeatureSequence(path, ["v9"])


def test_walking_a_cache_keeps_one_video_open_at_a_time(tmp_path):
    # Every open dataset holds its own HDF5 metadata: a walk over a 240,000-video cache
    # must not open them all at once (docs/performance.rst, "Out of core").
    from mkl_tp.store._format import walk

    path = tmp_path / "many.h5"
    with FeatureWriter(path, INFO) as writer:
        for i in range(30):
            writer.write(f"{'ab'[i % 2]}/v{i:02d}", _features(i, 3))
    with h5py.File(path, "r") as handle:
        seen = []
        for video_id, dataset in walk(handle, "videos"):
            seen.append(video_id)
            assert dataset.shape == (3, 8)
            assert h5py.h5f.get_obj_count(handle.id, h5py.h5f.OBJ_DATASET) <= 1
            del dataset
    assert seen == sorted(seen) and len(seen) == 30
