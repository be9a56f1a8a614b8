"""A fixed number of frames per video, evenly spaced: the paper's sampling strategies.

Its Table 6 trains and tests on 25, 50, 64, 250 or all frames per video, chosen separately
for training and test videos and for each stream. :func:`sample_frames` does it to frame
features already in memory or in a cache; ``python -m mkl_tp.fit --train-frames N
--test-frames N`` does it in a sweep.
"""

from .._utils.sampling import evenly_spaced

__all__ = ["sample_frames"]


def sample_frames(sequences, count):
    """Keep ``count`` evenly spaced frames of each video.

    Parameters
    ----------
    sequences : sequence of array-like of shape (T_i, d)
    count : int or None
        Frames kept per video: the frame at the centre of each of ``count`` equal segments
        of the video. A video of at most ``count`` frames is kept whole (no frame is
        repeated). ``None`` keeps every frame.

    Returns
    -------
    list of array-like of shape (min(T_i, count), d)
        Views where the input is a NumPy array (slices, no copies).

    Raises
    ------
    ValueError
        ``count`` is not a positive integer.

    Examples
    --------
    >>> import numpy as np
    >>> video = np.arange(10.0)[:, None]  # 10 frames of 1 feature
    >>> sample_frames([video], 4)[0].ravel().tolist()
    [1.0, 3.0, 6.0, 8.0]
    """
    if count is None:
        return list(sequences)
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise ValueError(f"count must be a positive integer (frames per video), got {count!r}")
    return [seq[evenly_spaced(len(seq), int(count))] for seq in sequences]
