"""Tests of mkl_tp.deep.classifier: DeepPyramidClassifier as a scikit-learn estimator on the
bundled real data, and its lazy export from mkl_tp."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

import mkl_tp  # noqa: E402
from mkl_tp import load_basic_motions  # noqa: E402
from mkl_tp.deep import DeepPyramidClassifier  # noqa: E402
from mkl_tp.deep.classifier import _descriptors, _standardise_nodes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def motions():
    return load_basic_motions()


@pytest.fixture(scope="module")
def fitted(motions):
    train, _ = motions
    return DeepPyramidClassifier(levels=2, random_state=0).fit(train.X, train.y)


def test_fits_and_predicts_bundled_data(motions, fitted):
    train, test = motions
    assert list(fitted.classes_) == sorted(set(train.y))
    assert fitted.beta_.shape == (3,)
    np.testing.assert_allclose(fitted.beta_.sum(), 1.0, rtol=1e-6)
    # 40 videos: the "auto" defaults train on all of them for 500 one-step epochs
    assert not fitted.early_stopping_ and fitted.validation_loss_curve_ == []
    assert len(fitted.loss_curve_) == fitted.best_epoch_ == fitted.n_iter_ == 500
    assert fitted.n_features_in_ == 6
    assert fitted.n_features_per_stream_ == {None: 6}
    proba = fitted.predict_proba(test.X)
    assert proba.shape == (40, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert fitted.decision_function(test.X).shape == (40, 4)
    # four balanced classes: chance is 0.25; the pyramid network separates them well
    assert fitted.score(test.X, test.y) >= 0.75


def test_bfloat16_precision_trains_and_predicts_in_float32(motions):
    train, test = motions
    clf = DeepPyramidClassifier(levels=2, precision="bfloat16", random_state=0)
    clf.fit(train.X, train.y)
    assert all(p.dtype == torch.float32 for p in clf._nets[0].parameters())
    proba = clf.predict_proba(test.X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(test.X, test.y) >= 0.75


def test_seeded_runs_are_identical(motions, fitted):
    train, test = motions
    again = DeepPyramidClassifier(levels=2, random_state=0).fit(train.X, train.y)
    np.testing.assert_array_equal(again.beta_, fitted.beta_)
    np.testing.assert_array_equal(again.loss_curve_, fitted.loss_curve_)
    np.testing.assert_array_equal(again.predict_proba(test.X), fitted.predict_proba(test.X))
    # loss_curve_ is the first network's, the same with one network as with five
    other = DeepPyramidClassifier(levels=2, n_networks=1, random_state=1).fit(train.X, train.y)
    assert other.loss_curve_ != fitted.loss_curve_


def test_pickle_and_clone_round_trip(motions, fitted):
    train, test = motions
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(test.X), fitted.predict_proba(test.X))
    refit = clone(fitted).fit(train.X, train.y)
    np.testing.assert_array_equal(refit.predict(test.X), fitted.predict(test.X))
    assert not hasattr(clone(fitted), "beta_")


def test_grid_search(motions):
    train, test = motions
    search = GridSearchCV(
        DeepPyramidClassifier(epochs=15, random_state=0), {"levels": [1, 2]}, cv=2
    ).fit(train.X, train.y)
    assert search.best_params_["levels"] in (1, 2)
    assert search.predict(test.X).shape == (40,)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(test.X), search.predict(test.X))


def test_streams_learn_stream_weights(motions):
    train, test = motions
    split = {"accelerometer": [x[:, :3] for x in train.X], "gyroscope": [x[:, 3:] for x in train.X]}
    clf = DeepPyramidClassifier(levels=2, n_pyramids=2, epochs=10, random_state=0)
    clf.fit(split, train.y)
    assert clf.streams_ == ["accelerometer", "gyroscope"]
    assert clf.n_features_per_stream_ == {"accelerometer": 3, "gyroscope": 3}
    assert not hasattr(clf, "n_features_in_")
    assert clf.beta_.shape == (2, 2, 3)
    np.testing.assert_allclose(clf.beta_.sum(axis=-1), 1.0, rtol=1e-6)
    assert clf.stream_weights_.shape == (2,)
    np.testing.assert_allclose(clf.stream_weights_.sum(), 1.0, rtol=1e-12)
    assert clf.stream_weights_.min() > 0
    test_split = {
        "gyroscope": [x[:, 3:] for x in test.X],
        "accelerometer": [x[:, :3] for x in test.X],
    }
    assert clf.predict(test_split).shape == (40,)
    with pytest.raises(ValueError, match="pass a mapping"):
        clf.predict(test.X)


def test_two_classes_decision_function(motions):
    train, test = motions
    keep = np.isin(train.y, ["Standing", "Running"])
    X = [x for x, k in zip(train.X, keep) if k]
    clf = DeepPyramidClassifier(levels=2, epochs=10, random_state=0).fit(X, train.y[keep])
    scores = clf.decision_function(test.X)
    assert scores.shape == (40,)
    np.testing.assert_array_equal(clf.predict(test.X), clf.classes_[(scores > 0).astype(int)])


def _with(X, index, value):
    X = list(X)
    X[index] = value
    return X


@pytest.mark.parametrize(
    "make_X, message",
    [
        (lambda X: _with(X, 3, np.zeros((0, 6))), "sequence 3 is empty"),
        (lambda X: _with(X, 5, np.full((100, 6), np.nan)), "sequence 5 contains NaN"),
        (lambda X: _with(X, 7, np.zeros((100, 4))), "sequence 7 has d=4"),
        (lambda X: {"a": X, "b": X[:-1]}, "different numbers of videos"),
    ],
)
def test_bad_input_names_the_culprit(motions, make_X, message):
    train, _ = motions
    with pytest.raises(ValueError, match=message):
        DeepPyramidClassifier(levels=1, epochs=1).fit(make_X(train.X), train.y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"levels": 0}, "levels"),
        ({"mode": "max"}, "mode"),
        ({"batch_size": 1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"device": "tpu"}, "device"),
        ({"node_dim": 0}, "node_dim"),
        ({"precision": "float16"}, "precision"),
    ],
)
def test_bad_parameters_are_named(motions, params, message):
    train, _ = motions
    with pytest.raises(ValueError, match=message):
        DeepPyramidClassifier(**params).fit(train.X, train.y)


def test_bad_labels_and_unfitted_and_predict_shape(motions, fitted):
    train, test = motions
    with pytest.raises(ValueError, match="at least 2 classes"):
        DeepPyramidClassifier(epochs=1).fit(train.X, ["Walking"] * 40)
    y = np.array(train.y)
    y[0] = "Jumping"  # one video: no stratified validation split possible
    with pytest.raises(ValueError, match="class 'Jumping' has 1"):
        DeepPyramidClassifier(epochs=1, early_stopping=True).fit(train.X, y)
    with pytest.raises(NotFittedError):
        DeepPyramidClassifier().predict(test.X)
    with pytest.raises(ValueError, match="sequence 0 has d=5 features, expected d=6"):
        fitted.predict([x[:, :5] for x in test.X])


def test_lazy_export_without_torch():
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import mkl_tp\n"
        "assert 'torch' not in sys.modules\n"
        "assert 'DeepPyramidClassifier' not in mkl_tp.__all__\n"
        "try:\n"
        "    mkl_tp.DeepPyramidClassifier\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install mkl_tp[deep]" in result.stdout
    assert mkl_tp.DeepPyramidClassifier is DeepPyramidClassifier
    with pytest.raises(AttributeError, match="no attribute 'Deep'"):
        mkl_tp.Deep  # noqa: B018


def test_networks_average_the_probabilities_of_single_networks(motions):
    # Reference: each network trained alone by a one-network fit whose random_state has
    # made the draws of the networks before it, then the mean of their probabilities.
    train, test = motions
    params = dict(levels=2, epochs=20, node_dim=8, hidden=8)
    ensemble = DeepPyramidClassifier(n_networks=3, random_state=0, **params).fit(train.X, train.y)
    assert ensemble.n_networks_ == 3
    probas, betas = [], []
    for k in range(3):
        state = np.random.RandomState(0)
        for _ in range(k):
            state.randint(np.iinfo(np.int32).max)
        single = DeepPyramidClassifier(n_networks=1, random_state=state, **params)
        single.fit(train.X, train.y)
        probas.append(single.predict_proba(test.X))
        betas.append(single.beta_)
    np.testing.assert_allclose(ensemble.predict_proba(test.X), np.mean(probas, axis=0), atol=1e-6)
    np.testing.assert_allclose(ensemble.beta_, np.mean(betas, axis=0), atol=1e-6)
    assert not np.allclose(probas[0], probas[1])  # the networks differ
    assert ensemble.loss_curve_ == single_loss_curve(train, params)


def single_loss_curve(train, params):
    return (
        DeepPyramidClassifier(n_networks=1, random_state=0, **params)
        .fit(train.X, train.y)
        .loss_curve_
    )


def test_model_saved_with_one_network_attribute_still_predicts(motions):
    # Pickles written before n_networks and standardise hold the network as _net, not a
    # list _nets, and the frames' statistics.
    train, test = motions
    clf = DeepPyramidClassifier(
        levels=2, epochs=5, n_networks=1, standardise="frames", random_state=0
    )
    expected = clf.fit(train.X, train.y).predict_proba(test.X)
    state = clf.__getstate__()
    state["_net"] = state.pop("_nets")[0]
    del state["n_networks"], state["standardise"]
    old = DeepPyramidClassifier.__new__(DeepPyramidClassifier)
    old.__setstate__(state)
    np.testing.assert_allclose(old.predict_proba(test.X), expected)
    assert clone(old).get_params() == clf.get_params()


def test_nodes_standardised_over_the_training_videos(motions):
    # standardise="nodes": every node and feature of the training descriptors is centred
    # and divided by sqrt(var + s^2 / m), s the feature's standard deviation over all
    # frames and m the node's frames (numpy reference: the plain node means of the frames).
    train, _ = motions
    clf = DeepPyramidClassifier(levels=3, epochs=1, n_networks=1, random_state=0)
    clf.fit(train.X, train.y)
    frames = np.concatenate(train.X)
    psi = np.stack([node_means(np.asarray(x, dtype=float), 3) for x in train.X])
    per_node = len(train.X[0]) / np.array([1, 2, 2, 4, 4, 4, 4])
    expected = np.sqrt(psi.var(axis=0) + frames.var(axis=0) / per_node[:, None])
    mean, scale = clf._standardise[None]
    # (the descriptors are stored in float32 before their statistics are taken)
    np.testing.assert_allclose(mean, psi.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scale, expected, rtol=1e-6)
    inputs = _descriptors(train.X, 3, torch.device("cpu"), mean, scale).double().numpy()
    np.testing.assert_allclose(inputs.mean(axis=0), 0, atol=1e-5)
    assert (inputs.std(axis=0) < 1).all()


def test_node_statistics_do_not_depend_on_the_chunk_size():
    # The statistics are summed a chunk of videos at a time: one video per chunk gives
    # the same as all at once (and as numpy's, floor included).
    psi = torch.randn(9, 3, 4, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    frames = np.array([8.0, 4.0, 4.0])
    mean, scale = np.zeros(4), np.ones(4)
    whole, small = psi.clone(), psi.clone()
    expected = _standardise_nodes(whole, mean, scale, frames)
    chunked = _standardise_nodes(small, mean, scale, frames, chunk_bytes=1)
    for a, b in zip(expected, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    torch.testing.assert_close(whole, small)
    reference = psi.double().numpy()
    np.testing.assert_allclose(expected[0], reference.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(
        expected[1], np.sqrt(reference.var(axis=0) + 1 / frames[:, None]), rtol=1e-12
    )


def node_means(frames, levels):
    """Level-major plain means of each node's frames, for a length that 2^(levels-1)
    divides (docs/maths.rst: the paper's membership, Eq. 1)."""
    assert len(frames) % 2 ** (levels - 1) == 0
    return np.concatenate(
        [frames.reshape(2**level, -1, frames.shape[1]).mean(axis=1) for level in range(levels)]
    )
