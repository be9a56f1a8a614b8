"""Tests of mkl_tp.deep: the pyramid layer against mkl_tp.pyramid and the paper's Eqs. 5-6,
and DeepPyramidClassifier as a scikit-learn estimator on the bundled real data."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")

import mkl_tp  # noqa: E402
from mkl_tp import load_basic_motions, node_bounds, node_descriptors_batch  # noqa: E402
from mkl_tp.deep import DeepPyramidClassifier, TemporalPyramidPool  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def motions():
    return load_basic_motions()


@pytest.fixture(scope="module")
def fitted(motions):
    train, _ = motions
    return DeepPyramidClassifier(levels=2, random_state=0).fit(train.X, train.y)


def _packed(arrays, dtype=torch.float64):
    return torch.from_numpy(np.concatenate(arrays)).to(dtype), [x.shape[0] for x in arrays]


# ---------------------------------------------------------------- the layer


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_node_descriptors_equal_core(levels):
    rng = np.random.default_rng(levels)
    lengths = [1, 2, 3, 7, 8, 13, 16, 31, 100, 1]  # T = 1 and T < 2**(levels-1) included
    arrays = [rng.normal(size=(t, 5)) + 1e3 * i for i, t in enumerate(lengths)]
    frames, lengths = _packed(arrays)
    psi = TemporalPyramidPool(levels).node_descriptors(frames, lengths)
    assert psi.dtype == torch.float64 and psi.shape == (10, 2 ** levels - 1, 5)
    np.testing.assert_allclose(psi.numpy(), node_descriptors_batch(arrays, levels),
                               rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(levels=st.integers(1, 7),
       lengths=st.lists(st.integers(1, 70), min_size=1, max_size=6),
       seed=st.integers(0, 2**16))
def test_node_descriptors_equal_core_property(levels, lengths, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(t, 2)) for t in lengths]
    psi = TemporalPyramidPool(levels).node_descriptors(*_packed(arrays))
    np.testing.assert_allclose(psi.numpy(), node_descriptors_batch(arrays, levels),
                               rtol=0, atol=1e-9)


def test_node_descriptors_float32_no_cancellation_across_videos():
    # One global prefix sum over 3000 videos of mean 100 would lose ~6e-2 relative in
    # float32; the layer's per-segment sums keep rounding local to each video.
    rng = np.random.default_rng(0)
    arrays = [(rng.normal(size=(t, 4)) + 100).astype(np.float32)
              for t in rng.integers(1, 60, size=3000)]
    frames, lengths = _packed(arrays, torch.float32)
    psi = TemporalPyramidPool(4).node_descriptors(frames, lengths)
    assert psi.dtype == torch.float32
    np.testing.assert_allclose(psi.numpy(), node_descriptors_batch(arrays, 4), rtol=1e-5)


@pytest.mark.parametrize("mode", ["concat", "average"])
def test_forward_weights_nodes_with_beta(mode):
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(t, 3)) for t in (1, 5, 9)]
    pool = TemporalPyramidPool(3, mode=mode, n_pyramids=2).double()
    with torch.no_grad():
        pool.beta_hat.copy_(torch.from_numpy(rng.normal(size=(2, 7))))
    out = pool(*_packed(arrays)).detach().numpy()
    beta = pool.beta.detach().numpy()
    psi = node_descriptors_batch(arrays, 3)
    if mode == "concat":
        expected = (beta[None, :, :, None] * psi[:, None]).reshape(3, 2, 7 * 3)
    else:
        expected = np.einsum("mp,npd->nmd", beta, psi)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_beta_is_a_softmax_on_the_simplex():
    pool = TemporalPyramidPool(4, n_pyramids=3)
    assert pool.beta.shape == (3, 15)
    np.testing.assert_allclose(pool.beta.detach().numpy(), 1 / 15)  # uniform at start
    with torch.no_grad():
        pool.beta_hat.normal_(std=5.0)
    beta = pool.beta.detach().double().numpy()
    assert (beta > 0).all()
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("mode", ["concat", "average"])
def test_gradcheck_frames_and_beta_hat(mode):
    pool = TemporalPyramidPool(3, mode=mode, n_pyramids=2).double()
    gen = torch.Generator().manual_seed(0)
    lengths = [1, 3, 6]
    frames = torch.randn(10, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    beta_hat = torch.randn(2, 7, dtype=torch.float64, generator=gen, requires_grad=True)

    def layer(frames, beta_hat):
        return torch.func.functional_call(pool, {"beta_hat": beta_hat}, (frames, lengths))

    assert torch.autograd.gradcheck(layer, (frames, beta_hat), eps=1e-6, atol=1e-8)


def test_beta_jacobian_is_eq5():
    pool = TemporalPyramidPool(2, n_pyramids=2).double()
    with torch.no_grad():
        pool.beta_hat.normal_(generator=torch.Generator().manual_seed(3))
    beta = pool.beta
    jac = torch.stack([torch.autograd.grad(beta[m, p], pool.beta_hat, retain_graph=True)[0]
                       for m in range(2) for p in range(3)]).reshape(2, 3, 2, 3)
    # d beta_{m,p} / d beta_hat_{m',k} = 1{m = m'} beta_{m,k} (delta_pk - beta_{m,p})
    b = beta.detach().numpy()
    expected = np.zeros((2, 3, 2, 3))
    for m in range(2):
        for p in range(3):
            for k in range(3):
                expected[m, p, m, k] = b[m, k] * ((p == k) - b[m, p])
    np.testing.assert_allclose(jac.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["concat", "average"])
def test_frame_gradient_is_eq6_membership(mode):
    # T divisible by 2**(L-1): every frame lies wholly in one node per level, and
    # dE/dphi(f_t) = sum_{m,p} 1{t in N_p} beta_{m,p} dE/d(node output) / |N_p|.
    levels, lengths, d = 3, [8, 4], 2
    pool = TemporalPyramidPool(levels, mode=mode, n_pyramids=2).double()
    with torch.no_grad():
        pool.beta_hat.copy_(torch.tensor([[0.1, -0.4, 0.3, 0.9, -1.0, 0.2, 0.5],
                                          [0.0, 0.7, -0.2, 0.1, 0.4, -0.3, 0.6]]))
    gen = torch.Generator().manual_seed(1)
    frames = torch.randn(12, d, dtype=torch.float64, generator=gen, requires_grad=True)
    out = pool(frames, lengths)
    upstream = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    (out * upstream).sum().backward()

    beta = pool.beta.detach().numpy()
    g = upstream.numpy()
    bounds = node_bounds(levels)
    expected = np.zeros((12, d))
    start = 0
    for i, T in enumerate(lengths):
        for t in range(T):
            for p, (a, b) in enumerate(bounds):
                size = round((b - a) * T)
                if not a * T <= t < b * T:
                    continue
                for m in range(2):
                    g_node = g[i, m, p * d:(p + 1) * d] if mode == "concat" else g[i, m]
                    expected[start + t] += beta[m, p] * g_node / size
        start += T
    np.testing.assert_allclose(frames.grad.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="levels"):
        TemporalPyramidPool(0)
    with pytest.raises(ValueError, match="mode"):
        TemporalPyramidPool(2, mode="max")
    with pytest.raises(ValueError, match="n_pyramids"):
        TemporalPyramidPool(2, n_pyramids=0)
    pool = TemporalPyramidPool(2)
    with pytest.raises(ValueError, match="sum to frames.shape"):
        pool.node_descriptors(torch.zeros(5, 2), [2, 2])
    with pytest.raises(ValueError, match="lengths must be >= 1"):
        pool.node_descriptors(torch.zeros(5, 2), [5, 0])


# ---------------------------------------------------------------- the estimator


def test_fits_and_predicts_bundled_data(motions, fitted):
    train, test = motions
    assert list(fitted.classes_) == sorted(set(train.y))
    assert fitted.beta_.shape == (3,)
    np.testing.assert_allclose(fitted.beta_.sum(), 1.0, rtol=1e-6)
    assert len(fitted.loss_curve_) == len(fitted.validation_loss_curve_) == fitted.n_iter_
    assert 1 <= fitted.best_epoch_ <= fitted.n_iter_ <= 100
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
    assert all(p.dtype == torch.float32 for p in clf._net.parameters())
    proba = clf.predict_proba(test.X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(test.X, test.y) >= 0.75


def test_seeded_runs_are_identical(motions, fitted):
    train, test = motions
    again = DeepPyramidClassifier(levels=2, random_state=0).fit(train.X, train.y)
    np.testing.assert_array_equal(again.beta_, fitted.beta_)
    np.testing.assert_array_equal(again.loss_curve_, fitted.loss_curve_)
    np.testing.assert_array_equal(again.predict_proba(test.X), fitted.predict_proba(test.X))
    other = DeepPyramidClassifier(levels=2, random_state=1).fit(train.X, train.y)
    assert other.loss_curve_ != fitted.loss_curve_


def test_fit_leaves_global_torch_rng_alone(motions):
    train, _ = motions
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DeepPyramidClassifier(levels=1, epochs=2, random_state=0).fit(train.X, train.y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_pickle_and_clone_round_trip(motions, fitted):
    train, test = motions
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(test.X), fitted.predict_proba(test.X))
    refit = clone(fitted).fit(train.X, train.y)
    np.testing.assert_array_equal(refit.predict(test.X), fitted.predict(test.X))
    assert not hasattr(clone(fitted), "beta_")


def test_grid_search(motions):
    train, test = motions
    search = GridSearchCV(DeepPyramidClassifier(epochs=15, random_state=0),
                          {"levels": [1, 2]}, cv=2).fit(train.X, train.y)
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
    test_split = {"gyroscope": [x[:, 3:] for x in test.X],
                  "accelerometer": [x[:, :3] for x in test.X]}
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


def test_early_stopping_keeps_the_best_epoch(motions):
    train, _ = motions
    clf = DeepPyramidClassifier(levels=1, epochs=300, n_iter_no_change=3, tol=0.0,
                                random_state=0).fit(train.X, train.y)
    curve = clf.validation_loss_curve_
    assert clf.n_iter_ < 300 and clf.n_iter_ - clf.best_epoch_ == 3
    assert clf.best_epoch_ == 1 + int(np.argmin(curve))
    exact = DeepPyramidClassifier(levels=1, epochs=5, early_stopping=False,
                                  random_state=0).fit(train.X, train.y)
    assert exact.n_iter_ == exact.best_epoch_ == 5 and exact.validation_loss_curve_ == []


def test_nan_loss_names_the_epoch(motions, monkeypatch):
    train, _ = motions
    with pytest.raises(FloatingPointError, match="epoch 1"):
        DeepPyramidClassifier(levels=1, epochs=5, lr=1e30, random_state=0).fit(train.X, train.y)
    calls = []
    nll_loss = torch.nn.functional.nll_loss

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = nll_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(torch.nn.functional, "nll_loss", poisoned)
    # 40 videos, one batch per epoch, no validation passes: the third call is epoch 3
    with pytest.raises(FloatingPointError, match=r"nan at epoch 3, batch 1"):
        DeepPyramidClassifier(levels=1, epochs=5, early_stopping=False,
                              random_state=0).fit(train.X, train.y)


def _with(X, index, value):
    X = list(X)
    X[index] = value
    return X


@pytest.mark.parametrize("make_X, message", [
    (lambda X: _with(X, 3, np.zeros((0, 6))), "sequence 3 is empty"),
    (lambda X: _with(X, 5, np.full((100, 6), np.nan)), "sequence 5 contains NaN"),
    (lambda X: _with(X, 7, np.zeros((100, 4))), "sequence 7 has d=4"),
    (lambda X: {"a": X, "b": X[:-1]}, "different numbers of videos"),
])
def test_bad_input_names_the_culprit(motions, make_X, message):
    train, _ = motions
    with pytest.raises(ValueError, match=message):
        DeepPyramidClassifier(levels=1, epochs=1).fit(make_X(train.X), train.y)


@pytest.mark.parametrize("params, message", [
    ({"levels": 0}, "levels"), ({"mode": "max"}, "mode"), ({"batch_size": 1}, "batch_size"),
    ({"lr": 0.0}, "lr"), ({"weight_decay": -1.0}, "weight_decay"),
    ({"validation_fraction": 1.0}, "validation_fraction"), ({"device": "tpu"}, "device"),
    ({"node_dim": 0}, "node_dim"), ({"precision": "float16"}, "precision"),
])
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
        DeepPyramidClassifier(epochs=1).fit(train.X, y)
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
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "pip install mkl_tp[deep]" in result.stdout
    assert mkl_tp.DeepPyramidClassifier is DeepPyramidClassifier
    with pytest.raises(AttributeError, match="no attribute 'Deep'"):
        mkl_tp.Deep  # noqa: B018
