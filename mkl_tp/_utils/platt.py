"""Platt's sigmoids: one-vs-rest decision scores into class probabilities.

Each task's sigmoid ``1 / (1 + exp(A f + B))`` is fitted by scikit-learn's calibration
(``CalibratedClassifierCV(method="sigmoid")``'s fit) on out-of-fold decisions; only the two
numbers per task are kept, so a ``.skops`` model holds allow-listed types alone.
"""

import numpy as np
from scipy.special import expit

__all__ = ["fit_sigmoids", "sigmoid_proba"]


def fit_sigmoids(scores, y_index, n_classes):
    """``(A, B)``, each of shape (n_tasks,): the sigmoid of every one-vs-rest task.

    ``scores`` is ``(n_videos, n_tasks)``, one column for two classes (positive favours
    class 1), ``n_classes`` columns otherwise; ``y_index`` the class indices.
    """
    from sklearn.calibration import _SigmoidCalibration

    if n_classes == 2:
        targets = (np.asarray(y_index) == 1).astype(int)[:, None]
    else:
        targets = (np.asarray(y_index)[:, None] == np.arange(n_classes)).astype(int)
    sigmoids = [
        _SigmoidCalibration().fit(scores[:, task], targets[:, task])
        for task in range(scores.shape[1])
    ]
    return np.array([float(s.a_) for s in sigmoids]), np.array([float(s.b_) for s in sigmoids])


def sigmoid_proba(scores, A, B, n_classes):
    """Class probabilities ``(n_videos, n_classes)`` from the tasks' decisions.

    For two classes the one sigmoid is class 1's probability (class 0 gets the rest); for
    more, the sigmoids are divided by their sum (as ``CalibratedClassifierCV``), the uniform
    distribution where every sigmoid is 0.
    """
    proba = expit(-(scores.reshape(scores.shape[0], -1) * A + B))
    if n_classes == 2:
        return np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
    total = proba.sum(axis=1, keepdims=True)
    return np.divide(proba, total, out=np.full_like(proba, 1 / n_classes), where=total > 0)
