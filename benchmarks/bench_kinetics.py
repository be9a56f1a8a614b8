"""Kinetics-scale fit from a float16 HDF5 cache on disk (issue 11, the Kinetics target).

Writes a seeded synthetic cache with the store API (``FeatureWriter``, float16, d = 512,
T = 20-100 frames, ``--classes`` classes whose sub-actions come in class-specific orders:
``_common.order_sensitive_stream`` with 8 parts, one per finest node at levels 4) and a CSV
split, then fits from the cache the way ``python -m mkl_tp.fit`` does, but with the frames
left on disk: ``FeatureSequence`` over the train ids ->
``PyramidMKLClassifier(levels=4, pca_components=64, dtype="float32")`` (the default learned
fit: ``solver="auto"``, ``mkl_norm="auto"``) and the uniform-weight baseline
(``node_weights="uniform"``). Per fit: wall time split into stages (node features: read,
pool, fit the per-node PCA on ``subsample`` videos and reduce; the ``mkl_norm="auto"``
selection; the final MKL fit), predict time, peak RSS of the process (fit and predict),
test accuracy, alpha-steps. Then the memory model's terms for this ``N``.

The cache (``--cache``, one file per setting) is reused when present. The same data through
the command line: ``python -m mkl_tp.fit --features CACHE/kinetics_*.h5 --splits
CACHE/kinetics_*.csv --levels 4`` (which fits the cross kernel too).

Run: ``PYTHONPATH=. python benchmarks/bench_kinetics.py --n 10000 [--classes 400]
[--n-test 4000] [--fits learned uniform] [--cache /tmp/mkl_tp_kinetics]``
"""

import argparse
import csv
import gc
import os
import time
import warnings

import numpy as np
from _common import PeakRSS, machine_line, order_sensitive_stream, print_table
from sklearn.exceptions import ConvergenceWarning

from mkl_tp import PyramidMKLClassifier, estimator
from mkl_tp.pyramid.descriptors import n_nodes
from mkl_tp.store import FeatureSequence, FeatureWriter

FITS = {"learned": {}, "uniform": {"node_weights": "uniform"}}


