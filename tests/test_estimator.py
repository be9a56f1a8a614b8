"""PyramidMKLClassifier: scikit-learn behaviour, references, bad input."""

import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
from _problems import videos as half_signal_videos
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
        x[T // 2 :, label % d] += 1.5
        X.append(x)
    return X, np.array(["walk", "run", "jump", "sit"])[y]


@pytest.fixture(scope="module")
def videos():
    return make_videos()


@pytest.mark.parametrize("classes", [2, 3])
def test_vertex_beta_equals_svc_on_that_node_alone(classes):
    X, y = make_videos(classes=classes)
    node, levels, C = 2, 2, 0.5
    clf = PyramidMKLClassifier(
        levels=levels, node_norm="none", C=C, node_weights=np.eye(3)[node]
    ).fit(X, y)
    psi = np.stack([node_descriptors(x, levels)[node] for x in X])
    scale = np.mean(np.sum(psi**2, axis=1))
    K = psi @ psi.T / scale
    reference = SVC(kernel="precomputed", C=C, tol=1e-8)
    if classes > 2:
        reference = OneVsRestClassifier(reference)
    reference.fit(K, y)
    # The fit's libsvm stops at a KKT violation of 1e-4: decisions agree to that order.
    np.testing.assert_allclose(
        clf.decision_function(X), reference.decision_function(K), rtol=0, atol=3e-4
    )
    np.testing.assert_array_equal(clf.predict(X), reference.predict(K))


def test_cross_decisions_at_a_fixed_interior_beta_are_the_normalised_kernel_svc():
    """Eq. 2 with linear k, divided by its mean diagonal D, at a non-vertex beta."""
    X, y = make_videos(classes=3)
    levels, C = 2, 0.5
    beta = np.array([0.5, 0.2, 0.3])
    clf = PyramidMKLClassifier(
        levels=levels,
        kernel="cross",
        base_kernel="linear",
        node_norm="none",
        C=C,
        node_weights=beta,
    ).fit(X, y)
    psi = np.stack([node_descriptors(x, levels) for x in X])
    scales = np.mean(np.sum(psi**2, axis=2), axis=0)
    mean = np.einsum("p,npd->nd", beta, psi / np.sqrt(scales)[None, :, None])
    unnormalised = mean @ mean.T
    D = np.trace(unnormalised) / len(X)
    reference = OneVsRestClassifier(SVC(kernel="precomputed", C=C, tol=1e-8))
    reference.fit(unnormalised / D, y)
    np.testing.assert_allclose(
        clf.decision_function(X), reference.decision_function(unnormalised / D), rtol=0, atol=3e-4
    )


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_per_class_pyramids_on_two_classes_equal_the_shared_fit(kernel):
    X, y = make_videos(classes=2)
    shared = PyramidMKLClassifier(
        levels=2, kernel=kernel, tol=1e-6, mkl_norm=1, pyramids="shared"
    ).fit(X, y)
    per_class = PyramidMKLClassifier(
        levels=2, kernel=kernel, tol=1e-6, mkl_norm=1, pyramids="per_class"
    ).fit(X, y)
    assert per_class.beta_.shape == (1, 3)
    np.testing.assert_allclose(per_class.beta_[0], shared.beta_, atol=1e-9)
    np.testing.assert_allclose(
        per_class.decision_function(X), shared.decision_function(X), atol=1e-9
    )


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_per_class_pyramids_learn_one_weight_vector_per_class(kernel):
    X, y = make_videos(classes=3)
    clf = PyramidMKLClassifier(levels=2, kernel=kernel, pyramids="per_class", mkl_norm=1).fit(X, y)
    assert clf.beta_.shape == (3, 3)
    np.testing.assert_allclose(clf.beta_.sum(axis=1), 1.0)
    # Class c's scores are the binary fit of c against the rest.
    binary = PyramidMKLClassifier(levels=2, kernel=kernel, mkl_norm=1, pyramids="shared").fit(
        X, y == clf.classes_[1]
    )
    np.testing.assert_allclose(clf.beta_[1], binary.beta_, atol=1e-9)
    np.testing.assert_allclose(
        clf.decision_function(X)[:, 1], binary.decision_function(X), atol=1e-9
    )
    streams = clf.set_params(pyramids="per_class").fit({"a": X, "b": X}, y)
    assert streams.beta_.shape == (3, 2, 3)


@pytest.mark.parametrize("node_weights", ["uniform", "learn"])
@pytest.mark.parametrize("base_kernel", ["rbf", "chi2"])
def test_exact_cross_map_does_not_depend_on_the_seed(base_kernel, node_weights):
    X, y = make_videos(n=18)
    X = [np.abs(x) for x in X]
    fits = [
        PyramidMKLClassifier(
            levels=2,
            kernel="cross",
            base_kernel=base_kernel,
            n_components=18 * 3,
            node_weights=node_weights,
            tol=1e-8,
            random_state=seed,
        ).fit(X, y)
        for seed in (0, 1)
    ]
    first, second = (f.decision_function(X) for f in fits)
    # The map is the same up to rounding; learning adds libsvm's tolerance (1e-5 KKT
    # violation, decisions to its square root, see tests/_problems.py).
    rtol = 1e-6 if node_weights == "uniform" else 1e-4
    np.testing.assert_allclose(second, first, rtol=rtol, atol=rtol * np.abs(first).max())


def test_auto_settings_follow_the_kernel(videos):
    X, y = videos
    linear = PyramidMKLClassifier(levels=2).fit(X, y)
    assert (linear.base_kernel_, linear.pyramids_) == ("linear", "shared")
    assert linear.mkl_norm_ in (np.inf, 2.0, 1.0)
    assert set(linear.mkl_norm_scores_) in ({np.inf}, {np.inf, "level 1", 2.0, 1.0})
    assert linear.depth_ in (1, 2)
    cross = PyramidMKLClassifier(levels=2, kernel="cross", random_state=0).fit(X, y)
    assert (cross.base_kernel_, cross.pyramids_) == ("rbf", "per_class")
    # rbf by default, the fitted model judged against the linear kernel (a warning where
    # it falls behind).
    assert cross.base_kernel_scores_ == {} and 0 <= cross.linear_kernel_score_ <= 1
    assert 0 <= cross.cross_kernel_score_ <= 1 and cross.linear_check_seconds_ > 0
    assert cross.linear_kernel_better_ in (True, False)
    assert cross.beta_.shape == (3, 3)
    chosen = PyramidMKLClassifier(levels=2, kernel="cross", base_kernel="cv", random_state=0)
    chosen.fit(X, y)
    assert chosen.base_kernel_ in ("linear", "rbf")
    assert set(chosen.base_kernel_scores_) == {"linear", "rbf"}
    assert 0 <= chosen.linear_kernel_score_ <= 1 and chosen.base_kernel_seconds_ > 0
    # The chosen base kernel's maps are the model's: the same as fitting it by name.
    named = PyramidMKLClassifier(
        levels=2, kernel="cross", base_kernel=chosen.base_kernel_, random_state=0
    ).fit(X, y)
    np.testing.assert_allclose(named.decision_function(X), chosen.decision_function(X))
    fixed = PyramidMKLClassifier(levels=2, kernel="cross", node_weights="uniform").fit(X, y)
    assert fixed.pyramids_ == "shared" and fixed.mkl_norm_ is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_auto_pyramids_share_the_cross_weights_past_the_class_limit():
    # Each class is its own alternation: many classes share one weight vector.
    from mkl_tp.estimator import PER_CLASS_MAX_CLASSES

    rng = np.random.default_rng(0)
    n_classes = PER_CLASS_MAX_CLASSES + 1
    X = [rng.normal(size=(6, 3)) for _ in range(2 * n_classes)]
    y = np.arange(2 * n_classes) % n_classes
    cross = PyramidMKLClassifier(levels=2, kernel="cross", max_iter=2, random_state=0).fit(X, y)
    assert cross.pyramids_ == "shared" and cross.beta_.shape == (3,)


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
    clf = PyramidMKLClassifier(
        levels=2, kernel=kernel, base_kernel=base_kernel, random_state=0
    ).fit(X, y)
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
    np.testing.assert_array_equal(
        a.fit(X, y).decision_function(X), b.fit(X, y).decision_function(X)
    )


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
    clf = PyramidMKLClassifier(levels=2, kernel="cross", pyramids="shared").fit(
        {"appearance": X, "motion": motion}, y
    )
    assert clf.streams_ == ["appearance", "motion"]
    assert clf.beta_.shape == (2, 3)
    assert clf.beta_.sum() == pytest.approx(1.0)
    scores = clf.decision_function({"motion": motion, "appearance": X})
    assert scores.shape == (len(X), 3)
    # The fitted stream order is used whatever the caller's dict order.
    np.testing.assert_array_equal(
        scores, clf.decision_function({"appearance": X, "motion": motion})
    )
    with pytest.raises(ValueError, match="expected streams"):
        clf.predict({"appearance": X})
    with pytest.raises(ValueError, match="pass a mapping"):
        clf.predict(X)


def test_streams_keep_the_fit_order_not_sorted():
    # Stream names given in reverse alphabetical order: streams_, beta_'s stream blocks and
    # n_features_per_stream_ follow the mapping's order ("z" first), never a sorted one.
    X, y = make_videos(d=4)
    rng = np.random.default_rng(1)
    noise = [rng.normal(size=(x.shape[0], 3)) for x in X]  # carries no class, d = 3
    params = dict(levels=2, kernel="cross", pyramids="shared")
    za = PyramidMKLClassifier(**params).fit({"z": X, "a": noise}, y)
    assert za.streams_ == ["z", "a"] and isinstance(za.streams_, list)
    assert list(za.n_features_per_stream_) == ["z", "a"]
    assert za.n_features_per_stream_ == {"z": 4, "a": 3}
    assert za.beta_.shape == (2, 3)
    # block 0 is "z", the stream that carries the class: it takes most of the weight
    assert za.beta_[0].sum() > 0.9 > 0.1 > za.beta_[1].sum()
    # the same streams passed in the other order give the same weights, blocks swapped
    az = PyramidMKLClassifier(**params).fit({"a": noise, "z": X}, y)
    assert az.streams_ == ["a", "z"]
    np.testing.assert_allclose(za.beta_, az.beta_[::-1], rtol=0, atol=1e-6)
    # predicting reorders the caller's mapping to the fitted order
    np.testing.assert_array_equal(
        za.decision_function({"a": noise, "z": X}), za.decision_function({"z": X, "a": noise})
    )


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
    bad(
        "sequence 1 of stream 'motion' is empty",
        {"rgb": X, "motion": [X[0], np.zeros((0, 2))] + X[2:]},
    )
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
    from mkl_tp.pyramid.inputs import validate_sequences

    X, _ = make_videos(n=4)
    X32 = [x.astype(np.float32) for x in X]
    checked = validate_sequences(X32)
    assert all(c.dtype == np.float32 and c is x for c, x in zip(checked, X32))
    assert validate_sequences([np.arange(6).reshape(3, 2)])[0].dtype == np.float64


def test_estimator_cache_size_switch_both_ways_gives_the_same_model():
    X, y = half_signal_videos()
    small = PyramidMKLClassifier(levels=3, cache_size=0, tol=1e-6, mkl_norm=1).fit(X, y)
    large = PyramidMKLClassifier(levels=3, cache_size=1024, tol=1e-6, mkl_norm=1).fit(X, y)
    assert small.objective_ == pytest.approx(large.objective_, rel=1e-6)
    np.testing.assert_allclose(small.beta_, large.beta_, atol=1e-3)
    np.testing.assert_allclose(small.decision_function(X), large.decision_function(X), atol=1e-3)


@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_estimator_batch_solver_matches_libsvm(kernel):
    X, y = half_signal_videos()
    # At tol=1e-5, as fast as 1e-4 here, where the two stopping points left decisions up
    # to 3e-3 apart: the bound below itself.
    reference = PyramidMKLClassifier(levels=3, kernel=kernel, tol=1e-5, mkl_norm=1).fit(X, y)
    fast = PyramidMKLClassifier(levels=3, kernel=kernel, solver="batch", tol=1e-5, mkl_norm=1).fit(
        X, y
    )
    assert fast.objective_ == pytest.approx(reference.objective_, rel=1e-5)
    np.testing.assert_allclose(fast.beta_, reference.beta_, atol=2e-3)
    # Decisions move with beta (both fits stop within tol of J, not of beta): 3e-3 on
    # decisions of about 1 for weights 2e-3 apart.
    np.testing.assert_allclose(fast.decision_function(X), reference.decision_function(X), atol=3e-3)
    np.testing.assert_array_equal(fast.predict(X), reference.predict(X))


def test_estimator_float32_agrees_with_float64():
    X, y = half_signal_videos()
    wide = PyramidMKLClassifier(levels=3, tol=1e-6, mkl_norm=1).fit(X, y)
    narrow = PyramidMKLClassifier(levels=3, dtype="float32", tol=1e-6, mkl_norm=1).fit(X, y)
    assert narrow.objective_ == pytest.approx(wide.objective_, rel=1e-6)
    np.testing.assert_allclose(narrow.decision_function(X), wide.decision_function(X), atol=1e-3)


def test_pca_with_all_components_keeps_the_kernels():
    X, y = half_signal_videos(d=4)
    full = PyramidMKLClassifier(levels=2, mkl_norm=1).fit(X, y)
    reduced = PyramidMKLClassifier(levels=2, pca_components=4, random_state=0, mkl_norm=1).fit(X, y)
    np.testing.assert_allclose(reduced.beta_, full.beta_, atol=1e-6)
    np.testing.assert_allclose(reduced.decision_function(X), full.decision_function(X), atol=1e-6)
    fewer = PyramidMKLClassifier(levels=2, pca_components=2, random_state=0).fit(X, y)
    assert fewer.decision_function(X).shape == (len(X), 3)


def test_beta_init_from_a_coarser_pyramid_reaches_the_cold_start_optimum():
    X, y = half_signal_videos()
    coarse = PyramidMKLClassifier(levels=2, tol=1e-4, mkl_norm=1).fit(X, y)
    cold = PyramidMKLClassifier(levels=3, tol=1e-4, mkl_norm=1).fit(X, y)
    warm = PyramidMKLClassifier(levels=3, tol=1e-4, mkl_norm=1, beta_init=coarse.beta_).fit(X, y)
    assert warm.objective_ == pytest.approx(cold.objective_, rel=2e-4)
    with pytest.raises(ValueError, match="beta_init"):
        PyramidMKLClassifier(levels=2, beta_init=np.ones(7)).fit(X, y)
    with pytest.raises(ValueError, match="beta_init"):
        PyramidMKLClassifier(levels=3, beta_init=np.ones(5)).fit(X, y)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("solver", "gpu", "solver must be one of"),
        ("beta_method", "simple", "beta_method must be one of"),
        ("cache_size", -1, "cache_size must be"),
        ("dtype", "float16", "dtype must be"),
        ("dtype", "not-a-type", "dtype must be"),
        ("pca_components", 0, "pca_components must be"),
    ],
)
def test_bad_performance_parameters_name_the_culprit(name, value, message):
    X, y = half_signal_videos(n=12)
    with pytest.raises(ValueError, match=message):
        PyramidMKLClassifier(**{name: value}).fit(X, y)


