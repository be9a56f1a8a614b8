"""Deep multiple aggregation (mkl_tp.deep): accuracy against shallow MKL, training
throughput at UCF-101 scale, and the Eq. 7 fine-tuning speed-up.

Three tables:

1. BasicMotions (bundled real data), levels 1..4: shallow PyramidMKLClassifier
   (kernel="linear" and "cross", C chosen by 3-fold CV on the training set as in
   bench_basic_motions.py) against DeepPyramidClassifier with its defaults (mode "concat"
   and "average"; mean and spread over --seeds seeds). Test accuracy and fit seconds.
2. Training on cached features at the issue's scale: N=10,000 videos of 2048-d frames
   (mean T 185), levels=6 (63 nodes), 101 classes, 30 epochs. The one-off pooling pass is
   timed on --pool-videos synthetic videos and scaled to N; the training epochs run in full
   on N synthetic descriptors for --epochs epochs and are scaled to 30 (or run all 30 with
   --epochs 30). Target: <= 10 min on 2 CPU cores.
3. End-to-end fine-tuning with a random-weight ResNet-18 on generated 112x112 videos:
   seconds per epoch for K=1 (all frames back-propagated, Eq. 6) and K=8 (Eq. 7).

Run:  python benchmarks/bench_deep.py            (about 10 minutes on 2 cores)
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import torch
from _common import machine_line
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from mkl_tp import DeepPyramidClassifier, PyramidMKLClassifier, load_basic_motions
from mkl_tp.deep.finetune import finetune, trunk
from mkl_tp.deep.nets import PyramidNet, StreamHead
from mkl_tp.deep.train import train_network


def load():
    """1-minute load average: other processes share the cores and slow every timing."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def shallow_vs_deep(max_level, seeds):
    train, test = load_basic_motions()
    print(
        f"\n## 1. BasicMotions: {len(train.X)} train / {len(test.X)} test sequences of "
        f"{train.X[0].shape}; torch threads {torch.get_num_threads()}, load {load()}"
    )
    print(
        "shallow: C by 3-fold CV over (0.1, 1, 10, 100), node_norm='l2'; deep: defaults, "
        f"accuracy mean +- std over seeds 0..{seeds - 1}, fit s = mean per fit\n"
    )
    header = (
        "| level | MKL linear acc | fit s | MKL cross acc | fit s "
        "| deep concat acc | fit s | deep average acc | fit s |"
    )
    print(header)
    print("|" + "---|" * 9)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    for level in range(1, max_level + 1):
        cells = []
        for kernel in ("linear", "cross"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                search = GridSearchCV(
                    PyramidMKLClassifier(levels=level, kernel=kernel, max_iter=300),
                    {"C": [0.1, 1.0, 10.0, 100.0]},
                    cv=folds,
                )
                model = search.fit(train.X, train.y).best_estimator_
                start = time.perf_counter()
                model.fit(train.X, train.y)
                seconds = time.perf_counter() - start
            cells += [f"{100 * model.score(test.X, test.y):.1f} (C={model.C:g})", f"{seconds:.2f}"]
        for mode in ("concat", "average"):
            scores, seconds = [], []
            for seed in range(seeds):
                start = time.perf_counter()
                model = DeepPyramidClassifier(levels=level, mode=mode, random_state=seed)
                model.fit(train.X, train.y)
                seconds.append(time.perf_counter() - start)
                scores.append(100 * model.score(test.X, test.y))
            cells += [f"{np.mean(scores):.1f} +- {np.std(scores):.1f}", f"{np.mean(seconds):.2f}"]
        print(f"| {level} | " + " | ".join(cells) + " |", flush=True)


def synthetic_videos(n, d, rng, mean_length=185):
    """float32 videos with lengths uniform on [100, 270] (mean 185)."""
    lengths = rng.integers(mean_length - 85, mean_length + 86, size=n)
    return [rng.standard_normal((t, d), dtype=np.float32) for t in lengths]


def pooling_seconds_per_video(n_pool, levels, d, n_classes, batch_size, rng):
    """Seconds per video of the one-off pass of DeepPyramidClassifier.fit before training.

    Input checks (float64 copies), frame statistics and node descriptors: a whole fit of one
    epoch on n_pool videos, all counted as pooling (a slight overestimate), after a small
    warm-up fit (lazy imports). N videos at once would need 30 GB for the float64 copies
    that the input checks make, hence the scaling.
    """
    videos = synthetic_videos(n_pool, d, rng)
    labels = np.arange(n_pool) % n_classes
    model = DeepPyramidClassifier(
        levels=levels, epochs=1, batch_size=batch_size, early_stopping=False, random_state=0
    )
    model.fit(videos[:n_classes], labels[:n_classes])
    start = time.perf_counter()
    model.fit(videos, labels)
    return (time.perf_counter() - start) / n_pool


def throughput(
    n_videos,
    n_pool,
    epochs,
    batch_size,
    thread_counts,
    precisions,
    levels=6,
    d=2048,
    n_classes=101,
    target_epochs=30,
    budget=600.0,
):
    rng = np.random.default_rng(0)
    print(
        f"\n## 2. Training on cached features: N={n_videos:,} videos, d={d}, mean T 185, "
        f"levels={levels} ({2**levels - 1} nodes), {n_classes} classes, "
        f"batch_size={batch_size}, node_dim=128, hidden=128"
    )
    print(
        f"pooling pass = DeepPyramidClassifier(levels={levels}, epochs=1).fit on {n_pool} "
        "videos, scaled to N; epochs = the training loop on N synthetic descriptors, "
        f"{epochs} run, scaled to {target_epochs} ({target_epochs} run when equal)\n"
    )
    print(
        f"| threads | precision | pooling pass | s per epoch | videos/s | {target_epochs} "
        f"epochs | total | target {budget / 60:.0f} min | load |"
    )
    print("|" + "---|" * 9)
    y = torch.from_numpy(rng.integers(0, n_classes, size=n_videos))
    for threads in thread_counts:
        torch.set_num_threads(threads)
        pool_seconds = (
            pooling_seconds_per_video(n_pool, levels, d, n_classes, batch_size, rng) * n_videos
        )
        for precision in precisions:
            dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
            psi = torch.empty(n_videos, 2**levels - 1, d, dtype=dtype)
            gen = torch.Generator().manual_seed(0)
            for first in range(0, n_videos, 250):
                rows = min(250, n_videos - first)
                psi[first : first + rows] = torch.randn(rows, 2**levels - 1, d, generator=gen)
            torch.manual_seed(0)
            net = PyramidNet([StreamHead(d, n_classes, levels, node_dim=128, hidden=128)])
            start = time.perf_counter()
            train_network(
                net,
                [psi],
                y,
                epochs=epochs,
                lr=1e-3,
                weight_decay=1e-4,
                batch_size=batch_size,
                validation_fraction=None,
                n_iter_no_change=10,
                tol=1e-4,
                seed=0,
                precision=precision,
            )
            per_epoch = (time.perf_counter() - start) / epochs
            total = per_epoch * target_epochs + pool_seconds
            print(
                f"| {threads} | {precision} | {pool_seconds:.0f} s | {per_epoch:.1f} s | "
                f"{n_videos / per_epoch:.0f} | {per_epoch * target_epochs:.0f} s | "
                f"{total:.0f} s = {total / 60:.1f} min | "
                f"{'reached' if total <= budget else 'not reached'} | {load()} |",
                flush=True,
            )
            del psi, net


def finetune_speedup(n_videos, size, repeats):
    rng = np.random.default_rng(0)
    lengths = rng.integers(24, 41, size=n_videos)  # mean 32 frames
    videos = [torch.randn(int(t), 3, size, size) for t in lengths]
    y = np.arange(n_videos) % 2
    print(
        f"\n## 3. Fine-tuning, ResNet-18 (random weights), {n_videos} videos of "
        f"{lengths.mean():.0f} frames on average, 3x{size}x{size}, batch_size=4, "
        f"chunk_size=32, levels=4; torch threads {torch.get_num_threads()}"
    )
    print("seconds per epoch, best of", repeats, "\n")
    print("| K | frames back-propagated per epoch | s per epoch | speed-up vs K=1 | load |")
    print("|---|---|---|---|---|")
    best = {}
    for _ in range(repeats):
        for K in (1, 8):
            torch.manual_seed(0)
            result = finetune(
                trunk("resnet18"),
                videos,
                y,
                levels=4,
                K=K,
                epochs=1,
                batch_size=4,
                chunk_size=32,
                device="cpu",
                random_state=0,
            )
            best[K] = min(best.get(K, np.inf), result.epoch_seconds[0])
    for K in (1, 8):
        selected = sum((np.arange(t) % K == 0).sum() for t in lengths)
        print(
            f"| {K} | {selected} of {lengths.sum()} | {best[K]:.1f} | "
            f"{best[1] / best[K]:.2f}x | {load()} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=4, help="deepest level in table 1")
    parser.add_argument("--seeds", type=int, default=5, help="deep seeds in table 1")
    parser.add_argument("--videos", type=int, default=10_000, help="N in table 2")
    parser.add_argument(
        "--pool-videos", type=int, default=500, help="videos whose pooling pass is timed in table 2"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=2,
        help="epochs run in table 2 (scaled to 30; 30 runs them all)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="batch size in table 2")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="torch threads in table 2 (one row each)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["bfloat16", "float32"],
        choices=("bfloat16", "float32"),
        help="precisions in table 2",
    )
    parser.add_argument("--finetune-videos", type=int, default=8)
    parser.add_argument("--finetune-size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=2, help="fine-tuning repetitions")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=("1", "2", "3"), help="tables to skip"
    )
    args = parser.parse_args()
    print(f"command: python {' '.join(sys.argv)}")
    print(f"{machine_line()}; torch {torch.__version__}; load {load()}")
    threads = torch.get_num_threads()
    if "1" not in args.skip:
        torch.set_num_threads(1)  # tiny models: one thread avoids synchronisation overhead
        shallow_vs_deep(args.levels, args.seeds)
        torch.set_num_threads(threads)
    if "2" not in args.skip:
        throughput(
            args.videos,
            args.pool_videos,
            args.epochs,
            args.batch_size,
            args.threads,
            args.precisions,
        )
        torch.set_num_threads(threads)
    if "3" not in args.skip:
        finetune_speedup(args.finetune_videos, args.finetune_size, args.repeats)


if __name__ == "__main__":
    main()
