"""Where Eq. 2 cannot separate the classes, the cross kernel's fit says so.

Eq. 2 averages the nodes of a level with their weights: with even weights within a level it
is blind to the order of the nodes, so two classes made of the same two halves in opposite
order look alike to it, while the linear kernel (the nodes concatenated) tells them apart.
"""

import warnings

import numpy as np
import pytest

from mkl_tp import PyramidMKLClassifier
from mkl_tp.experiment.cells import _cross_gap


def halves(n=40, d=3, seed=0, ordered=True):
    """Videos of two halves, ``a`` then ``b`` (class 0) or ``b`` then ``a`` (class 1); with
    ``ordered=False`` class 1 is ``b`` then ``b`` instead (its mean differs)."""
    rng = np.random.default_rng(seed)
    a, b = np.eye(d)[0], np.eye(d)[1]
    X, y = [], np.arange(n) % 2
    for label in y:
        first, second = (a, b) if label == 0 else ((b, a) if ordered else (b, b))
        x = np.vstack([np.tile(first, (6, 1)), np.tile(second, (6, 1))])
        X.append(x + 0.3 * rng.normal(size=x.shape))
    return X, y


def test_cross_warns_when_the_linear_kernel_separates_what_eq2_cannot():
    X, y = halves()
    clf = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel="cv", random_state=0)
    with pytest.warns(
        UserWarning, match=r"kernel='cross' scored 0\.\d+ .* against 1\.000 .*Eq\. 2"
    ):
        clf.fit(X, y)
    assert clf.linear_kernel_better_ is True
    assert clf.linear_kernel_score_ == 1.0
    assert max(clf.base_kernel_scores_.values()) < 0.75  # near chance for every base kernel


def test_no_warning_where_the_classes_differ_in_their_mean():
    X, y = halves(ordered=False)
    clf = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel="cv", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X, y)
    assert clf.linear_kernel_better_ is False
    assert PyramidMKLClassifier(levels=2, kernel="cross").fit(X, y).linear_kernel_better_ is None


def _columns(cross, linear, n):
    return {
        "cross": {"selection": {"cv_accuracy": cross, "n_videos": n}},
        "linear": {"selection": {"candidates": {"inf": linear, "2": 0.1}, "chosen": "inf"}},
    }


@pytest.mark.parametrize("n", [10, 40, 200])
def test_the_report_line_needs_a_gap_of_two_standard_errors(n):
    for cross, linear in ((0.5, 0.9), (0.8, 0.85), (0.3, 0.55), (0.9, 0.5)):
        # brute force: the two accuracies' binomial variances on n videos, summed
        bound = 2 * np.sqrt((cross * (1 - cross) + linear * (1 - linear)) / n)
        line = _cross_gap(_columns(cross, linear, n))
        assert bool(line) == (linear - cross > bound), (cross, linear, n)
        if line:
            assert f"{100 * cross:.1f} against {100 * linear:.1f}" in line
    assert _cross_gap({"cross": {"selection": {"C": {}}}}) == ""  # no C search: nothing said
