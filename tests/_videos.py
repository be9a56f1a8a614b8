"""Small real videos for the extraction tests, written with PyAV and OpenCV.

Frames show a bright square moving over a diagonal gradient, so consecutive frames
differ and optical flow has something to find.
"""

import os

import av
import cv2
import numpy as np

#: Codec per container that the PyAV wheels can write.
CODECS = {".mp4": "mpeg4", ".avi": "mpeg4", ".mkv": "libx264", ".webm": "libvpx"}


def moving_pattern(t, height, width, step=2):
    """Frame t (H, W, 3) uint8: a gradient with a square moving ``step`` px right per frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.stack(
        [(xx * 255 // max(1, width - 1)), (yy * 255 // max(1, height - 1)), ((xx + yy) * 2) % 256],
        -1,
    ).astype(np.uint8)
    side = max(4, min(height, width) // 4)
    top, left = height // 3, (4 + t * step) % max(1, width - side)
    frame[top : top + side, left : left + side] = (250, 240, 30)
    return frame


def write_video(path, n_frames, size=(48, 64), fps=25, step=2):
    """Write ``n_frames`` frames of :func:`moving_pattern` (size = (H, W)); return the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    height, width = size
    with av.open(path, "w") as container:
        stream = container.add_stream(CODECS[os.path.splitext(path)[1]], rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if n_frames == 0:
            container.start_encoding()  # header with a video stream and no frame
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(
                moving_pattern(t, height, width, step), format="rgb24"
            )
            container.mux(stream.encode(frame))
        if n_frames:
            container.mux(stream.encode())
    return path


def write_frame_folder(folder, n_frames, size=(40, 56), ext=".png"):
    """Write frames as images named img_1, img_2, ..., img_10 (natural order matters)."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    for t in range(n_frames):
        rgb = moving_pattern(t, *size)
        cv2.imwrite(os.path.join(folder, f"img_{t + 1}{ext}"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def write_truncated(path, n_frames=8):
    """An MP4 cut in half: its index (moov atom, written last) is gone."""
    full = write_video(os.fspath(path) + ".full.mp4", n_frames)
    with open(full, "rb") as handle:
        data = handle.read()
    os.unlink(full)
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    return os.fspath(path)


def write_cut(path, n_frames=100, fraction=0.6, size=(48, 64)):
    """A video whose last bytes are gone: its header still declares ``n_frames``, but only
    the frames in the first ``fraction`` of its bytes decode (AVI: the count; MKV: the
    duration)."""
    full = write_video(os.fspath(path) + ".full" + os.path.splitext(path)[1], n_frames, size=size)
    with open(full, "rb") as handle:
        data = handle.read()
    os.unlink(full)
    with open(path, "wb") as handle:
        handle.write(data[: int(len(data) * fraction)])
    return os.fspath(path)


def write_garbage(path):
    """Bytes that no demuxer recognises."""
    with open(path, "wb") as handle:
        handle.write(b"this is not a video " * 64)
    return os.fspath(path)


def make_tree(root):
    """A small dataset: good videos of a few sizes and lengths, a frame folder, bad files.

    Returns
    -------
    good : dict of str to int
        Video id -> number of frames.
    bad : dict of str to str
        Video id -> file name that the failure message must name.
    """
    root = os.fspath(root)
    good = {
        "walk/v_walk_g01_c01": write_video(os.path.join(root, "walk/v_walk_g01_c01.mp4"), 12)
        and 12,
        "walk/v_walk_g02_c01": write_video(
            os.path.join(root, "walk/v_walk_g02_c01.avi"), 5, size=(64, 48)
        )
        and 5,
        "jump/v_jump_g01_c01": write_video(
            os.path.join(root, "jump/v_jump_g01_c01.mkv"), 14, size=(36, 80)
        )
        and 14,
        "jump/single": write_video(os.path.join(root, "jump/single.mp4"), 1) and 1,
        "frames/run_1": write_frame_folder(os.path.join(root, "frames/run_1"), 11) and 11,
    }
    bad = {
        "broken/truncated": os.path.basename(
            write_truncated(os.path.join(root, "broken/truncated.mp4"))
        ),
        "broken/empty": os.path.basename(write_video(os.path.join(root, "broken/empty.avi"), 0)),
        "broken/garbage": os.path.basename(write_garbage(os.path.join(root, "broken/garbage.avi"))),
        # Opens and decodes 25 of the 100 frames its header declares: truncated, not complete.
        "broken/cut": os.path.basename(write_cut(os.path.join(root, "broken/cut.avi"))),
    }
    return good, bad


def assert_sampled_rows(path, rows, **options):
    """``NetworkInputs`` of ``path`` with sampling ``options`` yield, in both streams, the
    full-rate inputs of the frames ``rows`` (flow stacks between decoded frames, not
    between kept ones); returns those inputs for their counters."""
    from mkl_tp.extraction.inputs import NetworkInputs

    settings = dict(short_side=64, crop=56)
    full = list(NetworkInputs(path, ("rgb", "flow"), **settings))
    inputs = NetworkInputs(path, ("rgb", "flow"), **settings, **options)
    sampled = list(inputs)
    for stream in ("rgb", "flow"):
        got = [a for s, a in sampled if s == stream]
        want = [a for s, a in full if s == stream]
        assert len(got) == len(rows)
        for array, row in zip(got, rows):
            np.testing.assert_array_equal(array, want[row])
    return inputs
