"""The memory and cost model: the dual path stops before allocating; "auto" picks a path."""

import numpy as np
import pytest
from _problems import problem, videos

from mkl_tp import PyramidMKLClassifier
from mkl_tp.solvers import cost, fit_mkl
from mkl_tp.solvers.cost import (
    PRIMAL_MIN_SAMPLES,
    check_dual_memory,
    choose_solver,
    dual_memory_bytes,
    weighted_width,
)


def test_dual_memory_error_names_the_size_and_suggests_primal():
    # N = 240,000 needs 921.6 GB: checked arithmetically, nothing is allocated.
    with pytest.raises(MemoryError) as error:
        check_dual_memory(240_000, budget=16 * 2**30)
    message = str(error.value)
    assert "N = 240000" in message and str(16 * 240_000**2) in message
    assert "solver='primal'" in message
    check_dual_memory(1000, budget=16 * 1000**2)  # exactly fits: no error


def test_fit_stops_before_forming_the_kernel(monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("an N x N kernel was formed")

    monkeypatch.setattr("mkl_tp.solvers.gram.combined_kernel", no_kernel)
    monkeypatch.setattr("mkl_tp.solvers.gram.node_kernels", no_kernel)
    blocks, Y = problem()
    for solver in ("libsvm", "batch"):
        with pytest.raises(MemoryError, match="N = 40 .*solver='primal'"):
            fit_mkl(blocks, Y, solver=solver, memory_budget=dual_memory_bytes(40) - 1)
    # The primal path forms no kernel, whatever the budget.
    fit_mkl(blocks, Y, solver="primal", memory_budget=1)


def test_estimator_auto_takes_the_primal_path_when_the_kernel_does_not_fit(monkeypatch):
    X, y = videos()
    monkeypatch.setattr(cost, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match="solver='primal'"):
        PyramidMKLClassifier(levels=2, solver="libsvm").fit(X, y)
    auto = PyramidMKLClassifier(levels=2, solver="auto", mkl_norm=1.0).fit(X, y)
    monkeypatch.undo()
    primal = PyramidMKLClassifier(levels=2, solver="primal", mkl_norm=1.0).fit(X, y)
    np.testing.assert_allclose(auto.beta_, primal.beta_, atol=1e-12)


def test_auto_choice_follows_the_model():
    assert choose_solver(500, 960) == "libsvm"
    assert choose_solver(PRIMAL_MIN_SAMPLES - 1, 10) == "libsvm"
    assert choose_solver(30_000, 960) == "primal"
    assert choose_solver(30_000, 30_000) == "libsvm"
    assert choose_solver(100_000, 200_000, budget=2**30) == "primal"  # does not fit
    blocks = [np.zeros((5, 3, 4)), np.zeros((5, 3, 2))]
    assert weighted_width(blocks, np.array([1, 0, 1, 1, 1, 0.0]), "linear") == 12
    assert weighted_width(blocks, np.full(6, 1 / 6), "cross") == 6
