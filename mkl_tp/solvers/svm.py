"""alpha-step: one-vs-rest binary SVM duals on a precomputed kernel.

For every class ``c`` with labels ``y_c in {-1, +1}^N`` this solves the SVM dual

    max_alpha  1'alpha - 1/2 (alpha * y_c)' K (alpha * y_c)
    s.t.       0 <= alpha <= C,  y_c' alpha = 0

with libsvm as ``sklearn.svm.SVC(kernel="precomputed")`` runs it, the exact reference. Classes
are independent and run through joblib whenever ``n_jobs`` or an active joblib backend asks
for more than one worker (a plain loop otherwise, ``_common.in_threads``), so
``joblib.parallel_backend("dask")`` (or Ray) spreads them over a cluster without code changes.

Each solve calls scikit-learn's own libsvm binding (``sklearn.svm._libsvm.fit``) with the
arguments ``SVC.fit`` passes it: ``SVC.fit`` spends about ten times the solve itself on
checking its inputs when a fold holds a hundred videos, and the MKL loop and the lp-norm
selection make hundreds of such solves (``benchmarks/bench_learning_cost.py``, table 3).
Where that binding cannot be called as expected (another scikit-learn), ``SVC`` solves
instead: the same libsvm, the same duals.

Every solve is bounded (:func:`libsvm_max_iter`), so a fit always ends: libsvm's iterations
grow with C without limit (an infinite or huge C on data that is not separable never
converges). A solve that reaches the bound stops with scikit-learn's ``ConvergenceWarning``
("Solver terminated early"), passed through unchanged.
"""

import warnings

import numpy as np
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

try:
    from sklearn.svm import _libsvm
except ImportError:  # pragma: no cover - a scikit-learn without the binding
    _libsvm = None

from ._common import SVMDuals, in_threads

__all__ = ["SVMDuals", "svm_duals", "one_vs_rest_labels", "libsvm_tolerance", "libsvm_max_iter"]

# libsvm's default stopping tolerance (on the KKT violation). Tighter than SVC's 1e-3
# because the beta-step reads the dual objective and its gradient from alpha: a loose alpha
# makes the duality gap noisy. The MKL loop passes libsvm_tolerance(its own tol), so the
# alpha-step's error stays a tenth of the loop's (benchmarks/bench_libsvm_tol.py).
_LIBSVM_TOL = 1e-4


def libsvm_tolerance(tol):
    """libsvm's tolerance for an MKL loop stopping at ``tol``.

    A tenth of ``tol``, within ``[1e-5, 1e-4]`` (``1e-4`` is ``_LIBSVM_TOL``).
    """
    return min(max(0.1 * tol, 1e-5), _LIBSVM_TOL)


# Iterations per training video, and the least bound: far above what a converging solve
# needs for C up to 100, the --C auto grid's largest (benchmarks/bench_libsvm_iters.py),
# while every iteration costs O(N), so a runaway solve
# (huge C on data that is not separable) ends in seconds at N in the thousands.
_MAX_ITER_PER_VIDEO = 1000
_MIN_MAX_ITER = 1_000_000


def libsvm_max_iter(n_samples):
    """Most libsvm iterations of one binary solve on ``n_samples`` videos.

    ``max(10**6, 1000 * n_samples)``: proportional to N (each iteration moves two duals,
    so a solve needs a multiple of N), with a floor that keeps small problems exact.
    """
    return max(_MIN_MAX_ITER, _MAX_ITER_PER_VIDEO * int(n_samples))


def one_vs_rest_labels(y_index, n_classes):
    """``{-1, +1}`` label columns: one column (positive = class 1) for two classes.

    Parameters
    ----------
    y_index : ndarray of shape (N,)
        Class indices ``0..n_classes-1``.
    n_classes : int

    Returns
    -------
    ndarray of shape (N, 1) for two classes, (N, n_classes) otherwise
    """
    if n_classes == 2:
        return np.where(y_index == 1, 1.0, -1.0)[:, None]
    return np.where(y_index[:, None] == np.arange(n_classes)[None, :], 1.0, -1.0)


