"""Warm start of beta across a levels sweep: levels 1..L fitted cold vs from the last beta_.

Seeded synthetic order-sensitive data (d = 512, 10 classes). ``warm`` passes each level's
``beta_`` as the next level's ``beta_init`` (new nodes start at the coarse level-mean
weight); the fits are otherwise identical. Prints alpha-steps, time and final J per level.

Run: ``PYTHONPATH=. python benchmarks/bench_sweep.py [--n 1000] [--levels 6]``
"""

import argparse
import time

from _common import machine_line, order_sensitive_videos, print_table

from mkl_tp import PyramidMKLClassifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument("--kernel", default="linear")
    args = parser.parse_args()
    print(machine_line())
    X, y = order_sensitive_videos(args.n, 512, 10, seed=0)
    rows = []
    previous = None
    for levels in range(1, args.levels + 1):
        row = dict(levels=levels)
        for mode in ("cold", "warm"):
            init = previous if mode == "warm" and levels > 1 else None
            start = time.perf_counter()
            clf = PyramidMKLClassifier(levels=levels, kernel=args.kernel, beta_init=init).fit(X, y)
            row[f"{mode}_s"] = time.perf_counter() - start
            row[f"{mode}_it"] = clf.n_iter_
            row[f"{mode}_J"] = clf.objective_
            if mode == "warm":
                previous = clf.beta_
        rows.append(row)
        print(f"levels {levels} done", flush=True)
    print_table(
        rows,
        [
            ("levels", "L", "{}"),
            ("cold_it", "cold iters", "{}"),
            ("cold_s", "cold s", "{:.2f}"),
            ("cold_J", "cold J", "{:.4f}"),
            ("warm_it", "warm iters", "{}"),
            ("warm_s", "warm s", "{:.2f}"),
            ("warm_J", "warm J", "{:.4f}"),
        ],
    )
    print(
        f"total alpha-steps: cold {sum(r['cold_it'] for r in rows)}, "
        f"warm {sum(r['warm_it'] for r in rows)}"
    )


if __name__ == "__main__":
    main()
