"""Do the deep defaults hold on small sets? (issue 21, item 4) Deep against shallow uniform.

For every data set and pyramid depth, test accuracy of:

* ``uniform`` -- :class:`~mkl_tp.PyramidMKLClassifier` with ``node_weights="uniform"``
  (fixed equal node weights), ``C`` chosen by stratified 3-fold cross-validation on the
  training videos over (0.1, 1, 10, 100) as ``bench_weights.py`` does, refitted on all;
* ``deep`` -- :class:`~mkl_tp.deep.DeepPyramidClassifier` with its defaults at the same
  ``levels``, mean and standard deviation over seeds 0, 1, 2.

Targets: deep never more than 5 points below uniform, standard deviation at most 3 points.
Data: the bundled BasicMotions, the public sets the ``aeon`` wheel ships (fetched with pip,
see ``_public_data.py``; frame feature = standardised value and its square) and the seeded
order-defined synthetic videos of ``_common.order_sensitive_videos`` with ``--synthetic N``
training videos (1000 test videos). Every set has 28-270 training videos.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_deep_small.py [--sets ...]
[--levels 2 4 6] [--synthetic 28 100]`` (one torch thread; about 14 minutes on 2 shared cores).
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _common import machine_line, order_sensitive_videos, print_table
from _public_data import frame_features, load_set
from bench_weights import cross_validated_C

from mkl_tp import DeepPyramidClassifier, PyramidMKLClassifier, load_basic_motions

SETS = (
    "BasicMotions",
    "ArrowHead",
    "GunPoint",
    "ItalyPowerDemand",
    "PickupGestureWiimoteZ",
    "JapaneseVowels",
    "OSULeaf",
)
SEEDS = (0, 1, 2)
MAX_GAP, MAX_STD = 0.05, 0.03


def load(name):
    if name == "BasicMotions":
        train, test = load_basic_motions()
        X, X_test = frame_features(train.X, test.X)
        return X, np.asarray(train.y), X_test, np.asarray(test.y)
    if name.startswith("synthetic"):
        # Two classes, as the 28-video set: the order of four sub-actions decides.
        n = int(name.split("-")[1])
        X, y = order_sensitive_videos(n, 64, 2, seed=0)
        X_test, y_test = order_sensitive_videos(1000, 64, 2, seed=1)
        return X, y, X_test, y_test
    return load_set(name)


def cell(name, levels):
    X, y, X_test, y_test = load(name)
    shallow = PyramidMKLClassifier(levels=levels, node_weights="uniform", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        C = cross_validated_C(shallow, X, y)
        uniform = shallow.set_params(C=C).fit(X, y).score(X_test, y_test)
        shallow_seconds = time.perf_counter() - start
    deep, epochs = [], []
    start = time.perf_counter()
    for seed in SEEDS:
        model = DeepPyramidClassifier(levels=levels, device="cpu", random_state=seed).fit(X, y)
        deep.append(model.score(X_test, y_test))
        epochs.append(model.best_epoch_)
    deep_seconds = (time.perf_counter() - start) / len(SEEDS)
    mean, std = float(np.mean(deep)), float(np.std(deep))
    return dict(
        set=name,
        n=len(y),
        levels=levels,
        uniform=uniform,
        C=C,
        deep=f"{mean:.3f} +- {std:.3f}",
        mean=mean,
        std=std,
        gap=mean - uniform,
        ok="yes" if mean - uniform >= -MAX_GAP and std <= MAX_STD else "no",
        epoch=float(np.mean(epochs)),
        shallow_seconds=shallow_seconds,
        deep_seconds=deep_seconds,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS), help="public/bundled sets")
    parser.add_argument("--levels", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument(
        "--synthetic",
        type=int,
        nargs="*",
        default=[28, 100],
        help="training sizes of the two-class synthetic set",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_line())
    names = [*args.sets, *(f"synthetic-{n}" for n in args.synthetic)]
    rows = [cell(name, levels) for name in names for levels in args.levels]
    print("\nTest accuracy: shallow uniform (C by 3-fold CV) against deep defaults (seeds 0-2)")
    print_table(
        rows,
        [
            ("set", "set", "{}"),
            ("n", "N", "{}"),
            ("levels", "L", "{}"),
            ("uniform", "uniform", "{:.3f}"),
            ("C", "C", "{:g}"),
            ("deep", "deep mean +- std", "{}"),
            ("gap", "deep-uniform", "{:+.3f}"),
            ("ok", "targets", "{}"),
            ("epoch", "best epoch", "{:.0f}"),
            ("shallow_seconds", "shallow s", "{:.1f}"),
            ("deep_seconds", "deep s/fit", "{:.1f}"),
        ],
    )
    gaps = [row["gap"] for row in rows]
    print(
        f"\nmean uniform {np.mean([r['uniform'] for r in rows]):.3f}, "
        f"mean deep {np.mean([r['mean'] for r in rows]):.3f}"
    )
    print(
        f"deep - uniform: mean {np.mean(gaps):+.3f}, worst {min(gaps):+.3f} (target >= "
        f"-{MAX_GAP:.2f}); worst std {max(r['std'] for r in rows):.3f} (target <= {MAX_STD:.2f}); "
        f"cells meeting both: {sum(r['ok'] == 'yes' for r in rows)}/{len(rows)}"
    )


if __name__ == "__main__":
    main()
