"""Tests for sampling a fixed number of frames per video (``sample_frames``)."""

import numpy as np
import pytest
from _videos import assert_sampled_rows, write_video

from mkl_tp import store
from mkl_tp._utils.sampling import evenly_spaced
from mkl_tp.extraction import FrameSampler, sample_frame_indices
from mkl_tp.extraction.run import extract_features

SMALL = dict(arch="resnet18", weights="random", short_side=40, crop=32, batch_size=8, workers=0)


def test_extraction_keeps_the_frames_fit_time_sampling_keeps():
    """One rule for both: ``fit --train-frames`` on a full-rate cache and ``extract
    --frames`` keep the same frames (the centre of each equal segment)."""
    for n_frames in range(1, 40):
        for frames in range(1, 45):
            times = np.arange(n_frames) / 25
            assert (
                sample_frame_indices(times, frames=frames)
                == evenly_spaced(n_frames, frames).tolist()
            )
    assert sample_frame_indices(np.arange(12) / 25, frames=5) == [1, 3, 6, 8, 10]


def test_sampling_options_are_exclusive_and_checked():
    with pytest.raises(ValueError, match="sample by stride or by frames, not both"):
        FrameSampler(stride=2, frames=5)
    with pytest.raises(ValueError, match="number of frames to sample must be a positive integer"):
        FrameSampler(frames=0)
    with pytest.raises(ValueError, match="sample by sample_fps or sample_frames, not both"):
        extract_features("nowhere", "x", sample_fps=5, sample_frames=25, **SMALL)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "v.mp4", 12, size=(48, 64))


@pytest.mark.parametrize(
    "frames, rows", [(5, [1, 3, 6, 8, 10]), (12, list(range(12))), (20, list(range(12)))]
)
def test_kept_frames_are_the_full_rate_inputs_of_the_chosen_indices(video, frames, rows):
    """Rows are each segment's centre frame; flow stacks are those of the decoded frames."""
    inputs = assert_sampled_rows(video, rows, sample_frames=frames)
    assert inputs.n_frames == len(rows) and inputs.source_frames == 12


def test_the_number_of_frames_is_recorded_and_kept(video, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "v.mp4").symlink_to(video)
    out = str(tmp_path / "n5")
    summary = extract_features(src, out, streams="both", sample_frames=5, **SMALL)
    assert summary.done == {"rgb": 1, "flow": 1}
    for stream in ("rgb", "flow"):
        path = f"{out}_{stream}.h5"
        info = store.read_info(path)
        assert info["sample_frames"] == 5 and info["preprocessing"].startswith("sample_frames")
        assert ("flow_sampling" in info) == (stream == "flow")
        attrs = store.video_attrs(path, "v")
        assert attrs["n_frames"] == 5 and attrs["source_frames"] == 12
    with pytest.raises(ValueError, match=r"sample_frames=5 in the file, 25 now"):
        extract_features(src, out, streams="both", sample_frames=25, **SMALL)
    with pytest.raises(ValueError, match=r"sample_frames=5 in the file, None now"):
        extract_features(src, out, streams="both", **SMALL)
