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
from mkl_tp.experiment.sweep import _chosen


def halves(n=40, d=3, seed=0, ordered=True, noise=0.3):
    """Videos of two halves, ``a`` then ``b`` (class 0) or ``b`` then ``a`` (class 1); with
    ``ordered=False`` class 1 is ``b`` then ``b`` instead (its mean differs)."""
    rng = np.random.default_rng(seed)
    a, b = np.eye(d)[0], np.eye(d)[1]
    X, y = [], np.arange(n) % 2
    for label in y:
        first, second = (a, b) if label == 0 else ((b, a) if ordered else (b, b))
        x = np.vstack([np.tile(first, (6, 1)), np.tile(second, (6, 1))])
        X.append(x + noise * rng.normal(size=x.shape))
    return X, y


@pytest.mark.parametrize("base_kernel", ["cv", "auto"])
def test_cross_warns_when_the_linear_kernel_separates_what_eq2_cannot(base_kernel):
    X, y = halves()
    clf = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel=base_kernel, random_state=0)
    with pytest.warns(
        UserWarning,
        match=r"kernel='cross' scored 0\.\d+ .*fitted weights.* against 1\.000 .*Eq\. 2",
    ):
        clf.fit(X, y)
    assert clf.linear_kernel_better_ is True
    assert clf.linear_kernel_score_ == 1.0
    # Near chance even with the weights fitted on every video (optimistic), and on new
    # videos too.
    assert clf.cross_kernel_score_ < 0.75
    assert clf.score(*halves(seed=1)) < 0.75
    if base_kernel == "cv":
        assert max(clf.base_kernel_scores_.values()) < 0.75  # near chance for both
    else:
        assert clf.base_kernel_ == "rbf" and clf.base_kernel_scores_ == {}
    record = _chosen(clf)["linear_kernel_check"]  # what report.json says
    assert record["linear_kernel"] == 1.0 and record["linear_kernel_better"] is True
    assert record["cross_kernel"] == round(clf.cross_kernel_score_, 4)
    assert record["decision"].startswith("kernel='linear' better")


def test_no_warning_where_the_classes_differ_in_their_mean():
    X, y = halves(ordered=False)
    clf = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel="cv", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X, y)
    assert clf.linear_kernel_better_ is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        default = PyramidMKLClassifier(levels=2, kernel="cross", random_state=0).fit(X, y)
    assert default.linear_kernel_better_ is False and default.base_kernel_ == "rbf"
    # A fixed base kernel is not judged.
    fixed = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel="rbf").fit(X, y)
    assert fixed.linear_kernel_better_ is None and fixed.base_kernel_scores_ == {}


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


@pytest.mark.filterwarnings("ignore:kernel='cross' scored")
def test_auto_judges_the_linear_kernel_on_the_judged_videos_alone():
    # More videos than selection_videos: the linear kernel's blocks are built for the
    # judged subset only; its score is that of kernel="linear" with uniform weights fitted
    # fold by fold on those videos through the public estimator.
    from mkl_tp._utils.sampling import stratified_folds, stratified_subset

    X, y = halves(n=60, noise=2.0)
    clf = PyramidMKLClassifier(levels=2, kernel="cross", selection_videos=24, random_state=0)
    clf.fit(X, y)
    judged = stratified_subset(y, 24)
    X_judged, y_judged = [X[i] for i in judged], y[judged]
    right = np.zeros(len(judged), dtype=bool)
    for train, test in stratified_folds(y_judged, 3):
        linear = PyramidMKLClassifier(levels=2, node_weights="uniform").fit(
            [X_judged[i] for i in train], y_judged[train]
        )
        right[test] = linear.predict([X_judged[i] for i in test]) == y_judged[test]
    assert clf.linear_kernel_score_ == right.mean() and 0.5 < right.mean() < 1
    # The model is the rbf one, as fitted by name.
    named = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel="rbf", random_state=0)
    np.testing.assert_allclose(named.fit(X, y).decision_function(X), clf.decision_function(X))


@pytest.mark.filterwarnings("ignore:kernel='cross' scored")
def test_the_check_leaves_the_model_that_of_the_rbf_base_kernel():
    # Run last, it draws no random numbers the model or Platt's folds would have used:
    # the same decisions and probabilities as base_kernel="rbf" from one RandomState.
    X, y = halves(noise=1.0)
    fits = {
        base: PyramidMKLClassifier(
            levels=2,
            kernel="cross",
            base_kernel=base,
            probability=True,
            random_state=np.random.RandomState(0),
        ).fit(X, y)
        for base in ("auto", "rbf")
    }
    assert fits["auto"].linear_kernel_score_ is not None
    assert fits["rbf"].linear_kernel_score_ is None
    np.testing.assert_array_equal(
        fits["auto"].decision_function(X), fits["rbf"].decision_function(X)
    )
    np.testing.assert_array_equal(fits["auto"].probA_, fits["rbf"].probA_)
    np.testing.assert_array_equal(fits["auto"].predict_proba(X), fits["rbf"].predict_proba(X))
