"""Videos to network inputs: decoding, frame timing and sampling, resizing, optical flow.

Every frame is decoded (PyAV for video files, OpenCV for folders of images) and
resized so that its shorter side is ``short_side``; the appearance input is the
centre ``crop`` of each frame. The motion input of frame t is a stack of 10 optical
flows (x and y interleaved, 20 channels) computed on the resized grey frames and
centre-cropped the same way.

Sampling (:class:`FrameSampler`) keeps every frame, every k-th frame (``sample_stride``),
or the frames on screen at the times ``t0 + k / sample_fps`` (``sample_fps``, read from
the decoded frames' timestamps, so variable frame rates are resampled correctly). Only
the kept frames become inputs; the motion input of a kept frame is still the stack of the
flows between consecutive *decoded* frames from it on, so flow magnitudes do not depend on
the sampling, and flow is computed only where some kept frame's stack needs it.

A video whose decoded frames fall short of what its container declares (frame count, or
duration) is truncated: :class:`VideoFrames` raises :class:`VideoError` after its last
frame, unless ``keep_partial`` is set (then ``partial`` is True).

Flow is clipped to ``[-bound, bound]`` pixels (default 20, at the resized scale) and
mapped linearly to 0..255: ``u8 = round((f + bound) * 255 / (2 * bound))``, so zero
motion is 128. Flow ``f_j`` goes from frame j to frame j + 1 (T - 1 flows for T
frames). The stack of frame t holds ``f_{min(t + k, T - 2)}`` for k = 0..9: it looks
forward from t, and the last frames repeat the final flow (end padding), so there is
one motion input per frame and both streams have the same T. A one-frame video has
no flow; its stack is all 128 (zero motion).

Finding videos under a folder and reading list files is :mod:`mkl_tp.sources`'s job;
:func:`find_videos`, :func:`read_list` and :func:`select_listed` are re-exported here.

The package's modules: ``_frames`` (decoding, frame timing, truncation, sampling), ``_flow``
(optical flow, its encoding and stacks), ``_inputs`` (geometry and :class:`NetworkInputs`);
import their public names from here.
"""

from ..sources import find_videos, read_list, select_listed
from ._flow import FLOW_METHODS, FLOW_STACK, ZERO_FLOW, OpticalFlow, flow_stack_indices, flow_to_uint8  # noqa: F401 (FLOW_STACK, ZERO_FLOW: public, not in __all__)
from ._frames import FrameSampler, VideoError, VideoFrames, sample_frame_indices
from ._inputs import NetworkInputs, center_crop, resize_short_side

__all__ = [
    "FLOW_METHODS",
    "FrameSampler",
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
    "sample_frame_indices",
    "select_listed",
]
