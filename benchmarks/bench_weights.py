"""Does learning the node weights pay? (issue 12) Learned against fixed weights, held out.

For every data set and pyramid depth, test accuracy of:

* ``gap``      -- global average pooling (``levels=1``), the floor every pyramid must beat;
* ``uniform``  -- ``node_weights="uniform"``: fixed equal weights, the baseline;
* ``learned``  -- the estimator's defaults (``kernel="linear"``, ``mkl_norm="auto"``);
* ``l1``       -- sparse weights (``mkl_norm=1``, the default before ``"auto"``);
* ``l2``       -- ``mkl_norm=2`` fixed;
* ``depth2`` ... ``depth5`` -- uniform weights on the levels ``1..k`` only (``levels=k``),
  for the cells deeper than ``k``: with ``gap``, ``uniform``, ``l2`` and ``l1`` these are
  the candidates that ``mkl_norm="auto"`` chooses among, each fitted alone (the summary
  prints the best of them on the test videos against uniform: what a perfect choice
  would gain);
* ``level_even`` -- fixed weights, every level's total ``1 / levels`` (tried as a candidate);
* ``per_class``-- ``pyramids="per_class"`` with the other defaults;
* ``cross``    -- ``kernel="cross"`` with its defaults (the base kernel chosen on the
  training videos);
* ``cross_rbf``, ``cross_linear`` -- ``kernel="cross"`` with the base kernel fixed;

each with ``C`` chosen by stratified 3-fold cross-validation on the training videos over
(0.1, 1, 10, 100), as ``python -m mkl_tp.fit --C auto`` does, then refitted on all of them.
Data: the bundled BasicMotions, the public sets that the ``aeon`` wheel ships (fetched with
pip, see ``_public_data.py``; frame feature = standardised value and its square) and the
seeded order-defined synthetic videos of ``_common.order_sensitive_videos``.

Prints one row per (set, levels) and a summary against the issue's targets: learned never
more than 5 points below uniform and at least uniform on average; cross never below
``gap`` minus 1 point and within 5 points of learned linear on average.

Run: ``PYTHONPATH=. python benchmarks/bench_weights.py [--sets ...] [--levels 2 4 6]
[--configs ...] [--n-jobs 2]``; ``--synthetic N`` adds the synthetic set with N training
videos (``--synthetic-levels``).
"""

import argparse
import time
import warnings

import numpy as np
from _common import machine_line, order_sensitive_videos, print_table
from _public_data import AEON_SETS, frame_features, load_set
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from mkl_tp import PyramidMKLClassifier, load_basic_motions

C_GRID = (0.1, 1.0, 10.0, 100.0)
CONFIGS = {
    "gap": dict(levels=1, node_weights="uniform"),
    "uniform": dict(node_weights="uniform"),
    "learned": dict(),
    "l1": dict(mkl_norm=1.0),
    "l2": dict(mkl_norm=2.0),
    **{f"depth{k}": dict(levels=k, node_weights="uniform") for k in range(2, 6)},
    "level_even": dict(node_weights="level_even"),
    "per_class": dict(pyramids="per_class"),
    "cross": dict(kernel="cross"),
    "cross_rbf": dict(kernel="cross", base_kernel="rbf"),
    "cross_linear": dict(kernel="cross", base_kernel="linear"),
}


def load(name, n_synthetic):
    if name == "BasicMotions":
        train, test = load_basic_motions()
        X, X_test = frame_features(train.X, test.X)
        return X, np.asarray(train.y), X_test, np.asarray(test.y)
    if name == "synthetic":
        X, y = order_sensitive_videos(n_synthetic, 512, 10, seed=0)
        X_test, y_test = order_sensitive_videos(1000, 512, 10, seed=1)
        return X, y, X_test, y_test
    return load_set(name)


def cross_validated_C(model, X, y, seed=0):
    """C of the best mean 3-fold accuracy on the training videos (first of ties)."""
    folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    scores = []
    for C in C_GRID:
        scores.append(
            np.mean(
                [
                    clone(model)
                    .set_params(C=C)
                    .fit([X[i] for i in train], y[train])
                    .score([X[i] for i in test], y[test])
                    for train, test in folds
                ]
            )
        )
    return C_GRID[int(np.argmax(scores))]


# mkl_norm="auto"'s candidates fitted alone (levels=k: the Depth(k) candidate).
CANDIDATES = ("uniform", "gap", "depth2", "depth3", "depth4", "depth5", "l2", "l1")