def write_cache(args):
    """The cache and split of these settings: ``(h5 path, csv path, train ids, y_train,
    test ids, y_test)``; written once, in ``args.cache``."""
    name = (
        f"kinetics_n{args.n}_t{args.n_test}_c{args.classes}_d{args.d}"
        f"_T{args.min_len}-{args.max_len}_s{args.signal}"
    )
    path = os.path.join(args.cache, name + ".h5")
    split = os.path.join(args.cache, name + ".csv")
    common = dict(
        d=args.d,
        n_classes=args.classes,
        min_len=args.min_len,
        max_len=args.max_len,
        n_parts=2 ** (args.levels - 1),
        signal=args.signal,
    )
    ids = {
        "train": [f"train/v{i:07d}" for i in range(args.n)],
        "test": [f"test/v{i:07d}" for i in range(args.n_test)],
    }
    if os.path.exists(split):  # written before: the labels are in the split
        with open(split, newline="") as handle:
            labels = {row["video_id"]: int(row["label"][5:]) for row in csv.DictReader(handle)}
        return (
            path,
            split,
            ids["train"],
            np.array([labels[i] for i in ids["train"]]),
            ids["test"],
            np.array([labels[i] for i in ids["test"]]),
        )
    y_train, train = order_sensitive_stream(args.n, seed=0, **common)
    y_test, test = order_sensitive_stream(args.n_test, seed=1, **common)
    os.makedirs(args.cache, exist_ok=True)
    start = time.perf_counter()
    info = {"stream": "rgb", "arch": "synthetic", "dtype": "float16", "feature_dim": args.d}
    with FeatureWriter(path, info, durable=False) as writer:
        for subset, videos in (("train", train), ("test", test)):
            for video_id, x in zip(ids[subset], videos):
                if video_id not in writer.completed:
                    writer.write(video_id, x)
    with open(split, "w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["video_id", "label", "subset"])
        for subset, y in (("train", y_train), ("test", y_test)):
            rows.writerows([i, f"class{c:03d}", subset] for i, c in zip(ids[subset], y))
    print(
        f"wrote {path}: {os.path.getsize(path) / 2**30:.2f} GiB in "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return path, split, ids["train"], y_train, ids["test"], y_test


class StageClock:
    """Seconds spent in the estimator's node features and ``mkl_norm`` selection."""

    def __init__(self):
        self.seconds = {}

    def wrap(self, owner, name, key):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)


def model_bytes(args, n, n_tasks):
    """The memory model's terms (docs/performance.rst, "Out of core")."""
    P = n_nodes(args.levels)
    m = P * args.pca
    return {
        "blocks (N P k float32)": 4 * n * m,
        "Z (N P k float64)": 8 * n * m,
        "10 N x tasks float64": 80 * n * n_tasks,
        "sample descriptors": 4 * min(n, args.subsample) * P * args.d,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="training videos")
    parser.add_argument("--n-test", type=int, default=4000)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--pca", type=int, default=64)
    parser.add_argument("--subsample", type=int, default=20000)
    parser.add_argument("--min-len", type=int, default=20)
    parser.add_argument("--max-len", type=int, default=100)
    parser.add_argument("--signal", type=float, default=0.1)
    parser.add_argument("--fits", nargs="*", default=list(FITS), choices=list(FITS))
    parser.add_argument("--cache", default="/tmp/mkl_tp_kinetics")
    args = parser.parse_args()
    print(machine_line())
    path, split, train_ids, y_train, test_ids, y_test = write_cache(args)
    train, test = FeatureSequence(path, train_ids), FeatureSequence(path, test_ids)
    rows = []
    clock = StageClock()
    clock.wrap(estimator, "select_mkl_norm", "mkl_norm")
    for name in args.fits:
        clock.seconds.clear()
        model = PyramidMKLClassifier(
            levels=args.levels,
            pca_components=args.pca,
            dtype="float32",
            subsample=args.subsample,
            random_state=0,
            **FITS[name],
        )
        clock.wrap(model, "_node_blocks", "features")
        gc.collect()
        with PeakRSS() as memory, warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(train, y_train)
            fit_s = time.perf_counter() - start
            fit_stages = dict(clock.seconds)
            start = time.perf_counter()
            accuracy = float(np.mean(model.predict(test) == y_test))
            predict_s = time.perf_counter() - start
        features_s, norm_s = fit_stages.get("features", 0.0), fit_stages.get("mkl_norm", 0.0)
        rows.append(
            {
                "fit": name,
                "n": args.n,
                "fit_s": fit_s,
                "features_s": features_s,
                "norm_s": norm_s,
                "mkl_s": fit_s - features_s - norm_s,
                "predict_s": predict_s,
                "peak": memory.peak_gib,
                "acc": accuracy,
                "steps": model.n_iter_,
                "norm": model.mkl_norm_,
            }
        )
        print(
            f"{name}: fit {fit_s:.0f} s, peak {memory.peak_gib:.2f} GiB, accuracy {accuracy:.4f}",
            flush=True,
        )
        del model
    print(
        f"\nN = {args.n} train / {args.n_test} test videos, {args.classes} classes, "
        f"levels {args.levels}, d = {args.d} float16 on disk, PCA {args.pca} per node, "
        f"subsample {args.subsample}, T {args.min_len}-{args.max_len}"
    )
    print_table(
        rows,
        [
            ("fit", "fit", "{}"),
            ("n", "N", "{}"),
            ("fit_s", "fit s", "{:.0f}"),
            ("features_s", "features s", "{:.0f}"),
            ("norm_s", "mkl_norm s", "{:.0f}"),
            ("mkl_s", "MKL s", "{:.0f}"),
            ("predict_s", "predict s", "{:.0f}"),
            ("peak", "peak GiB", "{:.2f}"),
            ("acc", "test acc", "{:.4f}"),
            ("steps", "alpha-steps", "{}"),
            ("norm", "mkl_norm_", "{}"),
        ],
    )
    terms = model_bytes(args, args.n, args.classes)
    print("memory model: " + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in terms.items()))


if __name__ == "__main__":
    main()
