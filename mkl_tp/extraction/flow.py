"""Optical flow: OpenCV's methods, the 0..255 encoding and the stacks of kept frames.

Part of :mod:`mkl_tp.extraction`, which re-exports the public names; import them from there.
"""

from collections import deque

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback", "tvl1")
FLOW_STACK = 10
ZERO_FLOW = 128


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
            raise ValueError(
                f"unknown flow method {method!r}; choose one of {', '.join(FLOW_METHODS)}"
            )
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


class FlowStacker:
    """Turn flows f_j (frame j to j + 1) into the stacks of the kept frames, as they arrive.

    The stack of kept frame i holds ``f_min(i + k, T - 2)``, k = 0..stack-1; flows that no
    kept frame's stack reaches are never asked for (:meth:`needs`), and flows are dropped
    once no pending or future stack can use them.
    """

    def __init__(self, stack):
        self.stack = stack
        self.flows = {}
        self.pending = deque()  # (kept frame index, repeats) waiting for their flows
        self.last_kept = None

    def keep(self, index, repeats):
        """Frame ``index`` is kept ``repeats`` times (known before its flow is pushed)."""
        if repeats:
            self.last_kept = index
            self.pending.append((index, repeats))

    def needs(self, j):
        """Whether some kept frame's stack holds flow ``j``."""
        return self.last_kept is not None and j - self.last_kept < self.stack

    def push(self, j, flow):
        """Add flow ``j``; yield the stacks that are now complete."""
        self.flows[j] = flow
        while self.pending and self.pending[0][0] + self.stack - 1 <= j:
            index, repeats = self.pending.popleft()
            yield from [self._stack(index, j)] * repeats
        oldest = self.pending[0][0] if self.pending else j + 1
        for old in [k for k in self.flows if k < oldest]:
            del self.flows[old]

    def finish(self, n_frames, shape):
        """Stacks of the remaining kept frames, padded with the final flow ``f_{T-2}``."""
        while self.pending:
            index, repeats = self.pending.popleft()
            if n_frames < 2:
                stack = np.full((2 * self.stack,) + shape, ZERO_FLOW, np.uint8)
            else:
                stack = self._stack(index, n_frames - 2)
            yield from [stack] * repeats

    def _stack(self, index, last):
        return np.concatenate([self.flows[min(index + k, last)] for k in range(self.stack)], axis=0)
