"""Decoding with frame timing, truncation checks, and frame sampling.

Part of :mod:`mkl_tp.extraction`, which re-exports the public names; import them from there.
"""

import logging
import os
from fractions import Fraction

import cv2
import numpy as np

from .._utils.sampling import evenly_spaced
from ..sources.walk import IMAGE_EXTENSIONS, natural_key, why_not_regular

logger = logging.getLogger(__name__)

# A container's frame count may be off by a frame (edit lists, packed B-frames) or by 1 %;
# a cut file loses more. Durations may differ by the last frames' durations.
_FRAME_SLACK, _DURATION_FRAMES, _RELATIVE_SLACK = 1, 2, 0.01
# Seconds: timestamps are rounded to their time base, so a sampling time this close to the
# next frame's start belongs to the next frame.
_TIME_EPS = 1e-6


class VideoError(Exception):
    """A video (or frame folder) that cannot be turned into frames; names the file."""


# -- decoding -----------------------------------------------------------------------
def _image_files(folder):
    """The frames of an image folder in natural order: regular files named like images.

    Anything else named like an image (a FIFO, socket, device, sub-folder or broken link)
    is skipped with a warning naming it, never opened: reading a FIFO waits forever.
    """
    names = [n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    files = []
    for name in sorted(names, key=natural_key):
        path = os.path.join(folder, name)
        reason = why_not_regular(path)  # follows links: a link to an image is one
        if reason is None:
            files.append(path)
        else:
            logger.warning("%s: skipped %s: %s", folder, name, reason)
    return files


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
    keep_partial : bool, default False
        Accept a truncated video (fewer frames, or a shorter span, than its container
        declares) instead of raising :class:`VideoError` after its last frame.

    Attributes
    ----------
    fps : float
        Frame rate from the container (NaN for image folders or when unknown);
        known once iteration has started.
    declared_frames : int
        Frame count the container claims (0 when it does not say).
    declared_duration : float
        Duration in seconds the container claims for the video (NaN when it does not).
    decoded_frames : int
        Frames decoded; known after iteration.
    partial : bool
        After iteration: the video is truncated and ``keep_partial`` kept it.

    Raises
    ------
    VideoError
        When opening or decoding fails (the message names the file), when no
        frame at all can be decoded, or when the video is truncated.
    """

    def __init__(self, path, *, keep_partial=False):
        self.path = os.fspath(path)
        self.keep_partial = keep_partial
        self.fps = float("nan")
        self.declared_frames = 0
        self.declared_duration = float("nan")
        self.decoded_frames = 0
        self.partial = False

    def __iter__(self):
        return (frame for _, frame in self.timed())

    def timed(self):
        """Iterate ``(seconds, frame)``: each frame with its presentation time.

        Image folders have no timestamps: their times are NaN.
        """
        self.decoded_frames = 0
        self.partial = False
        source = self._images() if os.path.isdir(self.path) else self._decode()
        for item in source:
            self.decoded_frames += 1
            yield item
        if self.decoded_frames == 0:
            raise VideoError(f"{self.path}: no frames could be decoded (empty video)")

    def _images(self):
        files = _image_files(self.path)
        self.declared_frames = len(files)
        first = None
        for name in files:
            image = cv2.imread(name, cv2.IMREAD_COLOR)
            if image is None:
                raise VideoError(f"cannot read image {name}")
            # Every frame is resized like the first: one of another size would be stretched.
            size = image.shape[:2]
            if first is None:
                first = (os.path.basename(name), size)
            elif size != first[1]:
                raise VideoError(
                    f"frame folder {self.path} holds frames of mixed sizes: {first[0]} is "
                    f"{first[1][1]}x{first[1][0]}, {os.path.basename(name)} is "
                    f"{size[1]}x{size[0]} (width x height); give all its frames one size"
                )
            yield float("nan"), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

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
            self.declared_duration = _declared_duration(container, stream)
            index, first, last = 0, None, None
            try:
                for frame in container.decode(stream):
                    seconds = float(frame.time) if frame.time is not None else index / self.fps
                    first = seconds if first is None else first
                    last = seconds
                    yield seconds, frame.to_ndarray(format="rgb24")
                    index += 1
            except (av.FFmpegError, OSError, ValueError) as exc:
                raise VideoError(
                    f"cannot decode {self.path} after {index} frames: {_reason(exc)}"
                ) from None
            self._check_complete(index, first, last)

    def _check_complete(self, decoded, first, last):
        """Raise (or, with ``keep_partial``, record) a shortfall against the container."""
        declared, duration = self.declared_frames, self.declared_duration
        shortfall = None
        if declared and declared - decoded > max(_FRAME_SLACK, _RELATIVE_SLACK * declared):
            shortfall = f"decoded {decoded} of the {declared} frames its container declares"
        elif not declared and np.isfinite(duration) and np.isfinite(self.fps) and first is not None:
            covered = last - first + 1.0 / self.fps
            if duration - covered > max(_DURATION_FRAMES / self.fps, _RELATIVE_SLACK * duration):
                shortfall = (
                    f"its {decoded} decoded frames cover {covered:.2f} s of the "
                    f"{duration:.2f} s its container declares"
                )
        elif declared and decoded != declared:
            logger.info("%s: decoded %d frames, container says %d", self.path, decoded, declared)
        if shortfall is None:
            return
        if not self.keep_partial:
            raise VideoError(
                f"{self.path} is truncated: {shortfall} (--keep-partial keeps the decoded frames)"
            )
        self.partial = True
        logger.warning("%s is truncated: %s; keeping them (partial=True)", self.path, shortfall)


def _declared_duration(container, stream):
    """Seconds the container declares for the video stream (NaN when unknown).

    The stream's own duration when given; else the container's, which covers the video
    only when there is no other stream (an audio track may outlast the video).
    """
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / 1e6  # av.time_base: microseconds
    return float("nan")


# -- sampling -------------------------------------------------------------------------
class FrameSampler:
    """Decide, frame by frame, how many times each decoded frame is kept.

    Parameters
    ----------
    fps : float, optional
        Keep the frame on screen at each time ``t0 + k / fps``, k = 0, 1, ..., where
        ``t0`` is the first frame's timestamp (a frame is on screen from its timestamp
        to the next frame's). Above the video's own rate some frames are kept twice,
        as ffmpeg's ``fps`` filter duplicates them.
    stride : int, optional
        Keep frames 0, k, 2k, ... (by decoding order).
    frames : int, optional
        Keep ``frames`` frames evenly spaced over the video: the frame at the centre of each
        of ``frames`` equal segments (``floor((k + 1/2) T / frames)``, the rule of
        :func:`mkl_tp.pyramid.sample_frames` and of ``fit --train-frames``), so
        ``source_frames`` (T, the decoded count) must be given. A video of T <= ``frames``
        frames keeps all T, none repeated.
    source_frames : int, optional
        T, with ``frames``.

    At most one of ``fps``, ``stride`` and ``frames``; none keeps every frame.

    Raises
    ------
    ValueError
        Several given, or a non-positive (or non-finite) value.
    """

    def __init__(self, fps=None, stride=None, frames=None, source_frames=None):
        given = [
            n for n, v in (("fps", fps), ("stride", stride), ("frames", frames)) if v is not None
        ]
        if len(given) > 1:
            raise ValueError(f"sample by {' or by '.join(given)}, not both")
        if fps is not None and not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"sampling fps must be a positive number, got {fps!r}")
        if stride is not None and (int(stride) != stride or stride < 1):
            raise ValueError(f"sampling stride must be a positive integer, got {stride!r}")
        if frames is not None and (int(frames) != frames or frames < 1):
            raise ValueError(
                f"number of frames to sample must be a positive integer, got {frames!r}"
            )
        self.fps = None if fps is None else float(fps)
        self.stride = None if stride is None else int(stride)
        self.frames = None if frames is None else int(frames)
        self._chosen = (
            None
            if frames is None or source_frames is None
            else set(evenly_spaced(source_frames, self.frames).tolist())
        )
        self._origin = None
        self._next = 0

    @property
    def needs_times(self):
        """Whether :meth:`repeats` reads the frames' times."""
        return self.fps is not None

    def repeats(self, index, start, end):
        """How many times frame ``index``, on screen during ``[start, end)`` s, is kept.

        Frames must be passed in order, each once.
        """
        if self.stride is not None:
            return int(index % self.stride == 0)
        if self.frames is not None:
            if self._chosen is None:
                raise ValueError("sampling a number of frames needs the video's frame count")
            return int(index in self._chosen)
        if self.fps is None:
            return 1
        if self._origin is None:
            self._origin = start
        count = 0
        while self._origin + self._next / self.fps < end - _TIME_EPS:
            self._next += 1
            count += 1
        return count


def sample_frame_indices(times, end=None, *, fps=None, stride=None, frames=None):
    """Indices of the frames :class:`FrameSampler` keeps, repeated as it repeats them.

    Parameters
    ----------
    times : sequence of float
        Presentation time of every decoded frame, in order (seconds).
    end : float, optional
        When the last frame leaves the screen (default: one mean frame interval after it).
    fps, stride, frames
        As :class:`FrameSampler` (``frames`` spreads over ``len(times)``).

    Returns
    -------
    list of int
    """
    times = [float(t) for t in times]
    if end is None:
        end = times[-1] + ((times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1.0)
    sampler = FrameSampler(fps, stride, frames, len(times))
    bounds = times[1:] + [end]
    return [
        i
        for i, (start, stop) in enumerate(zip(times, bounds))
        for _ in range(sampler.repeats(i, start, stop))
    ]
