"""A fixed number of frames per video (the paper's Table 6): the rule, and fit / predict's
--train-frames, --test-frames and --frames on cached features."""

import json

import h5py
import numpy as np
import pytest
from _caches import CLASSES, make_cache, write_ucf_split

from mkl_tp import fit, node_descriptors_batch, predict, sample_frames
from mkl_tp._utils.sampling import evenly_spaced
from mkl_tp.experiment import options, sweep
from mkl_tp.experiment.inputs import describe_features
from mkl_tp.sources.splits import read_split


@pytest.mark.parametrize("length", range(1, 41))
def test_evenly_spaced_keeps_the_centre_frame_of_each_equal_segment(length):
    for count in range(1, 45):
        kept = evenly_spaced(length, count)
        if count >= length:
            assert kept.tolist() == list(range(length))  # all, none repeated
            continue
        assert len(kept) == count
        for k, t in enumerate(kept):
            # brute force: the frame under the segment's centre in normalised time
            centre = (k + 0.5) / count
            under = [f for f in range(length) if f / length <= centre < (f + 1) / length]
            assert under == [t]


def test_sample_frames_returns_views_and_refuses_bad_counts():
    video = np.arange(30.0).reshape(10, 3)
    kept = sample_frames([video, video[:2]], 4)
    assert kept[0][:, 0].tolist() == [3.0, 9.0, 18.0, 24.0]  # frames 1, 3, 6, 8
    np.testing.assert_array_equal(kept[1], video[:2])  # shorter than 4: whole
    assert sample_frames([video], None)[0] is video
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="count must be a positive integer"):
            sample_frames([video], bad)


def test_frame_specs_parse_as_the_command_line_writes_them():
    assert options.frames("all") == "all"
    assert options.frames("25") == 25
    assert options.frames("rgb=25,flow=all") == {"rgb": 25, "flow": "all"}
    assert options.frames_of({"rgb": 25}, "flow") is None
    assert options.frames_of(25, "flow") == 25
    for bad, message in (("0", "at least 1"), ("rgb=", "integer"), ("rgb=2,rgb=3", "twice")):
        with pytest.raises(ValueError, match=message):
            options.frames(bad)


@pytest.fixture
def toy(tmp_path):
    rgb, ids = make_cache(tmp_path, stream="rgb", d=4, seed=0)
    flow, _ = make_cache(tmp_path, stream="flow", d=3, seed=1)
    splits = write_ucf_split(tmp_path / "splits", ids)
    return tmp_path, rgb, flow, splits


@pytest.mark.filterwarnings("ignore:.*no mkl_tp extractor attributes")
def test_train_and_test_videos_are_sampled_separately_per_stream(toy):
    tmp, rgb, flow, splits = toy
    split = read_split(splits, "ucf101", 1)
    described = describe_features([rgb, flow])
    frames = {"train": {"rgb": 5}, "test": 7}
    data, _ = sweep.load_data(described, split, max_level=3, frames=frames)
    for subset, ids in (("train", split.train_ids), ("test", split.test_ids)):
        for path, stream in ((rgb, "rgb"), (flow, "flow")):
            count = {"train": {"rgb": 5, "flow": None}, "test": {"rgb": 7, "flow": 7}}[subset]
            with h5py.File(path) as h5:
                raw = [h5["videos"][i.removesuffix(".avi")][()] for i in ids]
            picked = [
                x[[(2 * k + 1) * len(x) // (2 * count[stream]) for k in range(count[stream])]]
                if count[stream] and count[stream] < len(x)
                else x
                for x in raw
            ]
            np.testing.assert_allclose(
                node_descriptors_batch(data[subset][stream], 3),
                node_descriptors_batch(picked, 3),
                atol=1e-6,
            )
    with pytest.raises(Exception, match="--test-frames names stream.*gray.*give rgb, flow"):
        sweep.load_data(described, split, max_level=2, frames={"test": {"gray": 3}})


def test_fit_records_the_sampling_and_predict_samples_the_same_way(toy, capsys):
    tmp, rgb, _, splits = toy
    out = tmp / "run"
    common = ["--features", str(rgb), "--splits", str(splits), "--levels", "2", "--quiet"]
    assert (
        fit.main(common + ["--out", str(out), "--train-frames", "6", "--test-frames", "rgb=9"]) == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["train_frames"] == 6
    assert report["settings"]["test_frames"] == {"rgb": 9}
    accuracy = report["model"]["accuracy"]
    # Other frames are another experiment: not resumed into this report.
    assert fit.main(common + ["--out", str(out), "--train-frames", "7"]) == 2
    assert "train_frames" in capsys.readouterr().err
    preds = tmp / "preds.csv"
    code = predict.main(
        [
            str(out / "model.skops"),
            "--features",
            str(rgb),
            "--splits",
            str(splits),
            "--frames",
            "9",
            "--out",
            str(preds),
            "--quiet",
        ]
    )
    assert code == 0
    rows = preds.read_text().splitlines()[1:]
    hits = [r.split(",")[1] == r.split(",")[2] for r in rows]
    assert np.mean(hits) == pytest.approx(accuracy)
    assert (
        predict.main([str(out / "model.skops"), "--features", str(rgb), "--frames", "flow=3"]) == 1
    )
    assert "--frames names stream(s) flow" in capsys.readouterr().err
    assert set(CLASSES) >= {r.split(",")[1] for r in rows}
