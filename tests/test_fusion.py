"""LateFusionClassifier: per-stream models, fusion weights from held-out folds."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

import mkl_tp
from mkl_tp import LateFusionClassifier, PyramidMKLClassifier


def two_streams(n=48, seed=0):
    """Stream 'good' carries the class; stream 'noise' does not."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    good = [rng.normal(size=(8, 3)) + 2.0 * np.eye(3)[label] for label in y]
    noise = [rng.normal(size=(5, 2)) for _ in y]
    return {"good": good, "noise": noise}, np.array(["a", "b", "c"])[y]


def test_weights_favour_the_informative_stream_and_predictions_follow():
    X, y = two_streams()
    model = LateFusionClassifier(PyramidMKLClassifier(levels=2), random_state=0).fit(X, y)
    assert model.streams_ == ["good", "noise"]
    assert model.stream_weights_.sum() == pytest.approx(1.0)
    assert model.stream_weights_[0] > model.stream_weights_[1]
    X_test, y_test = two_streams(seed=1)
    assert model.score(X_test, y_test) >= 0.9
    assert model.decision_function(X_test).shape == (48, 3)


def test_fused_scores_are_the_weighted_scaled_stream_scores():
    X, y = two_streams()
    model = LateFusionClassifier(PyramidMKLClassifier(levels=1), random_state=0).fit(X, y)
    expected = sum(
        w / r * model.estimators_[s].decision_function(X[s])
        for w, r, s in zip(model.stream_weights_, model.score_scales_, model.streams_)
    )
    np.testing.assert_allclose(model.decision_function(X), expected)
    # a video's scores do not depend on the other videos predicted with it
    single = model.decision_function({s: X[s][:1] for s in X})
    np.testing.assert_allclose(single, expected[:1])


def test_weight_grid_covers_the_simplex():
    grid = LateFusionClassifier(grid_step=0.5)._weight_grid(3)
    assert len(grid) == 6
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)


def test_clone_and_pickle_round_trip():
    X, y = two_streams()
    model = LateFusionClassifier(PyramidMKLClassifier(levels=1), random_state=0).fit(X, y)
    assert clone(model).get_params()["cv"] == 3
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert restored._mkl_tp_version == mkl_tp.__version__


def test_needs_a_mapping():
    X, y = two_streams()
    with pytest.raises(ValueError, match="needs a mapping stream name -> sequences"):
        LateFusionClassifier().fit(X["good"], y)


def test_late_fusion_follows_scikit_learns_conventions():
    from sklearn.exceptions import NotFittedError

    X, y = two_streams()
    with pytest.raises(NotFittedError):
        LateFusionClassifier().predict(X)
    binary = np.isin(y, np.unique(y)[:2])
    Xb = {s: [x for x, keep in zip(X[s], binary) if keep] for s in X}
    model = LateFusionClassifier(PyramidMKLClassifier(levels=1)).fit(Xb, y[binary])
    scores = model.decision_function(Xb)
    assert scores.shape == (int(binary.sum()),)  # one column, as PyramidMKLClassifier's
    expected = model.classes_[(scores > 0).astype(int)]
    np.testing.assert_array_equal(model.predict(Xb), expected)
