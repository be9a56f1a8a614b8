"""Network inputs of one video: resized, centre-cropped RGB frames and flow stacks.

Part of :mod:`mkl_tp.extraction`, which re-exports the public names; import them from there.
"""

import os
import time

import cv2
import numpy as np

from .flow import FLOW_STACK, FlowStacker, OpticalFlow, flow_to_uint8
from .frames import FrameSampler, VideoError, VideoFrames


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
    sample_fps, sample_stride, sample_frames : optional
        Keep only some frames (:class:`FrameSampler`; at most one option): those on
        screen every ``1 / sample_fps`` seconds, every ``sample_stride``-th, or
        ``sample_frames`` frames evenly spaced over the video (the centre frame of each of
        ``sample_frames`` equal segments; all T frames when T <= ``sample_frames``, none
        repeated). The
        flow stack of a kept frame is made of the flows between consecutive decoded frames
        from it on. ``sample_frames`` needs T, the decoded count (a container's declared
        count can be wrong): the video is decoded twice, once to count its frames and once
        to keep them, so decoding costs twice as much (flow and the network run only on
        what the kept frames need).
    keep_partial : bool, default False
        Keep the frames of a truncated video (see :class:`VideoFrames`).

    Yields
    ------
    stream : str
        ``"rgb"`` with a (3, crop, crop) array, or ``"flow"`` with a (2 * stack, crop,
        crop) array. Per stream, inputs come in frame order, one per kept frame.

    Attributes
    ----------
    n_frames : int
        Kept frames (inputs per stream); known after iteration.
    source_frames : int
        Decoded frames; known after iteration.
    fps : float
        The video's frame rate (NaN for image folders); known after iteration.
    declared_frames : int
        The frame count the container declares (0 when unknown).
    partial : bool
        Truncated and kept (``keep_partial``).
    timings : dict
        Seconds spent in ``decode``, ``flow`` and ``resize`` (resize, crop, colour
        conversion, flow quantisation).

    Raises
    ------
    ValueError
        Unknown streams, a crop larger than the short side, or bad sampling options.
    """

    def __init__(
        self,
        path,
        streams=("rgb",),
        *,
        short_side=256,
        crop=224,
        flow_method="dis",
        flow_bound=20.0,
        stack=FLOW_STACK,
        sample_fps=None,
        sample_stride=None,
        sample_frames=None,
        keep_partial=False,
    ):
        self.path = os.fspath(path)
        self.streams = set(streams)
        unknown = self.streams - {"rgb", "flow"}
        if unknown or not self.streams:
            raise ValueError(f"streams must be 'rgb' and/or 'flow', got {sorted(streams)}")
        if crop and crop > short_side:
            raise ValueError(f"crop {crop} is larger than the short side {short_side}")
        FrameSampler(sample_fps, sample_stride, sample_frames)  # check the options now
        self.short_side, self.crop = short_side, crop
        self.flow = OpticalFlow(flow_method) if "flow" in self.streams else None
        self.flow_bound, self.stack = flow_bound, stack
        self.sample_fps, self.sample_stride = sample_fps, sample_stride
        self.sample_frames = sample_frames
        self.keep_partial = keep_partial
        self.n_frames = self.source_frames = self.declared_frames = 0
        self.fps = float("nan")
        self.partial = False
        self.timings = {"decode": 0.0, "flow": 0.0, "resize": 0.0}

    def _decoded(self, frames):
        """``(seconds, frame)`` of every decoded frame, with the decoding time counted."""
        decoded = frames.timed()
        while True:
            start = time.perf_counter()
            try:
                item = next(decoded)
            except StopIteration:
                return
            finally:
                self.timings["decode"] += time.perf_counter() - start
            yield item

    def __iter__(self):
        counted = None
        if self.sample_frames is not None:  # the first pass: T, by decoding
            counted = sum(
                1 for _ in self._decoded(VideoFrames(self.path, keep_partial=self.keep_partial))
            )
        frames = VideoFrames(self.path, keep_partial=self.keep_partial)
        sampler = FrameSampler(self.sample_fps, self.sample_stride, self.sample_frames, counted)
        stacker = FlowStacker(self.stack)
        clock = time.perf_counter
        size = prev = held = None
        self.n_frames = self.source_frames = 0
        for seconds, frame in self._decoded(frames):
            if sampler.needs_times and not np.isfinite(seconds):
                raise VideoError(
                    f"{self.path} has no frame timestamps (a folder of images?): "
                    "sample it by stride instead of by fps"
                )
            start = clock()
            if size is None:
                size = _short_side_size(frame.shape[0], frame.shape[1], self.short_side)
            frame = resize_short_side(frame, self.short_side, size)
            rgb = (
                np.ascontiguousarray(center_crop(frame, self.crop).transpose(2, 0, 1))
                if "rgb" in self.streams
                else None
            )
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if self.flow is not None else None
            self.timings["resize"] += clock() - start
            index = self.source_frames
            self.source_frames += 1
            if held is not None:  # the previous frame's time on screen ends now
                yield from self._keep(held, sampler.repeats(held[0], held[1], seconds), stacker)
            if prev is not None and stacker.needs(index - 1):
                yield from (("flow", s) for s in stacker.push(index - 1, self._flow(prev, grey)))
            held, prev = (index, seconds, rgb), grey
        self.fps = frames.fps
        self.declared_frames, self.partial = frames.declared_frames, frames.partial
        if counted is not None and counted != self.source_frames:
            raise VideoError(
                f"{self.path} decoded {counted} frames, then {self.source_frames}: "
                "cannot sample a number of frames from it"
            )
        if held is None:
            return
        step = 1.0 / self.fps if np.isfinite(self.fps) and self.fps > 0 else 0.0
        yield from self._keep(held, sampler.repeats(held[0], held[1], held[1] + step), stacker)
        if self.flow is not None:
            crop_shape = center_crop(prev, self.crop).shape
            yield from (("flow", s) for s in stacker.finish(self.source_frames, crop_shape))

    def _keep(self, held, repeats, stacker):
        index, _, rgb = held
        if self.flow is not None:
            stacker.keep(index, repeats)
        self.n_frames += repeats
        if rgb is not None:
            yield from [("rgb", rgb)] * repeats

    def _flow(self, prev, grey):
        start = time.perf_counter()
        flow = self.flow(prev, grey)
        middle = time.perf_counter()
        quantised = flow_to_uint8(center_crop(flow, self.crop), self.flow_bound)
        stacked = np.ascontiguousarray(quantised.transpose(2, 0, 1))
        self.timings["flow"] += middle - start
        self.timings["resize"] += time.perf_counter() - middle
        return stacked
