"""Videos to network inputs: decoding, frame timing, resizing, optical flow.

Every frame is decoded (PyAV for video files, OpenCV for folders of images) and
resized so that its shorter side is ``short_side``; the appearance input is the
centre ``crop`` of each frame. The motion input of frame t is a stack of 10 optical
flows (x and y interleaved, 20 channels) computed on the resized grey frames and
centre-cropped the same way.

Flow is clipped to ``[-bound, bound]`` pixels (default 20, at the resized scale) and
mapped linearly to 0..255: ``u8 = round((f + bound) * 255 / (2 * bound))``, so zero
motion is 128. Flow ``f_j`` goes from frame j to frame j + 1 (T - 1 flows for T
frames). The stack of frame t holds ``f_{min(t + k, T - 2)}`` for k = 0..9: it looks
forward from t, and the last frames repeat the final flow (end padding), so there is
one motion input per frame and both streams have the same T. A one-frame video has
no flow; its stack is all 128 (zero motion).

Finding videos under a folder and reading list files is :mod:`mkl_tp.sources`'s job;
:func:`find_videos`, :func:`read_list` and :func:`select_listed` are re-exported here.
"""

import logging
import os
import time
from collections import deque
from fractions import Fraction

import cv2
import numpy as np

from .sources import IMAGE_EXTENSIONS, find_videos, natural_key, read_list, select_listed

logger = logging.getLogger(__name__)

FLOW_METHODS = ("dis", "farneback", "tvl1")
FLOW_STACK = 10
ZERO_FLOW = 128

__all__ = [
    "FLOW_METHODS",
    "NetworkInputs",
    "OpticalFlow",
    "VideoError",
    "VideoFrames",
    "center_crop",
    "find_videos",
    "flow_stack_indices",
    "flow_to_uint8",
    "read_list",
    "resize_short_side",
    "select_listed",
]


class VideoError(Exception):
    """A video (or frame folder) that cannot be turned into frames; names the file."""


