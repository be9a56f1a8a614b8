"""Tests for importing other tools' features (mkl_tp.store.import_arrays, ``extract import``):
folders laid out exactly as the tools write them.

video_features (github.com/v-iashin/video_features): ``models/_base/base_extractor.py``
``action_on_extraction`` saves every key of an extractor's output dict with
``utils/utils.py`` ``write_numpy`` (``np.save``) or ``write_pickle`` (``pickle.dump``) to
``make_path``'s ``{Path(video_path).stem}_{key}{.npy|.pkl}`` in ``output_path/<feature_type>
[/<model_name>]``. The frame-wise extractors (``models/_base/base_framewise_extractor.py``:
resnet, clip, timm) return ``{feature_type: (T, d), 'fps': np.array(fps), 'timestamps_ms':
(T,)}``; i3d (``models/i3d/extract_i3d.py``) returns ``{'rgb': (T, 1024), 'flow': (T, 1024),
'fps', 'timestamps_ms'}`` with one row and one timestamp per stack; r21d, s3d and vggish
(``output_feat_keys = [self.feature_type]``) return their feature key alone.

mmaction2 (github.com/open-mmlab/mmaction2): ``tools/misc/clip_feature_extraction.py``
``split_feats`` dumps each video's feature, a torch tensor ((num_clips, C) with
``--long-video-mode``, else (C,)), with ``mmengine.dump`` (pickle, protocol 2) to
``output_prefix/<first field of the video list line>.pkl``, so ``ApplyEyeMakeup/v_..._c01.avi``
gives ``ApplyEyeMakeup/v_..._c01.avi.pkl``; the older
``tools/data/activitynet/tsn_feature_extraction.py`` pickles an ndarray (N, C) to
``<basename of the frame dir>.pkl``.
"""

import os
import pickle

import numpy as np
import pytest
from _caches import CLASSES, write_ucf_split

from mkl_tp import fit, store
from mkl_tp.extract import main

D = 8


