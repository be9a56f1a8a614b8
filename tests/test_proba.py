"""probability=True: Platt's sigmoids on out-of-fold decisions, as SVC(probability=True);
python -m mkl_tp.predict --scores.

The reference is scikit-learn's own: CalibratedClassifierCV(method="sigmoid",
ensemble=False) around the probability=False estimator on the same folds, which fits the
sigmoids on cross_val_predict's decisions and predicts with the model refitted on all the
videos (the estimator's own fit, with the same seed). Like SVC's, the most probable class
need not be predict's (the sigmoids are monotone per task but not jointly): nothing here
asks for that agreement.
"""

import csv
import pickle

import numpy as np
import pytest
from _caches import CLASSES, make_cache
from _problems import videos
from scipy.special import expit
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold, cross_val_score

from mkl_tp import PyramidMKLClassifier, predict
from mkl_tp._utils.persist import load_model_file, save_model
from mkl_tp.experiment.inputs import load_stream
from mkl_tp.store import list_videos

SETTINGS = {"levels": 2, "random_state": 0}


def make_videos(n=36, d=4, classes=3, seed=0):
    """``_problems.videos`` with a weaker signal; labels not in sorted order."""
    X, y = videos(n, d, classes, seed, signal=1.0)
    return X, np.array(["walk", "run", "jump", "sit"])[y]


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "three classes"])
def fitted(request):
    X, y = make_videos(classes=request.param)
    X_test, y_test = make_videos(classes=request.param, seed=1)
    clf = PyramidMKLClassifier(probability=True, **SETTINGS).fit(X, y)
    return clf, X, y, X_test, y_test


def test_probabilities_are_calibrated_classifier_cv_on_the_same_folds(fitted):
    clf, X, y, X_test, _ = fitted
    reference = CalibratedClassifierCV(
        PyramidMKLClassifier(**SETTINGS),
        method="sigmoid",
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        ensemble=False,
    ).fit(X, y)
    np.testing.assert_array_equal(reference.classes_, clf.classes_)
    proba = clf.predict_proba(X_test)
    # The same folds, fits and sigmoid fit: equal but for summation order.
    np.testing.assert_allclose(proba, reference.predict_proba(X_test), rtol=0, atol=1e-9)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert proba.shape == (len(X_test), clf.classes_.shape[0])
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(clf.predict_log_proba(X_test), np.log(proba))


def test_columns_follow_classes_and_are_platts_formula(fitted):
    clf, _, _, X_test, y_test = fitted
    proba = clf.predict_proba(X_test)
    assert list(clf.classes_) == sorted(set(y_test))  # sorted, not the labels' order
    for k, label in enumerate(clf.classes_):
        # A class's column is the largest, on average, over the videos of that class.
        assert np.argmax(proba[y_test == label].mean(axis=0)) == k
    scores = clf.decision_function(X_test).reshape(len(X_test), -1)
    sigmoids = 1 / (1 + np.exp(clf.probA_ * scores + clf.probB_))  # SVC's convention
    if clf.classes_.shape[0] == 2:
        assert clf.probA_.shape == (1,)
        np.testing.assert_allclose(proba[:, 1], sigmoids[:, 0])
        np.testing.assert_allclose(proba[:, 0], 1 - sigmoids[:, 0])
    else:
        assert clf.probA_.shape == clf.probB_.shape == (clf.classes_.shape[0],)
        np.testing.assert_allclose(proba, sigmoids / sigmoids.sum(axis=1, keepdims=True))
    assert np.all(clf.probA_ < 0)  # a larger decision, a larger probability


def test_probability_false_has_no_predict_proba():
    X, y = make_videos()
    unfitted = PyramidMKLClassifier(**SETTINGS)
    assert not hasattr(unfitted, "predict_proba") and not hasattr(unfitted, "predict_log_proba")
    clf = clone(unfitted).fit(X, y)
    assert not hasattr(clf, "predict_proba") and not hasattr(clf, "probA_")
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as error:
        clf.predict_proba(X)
    assert "not available when probability=False" in str(error.value.__cause__)
    # Switched on after the fit, as SVC: there, but refusing until fitted again.
    clf.set_params(probability=True)
    assert hasattr(clf, "predict_proba")
    with pytest.raises(NotFittedError, match="fitted with probability=False"):
        clf.predict_proba(X)
    with pytest.raises(NotFittedError):
        PyramidMKLClassifier(probability=True).predict_proba(X)
    # neg_log_loss on it is an error, not a silent nan, when errors are raised.
    with pytest.raises(AttributeError):
        cross_val_score(unfitted, X, y, cv=3, scoring="neg_log_loss", error_score="raise")


