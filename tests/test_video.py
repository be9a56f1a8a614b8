"""Tests for mkl_tp.extraction: decoding, resizing, optical flow, flow stacks (finding videos:
test_sources.py)."""

import math

import cv2
import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from _videos import (
    assert_sampled_rows,
    moving_pattern,
    write_cut,
    write_frame_folder,
    write_garbage,
    write_truncated,
    write_video,
)

from mkl_tp.extraction.flow import OpticalFlow, flow_stack_indices, flow_to_uint8
from mkl_tp.extraction.frames import FrameSampler, VideoError, VideoFrames, sample_frame_indices
from mkl_tp.extraction.inputs import NetworkInputs, center_crop, resize_short_side


# -- decoding -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ext, size, n_frames",
    [
        (".mp4", (48, 64), 9),
        (".avi", (64, 48), 4),
        (".mkv", (36, 80), 13),
        (".webm", (32, 32), 3),
        (".mp4", (48, 64), 1),
    ],
)
def test_every_frame_is_decoded_in_rgb(tmp_path, ext, size, n_frames):
    path = write_video(tmp_path / f"v{ext}", n_frames, size=size)
    frames = VideoFrames(path)
    decoded = list(frames)
    assert len(decoded) == n_frames and frames.fps == 25.0
    assert all(f.shape == size + (3,) and f.dtype == np.uint8 for f in decoded)
    for t in (0, n_frames - 1):  # lossy codecs: close to what was written, colours in RGB order
        error = np.abs(decoded[t].astype(int) - moving_pattern(t, *size).astype(int)).mean()
        assert error < 12, (t, error)


def test_frame_folders_are_read_in_natural_order(tmp_path):
    folder = write_frame_folder(tmp_path / "clip", 12)
    frames = VideoFrames(folder)
    decoded = list(frames)
    assert len(decoded) == 12 and np.isnan(frames.fps)
    for t, frame in enumerate(decoded):  # img_10 comes after img_9, not after img_1
        np.testing.assert_array_equal(frame, moving_pattern(t, 40, 56))


def test_unreadable_image_is_named(tmp_path):
    folder = write_frame_folder(tmp_path / "clip", 3)
    (tmp_path / "clip" / "img_2.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match=r"cannot read image .*clip/img_2\.png"):
        list(VideoFrames(folder))


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda d: write_garbage(d / "garbage.avi"),
            r"cannot open video .*garbage\.avi: .*Invalid data",
        ),
        (
            lambda d: write_truncated(d / "cut.mp4"),
            r"cut\.mp4 has no video stream \(truncated, or not a video\?\)",
        ),
        (lambda d: write_video(d / "empty.avi", 0), r"empty\.avi: no frames could be decoded"),
        (
            lambda d: str((d / "zero.mp4").write_bytes(b"") or d / "zero.mp4"),
            r"cannot open video .*zero\.mp4",
        ),
        (lambda d: str(d / "missing.mp4"), r"cannot open video .*missing\.mp4: .*No such file"),
        (
            lambda d: str((d / "no_images").mkdir() or d / "no_images"),
            r"no_images: no frames could be decoded",
        ),
    ],
)
def test_bad_videos_raise_an_error_naming_the_file(tmp_path, make, message):
    with pytest.raises(VideoError, match=message):
        list(VideoFrames(make(tmp_path)))


# -- geometry -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, expected",
    [((48, 64), (64, 85)), ((64, 48), (85, 64)), ((64, 64), (64, 64)), ((240, 320), (64, 85))],
)
def test_resize_short_side(shape, expected):
    frame = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    out = resize_short_side(frame, 64)
    assert out.shape == expected + (3,) and out.dtype == np.uint8
    if shape == expected:
        assert out is frame


def test_resize_to_a_fixed_size():
    out = resize_short_side(np.zeros((30, 40), np.uint8), 64, size=(70, 50))
    assert out.shape == (50, 70)


@pytest.mark.parametrize("shape", [(64, 85), (85, 64), (57, 57), (60, 91)])
def test_center_crop_matches_torchvision(shape):
    image = np.random.default_rng(1).integers(0, 256, shape + (3,), dtype=np.uint8)
    expected = (
        TF.center_crop(torch.from_numpy(image).permute(2, 0, 1), [56, 56]).permute(1, 2, 0).numpy()
    )
    np.testing.assert_array_equal(center_crop(image, 56), expected)
    assert center_crop(image, 0) is image


def test_center_crop_too_large():
    with pytest.raises(ValueError, match="cannot crop 56x56 from an image of 40x80"):
        center_crop(np.zeros((40, 80, 3), np.uint8), 56)


