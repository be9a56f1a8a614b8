"""The cutting-plane LP step of the linear MKL solver: Clarabel against HiGHS (issue 21,
item 1), time per step and the accuracy of its bound.

``mkl_tp.solvers.beta.beta_step_lp`` solves ``min theta`` s.t. ``theta >= offsets[t] -
slopes[t] . beta`` on the simplex with Clarabel and returns as ``theta`` the LP dual's value
at the solver's multipliers (a lower bound by weak duality); ``_beta_step_highs`` is the
same LP through ``scipy.optimize.milp`` (HiGHS), its fallback.

1. Time per step, best of ``--repeat`` calls, for 15 and 63 nodes (levels 4 and 6) and 1 to
   20 cuts (a fit adds one cut per alpha-step), with the ratio HiGHS / Clarabel.
2. Accuracy on ``--lps`` random LPs (1-30 cuts, 1-63 nodes, a third with tied nodes, cuts
   scaled by 1e-8 to 1e8): the best value of a feasible point (Clarabel's or HiGHS's
   weights; at least the LP optimum) minus ``theta``, relative; a bound above that value
   would be a bug. HiGHS's own optimum is compared too.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=benchmarks python benchmarks/bench_lp_step.py
[--repeat 200] [--lps 1000]``.
"""

import argparse
import time

import numpy as np
from _common import machine_line, print_table

from mkl_tp.solvers.beta import _beta_step_highs, beta_step_lp


def best_seconds(step, offsets, slopes, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        step(offsets, slopes)
        best = min(best, time.perf_counter() - start)
    return best


def timing(repeat):
    rng = np.random.default_rng(0)
    rows = []
    for n_nodes in (15, 63):
        for n_cuts in (1, 5, 20):
            offsets = rng.uniform(5, 10, n_cuts)
            slopes = rng.uniform(0, 8, (n_cuts, n_nodes))
            clarabel = best_seconds(beta_step_lp, offsets, slopes, repeat)
            highs = best_seconds(_beta_step_highs, offsets, slopes, repeat)
            rows.append(
                dict(
                    nodes=n_nodes,
                    cuts=n_cuts,
                    clarabel=1e3 * clarabel,
                    highs=1e3 * highs,
                    ratio=highs / clarabel,
                )
            )
    print("\n1. time per LP step (ms), best of", repeat)
    print_table(
        rows,
        [
            ("nodes", "nodes", "{}"),
            ("cuts", "cuts", "{}"),
            ("clarabel", "Clarabel ms", "{:.3f}"),
            ("highs", "HiGHS (milp) ms", "{:.3f}"),
            ("ratio", "x Clarabel", "{:.1f}"),
        ],
    )


def accuracy(n_lps):
    rng = np.random.default_rng(1)
    below, above, highs_below = 0.0, 0, 0.0
    for trial in range(n_lps):
        n_cuts, n_nodes = rng.integers(1, 30), rng.integers(1, 64)
        offsets = rng.uniform(5, 10, n_cuts)
        slopes = rng.uniform(0, 8, (n_cuts, n_nodes))
        if trial % 3 == 0:
            slopes[:, : n_nodes // 2] = slopes[:, :1]  # tied nodes: the optimum not unique
        scale = 10 ** rng.uniform(-8, 8)
        offsets, slopes = offsets * scale, slopes * scale
        beta, theta = beta_step_lp(offsets, slopes)
        highs_beta, highs_theta = _beta_step_highs(offsets, slopes)
        value = min(np.max(offsets - slopes @ beta), np.max(offsets - slopes @ highs_beta))
        above += theta > value
        below = max(below, (value - theta) / abs(value))
        highs_below = max(highs_below, (value - highs_theta) / abs(value))
    print(f"\n2. {n_lps} random LPs (tied nodes, cuts scaled by 1e-8 to 1e8)")
    print(f"   bound above a feasible point's value: {above} LPs")
    print(f"   best feasible value - bound, relative: at most {below:.1e}")
    print(f"   best feasible value - HiGHS's optimum, relative: at most {highs_below:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--lps", type=int, default=1000)
    args = parser.parse_args()
    print(machine_line())
    timing(args.repeat)
    accuracy(args.lps)


if __name__ == "__main__":
    main()