@pytest.mark.parametrize("scoring", ["neg_log_loss", "roc_auc_ovr"])
def test_probability_scorers_give_finite_numbers(scoring):
    X, y = make_videos()
    clf = PyramidMKLClassifier(probability=True, **SETTINGS)
    scores = cross_val_score(clf, X, y, cv=3, scoring=scoring, error_score="raise")
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    if scoring == "roc_auc_ovr":
        assert scores.mean() > 0.5


def test_clone_pickle_and_skops_keep_the_probabilities(tmp_path, fitted):
    clf, X, y, X_test, _ = fitted
    proba = clf.predict_proba(X_test)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and copy.probability is True
    np.testing.assert_array_equal(copy.fit(X, y).predict_proba(X_test), proba)  # seeded
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X_test), proba)
    # The .skops model predict loads holds only allow-listed types.
    loaded = load_model_file(save_model(clf, tmp_path))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), proba)


def test_streams_and_too_few_videos_per_class():
    X, y = make_videos()
    X_other, _ = make_videos(d=3, seed=2)
    clf = PyramidMKLClassifier(probability=True, **SETTINGS)
    proba = (
        clone(clf).fit({"rgb": X, "flow": X_other}, y).predict_proba({"rgb": X, "flow": X_other})
    )
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    y_one = y.copy()
    y_one[0] = "sit"  # one video of a class: no cross-validation possible
    with pytest.raises(ValueError, match="at least 2 videos of every class; class 'sit' has 1"):
        clone(clf).fit(X, y_one)
    # Two videos of the smallest class: as many folds.
    y_two = y.copy()
    y_two[:2] = "sit"
    assert clone(clf).fit(X, y_two).predict_proba(X).shape == (len(X), 4)
    with pytest.raises(ValueError, match="probability must be a bool, got 'yes'"):
        PyramidMKLClassifier(probability="yes").fit(X, y)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_predict_scores_writes_decisions_and_probabilities(tmp_path, capsys):
    features, _ = make_cache(tmp_path)
    ids = list_videos(features)
    X = load_stream(str(features), ids, 2, subset="listed")
    labels = [i.split("/")[0] for i in ids]
    with_proba = PyramidMKLClassifier(probability=True, **SETTINGS).fit(X, labels)
    without = PyramidMKLClassifier(**SETTINGS).fit(X, labels)
    for name, model in (("proba", with_proba), ("plain", without)):
        (tmp_path / name).mkdir()
        save_model(model, tmp_path / name)

    def run(name, *extra):
        out = tmp_path / f"{name}{len(extra)}.csv"
        model = tmp_path / name / "model.skops"
        argv = [str(model), "--features", str(features), "--out", str(out), "--quiet", *extra]
        assert predict.main(argv) == 0, capsys.readouterr().err
        return _rows(out)

    rows = run("proba", "--scores")
    scores = [f"score_{c}" for c in CLASSES]
    probabilities = [f"probability_{c}" for c in CLASSES]
    assert list(rows[0]) == ["video_id", "prediction"] + scores + probabilities
    assert [r["video_id"] for r in rows] == ids
    np.testing.assert_array_equal([r["prediction"] for r in rows], with_proba.predict(X))
    written = np.array([[float(r[c]) for c in scores] for r in rows])
    np.testing.assert_array_equal(written, with_proba.decision_function(X))  # repr round trip
    written = np.array([[float(r[c]) for c in probabilities] for r in rows])
    np.testing.assert_array_equal(written, with_proba.predict_proba(X))
    np.testing.assert_allclose(written.sum(axis=1), 1.0)
    # A model without probabilities: the scores alone; without --scores: as before.
    assert list(run("plain", "--scores")[0]) == ["video_id", "prediction"] + scores
    assert list(run("proba")[0]) == ["video_id", "prediction"]


def test_predict_scores_of_a_binary_model_are_minus_s_and_s(tmp_path):
    features, _ = make_cache(tmp_path)
    ids = [i for i in list_videos(features) if not i.startswith(CLASSES[2])]
    X = load_stream(str(features), ids, 2, subset="listed")
    model = PyramidMKLClassifier(probability=True, **SETTINGS).fit(
        X, [i.split("/")[0] for i in ids]
    )
    save_model(model, tmp_path)
    listed = tmp_path / "ids.txt"
    listed.write_text("".join(i + "\n" for i in ids))
    out = tmp_path / "scores.csv"
    argv = [str(tmp_path / "model.skops"), "--features", str(features), "--list", str(listed)]
    assert predict.main(argv + ["--out", str(out), "--scores", "--quiet"]) == 0
    rows = _rows(out)
    s = model.decision_function(X)
    np.testing.assert_array_equal([float(r[f"score_{CLASSES[1]}"]) for r in rows], s)
    np.testing.assert_array_equal([float(r[f"score_{CLASSES[0]}"]) for r in rows], -s)
    p = np.array([[float(r[f"probability_{c}"]) for c in CLASSES[:2]] for r in rows])
    np.testing.assert_allclose(p[:, 1], expit(-(model.probA_[0] * s + model.probB_[0])))


