"""Several streams as a list of per-video mappings: the form scikit-learn can index.

``[{"acc": (T_i, 3) array, "gyr": (T_i', 4) array}, ...]`` must fit, predict and score like
the mapping ``{"acc": [...], "gyr": [...]}`` in every estimator, and so go through
``cross_val_score``, ``GridSearchCV`` and ``CalibratedClassifierCV`` (which index X by rows:
a mapping has as many "rows" as streams).
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV, _sigmoid_calibration
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from mkl_tp import LateFusionClassifier, PyramidMKLClassifier
from mkl_tp.pyramid.inputs import validate_streams


def two_streams(n=36, n_classes=3, seed=0):
    """``(mapping, per_video, y)``: 'acc' (d=3) and, more weakly, 'gyr' (d=4) carry the
    class, not so well that every fold scores 1; the two streams of one video have
    different frame counts."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    acc = [rng.normal(size=(rng.integers(6, 13), 3)) + 0.4 * np.eye(3)[k % 3] for k in y]
    gyr = [rng.normal(size=(rng.integers(4, 10), 4)) + 0.2 * np.eye(4)[k % 4] for k in y]
    mapping = {"acc": acc, "gyr": gyr}
    per_video = [{"acc": a, "gyr": g} for a, g in zip(acc, gyr)]
    return mapping, per_video, np.array(["a", "b", "c"])[y]


def mkl():
    """Learned node weights away from uniform (``mkl_norm=1``), so equal betas say much."""
    return PyramidMKLClassifier(levels=2, mkl_norm=1.0)


def rows(mapping, index):
    """The videos ``index`` of a mapping of streams, as a mapping."""
    return {name: [seqs[i] for i in index] for name, seqs in mapping.items()}


def test_validate_streams_turns_per_video_mappings_into_the_mapping():
    mapping, per_video, _ = two_streams(n=6)
    for X in (per_video, tuple(per_video), np.array(per_video, dtype=object)):
        names, data = validate_streams(X)
        assert names == ["acc", "gyr"]
        for name in names:
            assert len(data[name]) == 6
            for got, want in zip(data[name], mapping[name]):
                np.testing.assert_array_equal(got, want)
    # At predict time the names are those seen at fit time, whatever a video's key order.
    swapped = [{"gyr": v["gyr"], "acc": v["acc"]} for v in per_video]
    names, _ = validate_streams(swapped, streams=["acc", "gyr"], n_features={"acc": 3, "gyr": 4})
    assert names == ["acc", "gyr"]


def test_pyramid_mkl_fits_per_video_mappings_as_the_mapping():
    mapping, per_video, y = two_streams()
    test_mapping, test_per_video, y_test = two_streams(seed=1)
    by_stream = mkl().fit(mapping, y)
    by_video = mkl().fit(per_video, y)
    assert by_video.streams_ == by_stream.streams_ == ["acc", "gyr"]
    assert by_video.n_features_per_stream_ == {"acc": 3, "gyr": 4}
    np.testing.assert_array_equal(by_video.beta_, by_stream.beta_)
    expected = by_stream.decision_function(test_mapping)
    # Either form at predict time, whichever form the model was fitted on.
    for model in (by_stream, by_video):
        for X in (test_mapping, test_per_video, np.array(test_per_video, dtype=object)):
            np.testing.assert_array_equal(model.decision_function(X), expected)
        assert model.score(test_per_video, y_test) == by_stream.score(test_mapping, y_test)
    np.testing.assert_array_equal(by_video.predict(test_per_video), by_stream.predict(test_mapping))


