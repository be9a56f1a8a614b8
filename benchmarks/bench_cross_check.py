"""Does the cross kernel's check against the linear kernel warn where it should? (issue 21,
item 3) Its warnings beside the test accuracies they predict.

For every data set and pyramid depth, ``kernel="cross"`` with its defaults (``C = 1``) is
fitted; the fit judges itself against ``kernel="linear"`` on 3 folds of the training videos
(``cross_kernel_score_``: its fitted weights fixed, optimistic; ``linear_kernel_score_``:
uniform weights) and warns when the linear kernel is better by one standard error
(``linear_kernel_better_``). Beside them: the test accuracy of the cross model and of
``kernel="linear"`` with uniform weights, so that each warning (or silence) can be checked
against what the test videos say, and the seconds the check took within the fit.

Data: the bundled BasicMotions and the public sets the ``aeon`` wheel ships
(``_public_data.py``), and ``--synthetic N`` order-defined videos as ``bench_weights.py``'s.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=benchmarks python benchmarks/bench_cross_check.py
[--sets ...] [--levels 2 4 6] [--synthetic N]``.
"""

import argparse
import time
import warnings

from _common import machine_line, print_table
from _public_data import AEON_SETS
from bench_weights import load

from mkl_tp import PyramidMKLClassifier


def cell(name, levels, n_synthetic):
    X, y, X_test, y_test = load(name, n_synthetic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        cross = PyramidMKLClassifier(levels=levels, kernel="cross", random_state=0).fit(X, y)
        seconds = time.perf_counter() - start
        linear = PyramidMKLClassifier(levels=levels, node_weights="uniform").fit(X, y)
    return dict(
        set=name,
        levels=levels,
        cross_oof=cross.cross_kernel_score_,
        linear_oof=cross.linear_kernel_score_,
        warned="yes" if cross.linear_kernel_better_ else "no",
        cross_test=cross.score(X_test, y_test),
        linear_test=linear.score(X_test, y_test),
        check=cross.linear_check_seconds_,
        fit=seconds,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sets", nargs="*", default=list(dict.fromkeys(["BasicMotions", *AEON_SETS]))
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--synthetic", type=int, default=0, help="training videos (0: none)")
    args = parser.parse_args()
    print(machine_line())
    names = [*args.sets, *(["synthetic"] if args.synthetic else [])]
    rows = [cell(name, levels, args.synthetic) for name in names for levels in args.levels]
    print_table(
        rows,
        [
            ("set", "set", "{}"),
            ("levels", "L", "{}"),
            ("cross_oof", "cross oof (fitted w)", "{:.3f}"),
            ("linear_oof", "linear oof", "{:.3f}"),
            ("warned", "warned", "{}"),
            ("cross_test", "cross test", "{:.3f}"),
            ("linear_test", "linear test", "{:.3f}"),
            ("check", "check s", "{:.2f}"),
            ("fit", "fit s", "{:.1f}"),
        ],
    )
    missed = [r for r in rows if r["warned"] == "no" and r["linear_test"] - r["cross_test"] > 0.05]
    false = [r for r in rows if r["warned"] == "yes" and r["cross_test"] >= r["linear_test"] - 0.01]
    print(
        f"\nwarned in {sum(r['warned'] == 'yes' for r in rows)}/{len(rows)} cells; silent where "
        f"the linear kernel was more than 5 points better on the test videos: {len(missed)}; "
        f"warned where the cross model was within a point of it or better: {len(false)}"
    )


if __name__ == "__main__":
    main()