# -- optical flow ---------------------------------------------------------------------
def test_flow_quantisation():
    flow = np.array([-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 25.0], np.float32)
    np.testing.assert_array_equal(flow_to_uint8(flow, 20.0), [0, 0, 64, 128, 191, 255, 255])
    np.testing.assert_array_equal(flow_to_uint8(np.array([1.0]), 1.0), [255])


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
def test_flow_methods_recover_a_translation(method):
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (80, 100), dtype=np.uint8), (0, 0), 2.0)
    prev, nxt = texture[10:70, 10:90], texture[10:70, 7:87]  # content moves 3 px right
    flow = OpticalFlow(method)(np.ascontiguousarray(prev), np.ascontiguousarray(nxt))
    assert flow.shape == (60, 80, 2) and flow.dtype == np.float32
    inner = flow[15:-15, 15:-15]
    assert abs(np.median(inner[..., 0]) - 3.0) < 0.5 and abs(np.median(inner[..., 1])) < 0.5


def test_unknown_flow_method():
    with pytest.raises(
        ValueError, match="unknown flow method 'raft'; choose one of dis, farneback, tvl1"
    ):
        OpticalFlow("raft")


def test_flow_stack_indices_pad_at_the_end():
    np.testing.assert_array_equal(
        flow_stack_indices(4, 3), [[0, 1, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2]]
    )
    idx = flow_stack_indices(25)
    assert (
        idx.shape == (25, 10)
        and idx[0].tolist() == list(range(10))
        and idx[-1].tolist() == [23] * 10
    )
    with pytest.raises(ValueError, match="needs 2 frames"):
        flow_stack_indices(1)


def _reference_inputs(path, short_side=64, crop=56, bound=20.0):
    """RGB crops and flow stacks built frame by frame from the public pieces."""
    frames = list(VideoFrames(path))
    h, w = frames[0].shape[:2]
    size = (
        (round(w * short_side / h), short_side)
        if h <= w
        else (short_side, round(h * short_side / w))
    )
    frames = [resize_short_side(f, short_side, size) for f in frames]
    rgb = [center_crop(f, crop).transpose(2, 0, 1) for f in frames]
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    solver = OpticalFlow("dis")
    flows = [
        flow_to_uint8(center_crop(solver(a, b), crop), bound).transpose(2, 0, 1)
        for a, b in zip(grey, grey[1:])
    ]
    if len(frames) == 1:
        return rgb, [np.full((20, crop, crop), 128, np.uint8)]
    stacks = [np.concatenate([flows[j] for j in row]) for row in flow_stack_indices(len(frames))]
    return rgb, stacks


@pytest.mark.parametrize("n_frames", [1, 2, 5, 11, 23])
def test_network_inputs_one_per_frame_per_stream(tmp_path, n_frames):
    path = write_video(tmp_path / "v.mp4", n_frames, size=(48, 64))
    inputs = NetworkInputs(path, ("rgb", "flow"), short_side=64, crop=56)
    produced = list(inputs)
    rgb = [a for s, a in produced if s == "rgb"]
    flow = [a for s, a in produced if s == "flow"]
    assert len(rgb) == len(flow) == inputs.n_frames == n_frames and inputs.fps == 25.0
    assert (
        rgb[0].shape == (3, 56, 56) and flow[0].shape == (20, 56, 56) and flow[0].dtype == np.uint8
    )
    ref_rgb, ref_flow = _reference_inputs(path)
    for got, want in zip(rgb, ref_rgb):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(flow, ref_flow):
        np.testing.assert_array_equal(got, want)
    assert set(inputs.timings) == {"decode", "flow", "resize"}


def test_network_inputs_see_motion(tmp_path):
    path = write_video(tmp_path / "v.mp4", 6, size=(64, 64), step=3)
    stacks = [a for s, a in NetworkInputs(path, ("flow",), short_side=64, crop=0) if s == "flow"]
    assert len(stacks) == 6 and stacks[0].shape == (20, 64, 64)
    pixels = (stacks[0][:2].astype(float) - 128) * 40 / 255  # the first flow, back in pixels
    square = pixels[:, 21 + 6 : 21 + 10, 4 + 6 : 4 + 10]  # the square moves 3 px right
    assert abs(np.median(square[0]) - 3) < 1 and abs(np.median(square[1])) < 0.5
    still = pixels[:, 52:, 40:]  # a corner far from the square
    assert np.abs(still).max() < 0.5


def test_network_inputs_check_their_options(tmp_path):
    with pytest.raises(ValueError, match="crop 300 is larger than the short side 256"):
        NetworkInputs("v.mp4", ("rgb",), crop=300)
    with pytest.raises(ValueError, match="streams must be 'rgb' and/or 'flow'"):
        NetworkInputs("v.mp4", ("audio",))


