"""Core benchmark (issue 2): PyramidMKLClassifier fit cost against one uniform-kernel SVM.

For N in {500, 2000} training videos, levels in {3, 6}, d = 512, 10 classes (seeded
synthetic order-sensitive data, see ``_common.order_sensitive_videos``), prints the fit time
of both kernels, the number of binary SVM solves, the peak resident memory during the fit,
test accuracy, and the ratio to one scikit-learn one-vs-rest ``SVC(kernel="precomputed")``
fit on the uniform-weight kernel, measured in the same run:

* ``svc s``   -- ``OneVsRestClassifier(SVC(kernel="precomputed")).fit(K_uniform, y)`` alone;
* ``uni s``   -- the whole uniform pipeline: descriptors, node scaling, ``K_uniform``, SVC;
* ``x svc`` / ``x uni`` -- MKL fit time divided by each.

Configurations (``--configs``):

* ``reference`` -- the original core path: libsvm alpha-step, SILP (linear) or
  projected-gradient (cross) beta-step, no node-kernel cache (``solver="libsvm",
  beta_method="silp" | "projected", cache_size=0``);
* ``default``   -- the estimator's defaults (libsvm, level method, node-kernel cache);
* ``batch``     -- ``solver="batch"`` (the batched numpy dual solver) with the defaults;
* ``float32``   -- ``dtype="float32"``: float32 node features and float32 node-kernel
  products (see docs/performance.rst, "Where float32 is safe");
* ``shared`` / ``per_class`` -- ``pyramids`` fixed to one weight vector for all classes or
  one per class, the other settings at their defaults (issue 12: per-class fits should
  cost at most twice the shared fit at N = 2000, levels 6).

Run: ``PYTHONPATH=. python benchmarks/bench_core.py [--sizes 500 2000] [--levels 3 6]``.
"""

import argparse
import time
import warnings

import numpy as np
from _common import PeakRSS, convergence_label, machine_line, order_sensitive_videos, print_table
from sklearn.exceptions import ConvergenceWarning
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from mkl_tp import PyramidMKLClassifier
from mkl_tp.kernels.feature_maps import normalize_nodes, unit_diagonal_scales
from mkl_tp.pyramid.descriptors import node_descriptors_batch

CONFIGS = {
    "reference": dict(
        solver="libsvm", beta_method={"linear": "silp", "cross": "projected"}, cache_size=0
    ),
    "default": dict(),
    "batch": dict(solver="batch"),
    "float32": dict(dtype="float32"),
    "shared": dict(pyramids="shared"),
    "per_class": dict(pyramids="per_class"),
}


def uniform_svc(X, y, X_test, y_test, levels):
    """The uniform-weight kernel and one OvR SVC on it; times and test accuracy."""
    times = {}
    start = time.perf_counter()
    psi = normalize_nodes(node_descriptors_batch(X, levels), "l2")
    scales = unit_diagonal_scales(psi)
    Z = (psi / np.sqrt(scales * psi.shape[1])[None, :, None]).reshape(len(X), -1)
    kernel = Z @ Z.T
    times["kernel"] = time.perf_counter() - start
    start = time.perf_counter()
    svc = OneVsRestClassifier(SVC(kernel="precomputed")).fit(kernel, y)
    times["svc"] = time.perf_counter() - start
    psi_test = normalize_nodes(node_descriptors_batch(X_test, levels), "l2")
    Z_test = (psi_test / np.sqrt(scales * psi.shape[1])[None, :, None]).reshape(len(X_test), -1)
    accuracy = float(np.mean(svc.predict(Z_test @ Z.T) == y_test))
    return times, accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--kernels", nargs="+", default=["linear", "cross"])
    parser.add_argument(
        "--configs", nargs="+", default=["reference", "default"], choices=sorted(CONFIGS)
    )
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--max-iter", type=int, default=100)
    args = parser.parse_args()
    print(machine_line())
    print(
        f"d={args.d}, classes={args.classes}, test videos={args.n_test}, C=1, tol=1e-3, "
        f"max_iter={args.max_iter}"
    )
    rows = []
    columns = [
        ("N", "N", "{}"),
        ("levels", "L", "{}"),
        ("kernel", "kernel", "{}"),
        ("config", "config", "{}"),
        ("fit", "fit s", "{:.2f}"),
        ("n_iter", "iters", "{}"),
        ("solves", "SVM solves", "{}"),
        ("conv", "conv", "{}"),
        ("peak", "peak GiB", "{:.2f}"),
        ("extra", "+GiB", "{:.2f}"),
        ("acc", "acc", "{:.3f}"),
        ("svc", "svc s", "{:.2f}"),
        ("x_svc", "x svc", "{:.1f}"),
        ("uni", "uni s", "{:.2f}"),
        ("x_uni", "x uni", "{:.1f}"),
        ("svc_acc", "svc acc", "{:.3f}"),
    ]
    for n in args.sizes:
        X, y = order_sensitive_videos(n, args.d, args.classes, seed=0)
        X_test, y_test = order_sensitive_videos(args.n_test, args.d, args.classes, seed=1)
        for levels in args.levels:
            times, svc_accuracy = uniform_svc(X, y, X_test, y_test, levels)
            uniform_total = times["kernel"] + times["svc"]
            for kernel in args.kernels:
                for config in args.configs:
                    options = dict(CONFIGS[config])
                    if isinstance(options.get("beta_method"), dict):
                        options["beta_method"] = options["beta_method"][kernel]
                    clf = PyramidMKLClassifier(
                        levels=levels,
                        kernel=kernel,
                        max_iter=args.max_iter,
                        random_state=0,
                        **options,
                    )
                    with warnings.catch_warnings(record=True) as caught, PeakRSS() as memory:
                        warnings.simplefilter("always", ConvergenceWarning)
                        start = time.perf_counter()
                        clf.fit(X, y)
                        fit = time.perf_counter() - start
                    converged = convergence_label(clf, caught)
                    row = dict(
                        N=n,
                        levels=levels,
                        kernel=kernel,
                        config=config,
                        fit=fit,
                        n_iter=clf.n_iter_,
                        solves=clf.n_svm_solves_,
                        conv=converged,
                        peak=memory.peak_gib,
                        extra=memory.extra_gib,
                        acc=clf.score(X_test, y_test),
                        svc=times["svc"],
                        x_svc=fit / times["svc"],
                        uni=uniform_total,
                        x_uni=fit / uniform_total,
                        svc_acc=svc_accuracy,
                    )
                    rows.append(row)
                    print_table([row], columns)
    print("\nSummary")
    print_table(rows, columns)
    return rows


if __name__ == "__main__":
    main()