def test_estimator_torch_solver_on_cpu_matches_libsvm():
    pytest.importorskip("torch", reason="torch (the 'deep' extra) is not installed")
    X, y = half_signal_videos()
    reference = PyramidMKLClassifier(levels=3, mkl_norm=1).fit(X, y)
    fast = PyramidMKLClassifier(levels=3, solver="torch", device="cpu", mkl_norm=1).fit(X, y)
    assert fast.objective_ == pytest.approx(reference.objective_, rel=1e-4)
    np.testing.assert_array_equal(fast.predict(X), reference.predict(X))


def test_core_import_and_default_fit_do_not_import_torch():
    code = (
        "import sys, numpy as np; import mkl_tp; "
        "from mkl_tp import PyramidMKLClassifier; rng = np.random.default_rng(0); "
        "X = [rng.normal(size=(5, 3)) for _ in range(8)]; "
        "PyramidMKLClassifier(levels=2).fit(X, [0, 1] * 4); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_auto_norm_keeps_the_coarse_levels_alone_where_depth_hurts():
    """Four frames of noise around a class offset: finer nodes pool fewer frames and only
    add noise. The choice is level 1 alone; the model is then the fixed-weight model on
    those weights, and the report says so."""
    from mkl_tp.experiment.sweep import _chosen
    from mkl_tp.pyramid.weights import coarse_levels

    rng = np.random.default_rng(0)
    y = np.arange(150) % 3
    X = [rng.normal(size=(4, 12)) + 0.5 * np.eye(12)[label] for label in y]
    clf = PyramidMKLClassifier(levels=3).fit(X, y)
    assert clf.depth_ == 1 and clf.mkl_norm_ == np.inf
    assert list(clf.mkl_norm_scores_) == [np.inf, "level 1", "levels 1-2", 2.0, 1.0]
    np.testing.assert_allclose(clf.beta_, np.eye(7)[0])
    fixed = PyramidMKLClassifier(levels=3, node_weights=coarse_levels(1, 3, 1)).fit(X, y)
    np.testing.assert_allclose(clf.decision_function(X), fixed.decision_function(X))
    record = _chosen(clf)
    assert record["depth"] == 1 and record["mkl_norm_selection"]["chosen"] == "level 1"
    assert record["mkl_norm_selection"]["decision"].startswith("level 1 chosen over p=inf")
