"""The level method's step: alpha-steps to the certified gap against the level parameter.

The extended level method (``beta_method="level"``, :mod:`mkl_tp.solvers._alternation`)
projects the weights onto the level set ``{J_model <= theta + lambda (J_best - theta)}``
between the cutting-plane bound ``theta`` and the best objective. Xu et al. (2008) use
``lambda = 0.9``; a smaller ``lambda`` asks for more decrease per step. For each problem
(seeded order-sensitive synthetic videos at two signal levels and levels 3/4/6, C = 1 and
10, and the bundled BasicMotions at levels 2/4; sparse weights ``mkl_norm=1``, tol 1e-3)
this prints the alpha-steps each ``lambda`` takes and its final ``J`` (all stop on the
same certified relative gap, so every ``J`` is within ``tol`` of the optimum).

Run: ``PYTHONPATH=. python benchmarks/bench_level_step.py [--lambdas 0.9 0.7 0.5]``.
"""

import argparse

import numpy as np
from _common import machine_line, order_sensitive_videos, print_table

from mkl_tp import PyramidMKLClassifier, load_basic_motions
from mkl_tp.pyramid.inputs import validate_streams
from mkl_tp.solvers import _alternation, fit_mkl
from mkl_tp.solvers.gram import TrainingKernels
from mkl_tp.solvers.svm import one_vs_rest_labels


def problems():
    for signal in (0.3, 0.6):
        X, y = order_sensitive_videos(600, 128, 10, seed=2, signal=signal)
        for levels in (3, 4, 6):
            yield f"synthetic, signal {signal}", X, y, levels, 1.0
    X, y = order_sensitive_videos(600, 128, 10, seed=2, signal=0.3)
    yield "synthetic, signal 0.3", X, y, 4, 10.0
    train, _ = load_basic_motions()
    for levels in (2, 4):
        yield "BasicMotions", list(train.X), np.asarray(train.y), levels, 1.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.9, 0.7, 0.5])
    args = parser.parse_args()
    print(machine_line())
    rows, default = [], _alternation._LEVEL_LAMBDA
    for name, X, y, levels, C in problems():
        classes, y_index = np.unique(y, return_inverse=True)
        model = PyramidMKLClassifier(levels=levels)
        model.base_kernel_ = "linear"
        blocks = model._node_blocks(validate_streams(X)[1], fit=True, y_index=y_index)
        kernels = TrainingKernels(blocks, "linear", cache_bytes=8e9)
        Y = one_vs_rest_labels(y_index, len(classes))
        row = dict(name=name, levels=levels, C=C)
        try:
            for value in args.lambdas:
                _alternation._LEVEL_LAMBDA = value
                result = fit_mkl(
                    blocks, Y, kernel="linear", C=C, mkl_norm=1.0, kernels=kernels, max_iter=200
                )
                row[value] = f"{result.n_iter} / {result.objective:.6g}"
        finally:
            _alternation._LEVEL_LAMBDA = default
        rows.append(row)
        print(name, levels, C, [row[v] for v in args.lambdas], flush=True)
    columns = [("name", "data", "{}"), ("levels", "L", "{}"), ("C", "C", "{:g}")]
    columns += [(v, f"lambda {v:g}: steps / J", "{}") for v in args.lambdas]
    print(f"\nalpha-steps / final J (default lambda {default:g})")
    print_table(rows, columns)


if __name__ == "__main__":
    main()
