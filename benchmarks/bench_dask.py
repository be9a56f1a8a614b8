"""Per-task work through a joblib backend: the same fit sequentially and on a Dask cluster.

The libsvm alpha-step runs one-vs-rest tasks with ``joblib.Parallel(n_jobs)``, so
``joblib.parallel_backend("dask")`` sends them to Dask workers without code changes. This
runs a local cluster (``--workers`` processes, one thread each) on this machine and fits
the same model four ways: sequential (``n_jobs=None``), joblib's threads (``n_jobs=-1``,
the alpha-step's default preference: libsvm releases the GIL), joblib's local processes
(``n_jobs=-1`` under ``parallel_backend("loky")``), and Dask (``n_jobs=-1`` under
``parallel_backend("dask")``); the models must be the same (max |beta difference|
printed). On a real cluster, point ``Client`` at
its scheduler instead.

Run: ``PYTHONPATH=. python benchmarks/bench_dask.py [--n 1000] [--levels 3]``
(needs ``pip install "dask[distributed]"``)
"""

import argparse
import time

import joblib
import numpy as np
from _common import machine_line, order_sensitive_videos, print_table

from mkl_tp import PyramidMKLClassifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(machine_line())
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print('dask is not installed (pip install "dask[distributed]"): nothing measured')
        return
    X, y = order_sensitive_videos(args.n, 512, args.classes, seed=0)
    rows, reference = [], None

    def fit(name, n_jobs):
        nonlocal reference
        start = time.perf_counter()
        clf = PyramidMKLClassifier(levels=args.levels, n_jobs=n_jobs).fit(X, y)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = clf.beta_
        rows.append(
            dict(
                name=name,
                fit=seconds,
                iters=clf.n_iter_,
                diff=float(np.abs(clf.beta_ - reference).max()),
            )
        )
        print_table(rows[-1:], columns)

    columns = [
        ("name", "backend", "{}"),
        ("fit", "fit s", "{:.2f}"),
        ("iters", "iters", "{}"),
        ("diff", "max |beta - sequential|", "{:.1e}"),
    ]
    fit("sequential (n_jobs=None)", None)
    fit("joblib threads (n_jobs=-1)", -1)
    with joblib.parallel_backend("loky"):
        fit("joblib processes (loky, n_jobs=-1)", -1)
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster),
    ):
        with joblib.parallel_backend("dask"):
            fit(f"dask LocalCluster ({args.workers} workers)", -1)
    print("\nSummary")
    print_table(rows, columns)


if __name__ == "__main__":
    main()