def test_a_feature_sequence_gives_the_probabilities_of_its_list(tmp_path):
    from mkl_tp.store import FeatureSequence

    features, _ = make_cache(tmp_path)
    videos = FeatureSequence(features)  # the folds are FeatureSequences of their ids
    labels = [i.split("/")[0] for i in videos.ids]
    on_disk = PyramidMKLClassifier(probability=True, **SETTINGS).fit(videos, labels)
    in_memory = PyramidMKLClassifier(probability=True, **SETTINGS).fit(list(videos), labels)
    np.testing.assert_array_equal(on_disk.probA_, in_memory.probA_)
    np.testing.assert_array_equal(
        on_disk.predict_proba(videos), in_memory.predict_proba(list(videos))
    )


@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "three classes"])
def test_late_fusion_probabilities_are_platt_on_its_out_of_fold_fused_scores(n_classes):
    """A hand loop: the fold models' held-out scores of each stream, fused with the fitted
    weights and scales, then scikit-learn's sigmoid fit per class; no extra fit needed."""
    from sklearn.calibration import _sigmoid_calibration

    from mkl_tp import LateFusionClassifier
    from mkl_tp._utils.sampling import stratified_folds

    X, y = make_videos(classes=n_classes)
    other, _ = make_videos(classes=n_classes, d=3, seed=2)
    streams = {"a": X, "b": other}
    model = LateFusionClassifier(PyramidMKLClassifier(levels=2), cv=3).fit(streams, y)
    classes, y_index = np.unique(y, return_inverse=True)
    fused = np.zeros((len(y), n_classes))
    for train, test in stratified_folds(y_index, 3):
        for w, r, name in zip(model.stream_weights_, model.score_scales_, ["a", "b"]):
            fold = PyramidMKLClassifier(levels=2).fit(
                [streams[name][i] for i in train], y_index[train]
            )
            scores = fold.decision_function([streams[name][i] for i in test])
            scores = np.column_stack([-scores, scores]) if scores.ndim == 1 else scores
            fused[test] += w / r * scores
    tasks = [1] if n_classes == 2 else range(n_classes)
    expected = [_sigmoid_calibration(fused[:, t], (y_index == t).astype(int)) for t in tasks]
    np.testing.assert_allclose(model.probA_, [a for a, _ in expected], rtol=1e-6)
    np.testing.assert_allclose(model.probB_, [b for _, b in expected], rtol=1e-6, atol=1e-9)
    X_test = {"a": make_videos(classes=n_classes, seed=1)[0]}
    X_test["b"] = make_videos(classes=n_classes, d=3, seed=3)[0]
    proba = model.predict_proba(X_test)
    decision = model.decision_function(X_test).reshape(len(X_test["a"]), -1)
    sig = expit(-(decision * model.probA_ + model.probB_))
    reference = (
        np.column_stack([1 - sig[:, 0], sig[:, 0]])
        if n_classes == 2
        else sig / sig.sum(axis=1, keepdims=True)
    )
    np.testing.assert_allclose(proba, reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X_test)), proba, rtol=1e-12)
    per_video = [{"a": a, "b": b} for a, b in zip(X, other)]
    scores = cross_val_score(
        LateFusionClassifier(cv=2), per_video, y, cv=3, scoring="neg_log_loss", error_score="raise"
    )
    assert np.all(np.isfinite(scores))
    with pytest.raises(NotFittedError):
        LateFusionClassifier().predict_proba(streams)


def test_a_late_fusion_model_saved_without_probabilities_has_no_predict_proba():
    from mkl_tp import LateFusionClassifier

    X, y = make_videos()
    model = LateFusionClassifier(PyramidMKLClassifier(levels=1), cv=2).fit({"a": X, "b": X}, y)
    del model.probA_, model.probB_  # as unpickled from a model saved before them
    assert not hasattr(model, "predict_proba")  # predict --scores then writes scores only
    assert model.predict({"a": X, "b": X}).shape == (len(X),)