# -- truncated videos -----------------------------------------------------------------
@pytest.mark.parametrize(
    "ext, message",
    [
        (".avi", r"c\.avi is truncated: decoded \d+ of the 100 frames its container declares"),
        (".mkv", r"c\.mkv is truncated: its \d+ decoded frames cover [\d.]+ s of the 4\.00 s"),
    ],
)
def test_truncated_videos_raise_after_their_last_frame(tmp_path, ext, message):
    path = write_cut(tmp_path / f"c{ext}", n_frames=100, fraction=0.6)
    with pytest.raises(VideoError, match=message + r".*--keep-partial"):
        list(VideoFrames(path))
    frames = VideoFrames(path, keep_partial=True)
    decoded = list(frames)
    assert 0 < len(decoded) < 100 and frames.partial and frames.decoded_frames == len(decoded)
    complete = VideoFrames(write_video(tmp_path / f"whole{ext}", 100))
    assert len(list(complete)) == 100 and not complete.partial


# -- frame sampling -------------------------------------------------------------------
def test_sampling_by_stride_and_by_timestamps():
    times = [k / 25 for k in range(12)]  # 25 fps, 12 frames: on screen until 0.48 s
    assert sample_frame_indices(times) == list(range(12))
    assert sample_frame_indices(times, stride=5) == [0, 5, 10]
    assert sample_frame_indices(times, fps=5) == [0, 5, 10]  # 0, 0.2, 0.4 s
    assert sample_frame_indices(times, fps=10) == [0, 2, 5, 7, 10]  # 0.1 s falls in frame 2
    assert sample_frame_indices(times, fps=50) == [k for k in range(12) for _ in range(2)]
    # variable frame rate and a late start: the frame on screen at each sampling time
    assert sample_frame_indices([1.0, 1.1, 1.5, 1.6], end=2.0, fps=4) == [0, 1, 2, 3]
    assert sample_frame_indices([1.0, 1.1, 1.5, 1.6], end=2.0, fps=2) == [0, 2]


@hypothesis.given(
    n_frames=st.integers(1, 60),
    rate=st.sampled_from([12.5, 24.0, 25.0, 30000 / 1001]),
    fps=st.floats(0.5, 60.0),
)
def test_sampling_keeps_one_frame_per_period(n_frames, rate, fps):
    times = [k / rate for k in range(n_frames)]
    kept = sample_frame_indices(times, end=n_frames / rate, fps=fps)
    expected = math.ceil(n_frames / rate * fps - 1e-6)  # sampling times in [0, T / rate)
    assert abs(len(kept) - expected) <= 1 and kept == sorted(kept) and kept[0] == 0
    for k, index in enumerate(kept):
        assert (
            times[index]
            <= k / fps + 1e-6
            < (times[index + 1] if index + 1 < n_frames else 1e9) + 1e-6
        )


def test_sampling_options_are_checked():
    for kwargs, message in (
        ({"fps": 2, "stride": 3}, "not both"),
        ({"fps": 0}, "positive"),
        ({"fps": float("inf")}, "positive"),
        ({"stride": 0}, "positive integer"),
        ({"stride": 1.5}, "positive integer"),
    ):
        with pytest.raises(ValueError, match=message):
            FrameSampler(**kwargs)


@pytest.mark.parametrize(
    "options, rows",
    [
        ({"sample_stride": 3}, [0, 3, 6, 9]),
        ({"sample_fps": 5}, [0, 5, 10]),
        ({"sample_fps": 50}, [k for k in range(12) for _ in range(2)]),
    ],
)
def test_sampled_inputs_are_the_full_rate_inputs_of_the_kept_frames(tmp_path, options, rows):
    """The motion input of a kept frame is its stack at full rate: flow between decoded frames."""
    path = write_video(tmp_path / "v.mp4", 12, size=(48, 64))
    inputs = assert_sampled_rows(path, rows, **options)
    assert inputs.n_frames == len(rows) and inputs.source_frames == 12 and inputs.fps == 25.0


def test_flow_is_computed_only_where_a_kept_stack_needs_it(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.avi", 40, size=(32, 32))
    pairs = []
    real = OpticalFlow.__call__
    monkeypatch.setattr(
        OpticalFlow, "__call__", lambda self, a, b: pairs.append(1) or real(self, a, b)
    )
    stacks = [
        a
        for s, a in NetworkInputs(path, ("flow",), short_side=32, crop=0, sample_stride=20)
        if s == "flow"
    ]
    assert len(stacks) == 2 and len(pairs) == 2 * 10  # frames 0-10 and 20-30, not all 39 pairs


def test_frame_folders_have_no_timestamps_to_sample_by(tmp_path):
    folder = write_frame_folder(tmp_path / "clip", 6)
    with pytest.raises(
        VideoError, match=r"clip has no frame timestamps .*by stride instead of by fps"
    ):
        list(NetworkInputs(folder, ("rgb",), short_side=40, crop=32, sample_fps=5))
    kept = [a for _, a in NetworkInputs(folder, ("rgb",), short_side=40, crop=32, sample_stride=2)]
    assert len(kept) == 3
