"""Small problems shared by the solver, kernel-cache and estimator tests.

References are independent where one exists (libsvm through ``SVC``, cvxpy/Clarabel) and
otherwise the original path (SILP, uncached kernels, float64). Tolerances are explicit and
follow from the reference's own accuracy:

* libsvm stops at a maximal-violating-pair gap of a tenth of the MKL ``tol`` within
  ``[1e-5, 1e-4]`` (``1e-4``, ``_LIBSVM_TOL``, when called directly). Its dual objective is
  then within ~1e-7 relative, but its decisions ``K a + b`` only within
  ``O(sqrt(dual gap))`` of the unique optimum: we see up to 1e-4 and compare at 1e-3 (fits
  compared on decisions run at ``tol=1e-4`` or tighter, i.e. libsvm at 1e-5). Tight
  agreement (1e-8) is checked against cvxpy/Clarabel at 1e-11.
* Two MKL fits that both stop at a relative gap ``tol`` agree on ``J`` to ``tol``; ``beta``
  and the decisions along flat directions of ``J`` only to about ``sqrt(tol)``, so fits
  compared on beta/decisions run at a tighter ``tol`` than the default.
* float32 storage rounds entries at ``6e-8`` relative.
"""

import numpy as np

from mkl_tp.kernels.feature_maps import unit_diagonal_scales
from mkl_tp.solvers.svm import one_vs_rest_labels


def problem(seed=0, n=40, nodes=4, width=5, classes=3):
    """Scaled random node blocks where node 1 carries the class, plus labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    block = rng.normal(size=(n, nodes, width))
    block[:, 1, :classes] += 1.5 * np.eye(classes)[y]
    block /= np.sqrt(unit_diagonal_scales(block))[None, :, None]
    return [block], one_vs_rest_labels(y, classes)


def videos(n=36, d=4, classes=3, seed=0, signal=1.5):
    """Order-sensitive videos: the class shows only in the second half."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = []
    for label in y:
        T = int(rng.integers(3, 21))
        x = rng.normal(size=(T, d))
        x[T // 2 :, label % d] += signal
        X.append(x)
    return X, y


def decisions(kernel, duals):
    return kernel @ duals.coef + duals.intercept
