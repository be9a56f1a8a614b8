"""Accuracy on the bundled real data (BasicMotions): learned vs uniform node weights.

For levels 1..4 and each of uniform / linear / cross, C is chosen by 3-fold stratified
cross-validation on the 40 training sequences (grid 0.1, 1, 10, 100), then the model is
refitted on all training sequences and scored on the 40 test sequences. Prints the table
and the fit times. Run:  python benchmarks/bench_basic_motions.py
"""

import argparse
import time
import warnings

from _common import machine_line
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from mkl_tp import PyramidMKLClassifier, load_basic_motions

SETTINGS = {
    "uniform": dict(kernel="linear", node_weights="uniform"),
    "linear": dict(kernel="linear"),
    "cross": dict(kernel="cross"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=4, help="deepest level (default: 4)")
    parser.add_argument("--node-norm", default="l2", choices=("none", "l2", "power"))
    args = parser.parse_args()
    train, test = load_basic_motions()
    print(machine_line())
    print(
        f"BasicMotions: {len(train.X)} train / {len(test.X)} test sequences of "
        f"{train.X[0].shape}; node_norm={args.node_norm}"
    )
    header = f"{'level':>5} | " + " | ".join(f"{name:>8} acc    C   fit s" for name in SETTINGS)
    print(header)
    print("-" * len(header))
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    for level in range(1, args.levels + 1):
        cells = []
        for params in SETTINGS.values():
            estimator = PyramidMKLClassifier(
                levels=level, node_norm=args.node_norm, max_iter=300, **params
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                search = GridSearchCV(estimator, {"C": [0.1, 1.0, 10.0, 100.0]}, cv=folds)
                search.fit(train.X, train.y)
                model = search.best_estimator_
                start = time.perf_counter()
                model.fit(train.X, train.y)
                seconds = time.perf_counter() - start
            accuracy = model.score(test.X, test.y)
            cells.append(f"{100 * accuracy:>12.1f} {model.C:>5g} {seconds:>6.2f}")
        print(f"{level:>5} | " + " | ".join(cells))
    print("acc = test accuracy (%), C chosen by 3-fold CV on train, fit s = one refit")


if __name__ == "__main__":
    main()
