"""Tests of mkl_tp.deep.train through DeepPyramidClassifier on the bundled real data: early
stopping, the divergence guard, torch's global generator left alone."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")

from mkl_tp import load_basic_motions  # noqa: E402
from mkl_tp.deep import DeepPyramidClassifier  # noqa: E402

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
        levels=1, epochs=300, n_iter_no_change=3, tol=0.0, random_state=0
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
        DeepPyramidClassifier(levels=1, epochs=5, early_stopping=False, random_state=0).fit(
            train.X, train.y
        )
