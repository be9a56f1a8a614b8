"""Near the hardware (issue 5, target 4): kernel building against numpy's GEMM, one run.

Measures, on the same machine in the same process, the floating-point rate of

* ``numpy GEMM``: ``A @ B`` with ``A`` (N, d) and ``B`` (d, N) float64, distinct operands
  (a plain ``dgemm``), and ``numpy A @ A.T`` (numpy then calls ``dsyrk``);
* ``node_kernels``: the per-node kernels ``Phi_p Phi_p'`` of ``P`` nodes (the cache of
  ``kernel="linear"``);
* ``combined_kernel``: ``K_beta`` of the linear kernel without cache (a product on
  ``[sqrt(beta_p) Phi_p]``), and of the cross kernel.

Rates count ``2 N^2 m`` flops per ``(N, m) x (m, N)`` product ("GEMM-equivalent": the work
a plain GEMM would do for the same kernel), so a symmetric product that executes half of
them shows up to twice the GEMM rate. Target: kernel building at >= 50% of numpy's GEMM.

If ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` are set on this machine they slow a current
numpy; to measure without them, unset both in the command only, e.g.
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python benchmarks/bench_gemm.py``;
the first line prints their values and the BLAS kernel in use.
"""

import argparse
import time

import numpy as np
from _common import machine_line, print_table

from mkl_tp.kernels.combine import combined_kernel
from mkl_tp.solvers.gram import node_kernels


def best_of(repeats, function):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--nodes", type=int, default=15)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    n, P, d = args.n, args.nodes, args.d
    rng = np.random.default_rng(0)
    A = rng.normal(size=(n, d))
    B = rng.normal(size=(d, n))
    blocks = [rng.normal(size=(n, P, d)) / np.sqrt(d)]
    beta = np.full(P, 1.0 / P)
    rows = []

    def rate(name, seconds, flops, note=""):
        rows.append(dict(name=name, seconds=seconds, gflops=flops / seconds / 1e9, note=note))

    gemm = best_of(args.repeats, lambda: A @ B)
    rate("numpy GEMM A @ B", gemm, 2 * n * n * d, f"({n}x{d}) x ({d}x{n}) float64")
    rate("numpy A @ A.T", best_of(args.repeats, lambda: A @ A.T), 2 * n * n * d, "syrk")
    rate(
        "node_kernels",
        best_of(args.repeats, lambda: node_kernels(blocks)),
        2 * n * n * d * P,
        f"{P} nodes, float64 products, float32 cache",
    )
    rate(
        "combined_kernel linear",
        best_of(args.repeats, lambda: combined_kernel(blocks, beta, "linear")),
        2 * n * n * d * P,
        "uncached, weighted blocks incl.",
    )
    rate(
        "combined_kernel cross",
        best_of(args.repeats, lambda: combined_kernel(blocks, beta, "cross")),
        2 * n * n * d,
        "one node width",
    )
    for row in rows:
        row["ratio"] = row["gflops"] / rows[0]["gflops"]
    print_table(
        rows,
        [
            ("name", "operation", "{}"),
            ("seconds", "s", "{:.3f}"),
            ("gflops", "GFLOP/s (GEMM-eq.)", "{:.1f}"),
            ("ratio", "/ numpy GEMM", "{:.2f}"),
            ("note", "note", "{}"),
        ],
    )
    kernel_rate = rows[2]["ratio"]
    print(
        f"\ntarget: node kernel building at >= 0.50 of numpy GEMM: "
        f"{'reached' if kernel_rate >= 0.5 else 'not reached'} ({kernel_rate:.2f})"
    )


if __name__ == "__main__":
    main()
