"""Scale (issue 5, target 1): UCF-101-sized MKL on this machine, and the memory model.

N = 10,000 training videos, 101 classes, levels = 6 (63 nodes), d = 2048 (seeded
synthetic order-sensitive data, 8 sub-actions, 8-24 frames per video), both kernels,
with per-node PCA to ``--pca`` dims (the paper's Table 5: 128) and float32 storage. Prints
per kernel: fit time, alpha-steps, SVM solves, peak RSS of the process tree during the
fit (baseline = RSS before fit, data included), test accuracy; then the memory model's
prediction against the measured peak for every size run (``--sizes`` runs several).
``--no-pca-sizes`` adds fits without PCA at smaller N (all else equal) for the accuracy
with and without PCA.

Memory model of one fit (bytes; F = total frames, s = itemsize of ``dtype``, k = PCA dims
or d, C = classes; see docs/performance.rst):

    validated copy of the frames                0 for float32/float64 frames (validated in
                                                place), 8 F d for other dtypes
    node descriptors                            s N P d      (until projected)
    base kernel's feature map (rbf, chi2)       s N P m      (m = n_components, beside the
                                                             descriptors, then the PCA's input)
    projected node features (PCA)               s N P k      (k = d without PCA: the same)
    node-kernel cache (linear, within budget)   4 P N^2
    K_beta (+ one float32 product)              (8 + s) N^2
    weighted features Z (uncached, and once     s N P k (linear) / s N k (cross)
    more for the primal weights after the loop)

    peak = 8 F d + max(descriptors + map, (map or descriptors) [+ features with PCA],
                       features + cache + (8 + s) N^2 [+ Z uncached], features + Z)

Run: ``PYTHONPATH=. python benchmarks/bench_scale.py`` (full size);
``--sizes 2500 10000`` measures the model at two sizes.
"""

import argparse
import logging
import time
import warnings

import numpy as np
from _common import PeakRSS, convergence_label, machine_line, order_sensitive_videos, print_table
from sklearn.exceptions import ConvergenceWarning

from mkl_tp import PyramidMKLClassifier


def predicted_peak(n, frames, P, d, k, dtype, kernel, cache_bytes, pca=True, map_width=None):
    """The memory model above, in bytes (``pca=False``: descriptors are the features;
    ``map_width``: columns of the base kernel's feature map, ``None`` for linear)."""
    s = np.dtype(dtype).itemsize
    validated = 0  # the benchmark's frames are float32: validation keeps them as they are
    features = s * n * P * k
    mapped = s * n * P * map_width if map_width else 0
    descriptors = max(s * n * P * d + mapped, (mapped or s * n * P * d) + (features if pca else 0))
    cache = 4 * P * n * n if kernel == "linear" and 4 * P * n * n <= cache_bytes else 0
    weighted = s * n * P * k if kernel == "linear" else s * n * k
    solving = features + cache + (8 + s) * n * n + (0 if cache else weighted)
    final = features + weighted  # primal weights: Z' a after the loop
    return validated + max(descriptors, solving, final)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--pca", type=int, default=128)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--kernels", nargs="+", default=["linear", "cross"])
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--no-pca-sizes", type=int, nargs="*", default=[])
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument(
        "--verbose", action="store_true", help="log every alpha-step (J, gap) with its time"
    )
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(machine_line())
    P = 2**args.levels - 1
    rows = []
    columns = [
        ("N", "N", "{}"),
        ("kernel", "kernel", "{}"),
        ("pca", "pca", "{}"),
        ("fit", "fit s", "{:.1f}"),
        ("n_iter", "iters", "{}"),
        ("solves", "SVM solves", "{}"),
        ("conv", "conv", "{}"),
        ("peak", "peak GiB", "{:.2f}"),
        ("extra", "+GiB in fit", "{:.2f}"),
        ("model", "model +GiB", "{:.2f}"),
        ("acc", "test acc", "{:.3f}"),
    ]
    runs = [(n, args.pca) for n in args.sizes] + [(n, None) for n in args.no_pca_sizes]
    for n, pca in runs:
        X, y = order_sensitive_videos(
            n, args.d, args.classes, seed=0, min_len=8, max_len=24, n_parts=8
        )
        X_test, y_test = order_sensitive_videos(
            args.n_test, args.d, args.classes, seed=1, min_len=8, max_len=24, n_parts=8
        )
        frames = sum(x.shape[0] for x in X)
        print(
            f"N={n}: {frames} frames ({frames * args.d * 4 / 2**30:.2f} GiB float32 input)",
            flush=True,
        )
        for kernel in args.kernels:
            clf = PyramidMKLClassifier(
                levels=args.levels,
                kernel=kernel,
                dtype=args.dtype,
                pca_components=pca,
                n_jobs=args.n_jobs,
                max_iter=args.max_iter,
                random_state=0,
                verbose=int(args.verbose),
            )
            with warnings.catch_warnings(record=True) as caught, PeakRSS() as memory:
                warnings.simplefilter("always", ConvergenceWarning)
                start = time.perf_counter()
                clf.fit(X, y)
                fit = time.perf_counter() - start
            model = predicted_peak(
                n,
                frames,
                P,
                args.d,
                pca or args.d,
                args.dtype,
                kernel,
                clf.cache_size * 2**20,
                pca=pca is not None,
                map_width=None if clf.base_kernel_ == "linear" else clf.n_components,
            )
            rows.append(
                dict(
                    N=n,
                    kernel=kernel,
                    pca=pca or "-",
                    fit=fit,
                    n_iter=clf.n_iter_,
                    solves=clf.n_svm_solves_,
                    conv=convergence_label(clf, caught),
                    peak=memory.peak_gib,
                    extra=memory.extra_gib,
                    model=model / 2**30,
                    acc=clf.score(X_test, y_test),
                )
            )
            print_table([rows[-1]], columns)
            del clf
    print("\nSummary")
    print_table(rows, columns)
    for row in rows:
        if row["N"] == 10000 and row["pca"] != "-":
            verdict = row["fit"] <= 900 and row["peak"] <= 16
            print(
                f"target 1 ({row['kernel']}): fit {row['fit']:.0f} s <= 900 s and peak "
                f"{row['peak']:.1f} GiB <= 16 GiB: {'reached' if verdict else 'not reached'}"
            )


if __name__ == "__main__":
    main()