def test_late_fusion_fits_per_video_mappings_as_the_mapping():
    mapping, per_video, y = two_streams()
    test_mapping, test_per_video, y_test = two_streams(seed=1)
    base = mkl()
    by_stream = LateFusionClassifier(base, cv=2, random_state=0).fit(mapping, y)
    by_video = LateFusionClassifier(base, cv=2, random_state=0).fit(per_video, y)
    assert by_video.streams_ == ["acc", "gyr"]
    np.testing.assert_array_equal(by_video.stream_weights_, by_stream.stream_weights_)
    np.testing.assert_array_equal(by_video.score_scales_, by_stream.score_scales_)
    for name in by_stream.streams_:
        np.testing.assert_array_equal(
            by_video.estimators_[name].beta_, by_stream.estimators_[name].beta_
        )
    expected = by_stream.decision_function(test_mapping)
    np.testing.assert_array_equal(by_video.decision_function(test_per_video), expected)
    np.testing.assert_array_equal(by_stream.decision_function(test_per_video), expected)
    assert by_video.score(test_per_video, y_test) == by_stream.score(test_mapping, y_test)


def test_deep_classifier_fits_per_video_mappings_as_the_mapping(request):
    pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")
    request.getfixturevalue("one_torch_thread")
    from mkl_tp.deep import DeepPyramidClassifier

    mapping, per_video, y = two_streams(n=24)
    test_mapping, test_per_video, _ = two_streams(n=12, seed=1)
    params = dict(
        levels=2,
        node_dim=4,
        hidden=4,
        epochs=3,
        batch_size=8,
        early_stopping=False,
        device="cpu",
        random_state=0,
    )
    by_stream = DeepPyramidClassifier(**params).fit(mapping, y)
    by_video = DeepPyramidClassifier(**params).fit(per_video, y)
    assert by_video.streams_ == ["acc", "gyr"]
    np.testing.assert_array_equal(by_video.beta_, by_stream.beta_)
    np.testing.assert_array_equal(by_video.stream_weights_, by_stream.stream_weights_)
    expected = by_stream.decision_function(test_mapping)
    np.testing.assert_array_equal(by_video.decision_function(test_per_video), expected)
    np.testing.assert_array_equal(
        by_video.predict_proba(test_per_video), by_stream.predict_proba(test_mapping)
    )


def hand_cv_scores(estimator, mapping, y, n_splits):
    """Accuracy of every StratifiedKFold fold, fitting on the mapping form."""
    scores = []
    for train, test in StratifiedKFold(n_splits).split(np.zeros(len(y)), y):
        model = clone(estimator).fit(rows(mapping, train), y[train])
        scores.append(model.score(rows(mapping, test), y[test]))
    return np.array(scores)


def test_cross_val_score_on_per_video_mappings_matches_a_hand_loop():
    mapping, per_video, y = two_streams()
    model = mkl()
    scores = cross_val_score(model, per_video, y, cv=4, error_score="raise")
    np.testing.assert_array_equal(scores, hand_cv_scores(model, mapping, y, 4))


def test_late_fusion_can_be_cross_validated():
    mapping, per_video, y = two_streams(n=30)
    model = LateFusionClassifier(mkl(), cv=2, random_state=0)
    scores = cross_val_score(model, per_video, y, cv=3, error_score="raise")
    np.testing.assert_array_equal(scores, hand_cv_scores(model, mapping, y, 3))


def test_grid_search_over_C_on_per_video_mappings_matches_a_hand_loop():
    mapping, per_video, y = two_streams()
    grid = [0.01, 10.0]
    search = GridSearchCV(mkl(), {"C": grid}, cv=3, error_score="raise").fit(per_video, y)
    by_hand = np.array([hand_cv_scores(mkl().set_params(C=C), mapping, y, 3) for C in grid])
    for k in range(3):
        np.testing.assert_array_equal(search.cv_results_[f"split{k}_test_score"], by_hand[:, k])
    best = grid[int(np.argmax(by_hand.mean(axis=1)))]
    assert search.best_params_ == {"C": best}
    refit = mkl().set_params(C=best).fit(mapping, y)
    np.testing.assert_array_equal(search.best_estimator_.beta_, refit.beta_)
    test_mapping, test_per_video, y_test = two_streams(seed=1)
    assert search.score(test_per_video, y_test) == refit.score(test_mapping, y_test)


