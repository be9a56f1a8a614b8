"""Deterministic class-stratified subsets of training videos."""

import numpy as np

__all__ = ["stratified_subset"]


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