# -- decoding -----------------------------------------------------------------------
def _image_files(folder):
    names = [n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def _reason(exc):
    """FFmpeg's message without PyAV's "[Errno -1094995529]" and the repeated file name."""
    return getattr(exc, "strerror", None) or str(exc)


def _frame_rate(stream):
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(Fraction(rate))
    return float("nan")


class VideoFrames:
    """Iterate the RGB frames (H, W, 3) uint8 of a video file or image folder.

    Parameters
    ----------
    path : str or os.PathLike
        A video file (decoded with PyAV, every frame) or a folder of images.

    Attributes
    ----------
    fps : float
        Frame rate from the container (NaN for image folders or when unknown);
        known once iteration has started.
    declared_frames : int
        Frame count the container claims (0 when it does not say).

    Raises
    ------
    VideoError
        When opening or decoding fails (the message names the file), or when no
        frame at all can be decoded.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.fps = float("nan")
        self.declared_frames = 0

    def __iter__(self):
        count = 0
        source = self._images() if os.path.isdir(self.path) else self._decode()
        for frame in source:
            count += 1
            yield frame
        if count == 0:
            raise VideoError(f"{self.path}: no frames could be decoded (empty video)")

    def _images(self):
        files = _image_files(self.path)
        self.declared_frames = len(files)
        for name in files:
            image = cv2.imread(name, cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"cannot read image {name}")
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _decode(self):
        import av  # the extract extra; imported here so store-only users need no FFmpeg

        try:
            container = av.open(self.path)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoError(f"cannot open video {self.path}: {_reason(exc)}") from None
        with container:
            if not container.streams.video:
                raise VideoError(f"{self.path} has no video stream (truncated, or not a video?)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            self.fps = _frame_rate(stream)
            self.declared_frames = int(stream.frames or 0)
            index = 0
            try:
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24")
                    index += 1
            except (av.FFmpegError, OSError, ValueError) as exc:
                raise VideoError(f"cannot decode {self.path} after {index} frames: {_reason(exc)}") from None
            if self.declared_frames and index != self.declared_frames:
                logger.info("%s: decoded %d frames, container says %d", self.path, index, self.declared_frames)


# -- geometry -------------------------------------------------------------------------
def resize_short_side(frame, short_side, size=None):
    """Resize an image so that its shorter side is ``short_side`` pixels.

    Parameters
    ----------
    frame : ndarray, shape (H, W) or (H, W, C)
    short_side : int
    size : tuple of int (width, height), optional
        Force this output size instead (used to keep every frame of a video at the
        size of its first frame).

    Returns
    -------
    ndarray
        Area interpolation when shrinking (anti-aliased), bilinear when enlarging.
    """
    height, width = frame.shape[:2]
    if size is None:
        size = _short_side_size(height, width, short_side)
    if size == (width, height):
        return frame
    shrink = size[0] * size[1] < width * height
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _short_side_size(height, width, short_side):
    if height <= width:
        return max(1, round(width * short_side / height)), short_side
    return short_side, max(1, round(height * short_side / width))


def center_crop(image, crop):
    """Cut the centre ``crop`` x ``crop`` square of an image (torchvision's offsets).

    Parameters
    ----------
    image : ndarray, shape (H, W, ...)
    crop : int
        0 keeps the whole image.

    Returns
    -------
    ndarray, a view

    Raises
    ------
    ValueError
        The image is smaller than the crop.
    """
    if not crop:
        return image
    height, width = image.shape[:2]
    if height < crop or width < crop:
        raise ValueError(f"cannot crop {crop}x{crop} from an image of {height}x{width}")
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return image[top : top + crop, left : left + crop]


# -- optical flow ---------------------------------------------------------------------
class OpticalFlow:
    """Dense optical flow between two grey frames with OpenCV.

    Parameters
    ----------
    method : {"dis", "farneback", "tvl1"}
        ``dis``: DIS, medium preset. ``farneback``: Farneback, pyramid 0.5 x 3 levels,
        window 15. ``tvl1``: Dual TV-L1 from opencv-contrib (``cv2.optflow``), the
        two-stream papers' choice and tens of times slower than the other two;
        ``benchmarks/bench_extract.py`` times each per frame pair (figures in
        ``docs/cli_extract.rst``).

    Raises
    ------
    ValueError
        Unknown method, or ``tvl1`` without opencv-contrib installed.
    """

    def __init__(self, method="dis"):
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(FLOW_METHODS)}")
        self.method = method
        if method == "dis":
            self._solver = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        elif method == "tvl1":
            if not hasattr(cv2, "optflow"):
                raise ValueError(
                    "flow method 'tvl1' needs OpenCV's contrib modules (cv2.optflow): "
                    "pip install opencv-contrib-python-headless, or use --flow-method dis"
                )
            self._solver = cv2.optflow.DualTVL1OpticalFlow_create()
        else:
            self._solver = None

    def __call__(self, prev, nxt):
        """Return the flow (H, W, 2) float32 in pixels, x then y, from ``prev`` to ``nxt``."""
        if self._solver is None:
            return cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return self._solver.calc(prev, nxt, None)


def flow_to_uint8(flow, bound=20.0):
    """Clip flow to ``[-bound, bound]`` and map it linearly to 0..255.

    Parameters
    ----------
    flow : ndarray of float
    bound : float
        In pixels.

    Returns
    -------
    ndarray of uint8, same shape
        ``round((clip(f) + bound) * 255 / (2 * bound))``; zero motion gives 128.
    """
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.rint(scaled).astype(np.uint8)


def flow_stack_indices(n_frames, stack=FLOW_STACK):
    """Indices of the flows stacked for each frame: ``min(t + k, T - 2)``.

    Parameters
    ----------
    n_frames : int
        T >= 2 (with one frame there is no flow at all).
    stack : int

    Returns
    -------
    ndarray of int, shape (T, stack)
        Row t lists the flows (flow j goes from frame j to j + 1) in frame t's stack.
    """
    if n_frames < 2:
        raise ValueError("a video needs 2 frames to have optical flow")
    return np.minimum(np.arange(n_frames)[:, None] + np.arange(stack)[None, :], n_frames - 2)


class _FlowStacker:
    """Turn the stream of flows f_0, f_1, ... into one stack per frame, as they arrive."""

    def __init__(self, stack):
        self.stack = stack
        self.window = deque()
        self.last = None

    def push(self, flow):
        self.window.append(flow)
        if len(self.window) == self.stack:
            out = np.concatenate(self.window, axis=0)
            self.last = self.window.popleft()
            return out
        return None

    def finish(self, shape):
        """Stacks of the remaining frames, padded with the final flow."""
        remaining = list(self.window)
        last = remaining[-1] if remaining else self.last
        if last is None:
            yield np.full((2 * self.stack,) + shape, ZERO_FLOW, np.uint8)
            return
        for i in range(len(remaining) + 1):
            part = remaining[i : i + self.stack]
            yield np.concatenate(part + [last] * (self.stack - len(part)), axis=0)


class NetworkInputs:
    """Iterate the network inputs of one video, frame by frame, in uint8.

    Parameters
    ----------
    path : str or os.PathLike
        A video file or a folder of frame images.
    streams : collection of {"rgb", "flow"}
    short_side : int, default 256
    crop : int, default 224
        Centre crop (0: keep the resized frame).
    flow_method : str, default "dis"
        See :class:`OpticalFlow`.
    flow_bound : float, default 20
        See :func:`flow_to_uint8`.
    stack : int, default 10

    Yields
    ------
    stream : str
        ``"rgb"`` with a (3, crop, crop) array, or ``"flow"`` with a (2 * stack, crop,
        crop) array. Per stream, inputs come in frame order, one per frame.

    Attributes
    ----------
    n_frames, fps : int, float
        Known after iteration.
    timings : dict
        Seconds spent in ``decode``, ``flow`` and ``resize`` (resize, crop, colour
        conversion, flow quantisation).
    """

    def __init__(self, path, streams=("rgb",), *, short_side=256, crop=224, flow_method="dis",
                 flow_bound=20.0, stack=FLOW_STACK):
        self.path = os.fspath(path)
        self.streams = set(streams)
        unknown = self.streams - {"rgb", "flow"}
        if unknown or not self.streams:
            raise ValueError(f"streams must be 'rgb' and/or 'flow', got {sorted(streams)}")
        if crop and crop > short_side:
            raise ValueError(f"crop {crop} is larger than the short side {short_side}")
        self.short_side, self.crop = short_side, crop
        self.flow = OpticalFlow(flow_method) if "flow" in self.streams else None
        self.flow_bound, self.stack = flow_bound, stack
        self.n_frames = 0
        self.fps = float("nan")
        self.timings = {"decode": 0.0, "flow": 0.0, "resize": 0.0}

    def __iter__(self):
        frames = VideoFrames(self.path)
        stacker = _FlowStacker(self.stack)
        clock = time.perf_counter
        size = prev = None
        self.n_frames = 0
        decoded = iter(frames)
        while True:
            start = clock()
            try:
                frame = next(decoded)
            except StopIteration:
                break
            finally:
                self.timings["decode"] += clock() - start
            start = clock()
            if size is None:
                size = _short_side_size(frame.shape[0], frame.shape[1], self.short_side)
            frame = resize_short_side(frame, self.short_side, size)
            self.n_frames += 1
            if "rgb" in self.streams:
                rgb = np.ascontiguousarray(center_crop(frame, self.crop).transpose(2, 0, 1))
            if self.flow is not None:
                grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            self.timings["resize"] += clock() - start
            if "rgb" in self.streams:
                yield "rgb", rgb
            if self.flow is None:
                continue
            if prev is not None:
                start = clock()
                flow = self.flow(prev, grey)
                middle = clock()
                quantised = flow_to_uint8(center_crop(flow, self.crop), self.flow_bound)
                ready = stacker.push(np.ascontiguousarray(quantised.transpose(2, 0, 1)))
                self.timings["flow"] += middle - start
                self.timings["resize"] += clock() - middle
                if ready is not None:
                    yield "flow", ready
            prev = grey
        self.fps = frames.fps
        if self.flow is not None and self.n_frames:
            crop_shape = center_crop(prev, self.crop).shape
            yield from (("flow", s) for s in stacker.finish(crop_shape))