def _binary_dual(kernel, labels, C, tol=_LIBSVM_TOL):
    """One binary solve: ``(coef = alpha * y, intercept)`` as ``SVC`` reports them."""
    global _libsvm
    if _libsvm is not None and labels.min() < 0 < labels.max():
        try:
            return _libsvm_dual(kernel, labels, C, tol)
        except TypeError:
            # The binding's arguments changed: SVC calls it the way this version expects.
            _libsvm = None
    return _svc_dual(kernel, labels, C, tol)


def _libsvm_dual(kernel, labels, C, tol):
    """``SVC(kernel="precomputed").fit`` without its input checks, for ``{-1, +1}`` labels
    of both signs: libsvm sees class 0 for -1 and class 1 for +1, as from ``SVC``, and
    its signs are flipped as ``SVC`` flips them for two classes."""
    max_iter = libsvm_max_iter(kernel.shape[0])
    _libsvm.set_verbosity_wrap(0)  # a process-wide libsvm setting, which SVC sets each fit
    support, _, _, dual_coef, intercept, _, _, status, _ = _libsvm.fit(
        np.ascontiguousarray(kernel, dtype=np.float64),
        (labels > 0).astype(np.float64),
        svm_type=0,
        sample_weight=np.empty(0),
        class_weight=np.empty(0),
        kernel="precomputed",
        C=float(C),
        nu=0.5,
        probability=False,
        degree=3,
        shrinking=True,
        tol=float(tol),
        cache_size=200.0,
        coef0=0.0,
        gamma=0.0,
        epsilon=0.1,
        max_iter=max_iter,
        random_seed=0,
    )
    if status == 1:
        # SVC's own warning, word for word.
        warnings.warn(
            f"Solver terminated early (max_iter={max_iter}).  Consider pre-processing your "
            "data with StandardScaler or MinMaxScaler.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not (np.isfinite(dual_coef).all() and np.isfinite(intercept).all()):
        raise ValueError(
            "The dual coefficients or intercepts are not finite. The input data may "
            "contain large values and need to be preprocessed."
        )
    coef = np.zeros(kernel.shape[0])
    coef[support] = -dual_coef[0]
    return coef, -float(intercept[0])


def _svc_dual(kernel, labels, C, tol):
    svc = SVC(
        kernel="precomputed",
        C=C,
        tol=tol,
        shrinking=True,
        max_iter=libsvm_max_iter(kernel.shape[0]),
    )
    # The kernel is built here from validated, finite features and the parameters are
    # fixed above: skip scikit-learn's finiteness scan of all N^2 entries and its
    # parameter validation.
    with config_context(assume_finite=True, skip_parameter_validation=True):
        svc.fit(kernel, labels)
    coef = np.zeros(kernel.shape[0])
    coef[svc.support_] = svc.dual_coef_[0]
    return coef, float(svc.intercept_[0])


def svm_duals(kernel, Y, C, n_jobs=None, tol=_LIBSVM_TOL):
    """Solve the ``C`` binary SVM duals of one-vs-rest on a precomputed kernel.

    Parameters
    ----------
    kernel : ndarray of shape (N, N)
        Positive semi-definite training kernel.
    Y : ndarray of shape (N, n_tasks)
        ``{-1, +1}`` labels, one column per binary task (see :func:`one_vs_rest_labels`).
    C : float
        Box constraint of the dual.
    n_jobs : int or None
        joblib workers over tasks.
    tol : float, default=1e-4
        libsvm's stopping tolerance (KKT violation).

    Returns
    -------
    SVMDuals
        ``info`` is empty: libsvm reports no diagnostics here.

    Warns
    -----
    ConvergenceWarning
        A solve stopped at :func:`libsvm_max_iter` iterations; its duals are approximate.
    """
    # libsvm releases the GIL: threads share the N x N kernel, where processes would copy
    # or memory-map it on every alpha-step (benchmarks/bench_libsvm_tol.py times both).
    # A joblib.parallel_backend(...) context still overrides this preference.
    results = in_threads(lambda c: _binary_dual(kernel, Y[:, c], C, tol), range(Y.shape[1]), n_jobs)
    coef = np.column_stack([r[0] for r in results])
    intercept = np.array([r[1] for r in results])
    # One (N, N) x (N, C) product; einsum's own path for the triple product is slower.
    objective = np.abs(coef).sum(axis=0) - 0.5 * np.einsum("ic,ic->c", coef, kernel @ coef)
    return SVMDuals(coef, intercept, objective, {})
