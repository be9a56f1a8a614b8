"""Tests for mkl_tp.solvers.svm: the libsvm alpha-step always ends."""

import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

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
