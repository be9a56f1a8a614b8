"""Extraction: videos become frames, frames become per-frame network features.

- :mod:`~mkl_tp.extraction.frames`: decoding (PyAV for video files, OpenCV for folders of
  images), frame timing, truncation and sampling (:class:`FrameSampler`);
- :mod:`~mkl_tp.extraction.flow`: optical flow, its 0..255 encoding and the 20-channel
  stacks of the motion stream;
- :mod:`~mkl_tp.extraction.inputs`: resizing, centre crops and :class:`NetworkInputs`,
  the per-frame network inputs of one video;
- :mod:`~mkl_tp.extraction.backbone`: the appearance and motion networks (any
  torchvision classification model) and
  their weights;
- :mod:`~mkl_tp.extraction.run`: :func:`extract_features`, the run behind
  ``python -m mkl_tp.extract`` (its decoding workers are ``_workers``).

torch, torchvision, OpenCV and PyAV (the ``extract`` extra) are imported when a run
starts, not with this package, so the command line answers ``--help`` at once.
"""

from .._utils.lazy import lazy_attributes
from . import run
from .run import *  # noqa: F403 (run.__all__)

# Names of the modules that need OpenCV or PyAV, imported on first access (PEP 562) so that
# importing the package (and ``extract --help``) does not load them.
_LAZY = {
    **dict.fromkeys(
        [
            "FLOW_METHODS",
            "FLOW_STACK",
            "ZERO_FLOW",
            "OpticalFlow",
            "flow_stack_indices",
            "flow_to_uint8",
        ],
        "flow",
    ),
    **dict.fromkeys(
        ["FrameSampler", "VideoError", "VideoFrames", "sample_frame_indices"], "frames"
    ),
    **dict.fromkeys(["NetworkInputs", "center_crop", "resize_short_side"], "inputs"),
}

__all__ = run.__all__ + list(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
