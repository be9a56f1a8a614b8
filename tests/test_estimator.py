"""PyramidMKLClassifier: scikit-learn behaviour, references, bad input."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

from mkl_tp import PyramidMKLClassifier, load_basic_motions, node_descriptors


def make_videos(n=36, d=4, classes=3, seed=0, min_len=3, max_len=20):
    """Videos whose class shows only in their second half (an order-sensitive task)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = []
    for label in y:
        T = rng.integers(min_len, max_len + 1)
        x = rng.normal(size=(T, d))
        x[T // 2:, label % d] += 1.5
        X.append(x)
    return X, np.array(["walk", "run", "jump", "sit"])[y]


@pytest.fixture(scope="module")
def videos():
    return make_videos()


@pytest.mark.parametrize("classes", [2, 3])
def test_vertex_beta_equals_svc_on_that_node_alone(classes):
    X, y = make_videos(classes=classes)
    node, levels, C = 2, 2, 0.5
    clf = PyramidMKLClassifier(levels=levels, node_norm="none", C=C,
                               node_weights=np.eye(3)[node]).fit(X, y)
    psi = np.stack([node_descriptors(x, levels)[node] for x in X])
    scale = np.mean(np.sum(psi ** 2, axis=1))
    K = psi @ psi.T / scale
    reference = SVC(kernel="precomputed", C=C, tol=1e-8)
    if classes > 2:
        reference = OneVsRestClassifier(reference)
    reference.fit(K, y)
    # The fit's libsvm stops at a KKT violation of 1e-4: decisions agree to that order.
    np.testing.assert_allclose(clf.decision_function(X), reference.decision_function(K),
                               rtol=0, atol=3e-4)
    np.testing.assert_array_equal(clf.predict(X), reference.predict(K))


def test_fitted_attributes_and_shapes(videos):
    X, y = videos
    clf = PyramidMKLClassifier(levels=3).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["jump", "run", "walk"])
    assert clf.beta_.shape == (7,) and clf.beta_.sum() == pytest.approx(1.0)
    assert (clf.beta_ >= 0).all()
    assert clf.objective_ == pytest.approx(min(clf.objective_history_))
    assert clf.n_iter_ >= len(clf.objective_history_) >= 1
    assert clf.n_features_in_ == 4
    assert clf.decision_function(X[:5]).shape == (5, 3)
    assert set(clf.predict(X)) <= set(y)
    # the class lives in the second half: learning weights beats the global average
    assert clf.score(X, y) > PyramidMKLClassifier(levels=1).fit(X, y).score(X, y)


def test_binary_decision_is_one_dimensional_and_signed_towards_classes_1():
    X, y = make_videos(classes=2)
    clf = PyramidMKLClassifier(levels=2, kernel="cross").fit(X, y)
    scores = clf.decision_function(X)
    assert scores.shape == (len(X),)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(scores > 0).astype(int)])


def test_uniform_node_weights_are_kept():
    X, y = make_videos()
    clf = PyramidMKLClassifier(levels=2, node_weights="uniform").fit(X, y)
    np.testing.assert_allclose(clf.beta_, 1 / 3)
    assert clf.n_iter_ == 1


@pytest.mark.parametrize("kernel", ["linear", "cross"])
@pytest.mark.parametrize("base_kernel", ["linear", "rbf"])
def test_clone_pickle_and_joblib_round_trip(tmp_path, videos, kernel, base_kernel):
    X, y = videos
    clf = PyramidMKLClassifier(levels=2, kernel=kernel, base_kernel=base_kernel,
                               random_state=0).fit(X, y)
    assert clone(clf).get_params() == clf.get_params()
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.decision_function(X), clf.decision_function(X))
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_same_seed_same_model_with_rbf(videos):
    X, y = videos
    a = PyramidMKLClassifier(levels=2, base_kernel="rbf", n_components=8, random_state=3)
    b = clone(a)
    np.testing.assert_array_equal(a.fit(X, y).decision_function(X),
                                  b.fit(X, y).decision_function(X))


