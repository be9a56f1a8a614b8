"""alpha-step solvers side by side: libsvm per task vs the batched dual solvers.

On the uniform-weight kernel of seeded synthetic order-sensitive data (levels 3, d = 512,
10 classes), times one alpha-step with each solver cold, and again warm-started after a
5% change of beta (what the MKL loop's later alpha-steps see; libsvm cannot warm start),
and prints the agreement with libsvm (max |objective difference| relative, max |decision
difference|). This is the measurement behind the default ``solver="libsvm"`` on CPUs.

Run: ``PYTHONPATH=. python benchmarks/bench_solvers.py [--sizes 1000 3000]``
"""

import argparse
import time

import numpy as np
from _common import machine_line, order_sensitive_videos, print_table

from mkl_tp.kernels.combine import combined_kernel
from mkl_tp.kernels.feature_maps import normalize_nodes, unit_diagonal_scales
from mkl_tp.pyramid.descriptors import node_descriptors_batch
from mkl_tp.solvers.batch_svm import svm_duals_batch
from mkl_tp.solvers.svm import one_vs_rest_labels, svm_duals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--kernels", nargs="+", default=["linear", "cross"])
    parser.add_argument("--torch", action="store_true", help="also the torch solver (CPU)")
    args = parser.parse_args()
    print(machine_line())
    rows = []
    columns = [
        ("N", "N", "{}"),
        ("kernel", "kernel", "{}"),
        ("solver", "solver", "{}"),
        ("cold", "cold s", "{:.2f}"),
        ("warm", "warm s", "{:.2f}"),
        ("iters", "iters cold/warm", "{}"),
        ("obj", "max rel obj diff", "{:.1e}"),
        ("dec", "max |dec diff|", "{:.1e}"),
    ]
    for n in args.sizes:
        X, y = order_sensitive_videos(n, 512, 10, seed=0)
        psi = normalize_nodes(node_descriptors_batch(X, args.levels), "l2")
        blocks = [psi / np.sqrt(unit_diagonal_scales(psi))[None, :, None]]
        P = psi.shape[1]
        Y = one_vs_rest_labels(y, 10)
        beta = np.full(P, 1.0 / P)
        moved = beta * (1 + 0.05 * np.sign(np.arange(P) - P / 2))
        moved /= moved.sum()
        for kernel in args.kernels:
            K, _ = combined_kernel(blocks, beta, kernel)
            K2, _ = combined_kernel(blocks, moved, kernel)
            start = time.perf_counter()
            svm_duals(K, Y, 1.0)  # cold libsvm solve, timed only
            cold = time.perf_counter() - start
            start = time.perf_counter()
            reference2 = svm_duals(K2, Y, 1.0)
            warm = time.perf_counter() - start
            rows.append(
                dict(
                    N=n,
                    kernel=kernel,
                    solver="libsvm",
                    cold=cold,
                    warm=warm,
                    iters="-",
                    obj=0.0,
                    dec=0.0,
                )
            )
            print_table([rows[-1]], columns)
            solvers = [("batch", svm_duals_batch, {})]
            if args.torch:
                from mkl_tp.solvers.torch_svm import svm_duals_torch

                solvers.append(("torch cpu", svm_duals_torch, {"device": "cpu"}))
            for name, solve, options in solvers:
                start = time.perf_counter()
                first = solve(K, Y, 1.0, **options)
                info = first.info
                cold = time.perf_counter() - start
                start = time.perf_counter()
                second = solve(K2, Y, 1.0, init=first.coef, **options)
                info2 = second.info
                warm = time.perf_counter() - start
                obj = np.abs(second.objective / reference2.objective - 1).max()
                dec = np.abs(
                    K2 @ second.coef
                    + second.intercept
                    - K2 @ reference2.coef
                    - reference2.intercept
                ).max()
                rows.append(
                    dict(
                        N=n,
                        kernel=kernel,
                        solver=name,
                        cold=cold,
                        warm=warm,
                        iters=f"{info['n_iter']}/{info2['n_iter']}",
                        obj=obj,
                        dec=dec,
                    )
                )
                print_table([rows[-1]], columns)
    print("\nSummary (warm: after a 5% change of beta, from the previous duals)")
    print_table(rows, columns)


if __name__ == "__main__":
    main()
