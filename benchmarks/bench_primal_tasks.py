"""The primal alpha-step on many one-vs-rest tasks (issue 11, the Kinetics target).

One cold :func:`mkl_tp.solvers.primal.svm_duals_primal` on seeded clustered features
(``--n`` videos, ``--classes`` one-vs-rest tasks, ``--m`` columns: class means plus noise,
rows scaled to unit norm like the weighted node features of a unit-diagonal kernel), in
three settings run in the same process:

* ``1 thread, from 0``: the tasks' Newton systems one after another, and no coarse start
  (the solver before this benchmark's commit, but for the working columns and the line
  search on unsettled tasks, which have no switch);
* ``threads, from 0``: the systems in as many threads as BLAS has;
* ``default``: threads and the coarse start (a solve on a stratified quarter first,
  recursively, for 8000 or more videos).

Prints seconds, Newton steps, the summed dual objective (they agree to the tolerance),
and the time against the first setting.

Run: ``PYTHONPATH=. python benchmarks/bench_primal_tasks.py [--n 10000] [--classes 400]
[--m 960]``
"""

import argparse
import time

import numpy as np
from _common import machine_line, print_table

from mkl_tp.solvers import primal
from mkl_tp.solvers.svm import one_vs_rest_labels


def problem(n, classes, m, separation, seed=0):
    """Rows ``mu_y + noise`` scaled to unit norm, and the one-vs-rest labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    means = rng.normal(size=(classes, m)) * separation / np.sqrt(m)
    Z = means[y] + rng.normal(size=(n, m)) / np.sqrt(m)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    return Z, one_vs_rest_labels(y, classes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--m", type=int, default=960)
    parser.add_argument("--separation", type=float, default=3.0)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()
    print(machine_line())
    Z, Y = problem(args.n, args.classes, args.m, args.separation)
    coarse_min = primal._COARSE_MIN_VIDEOS
    settings = [
        ("1 thread, from 0", 1, np.inf),
        ("threads, from 0", None, np.inf),
        ("default", None, coarse_min),
    ]
    rows = []
    for name, threads, smallest in settings:
        primal._COARSE_MIN_VIDEOS = smallest
        start = time.perf_counter()
        duals = primal.svm_duals_primal(Z, Y, args.C, tol=args.tol, n_threads=threads)
        info = duals.info
        seconds = time.perf_counter() - start
        rows.append(
            {
                "setting": name,
                "s": seconds,
                "newton": info["n_iter"],
                "J": float(duals.objective.sum()),
                "violation": float(info["violation"].max()),
                "ratio": seconds / rows[0]["s"] if rows else 1.0,
            }
        )
        print(f"{name}: {seconds:.1f} s", flush=True)
    primal._COARSE_MIN_VIDEOS = coarse_min
    print(f"\nN = {args.n}, {args.classes} tasks, m = {args.m}, C = {args.C}, tol = {args.tol}")
    print_table(
        rows,
        [
            ("setting", "setting", "{}"),
            ("s", "seconds", "{:.1f}"),
            ("ratio", "x first", "{:.2f}"),
            ("newton", "Newton steps", "{}"),
            ("J", "sum of J", "{:.6g}"),
            ("violation", "max violation", "{:.1e}"),
        ],
    )


if __name__ == "__main__":
    main()