def _run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(stderr, *fragments):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m mkl_tp.extract: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def _video_features(folder, stems, keys, *, seed=0, save="numpy", side=True, frames=None):
    """Write what video_features' action_on_extraction writes for each video of ``stems``:
    ``<stem>_<key>`` for each feature key, then ``<stem>_fps`` and ``<stem>_timestamps_ms``.
    Returns ``{key: {stem: features}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {key: {} for key in keys}
    for i, stem in enumerate(stems):
        T = frames[i] if frames else int(rng.integers(3, 9))
        fps = 25.0 + i
        feats_dict = {key: rng.normal(size=(T, D)) for key in keys}  # float64, as np.array(list)
        if side:
            feats_dict["fps"] = np.array(fps)
            feats_dict["timestamps_ms"] = np.arange(T) * 1000.0 / fps
        for key, value in feats_dict.items():
            if key in written:
                written[key][stem] = value
            if save == "numpy":
                np.save(folder / f"{stem}_{key}.npy", value)
            else:
                with open(folder / f"{stem}_{key}.pkl", "wb") as handle:
                    pickle.dump(value, handle)
    return written


STEMS = ["v_Jump_g01_c01", "v_Jump_g02_c01", "v_Run_g01_c01"]


# -- video_features -----------------------------------------------------------------
def test_resnet_folder_gives_ids_without_the_key_and_keeps_fps_and_timestamps(tmp_path, capsys):
    src = tmp_path / "output" / "resnet" / "resnet50"
    written = _video_features(src, STEMS, ["resnet"])
    out = tmp_path / "ucf_rgb.h5"
    code, stdout, stderr = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 0, stderr
    assert "rgb: 3 done, 0 skipped, 0 failed" in stdout and stderr == ""
    ids, arrays = store.load_features(out)
    assert ids == STEMS  # neither _resnet in the id nor the side files as videos
    for vid, array in zip(ids, arrays):
        np.testing.assert_array_equal(array, written["resnet"][vid].astype(np.float32))
    attrs = store.video_attrs(out, "v_Jump_g02_c01")
    assert attrs["fps"] == 26.0
    T = written["resnet"]["v_Jump_g02_c01"].shape[0]
    np.testing.assert_allclose(attrs["timestamps_ms"], np.arange(T) * 1000.0 / 26.0, rtol=1e-12)
    assert attrs["source"] == str(src / "v_Jump_g02_c01_resnet.npy")
    assert store.read_info(out)["stream"] == "rgb" and store.failed_videos(out) == {}
    code, stdout, _ = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 0 and "rgb: 0 done, 3 skipped, 0 failed" in stdout


def test_a_single_key_names_the_stream_when_out_does_not(tmp_path):
    src = tmp_path / "clip"
    _video_features(src, STEMS[:2], ["clip"])
    summary = store.import_arrays(src, str(tmp_path / "ucf"))
    assert summary.paths == {"clip": str(tmp_path / "ucf_clip.h5")}
    assert summary.done == {"clip": 2} and summary.not_imported == {}


def test_i3d_rgb_and_flow_become_two_caches(tmp_path, capsys):
    src = tmp_path / "output" / "i3d"
    written = _video_features(src, STEMS, ["rgb", "flow"])
    out = tmp_path / "features" / "ucf"
    code, stdout, stderr = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 0, stderr
    assert "rgb: 3 done" in stdout and "flow: 3 done" in stdout
    for stream in ("rgb", "flow"):
        path = tmp_path / "features" / f"ucf_{stream}.h5"
        ids, arrays = store.load_features(path)
        assert ids == STEMS and store.read_info(path)["stream"] == stream
        for vid, array in zip(ids, arrays):
            np.testing.assert_array_equal(array, written[stream][vid].astype(np.float32))
        assert store.video_attrs(path, STEMS[0])["fps"] == 25.0


def test_an_out_naming_one_stream_imports_that_key_only(tmp_path, capsys):
    src = tmp_path / "i3d"
    _video_features(src, STEMS, ["rgb", "flow"])
    code, stdout, stderr = _run(capsys, "import", src, "--out", tmp_path / "ucf_flow.h5", "--quiet")
    assert code == 0 and "flow: 3 done" in stdout and "rgb" not in stdout, stderr
    assert store.list_videos(tmp_path / "ucf_flow.h5") == STEMS
    assert not (tmp_path / "ucf_rgb.h5").exists()


def test_one_file_for_two_keys_is_refused_before_writing(tmp_path, capsys):
    src = tmp_path / "i3d"
    _video_features(src, STEMS, ["rgb", "flow"])
    code, _, stderr = _run(capsys, "import", src, "--out", tmp_path / "ucf.h5", "--stream", "x")
    assert code == 2
    _one_line_error(stderr, "'flow', 'rgb'", "--out NAME", "NAME_flow.h5 and NAME_rgb.h5")
    code, _, stderr = _run(capsys, "import", src, "--out", tmp_path / "ucf.h5")
    assert code == 2
    _one_line_error(stderr, "the one file", "ucf.h5")
    assert not any(p.suffix == ".h5" for p in tmp_path.iterdir())


def test_an_output_of_another_extraction_stops_the_import_before_any_cache_is_made(
    tmp_path, capsys
):
    src = tmp_path / "i3d"
    _video_features(src, STEMS, ["rgb", "flow"])
    info = {"stream": "rgb", "arch": "resnet18", "dtype": "float16"}
    with store.FeatureWriter(tmp_path / "ucf_rgb.h5", info, durable=False):
        pass  # made by an extraction; flow, the first key, would be made first
    code, _, stderr = _run(capsys, "import", src, "--out", tmp_path / "ucf")
    assert code == 2
    _one_line_error(stderr, "ucf_rgb.h5")
    assert not (tmp_path / "ucf_flow.h5").exists()
    assert store.list_videos(tmp_path / "ucf_rgb.h5") == []


def test_rgb_features_are_never_recorded_as_flow(tmp_path, capsys):
    src = tmp_path / "i3d"
    _video_features(src, STEMS, ["rgb"])
    code, _, stderr = _run(capsys, "import", src, "--out", tmp_path / "ucf_flow.h5")
    assert code == 2
    _one_line_error(stderr, "'rgb' features", "'flow' stream")


def test_timestamps_that_do_not_fit_are_a_failure_naming_the_file(tmp_path, capsys):
    src = tmp_path / "resnet"
    _video_features(src, STEMS, ["resnet"], frames=[4, 5, 6])
    np.save(src / "v_Jump_g02_c01_timestamps_ms.npy", np.arange(7.0))
    np.save(src / "v_Run_g01_c01_fps.npy", np.array([25.0, 30.0]))
    out = tmp_path / "ucf_rgb.h5"
    code, stdout, stderr = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 1 and "rgb: 1 done, 0 skipped, 2 failed" in stdout
    failed = store.failed_videos(out)
    assert "v_Jump_g02_c01_timestamps_ms.npy" in failed["v_Jump_g02_c01"]
    assert "7 timestamps" in failed["v_Jump_g02_c01"]
    assert "the 5 feature rows of v_Jump_g02_c01_resnet.npy" in failed["v_Jump_g02_c01"]
    assert "v_Run_g01_c01_fps.npy" in failed["v_Run_g01_c01"]
    assert "holds 2 values; expected one frame rate" in failed["v_Run_g01_c01"]
    assert "failed: video 'v_Jump_g02_c01'" in stderr
    np.save(src / "v_Jump_g02_c01_timestamps_ms.npy", np.arange(5.0))
    code, stdout, _ = _run(capsys, "import", src, "--out", out, "--quiet")
    assert "rgb: 1 done, 1 skipped, 1 failed" in stdout  # resumed; the fixed video stored
    assert store.list_videos(out) == ["v_Jump_g01_c01", "v_Jump_g02_c01"]


def test_side_files_without_features_are_listed_never_videos(tmp_path, capsys):
    src = tmp_path / "resnet"
    _video_features(src, STEMS, ["resnet"])
    os.remove(src / "v_Run_g01_c01_resnet.npy")  # killed between two np.save
    np.save(src / "notes.npy", np.ones((2, D)))
    out = tmp_path / "ucf_rgb.h5"
    code, stdout, stderr = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 1 and "rgb: 2 done, 0 skipped, 0 failed" in stdout
    assert store.list_videos(out) == STEMS[:2] and store.failed_videos(out) == {}
    assert "not imported: " + str(src / "v_Run_g01_c01_fps.npy") in stderr
    assert "v_Run_g01_c01_timestamps_ms.npy: a video_features side file with no feature" in stderr
    assert "notes.npy: not named <stem>_<key>" in stderr


def test_pickles_of_video_features_save_pickle(tmp_path):
    src = tmp_path / "resnet"
    written = _video_features(src, STEMS[:2], ["resnet"], save="pickle")
    summary = store.import_arrays(src, str(tmp_path / "ucf_rgb.h5"), stream="rgb")
    assert summary.done == {"rgb": 2} and summary.failures == {}
    ids, arrays = store.load_features(tmp_path / "ucf_rgb.h5")
    assert ids == STEMS[:2]
    np.testing.assert_array_equal(arrays[1], written["resnet"][STEMS[1]].astype(np.float32))
    assert store.video_attrs(tmp_path / "ucf_rgb.h5", STEMS[0])["fps"] == 25.0


def test_extractors_without_side_files_are_told_by_their_key(tmp_path):
    src = tmp_path / "r21d"
    _video_features(src, STEMS, ["r21d"], side=False)
    summary = store.import_arrays(src, str(tmp_path / "ucf_rgb.h5"), stream="rgb")
    assert summary.done == {"rgb": 3}
    assert store.list_videos(tmp_path / "ucf_rgb.h5") == STEMS
    assert np.isnan(store.video_attrs(tmp_path / "ucf_rgb.h5", STEMS[0])["fps"])


def test_the_arrays_layout_still_reads_every_file_as_a_video(tmp_path):
    src = tmp_path / "resnet"
    _video_features(src, STEMS[:1], ["resnet"])
    summary = store.import_arrays(src, str(tmp_path / "f_rgb.h5"), stream="rgb", layout="arrays")
    assert summary.done == {"rgb": 1} and summary.failed == {"rgb": 2}
    assert store.list_videos(tmp_path / "f_rgb.h5") == ["v_Jump_g01_c01_resnet"]


# -- mmaction2 ----------------------------------------------------------------------
def test_mmaction2_per_video_tensors_and_arrays(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    src = tmp_path / "feats"
    (src / "ApplyEyeMakeup").mkdir(parents=True)
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(6, D)).astype(np.float32)
    with open(src / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi.pkl", "wb") as handle:
        pickle.dump(torch.from_numpy(clips), handle, protocol=2)  # clip_feature_extraction.py
    tsn = rng.normal(size=(4, D))
    with open(src / "v_Archery_g01_c01.pkl", "wb") as handle:
        pickle.dump(tsn, handle)  # the older tsn_feature_extraction.py
    with open(src / "held.pkl", "wb") as handle:
        pickle.dump({"feat": tsn[:2]}, handle, protocol=5)
    with open(src / "pooled.avi.pkl", "wb") as handle:
        pickle.dump(torch.ones(D), handle, protocol=2)  # without --long-video-mode
    with open(src / "scores.pkl", "wb") as handle:
        pickle.dump([1, 2, 3], handle)
    out = tmp_path / "mm_rgb.h5"
    code, stdout, stderr = _run(capsys, "import", src, "--out", out, "--quiet")
    assert code == 1 and "rgb: 3 done, 0 skipped, 2 failed" in stdout, stderr
    ids, arrays = store.load_features(out)
    assert ids == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", "held", "v_Archery_g01_c01"]
    np.testing.assert_array_equal(arrays[0], clips)
    np.testing.assert_array_equal(arrays[2], tsn.astype(np.float32))
    failed = store.failed_videos(out)
    assert "pooled.avi.pkl" in failed["pooled"] and "--long-video-mode" in failed["pooled"]
    assert "scores.pkl" in failed["scores"] and "holds a list" in failed["scores"]


def test_a_pickle_that_would_run_code_is_refused_not_run(tmp_path):
    sentinel = tmp_path / "keep_me"
    sentinel.write_text("")

    class Hostile:
        def __reduce__(self):
            return (os.remove, (str(sentinel),))

    src = tmp_path / "feats"
    src.mkdir()
    with open(src / "v_x.pkl", "wb") as handle:
        pickle.dump(Hostile(), handle)
    with open(src / "v_y.pkl", "wb") as handle:
        pickle.dump(np.ones((2, D)), handle)
    summary = store.import_arrays(src, str(tmp_path / "m_rgb.h5"), stream="rgb")
    assert sentinel.exists()
    assert summary.done == {"rgb": 1}
    message = summary.failures["v_x"]
    assert "v_x.pkl" in message and "remove, which does not build" in message
    assert "not loaded" in message


def test_arrays_beside_pickles_are_ambiguous_unless_the_layout_is_given(tmp_path, capsys):
    src = tmp_path / "mixed"
    src.mkdir()
    np.save(src / "a.npy", np.ones((2, D)))
    with open(src / "b.pkl", "wb") as handle:
        pickle.dump(np.ones((3, D)), handle)
    code, _, stderr = _run(capsys, "import", src, "--out", tmp_path / "m_rgb.h5")
    assert code == 2
    _one_line_error(stderr, "cannot tell the layout", "a.npy", "b.pkl", "--layout arrays")
    assert not (tmp_path / "m_rgb.h5").exists()
    code, stdout, stderr = _run(
        capsys, "import", src, "--out", tmp_path / "m_rgb.h5", "--layout", "arrays", "--quiet"
    )
    assert code == 1 and "rgb: 1 done" in stdout
    assert "b.pkl: a .pkl file, not read in the arrays layout" in stderr
    assert store.list_videos(tmp_path / "m_rgb.h5") == ["a"]


# -- ids ----------------------------------------------------------------------------
def test_an_id_pattern_maps_names_and_lists_what_it_does_not_match(tmp_path, capsys):
    src = tmp_path / "resnet"
    _video_features(src, ["clip_v_Jump_g01_c01", "clip_v_Run_g01_c01", "v_Odd"], ["resnet"])
    out = tmp_path / "ucf_rgb.h5"
    code, stdout, stderr = _run(
        capsys, "import", src, "--out", out, "--id-pattern", r"^clip_(?P<id>.+)$", "--quiet"
    )
    assert code == 1 and "rgb: 2 done, 0 skipped, 0 failed" in stdout
    assert store.list_videos(out) == ["v_Jump_g01_c01", "v_Run_g01_c01"]
    assert "v_Odd_resnet.npy: 'v_Odd' does not match the id pattern '^clip_(?P<id>.+)$'" in stderr
    summary = store.import_arrays(src, str(out), stream="rgb", id_pattern=r"clip_(v_[^_]+)")
    assert summary.skipped == {"rgb": 0} and summary.done == {"rgb": 2}  # v_Jump, v_Run: new ids


def test_ids_that_collide_after_mapping_name_both_files_and_write_nothing(tmp_path, capsys):
    src = tmp_path / "arrays"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    np.save(src / "a" / "v1.npy", np.ones((2, D)))
    np.save(src / "b" / "v1.npy", np.ones((2, D)))
    out = tmp_path / "f_rgb.h5"
    code, _, stderr = _run(capsys, "import", src, "--out", out, "--id-pattern", "([^/]+)$")
    assert code == 2
    _one_line_error(stderr, os.path.join("a", "v1.npy"), os.path.join("b", "v1.npy"), "'v1'")
    assert not out.exists()
    for pattern, fragment in (("(", "not a regular expression"), ("v1", "has no group")):
        code, _, stderr = _run(capsys, "import", src, "--out", out, "--id-pattern", pattern)
        assert code == 2
        _one_line_error(stderr, repr(pattern), fragment)
    code, _, stderr = _run(capsys, "import", src, "--out", out, "--id-pattern", "(zzz)")
    assert code == 2
    _one_line_error(stderr, "nothing to import", "does not match the id pattern")
    assert not out.exists()


def test_a_video_features_cache_matches_a_split_end_to_end(tmp_path, capsys):
    """video_features writes one flat folder of stems; fit finds the split's
    Class/v_Class_gNN_c01 ids by their last component."""
    ids = [(f"{c}/v_{c}_g{g:02d}_c01", c, g) for c in CLASSES for g in range(8)]
    src = tmp_path / "output" / "resnet" / "resnet50"
    written = _video_features(src, [v.split("/")[1] for v, _, _ in ids], ["resnet"], seed=3)
    for vid, name, _ in ids:  # the class shows in the features
        features = written["resnet"][vid.split("/")[1]]
        features[:, CLASSES.index(name)] += 2.0
        np.save(src / f"{vid.split('/')[1]}_resnet.npy", features)
    out = tmp_path / "ucf_rgb.h5"
    assert _run(capsys, "import", src, "--out", out, "--quiet")[0] == 0
    splits = write_ucf_split(tmp_path / "splits", ids)
    code = fit.main(
        [str(a) for a in ("--features", out, "--splits", splits, "--levels", "1")]
        + ["--out", str(tmp_path / "run"), "--quiet"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "not in the cache" not in captured.err and "warning" not in captured.err


def test_a_video_extension_left_in_a_pickle_name_can_collide(tmp_path):
    src = tmp_path / "feats"
    src.mkdir()
    for name in ("v_x.avi.pkl", "v_x.pkl"):
        with open(src / name, "wb") as handle:
            pickle.dump(np.ones((2, D)), handle)
    with pytest.raises(ValueError, match=r"v_x\.pkl and .*v_x\.avi\.pkl both give video id 'v_x'"):
        store.import_arrays(src, str(tmp_path / "m_rgb.h5"), stream="rgb")
    with pytest.raises(ValueError, match="layout must be one of auto, arrays, video_features"):
        store.import_arrays(src, str(tmp_path / "m_rgb.h5"), stream="rgb", layout="csv")
    assert not (tmp_path / "m_rgb.h5").exists()
