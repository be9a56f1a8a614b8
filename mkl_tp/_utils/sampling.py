"""Class-stratified subsets and cross-validation folds of training videos; evenly spaced
frames of one video."""

import numpy as np

__all__ = ["evenly_spaced", "stratified_folds", "stratified_subset"]


def evenly_spaced(length, count):
    """Indices of ``count`` frames of a video of ``length``, one per equal segment.

    The video is cut into ``count`` equal segments and the frame at each segment's centre is
    kept (``floor((k + 1/2) * length / count)``, in integers: no rounding), so each kept
    frame stands for the same share of the video, as each pyramid node does. With
    ``count >= length`` every frame is kept, once: frames are never repeated. The indices
    are increasing and distinct.
    """
    if count >= length:
        return np.arange(length)
    return (2 * np.arange(count) + 1) * length // (2 * count)


def stratified_subset(y_index, size):
    """Indices of about ``size`` videos, the same fraction of each class, evenly spaced."""
    keep = []
    for c in np.unique(y_index):
        members = np.flatnonzero(y_index == c)
        count = max(2, int(round(members.size * size / y_index.size)))
        keep.append(
            members[np.linspace(0, members.size - 1, min(count, members.size)).round().astype(int)]
        )
    return np.sort(np.concatenate(keep))


def stratified_folds(y_index, n_folds=3, random_state=None):
    """The package's one cross-validation convention: ``(train, test)`` index pairs.

    ``StratifiedKFold`` with ``min(n_folds, smallest class)`` folds, shuffled by
    ``random_state`` when one is given and in the videos' order otherwise (as scikit-learn's
    ``cv=int``), so every fit without a seed is deterministic. Returns no folds when some
    class has fewer than two videos (none can be held out).
    """
    from sklearn.model_selection import StratifiedKFold

    y_index = np.asarray(y_index)
    n_folds = min(n_folds, int(np.unique(y_index, return_counts=True)[1].min()))
    if n_folds < 2:
        return []
    splitter = StratifiedKFold(n_folds, shuffle=random_state is not None, random_state=random_state)
    return list(splitter.split(np.zeros(len(y_index)), y_index))
