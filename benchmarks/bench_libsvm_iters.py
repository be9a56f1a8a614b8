"""libsvm's iterations against C and N: what the alpha-step's bound ``max(10^6, 1000 N)`` cuts.

``mkl_tp.solvers.svm`` stops every libsvm solve at ``libsvm_max_iter(N)`` iterations so that
a fit always ends (libsvm's iterations grow with C without limit on data that is not
separable). This measures, for one binary SVM at libsvm tolerance 1e-4 on a linear kernel
of Gaussian features with random labels (the hardest case: most videos end up on or inside
the margin), the iterations an unbounded solve needs (as a multiple of N) and its time, and
whether the bound would stop it. Solves longer than ``--timeout`` seconds are not waited
for.

Run: ``PYTHONPATH=. python benchmarks/bench_libsvm_iters.py [--sizes 100 400 1600]``
"""

import argparse
import multiprocessing
import time

import numpy as np
from _common import machine_line, print_table

from mkl_tp.solvers.svm import libsvm_max_iter


def _solve(n, C, queue):
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, 20))
    kernel = features @ features.T / 20
    labels = np.where(rng.random(n) < 0.5, 1, -1)
    start = time.perf_counter()
    svc = SVC(kernel="precomputed", C=C, tol=1e-4).fit(kernel, labels)
    queue.put((int(svc.n_iter_[0]), time.perf_counter() - start))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--C", type=float, nargs="+", default=[1, 10, 100, 1e4, 1e6])
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    print(machine_line())
    rows = []
    for n in args.sizes:
        for C in args.C:
            queue = multiprocessing.Queue()
            worker = multiprocessing.Process(target=_solve, args=(n, C, queue))
            worker.start()
            worker.join(args.timeout)
            if worker.is_alive():
                worker.terminate()
                rows.append({"N": n, "C": C, "bound": libsvm_max_iter(n) / n, "stopped": "yes"})
                continue
            iterations, seconds = queue.get()
            rows.append(
                {
                    "N": n,
                    "C": C,
                    "per_n": iterations / n,
                    "seconds": seconds,
                    "bound": libsvm_max_iter(n) / n,
                    "stopped": "yes" if iterations >= libsvm_max_iter(n) else "no",
                }
            )
    print_table(
        rows,
        [
            ("N", "N", "{}"),
            ("C", "C", "{:g}"),
            ("per_n", "iterations / N (unbounded)", "{:.0f}"),
            ("seconds", "s", "{:.2f}"),
            ("bound", "bound / N", "{:.0f}"),
            ("stopped", "the bound stops it", "{}"),
        ],
    )


if __name__ == "__main__":
    main()
