"""The cross kernel's stop is scale-invariant: it compares the *relative* decrease of ``J``,
``(J_prev - J) / |J_prev|``, with ``tol`` (mkl_tp.solvers._alternation.fit_cross).

Repeating every one-vs-rest task ``k`` times multiplies ``J`` and its gradient by ``k`` and
changes nothing else: the same duals per task, the same steps (``step * gradient`` does not
depend on the scale, nor does the backtracking test), hence the same iterates. A relative
stop then stops at the same alpha-step; an absolute one (``J_prev - J < tol``) would stop
later on the scaled problem (here ``J`` ~ 40 per copy, so ``J`` >> 1 either way).
"""

import numpy as np
import pytest
from _problems import problem

from mkl_tp.solvers.mkl import fit_mkl

COPIES = 40


@pytest.mark.parametrize("method", ["mirror", "projected"])
@pytest.mark.parametrize("tol", [1e-3, 1e-2])
def test_cross_stop_does_not_depend_on_the_scale_of_j(method, tol):
    blocks, Y = problem(seed=0, n=40, nodes=4, classes=3)
    fits = [
        fit_mkl(
            blocks,
            np.tile(Y, (1, copies)),
            kernel="cross",
            C=1.0,
            tol=tol,
            max_iter=100,
            beta_method=method,
        )
        for copies in (1, COPIES)
    ]
    one, many = fits
    assert one.converged and many.converged
    # the scaled problem is the same problem: J and its path scale by COPIES exactly
    assert many.objective == pytest.approx(COPIES * one.objective, rel=1e-9)
    np.testing.assert_allclose(many.history, COPIES * np.asarray(one.history), rtol=1e-9)
    # ... so a scale-invariant stop ends both at the same alpha-step, with the same weights
    assert many.n_iter == one.n_iter
    assert len(many.history) == len(one.history)
    np.testing.assert_allclose(many.beta, one.beta, rtol=0, atol=1e-9)
    # the recorded gap is the relative decrease: below tol, and the same for both
    assert 0 <= one.gap < tol
    assert many.gap == pytest.approx(one.gap, rel=1e-6, abs=1e-12)
