"""Tests for mkl_tp.solvers.svm: the libsvm alpha-step always ends, and gives SVC's duals."""

import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

from mkl_tp.solvers import svm
from mkl_tp.solvers.svm import libsvm_max_iter, one_vs_rest_labels, svm_duals


def test_the_iteration_bound_grows_with_n():
    assert libsvm_max_iter(40) == 10**6 and libsvm_max_iter(5000) == 5 * 10**6


def test_a_huge_C_on_data_that_is_not_separable_stops_with_a_warning():
    # Random labels: unbounded, libsvm needs ~7e7 iterations (about 20 s) at C = 1e6.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(100, 20))
    kernel = features @ features.T / 20
    Y = one_vs_rest_labels(rng.integers(0, 2, 100), 2)
    start = time.perf_counter()
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1000000"):
        duals = svm_duals(kernel, Y, C=1e6)
    assert time.perf_counter() - start < 10
    assert np.isfinite(duals.objective).all()


def test_moderate_C_is_solved_exactly_without_a_warning():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 5))
    kernel = features @ features.T
    Y = one_vs_rest_labels(rng.integers(0, 3, 60), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        duals = svm_duals(kernel, Y, C=10.0)
    alpha = np.abs(duals.coef)
    assert (alpha <= 10.0 + 1e-9).all() and np.allclose((duals.coef).sum(axis=0), 0, atol=1e-8)


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("n, positives", [(12, 0.5), (67, 0.1), (200, 0.3)])
def test_each_solve_gives_the_duals_scikit_learns_svc_gives(n, positives, C):
    # The independent reference: SVC(kernel="precomputed") itself, on imbalanced labels,
    # a rank-deficient kernel (d < n) and C from nearly hard to very soft margins.
    rng = np.random.default_rng(n)
    features = rng.normal(size=(n, 8))
    kernel = features @ features.T / 8
    labels = np.where(rng.random(n) < positives, 1.0, -1.0)
    labels[:2] = (1.0, -1.0)
    svc = SVC(kernel="precomputed", C=C, tol=1e-4, max_iter=libsvm_max_iter(n))
    svc.fit(kernel, labels)
    expected = np.zeros(n)
    expected[svc.support_] = svc.dual_coef_[0]
    duals = svm_duals(kernel, labels[:, None], C=C)
    np.testing.assert_allclose(duals.coef[:, 0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(duals.intercept[0], svc.intercept_[0], rtol=0, atol=1e-12)
    assert kernel[:3] @ duals.coef[:, 0] + duals.intercept[0] == pytest.approx(
        svc.decision_function(kernel[:3]), abs=1e-12
    )


def test_solves_call_libsvm_directly_on_the_installed_scikit_learn():
    # A scikit-learn that changed the binding's arguments would make every solve fall back
    # to SVC silently (same duals, ten times the overhead on small folds): say so here.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 3))
    svm_duals(features @ features.T, one_vs_rest_labels(np.arange(20) % 2, 2), C=1.0)
    assert svm._libsvm is not None


def test_one_class_labels_are_refused_as_svc_refuses_them():
    kernel = np.eye(5)
    with pytest.raises(ValueError, match="number of classes has to be greater than one"):
        svm_duals(kernel, -np.ones((5, 1)), C=1.0)