def cell(name, levels, config, n_synthetic):
    params = dict(levels=levels, random_state=0)
    params.update(CONFIGS[config])
    if config.startswith("depth") and params["levels"] >= levels:
        return None  # a depth candidate only exists below the cell's depth
    if params.get("node_weights") == "level_even":
        # Fixed weights, each level's total 1 / levels shared by its nodes.
        params["node_weights"] = np.concatenate(
            [np.full(2**level, 1.0 / (levels * 2**level)) for level in range(levels)]
        )
    X, y, X_test, y_test = load(name, n_synthetic)
    model = PyramidMKLClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        C = cross_validated_C(model, X, y)
        model.set_params(C=C).fit(X, y)
        seconds = time.perf_counter() - start
    return dict(
        set=name,
        levels=levels,
        config=config,
        acc=model.score(X_test, y_test),
        C=C,
        p=getattr(model, "mkl_norm_", None),
        seconds=seconds,
    )


def summary(rows, configs):
    table = {}
    for row in rows:
        table.setdefault((row["set"], row["levels"]), {})[row["config"]] = row["acc"]
    columns = [("set", "set", "{}"), ("levels", "L", "{}")] + [(c, c, "{:.3f}") for c in configs]
    if "uniform" in configs and "learned" in configs:
        columns.append(("gain", "learned-uniform", "{:+.3f}"))
    lines = []
    for (name, levels), accs in table.items():
        line = dict(set=name, levels=levels, **accs)
        if "gain" in dict((k, 1) for k, _, _ in columns):
            line["gain"] = accs["learned"] - accs["uniform"]
        lines.append(line)
    print("\nTest accuracy (C by 3-fold CV on the training videos)")
    print_table(lines, columns)
    means = {c: np.mean([a[c] for a in table.values() if c in a]) for c in configs}
    print("\nmean  " + "  ".join(f"{c} {m:.3f}" for c, m in means.items()))
    if {"uniform", "learned"} <= set(configs):
        gains = [a["learned"] - a["uniform"] for a in table.values()]
        print(
            f"learned - uniform: mean {np.mean(gains):+.3f}, worst {min(gains):+.3f} "
            "(targets: mean >= 0, worst >= -0.05)"
        )
    if {"cross", "gap"} <= set(configs):
        floor = [a["cross"] - a["gap"] for a in table.values()]
        print(f"cross - gap: worst {min(floor):+.3f} (target >= -0.01)")
    if {"cross", "learned"} <= set(configs):
        print(f"cross - learned: mean {means['cross'] - means['learned']:+.3f} (target >= -0.05)")
    if {"uniform", "learned", "gap"} <= set(configs):
        # Issue 21: never more than 3 points below the better of uniform weights at that
        # depth and level 1, and on average 2 points above uniform.
        shortfall = [a["learned"] - max(a["uniform"], a["gap"]) for a in table.values()]
        gains = [a["learned"] - a["uniform"] for a in table.values()]
        print(
            f"learned - max(uniform, gap): worst {min(shortfall):+.3f} (target >= -0.03); "
            f"learned - uniform: mean {np.mean(gains):+.3f} (target >= +0.02)"
        )
    if {"uniform", "gap", "l2", "l1"} <= set(configs):
        # What a perfect choice among the candidates would reach: the best candidate of
        # each cell on its test videos (an upper bound for any rule judged on the training
        # videos, not a model).
        oracle = [max(a[c] for c in CANDIDATES if c in a) - a["uniform"] for a in table.values()]
        print(
            f"best candidate on the test videos - uniform: mean {np.mean(oracle):+.3f} "
            f"(an upper bound for mkl_norm='auto' over the candidates in --configs)"
        )
    if {"cross", "cross_rbf", "cross_linear"} <= set(configs):
        below = [a["cross"] - max(a["cross_rbf"], a["cross_linear"]) for a in table.values()]
        print(
            f"cross - max(cross_rbf, cross_linear): worst {min(below):+.3f}, mean "
            f"{np.mean(below):+.3f} (target: worst >= -0.02)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sets",
        nargs="*",
        default=["BasicMotions", *AEON_SETS[:5]],
        help="data sets (none: only --synthetic)",
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        help="add the synthetic set with this many training videos",
    )
    parser.add_argument("--synthetic-levels", type=int, nargs="+", default=[5])
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    print(machine_line())
    jobs = [(s, L, c) for s in args.sets for L in args.levels for c in args.configs]
    if args.synthetic:
        jobs += [("synthetic", L, c) for L in args.synthetic_levels for c in args.configs]
    rows = Parallel(n_jobs=args.n_jobs)(delayed(cell)(s, L, c, args.synthetic) for s, L, c in jobs)
    rows = [row for row in rows if row is not None]
    print_table(
        rows,
        [
            ("set", "set", "{}"),
            ("levels", "L", "{}"),
            ("config", "config", "{}"),
            ("acc", "acc", "{:.3f}"),
            ("C", "C", "{:g}"),
            ("p", "p", "{}"),
            ("seconds", "fit+CV s", "{:.1f}"),
        ],
    )
    summary(rows, args.configs)


if __name__ == "__main__":
    main()
