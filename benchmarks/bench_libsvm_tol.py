"""libsvm's stopping tolerance: time against accuracy of the dual objectives (issue 5).

The MKL loop runs libsvm at a tenth of its ``tol`` within ``[1e-5, 1e-4]``. This measures
what that costs and buys on the scale benchmark's data (``bench_scale.py``: 101 classes,
levels 6, d = 2048, per-node PCA to 128, float32), cross kernel at random node weights:
the time of ``--tasks`` one-vs-rest SVMs and the relative error of their summed dual
objective against libsvm at ``1e-5`` (the former fixed setting) and, at the smaller size,
at ``1e-7``. Then the same tasks at ``1e-4`` sequentially, in 2 threads (the default
preference of ``svm_duals``) and in 2 joblib processes.

Run: ``PYTHONPATH=. python benchmarks/bench_libsvm_tol.py [--sizes 3000 10000]``
"""

import argparse
import time

import joblib
import numpy as np
from _common import machine_line, order_sensitive_videos, print_table

from mkl_tp import PyramidMKLClassifier
from mkl_tp.solvers.gram import TrainingKernels
from mkl_tp.solvers.svm import one_vs_rest_labels, svm_duals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 10000])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--kernel", default="cross", choices=["linear", "cross"])
    args = parser.parse_args()
    print(machine_line())
    rows, parallel = [], []
    parallel_columns = [("N", "N", "{}"), ("how", "tasks run", "{}"), ("seconds", "s", "{:.2f}")]
    columns = [
        ("N", "N", "{}"),
        ("tol", "libsvm tol", "{:g}"),
        ("seconds", "s", "{:.2f}"),
        ("error", "rel. error of sum J vs 1e-5", "{:.1e}"),
    ]
    for n in args.sizes:
        X, y = order_sensitive_videos(n, 2048, 101, seed=0, min_len=8, max_len=24, n_parts=8)
        clf = PyramidMKLClassifier(
            levels=6, kernel=args.kernel, pca_components=128, dtype="float32", random_state=0
        )
        clf._check_params()
        blocks = clf._node_blocks({"x": X}, fit=True)
        del X
        beta = np.random.default_rng(0).dirichlet(np.ones(63))
        kernel, _ = TrainingKernels(blocks, args.kernel).combined(beta)
        Y = one_vs_rest_labels(np.asarray(y), 101)[:, : args.tasks]
        tols = [1e-5, 1e-4, 1e-3] + ([1e-7] if n <= 4000 else [])
        reference = None
        for tol in tols:
            start = time.perf_counter()
            duals = svm_duals(kernel, Y, 1.0, tol=tol)
            seconds = time.perf_counter() - start
            total = duals.objective.sum()
            reference = total if reference is None else reference
            rows.append(
                dict(N=n, tol=tol, seconds=seconds, error=(reference - total) / abs(reference))
            )
            print_table(rows[-1:], columns)
        for name, n_jobs, backend in [
            ("sequential", 1, None),
            ("2 threads", 2, None),
            ("2 processes (loky)", 2, "loky"),
        ]:
            start = time.perf_counter()
            if backend is None:
                svm_duals(kernel, Y, 1.0, n_jobs=n_jobs)
            else:
                with joblib.parallel_backend(backend):
                    svm_duals(kernel, Y, 1.0, n_jobs=n_jobs)
            parallel.append(dict(N=n, how=name, seconds=time.perf_counter() - start))
            print_table(parallel[-1:], parallel_columns)
    print("\nSummary (negative error: closer to the optimum than the 1e-5 reference)")
    print_table(rows, columns)
    print(f"\nThe same {args.tasks} tasks at libsvm's default tolerance (1e-4), spread by joblib")
    print_table(parallel, parallel_columns)


if __name__ == "__main__":
    main()
