"""Tests of mkl_tp.deep.train through DeepPyramidClassifier on the bundled real data: early
stopping, the divergence guard, torch's global generator left alone."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")

from mkl_tp import load_basic_motions  # noqa: E402
from mkl_tp.deep import DeepPyramidClassifier  # noqa: E402
from mkl_tp.deep.train import auto_epochs, validation_split  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def motions():
    return load_basic_motions()


def test_fit_leaves_global_torch_rng_alone(motions):
    train, _ = motions
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DeepPyramidClassifier(levels=1, epochs=2, random_state=0).fit(train.X, train.y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_early_stopping_keeps_the_best_epoch(motions):
    train, _ = motions
    clf = DeepPyramidClassifier(
        levels=1, epochs=300, early_stopping=True, n_iter_no_change=3, tol=0.0, random_state=0
    ).fit(train.X, train.y)
    curve = clf.validation_loss_curve_
    assert clf.n_iter_ < 300 and clf.n_iter_ - clf.best_epoch_ == 3
    assert clf.best_epoch_ == 1 + int(np.argmin(curve))
    exact = DeepPyramidClassifier(levels=1, epochs=5, early_stopping=False, random_state=0).fit(
        train.X, train.y
    )
    assert exact.n_iter_ == exact.best_epoch_ == 5 and exact.validation_loss_curve_ == []


def test_nan_loss_names_the_epoch(motions, monkeypatch):
    train, _ = motions
    with pytest.raises(FloatingPointError, match="epoch 1"):
        DeepPyramidClassifier(levels=1, epochs=5, lr=1e30, early_stopping=True, random_state=0).fit(
            train.X, train.y
        )
    calls = []
    nll_loss = torch.nn.functional.nll_loss

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = nll_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(torch.nn.functional, "nll_loss", poisoned)
    # 40 videos, one batch per epoch, no validation passes: the third call is epoch 3
    with pytest.raises(FloatingPointError, match=r"nan at epoch 3, batch 1"):
        DeepPyramidClassifier(levels=1, epochs=5, early_stopping=False, random_state=0).fit(
            train.X, train.y
        )


@pytest.mark.parametrize(
    ("n_train", "batch_size", "epochs"),
    [(28, 64, 500), (65, 64, 500), (130, 64, 167), (320, 64, 100), (10_000, 64, 100)],
)
def test_auto_epochs_give_at_least_500_steps_and_100_epochs(n_train, batch_size, epochs):
    # 65 videos: the last batch of one joins the first, one step per epoch
    assert auto_epochs(n_train, batch_size) == epochs


def test_auto_early_stopping_and_networks_from_1000_videos():
    rng = np.random.default_rng(0)
    y = np.arange(1000) % 2
    X = [rng.standard_normal((3, 2)) + label for label in y]
    params = dict(levels=1, epochs=2, node_dim=4, hidden=4, random_state=0)
    big = DeepPyramidClassifier(**params).fit(X, y)
    assert big.early_stopping_ and len(big.validation_loss_curve_) == 2
    small = DeepPyramidClassifier(**params).fit(X[:999], y[:999])
    assert not small.early_stopping_ and small.validation_loss_curve_ == []
    # n_networks="auto" follows the same threshold: five networks averaged below it
    assert big.n_networks_ == 1 and small.n_networks_ == 5


def test_validation_split_is_stratified_and_seeded():
    y = np.repeat([0, 1, 2], [20, 10, 6])
    train, valid = validation_split(y, 0.25, seed=3)
    assert sorted([*train.tolist(), *valid.tolist()]) == list(range(36))
    held_out = np.bincount(y[valid.numpy()], minlength=3)
    assert held_out.sum() == 9 and held_out.min() >= 1  # ceil(0.25 * 36), every class
    assert np.all(np.abs(held_out - 0.25 * np.array([20, 10, 6])) < 1)  # stratified
    again = validation_split(y, 0.25, seed=3)
    np.testing.assert_array_equal(valid.numpy(), again[1].numpy())
