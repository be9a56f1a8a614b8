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
training videos (1000 test videos). Every set has 28-270 training videos. ``--order10 N``
adds larger sets (10 classes, d = 512, N training videos; from 1000 up the deep defaults
train one network with early stopping), to check that a change made for small sets does
not cost accuracy on large ones.

``--raw`` gives both models the sets' raw values as frame features instead (univariate
UCR series are z-normalised per series, so their whole-video mean carries nothing: a
harder test of both); ``--deep JSON`` sets DeepPyramidClassifier options besides its
defaults, to try a change before making it one.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_deep_small.py [--sets ...]
[--levels 2 4 6] [--synthetic 28 100] [--raw] [--deep '{"weight_decay": 0.1}']`` (one torch
thread; about 30 minutes on 2 shared cores, five networks per small-set fit).
"""

import argparse
import json
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
# Order-defined synthetic sets "<prefix>-<N training videos>" -> (d, classes): "synthetic",
# two classes as the 28-video set; "order10", larger sets (one network, early
# stopping) of 10 classes, as bench_weights.py's synthetic videos.
SYNTHETIC = {"synthetic": (64, 2), "order10": (512, 10)}
SEEDS = (0, 1, 2)
MAX_GAP, MAX_STD = 0.05, 0.03
# Accuracies are multiples of 1 / (3 x test videos): a gap of exactly 5 points meets "never
# more than 5 points below" and must not fail on the float rounding of the subtraction.
_ROUNDING = 1e-9


def load(name, raw=False):
    if name == "BasicMotions":
        train, test = load_basic_motions()
        X, X_test = (train.X, test.X) if raw else frame_features(train.X, test.X)
        return X, np.asarray(train.y), X_test, np.asarray(test.y)
    prefix, _, n = name.partition("-")
    if prefix in SYNTHETIC:
        d, n_classes = SYNTHETIC[prefix]
        X, y = order_sensitive_videos(int(n), d, n_classes, seed=0)
        X_test, y_test = order_sensitive_videos(1000, d, n_classes, seed=1)
        return X, y, X_test, y_test
    return load_set(name, raw)


def cell(name, levels, raw=False, deep_params=None):
    X, y, X_test, y_test = load(name, raw)
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
        model = DeepPyramidClassifier(
            levels=levels, device="cpu", random_state=seed, **(deep_params or {})
        ).fit(X, y)
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
        ok="yes" if mean - uniform >= -MAX_GAP - _ROUNDING and std <= MAX_STD + _ROUNDING else "no",
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
    parser.add_argument(
        "--order10",
        type=int,
        nargs="*",
        default=[],
        help="training sizes of the 10-class, 512-d synthetic set (e.g. 1500 3000: larger sets)",
    )
    parser.add_argument(
        "--raw", action="store_true", help="the sets' raw values as frame features, untransformed"
    )
    parser.add_argument(
        "--deep",
        type=json.loads,
        default={},
        help="DeepPyramidClassifier settings other than the defaults, e.g. '{\"epochs\": 100}'",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine_line())
    names = [
        *args.sets,
        *(f"synthetic-{n}" for n in args.synthetic),
        *(f"order10-{n}" for n in args.order10),
    ]
    rows = [cell(name, levels, args.raw, args.deep) for name in names for levels in args.levels]
    print(
        "\nTest accuracy: shallow uniform (C by 3-fold CV) against deep "
        f"{json.dumps(args.deep) if args.deep else 'defaults'} (seeds 0-2), "
        f"{'raw values' if args.raw else 'standardised values and squares'} as frame features"
    )
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