def test_chi2_base_kernel_on_non_negative_features():
    X, y = make_videos()
    X = [np.abs(x) for x in X]
    clf = PyramidMKLClassifier(levels=2, base_kernel="chi2", random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.5


def test_grid_search_over_C_and_levels(videos):
    X, y = videos
    search = GridSearchCV(PyramidMKLClassifier(), {"C": [0.1, 10.0], "levels": [1, 2]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"C", "levels"}
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.predict(X).shape == (len(X),)


def test_in_a_pipeline_after_a_sequence_transformer(videos):
    X, y = videos
    standardise = FunctionTransformer(lambda seqs: [np.tanh(x) for x in seqs])
    pipe = Pipeline([("squash", standardise), ("mkl", PyramidMKLClassifier(levels=2))])
    pipe.fit(X, y)
    assert pipe.score(X, y) == pipe.named_steps["mkl"].score(standardise.transform(X), y)


def test_streams_share_one_simplex():
    X, y = make_videos(d=4)
    motion = [np.cumsum(x, axis=0)[:, :3] for x in X]  # another stream with d = 3
    clf = PyramidMKLClassifier(levels=2, kernel="cross").fit(
        {"appearance": X, "motion": motion}, y)
    assert clf.streams_ == ["appearance", "motion"]
    assert clf.beta_.shape == (2, 3)
    assert clf.beta_.sum() == pytest.approx(1.0)
    scores = clf.decision_function({"motion": motion, "appearance": X})
    assert scores.shape == (len(X), 3)
    with pytest.raises(ValueError, match="expected streams"):
        clf.predict({"appearance": X})
    with pytest.raises(ValueError, match="pass a mapping"):
        clf.predict(X)


def bad(message, X, y=None, **params):
    _, y_ok = make_videos(n=12)
    with pytest.raises(ValueError, match=message):
        PyramidMKLClassifier(**{"levels": 2, **params}).fit(X, y_ok if y is None else y)


def test_bad_input_messages_name_the_culprit():
    X, y = make_videos(n=12)
    empty = X[:5] + [np.zeros((0, 4))] + X[6:]
    bad(r"sequence 5 is empty \(T = 0", empty)
    nan = [x.copy() for x in X]
    nan[7][2, 1] = np.nan
    bad("sequence 7 contains NaN or inf .first at frame 2, feature 1", nan)
    inf = [x.copy() for x in X]
    inf[3][0, 0] = np.inf
    bad("sequence 3 contains NaN or inf", inf)
    wrong_d = X[:4] + [np.ones((5, 6))] + X[5:]
    bad("sequence 4 has d=6 features, expected d=4", wrong_d)
    bad("sequence 2 must be a 2-D", X[:2] + [np.ones(5)] + X[3:])
    bad("sequence 1 of stream 'motion' is empty",
        {"rgb": X, "motion": [X[0], np.zeros((0, 2))] + X[2:]})
    bad("streams hold different numbers of videos", {"rgb": X, "motion": X[:-1]})
    bad("need at least 2 classes", X, y=["walk"] * 12)
    bad("y has 11 labels but X holds 12 videos", X, y=y[:-1])
    bad("levels must be an integer >= 1", X, levels=0)
    bad("kernel must be 'linear' or 'cross'", X, kernel="poly")
    bad("node_weights must hold 3 non-negative", X, node_weights=[1.0, -1.0, 0.5])
    bad("C must be a positive finite number, got 0", X, C=0)
    bad("C must be a positive finite number, got inf", X, C=float("inf"))
    bad("C must be a positive finite number, got nan", X, C=float("nan"))
    bad("tol must be a positive finite number", X, tol=-1.0)
    bad("base_kernel must be one of", X, base_kernel="poly")
    bad("pca_components must be None or an integer >= 1, got True", X, pca_components=True)


def test_keyword_only_parameters():
    with pytest.raises(TypeError):
        PyramidMKLClassifier(3)


def test_predict_before_fit_and_wrong_d_at_predict():
    X, y = make_videos(n=12)
    with pytest.raises(NotFittedError):
        PyramidMKLClassifier().predict(X)
    clf = PyramidMKLClassifier(levels=2).fit(X, y)
    with pytest.raises(ValueError, match="sequence 1 has d=5 features, expected d=4 as at fit"):
        clf.predict([X[0], np.ones((3, 5))])
    with pytest.raises(ValueError, match="sequence 0 has d=5 features, expected d=4 as at fit"):
        clf.predict([np.ones((3, 5))])


def test_on_the_bundled_real_data():
    train, test = load_basic_motions()
    learned = PyramidMKLClassifier(levels=3).fit(train.X, train.y)
    assert learned.converged_
    assert learned.score(test.X, test.y) >= 0.7  # four balanced classes: chance is 0.25


def test_float32_input_is_not_copied_to_float64():
    from mkl_tp._validation import _validate_sequences

    X, _ = make_videos(n=4)
    X32 = [x.astype(np.float32) for x in X]
    checked = _validate_sequences(X32)
    assert all(c.dtype == np.float32 and c is x for c, x in zip(checked, X32))
    assert _validate_sequences([np.arange(6).reshape(3, 2)])[0].dtype == np.float64