def test_sigmoid_calibration_on_per_video_mappings_matches_a_hand_loop():
    mapping, per_video, y = two_streams(n_classes=2)
    test_mapping, test_per_video, _ = two_streams(n=12, n_classes=2, seed=1)
    model = mkl()
    calibrated = CalibratedClassifierCV(model, method="sigmoid", cv=3).fit(per_video, y)
    # Platt scaling of every fold's held-out decisions, probabilities averaged over folds.
    positive = np.zeros(12)
    folds = list(StratifiedKFold(3).split(np.zeros(len(y)), y))
    for (train, test), fitted in zip(folds, calibrated.calibrated_classifiers_):
        fold_model = clone(model).fit(rows(mapping, train), y[train])
        np.testing.assert_array_equal(fitted.estimator.beta_, fold_model.beta_)
        a, b = _sigmoid_calibration(
            fold_model.decision_function(rows(mapping, test)), y[test] == "b"
        )
        positive += 1.0 / (1.0 + np.exp(a * fold_model.decision_function(test_mapping) + b))
    positive /= len(folds)
    np.testing.assert_allclose(
        calibrated.predict_proba(test_per_video), np.column_stack([1 - positive, positive])
    )


@pytest.fixture(scope="module")
def fitted_on_streams():
    mapping, per_video, y = two_streams(n=12)
    return mkl().fit(per_video, y), per_video


def test_per_video_errors_name_the_video_and_the_fault():
    _, per_video, _ = two_streams(n=6)
    acc, gyr = per_video[3]["acc"], per_video[3]["gyr"]
    cases = [
        (
            per_video[:3] + [{"acc": acc}] + per_video[4:],
            "video 3 lacks stream 'gyr': expected streams \\['acc', 'gyr'\\] as in video 0",
        ),
        (
            per_video[:3] + [{"acc": acc, "gyr": gyr, "mag": gyr}] + per_video[4:],
            "video 3 has unexpected stream 'mag': expected streams",
        ),
        (
            per_video[:3] + [{"acc": acc, "gyr": gyr[:, :2]}] + per_video[4:],
            "video 3 of stream 'gyr' has d=2 features, expected d=4 as in video 0",
        ),
        (
            per_video[:3] + [acc] + per_video[4:],
            "video 3 is not a mapping stream name -> \\(T, d\\) array \\(got ndarray\\)",
        ),
        ([acc] + per_video[1:], "video 0 is not a mapping"),
        (
            per_video[:3] + [{"acc": acc, "gyr": gyr[:0]}] + per_video[4:],
            "video 3 of stream 'gyr' is empty",
        ),
        ([{}] + per_video[1:], "video 0 has no streams"),
    ]
    for X, message in cases:
        with pytest.raises(ValueError, match=message):
            validate_streams(X)
        with pytest.raises(ValueError, match=message):
            validate_streams(np.array(X, dtype=object))


def test_per_video_errors_at_predict_time_name_the_video(fitted_on_streams):
    model, per_video = fitted_on_streams
    acc, gyr = per_video[2]["acc"], per_video[2]["gyr"]
    with pytest.raises(ValueError, match="video 2 lacks stream 'gyr': .* as at fit time"):
        model.predict(per_video[:2] + [{"acc": acc}])
    with pytest.raises(ValueError, match="video 2 has unexpected stream 'mag'"):
        model.decision_function(per_video[:2] + [{"acc": acc, "gyr": gyr, "mag": gyr}])
    with pytest.raises(ValueError, match="video 2 of stream 'gyr' has d=3 .* at fit time"):
        model.predict(per_video[:2] + [{"acc": acc, "gyr": gyr[:, :3]}])
    with pytest.raises(ValueError, match="fitted on streams .* list of per-video mappings"):
        model.predict([v["acc"] for v in per_video])


def test_per_video_mappings_for_a_single_stream_model_or_late_fusion_of_a_list():
    mapping, per_video, y = two_streams(n=12)
    single = mkl().fit(mapping["acc"], y)
    with pytest.raises(ValueError, match="plain list .* per-video mappings of streams"):
        single.predict(per_video)
    with pytest.raises(ValueError, match="needs a mapping stream name -> sequences, or a list"):
        LateFusionClassifier().fit(mapping["acc"], y)
