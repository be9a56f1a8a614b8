"""``python -m mkl_tp.fit`` (``mkl-tp-fit``): HDF5 feature caches + split files -> model,
tables and plots.

Run without arguments it fits the bundled real data (BasicMotions: accelerometer and
gyroscope streams) and prints the level table. scikit-learn (and torch for ``--model deep``)
are imported once the arguments are parsed, so ``--help`` answers at once.
"""

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from . import __version__
from ._utils.cli import (
    EXIT_OK,
    UsageError,
    UserError,
    configure_logging,
    file_digest,
    one_line_errors,
    run_cli,
    versions,
)
from .experiment import cells as _sweep
from .experiment.inputs import (
    add_split_format_arguments,
    describe_features,
    load_stream,
    match_split,
    split_format,
)
from .experiment.report import UNIFORM, write_json
from .sources.samples import basic_motions_paths
from .sources.splits import read_split

__all__ = ["main", "build_parser"]

COLUMNS = (UNIFORM, "linear", "cross")
DEEP_COLUMNS = ("deep-concat", "deep-average")
C_GRID = (0.1, 1.0, 10.0, 100.0)
# The estimator's choices, spelled here so that --help needs no scikit-learn import;
# tests/test_fit.py checks them against mkl_tp.kernels.feature_maps and mkl_tp.solvers.mkl.
BASE_KERNELS = ("linear", "rbf", "chi2")
NODE_NORMS = ("none", "l2", "power")
PYRAMIDS = ("shared", "per_class")
# Options passed to the estimator only when given, so that its defaults apply otherwise.
_ESTIMATOR_DEFAULTS = ("base_kernel", "pyramids", "mkl_norm")
# Node kernels have unit mean diagonal, so the useful C lie in 0.1-100 (the --C auto grid);
# from two orders of magnitude above, libsvm's solves grow long (its iterations grow with
# C) while the model hardly changes: warn.
LARGE_C = 1e4


# -- arguments ------------------------------------------------------------------------
def _levels(text):
    """``6`` -> [6]; ``1-6`` -> [1..6]; ``2,4,6`` -> [2, 4, 6]."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
            if low > high:
                raise argparse.ArgumentTypeError(
                    f"the range {text!r} is reversed; write {high}-{low}"
                )
            levels = list(range(low, high + 1))
        else:
            levels = sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N, A-B or A,B,C, got {text!r}") from None
    if not levels or min(levels) < 1 or max(levels) > 10:
        raise argparse.ArgumentTypeError(f"levels must lie in 1..10, got {text!r}")
    return levels


def _C(text):
    return text if text == "auto" else _positive(text, alternative=" or 'auto'")


def _positive(text, alternative=""):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number{alternative}, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected a finite positive number{alternative}, got {text!r}"
        )
    return value


def _at_least_one(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


def _mkl_norm(text):
    """``auto`` (the estimator's own rule), ``inf``, or a number >= 1."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 1, 'inf' or 'auto', got {text!r}"
        ) from None
    if math.isnan(value) or value < 1:
        raise argparse.ArgumentTypeError(f"the norm must be >= 1 (or inf), got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mkl_tp.fit",
        description="Learn temporal-pyramid node weights (multiple-kernel SVM) from cached "
        "per-frame features and a train/test split; print the level table and write "
        "model.joblib, report.json, levels.png, beta.png (and beta/ for every learned cell) "
        "and confusion.png. Without --features it runs on the bundled BasicMotions data.",
        epilog="Example: python -m mkl_tp.fit --features features/ucf101_rgb.h5 --features "
        "features/ucf101_flow.h5 --splits ucfTrainTestlist --format ucf101 --split 1 "
        "--kernel linear --levels 1-6 --out runs/ucf101_s1. Exit status: 0 done; 1 a "
        "missing or unusable input; 2 usage (options, an --out of other settings); "
        "130 interrupted (finished cells are kept).",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--features",
        action="append",
        metavar="H5",
        help="HDF5 feature cache (/videos/<id> -> (T, d)); give twice for two "
        "streams (e.g. _rgb.h5 and _flow.h5)",
    )
    data.add_argument(
        "--splits", metavar="PATH", help="folder of split files (or the CSV file for --format csv)"
    )
    add_split_format_arguments(data)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--kernel",
        choices=("linear", "cross"),
        default="linear",
        help="node-kernel combination of the saved model: linear = weighted "
        "sum of node kernels (concatenation), cross = kernel of the weighted "
        "mean descriptor (averaging); the table shows both (default: "
        "%(default)s)",
    )
    model.add_argument(
        "--model",
        choices=("mkl", "deep"),
        default="mkl",
        help="mkl = the multiple-kernel SVM; deep = the end-to-end pyramid "
        "network on the cached features (needs torch: the deep extra), "
        "'concat' for --kernel linear, 'average' for cross; the table then "
        "shows deep columns beside the shallow ones (default: %(default)s)",
    )
    model.add_argument(
        "--levels",
        type=_levels,
        metavar="N|A-B|A,B,C",
        help="pyramid depth, a range to sweep (1-6) or a list (2,4,6) "
        "(default: 4; 1-4 on the bundled data)",
    )
    model.add_argument(
        "--base-kernel",
        choices=("auto",) + BASE_KERNELS,
        help="kernel between node descriptors; auto: the estimator's rule "
        "(linear for --kernel linear, rbf for cross) (default: the "
        "estimator's default)",
    )
    model.add_argument(
        "--node-norm",
        choices=NODE_NORMS,
        default="l2",
        help="per-node normalisation (default: %(default)s)",
    )
    model.add_argument(
        "--C",
        type=_C,
        default=1.0,
        metavar="C|auto",
        help=f"SVM box constraint, a finite positive number, or 'auto' for "
        f"3-fold stratified CV on the training videos over {C_GRID}, jointly "
        "with the lp norm of learned linear weights when --mkl-norm is auto "
        f"(default: 1). Node kernels have unit mean diagonal: C >= {LARGE_C:g} "
        "gets a warning, as libsvm's solves then grow long (each stops after "
        "max(10^6, 1000 N) iterations)",
    )
    model.add_argument(
        "--pyramids",
        choices=("auto",) + PYRAMIDS,
        help="one node weighting shared by all classes, or one per "
        "one-vs-rest class (the paper's multiple pyramids); auto: the "
        "estimator's rule (default: the estimator's default)",
    )
    model.add_argument(
        "--mkl-norm",
        type=_mkl_norm,
        metavar="P|inf|auto",
        help="lp-norm MKL: p = 1 gives sparse node weights, larger p spreads "
        "them (inf: uniform), auto: the estimator's rule (default: the "
        "estimator's default)",
    )
    model.add_argument(
        "--fusion",
        choices=("joint", "late"),
        default="joint",
        help="two streams: one simplex over both streams' nodes (joint), or "
        "one model per stream fused with a weight learned on held-out folds "
        "(late) (default: %(default)s)",
    )
    model.add_argument(
        "--tol", type=_positive, default=1e-3, help="solver tolerance (default: 1e-3)"
    )
    model.add_argument(
        "--max-iter",
        type=_at_least_one,
        default=100,
        help="most alternating iterations (default: 100)",
    )
    model.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: runs/<name of the first feature file>); "
        "re-running with the same inputs and settings keeps the finished cells",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results in --out even if they were made with other "
        "inputs or settings (refused otherwise)",
    )
    run.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        help="threads over one-vs-rest SVMs; -1 = all cores (default: -1)",
    )
    run.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="fit on a Dask cluster: the primal solver with the node features in "
        "row shards on its workers (scheduler address, e.g. tcp://host:8786; "
        "needs dask[distributed]; see docs/scale_out.rst)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress, only the table")
    return one_line_errors(parser)


# -- fitting one cell -----------------------------------------------------------------
def _subset(X, index):
    if isinstance(X, dict):
        return {name: [seqs[i] for i in index] for name, seqs in X.items()}
    return [X[i] for i in index]


def _make_model(config, column, level, C, args, mkl_norm=None):
    from .fusion import LateFusionClassifier

    if column in DEEP_COLUMNS:
        from .deep import DeepPyramidClassifier

        base = DeepPyramidClassifier(
            levels=level, mode=column.split("-")[1], random_state=args.seed
        )
        return LateFusionClassifier(base, random_state=args.seed) if config == "late" else base
    from .estimator import PyramidMKLClassifier

    weights = "uniform" if column == UNIFORM else "learn"
    kernel = args.kernel if column == UNIFORM else column
    # Options left out keep the estimator's defaults (its "auto" rules).
    extra = {k: getattr(args, k) for k in _ESTIMATOR_DEFAULTS if getattr(args, k) is not None}
    if mkl_norm is not None:  # chosen with C by --C auto
        extra["mkl_norm"] = mkl_norm
    if args.dask:
        extra.update(solver="primal", device=args.dask)
    base = PyramidMKLClassifier(
        levels=level,
        kernel=kernel,
        node_norm=args.node_norm,
        C=C,
        tol=args.tol,
        max_iter=args.max_iter,
        node_weights=weights,
        n_jobs=args.n_jobs,
        random_state=args.seed,
        **extra,
    )
    if config == "late":
        return LateFusionClassifier(base, random_state=args.seed)
    return base


def _select_C(config, column, level, X, y, args):
    """``(C, mkl_norm)`` by 3-fold stratified cross-validation on the training videos.

    C is the grid value of the best out-of-fold accuracy (the first of ties). For learned
    linear weights whose ``--mkl-norm`` is ``auto`` the search is joint: every candidate
    norm gets its best C, and the norms are compared as the estimator's own ``"auto"``
    compares them, by the one-standard-error rule towards uniform weights
    (:func:`~mkl_tp.solvers.selection.one_standard_error_choice`). ``mkl_norm`` is
    ``None`` when the cell keeps its own setting.
    """
    from sklearn.model_selection import StratifiedKFold

    from .solvers.selection import MKL_NORM_CANDIDATES, one_standard_error_choice

    folds = list(
        StratifiedKFold(3, shuffle=True, random_state=args.seed).split(np.zeros(len(y)), y)
    )
    joint = column == "linear" and args.mkl_norm in (None, "auto")
    norms = MKL_NORM_CANDIDATES if joint else (None,)
    best = {}
    for norm in norms:
        correct = {}
        for C in C_GRID:
            right = np.zeros(len(y), dtype=bool)
            for train, test in folds:
                model = _make_model(config, column, level, C, args, mkl_norm=norm)
                right[test] = (
                    model.fit(_subset(X, train), y[train]).predict(_subset(X, test)) == y[test]
                )
            correct[C] = right
        C = max(C_GRID, key=lambda c: (correct[c].mean(), -C_GRID.index(c)))
        best[norm] = (C, correct[C])
    norm = one_standard_error_choice({n: r for n, (_, r) in best.items()}, norms)
    return best[norm][0], norm


def _chosen(model):
    """What a fitted PyramidMKLClassifier's "auto" options became."""
    return {
        "base_kernel": model.base_kernel_,
        "pyramids": model.pyramids_,
        "mkl_norm": model.mkl_norm_,
    }


def _stream_weights(beta):
    """Per-stream sums of shared weights, or their mean over the classes of per-class ones."""
    sums = np.asarray(beta).sum(axis=-1)
    return sums if sums.ndim == 1 else sums.mean(axis=0)


def _fit_cell(config, column, level, data, args):
    from .experiment.report import classification_metrics
    from .fusion import LateFusionClassifier

    X_train = data["train"][config]
    mkl_norm = None
    if column in DEEP_COLUMNS:
        C = None  # the network has no box constraint
    elif args.C == "auto":
        C, mkl_norm = _select_C(config, column, level, X_train, data["y_train"], args)
    else:
        C = args.C
    model = _make_model(config, column, level, C, args, mkl_norm=mkl_norm)
    start = time.perf_counter()
    model.fit(X_train, data["y_train"])
    seconds = time.perf_counter() - start
    predicted = model.predict(data["test"][config])
    cell = {
        "C": C,
        "fit_seconds": round(seconds, 3),
        **classification_metrics(data["y_test"], predicted, model.classes_),
    }
    if isinstance(model, LateFusionClassifier):
        cell["stream_weights"] = dict(zip(model.streams_, model.stream_weights_.tolist()))
        cell["beta"] = [model.estimators_[s].beta_.tolist() for s in model.streams_]
        if column not in DEEP_COLUMNS:  # every stream's model follows the same rules
            cell.update(_chosen(model.estimators_[model.streams_[0]]))
    elif column in DEEP_COLUMNS:
        cell.update(
            beta=np.asarray(model.beta_).tolist(),
            n_iter=model.n_iter_,
            loss_curve=model.loss_curve_,
        )
        if config == "joint":
            cell["stream_weights"] = dict(zip(model.streams_, model.stream_weights_.tolist()))
    else:
        cell.update(
            beta=np.atleast_2d(model.beta_).tolist(),
            **_chosen(model),
            n_iter=model.n_iter_,
            objective=model.objective_,
            converged=model.converged_,
        )
        if config == "joint":
            cell["stream_weights"] = dict(
                zip(model.streams_, _stream_weights(model.beta_).tolist())
            )
    return model, cell


# -- inputs ---------------------------------------------------------------------------
def _load(args, described, split):
    # Streams may differ in frame counts for a video: pyramid nodes live in normalised time,
    # so they stay aligned without resampling.
    unseen = sorted(set(split.test_labels) - set(split.train_labels))
    if unseen:
        raise UserError(f"test labels never seen in training: {unseen[:5]}")
    data = {
        "y_train": np.array(split.train_labels),
        "y_test": np.array(split.test_labels),
        "train": {},
        "test": {},
    }
    subsets = {"train": split.train_ids, "test": split.test_ids}
    for entry in described:
        match_split(entry["path"], subsets)  # one error naming what both subsets miss
        for subset, ids in subsets.items():
            data[subset][entry["stream"]] = load_stream(
                entry["path"], ids, max(args.levels), subset=subset
            )
    streams = [d["stream"] for d in described]
    if len(streams) > 1:
        for subset in ("train", "test"):
            data[subset][args.fusion] = {s: data[subset][s] for s in streams}
    configs = streams + ([args.fusion] if len(streams) > 1 else [])
    return data, configs


def _check_args(args):
    if args.features is None:
        if args.splits is not None:
            raise UsageError("--splits needs --features")
        bundled = basic_motions_paths()
        args.features, args.splits, args.format = bundled["features"], bundled["split"], "csv"
        if args.out is None:  # the demo replaces its own earlier results, whatever made them
            args.out, args.overwrite = "runs/basic_motions", True
        args.levels = args.levels or [1, 2, 3, 4]
    elif args.splits is None:
        raise UsageError("--features needs --splits (and --format) to know the labels")
    args.levels = args.levels or [4]
    args.format = split_format(args.format, args.splits)
    if len(args.features) > 2:
        raise UsageError(f"at most two streams, got {len(args.features)} --features")
    if args.C != "auto" and args.C >= LARGE_C:
        warnings.warn(
            f"--C {args.C:g} is very large: node kernels have unit mean diagonal, so C above "
            f"~100 rarely changes the model while libsvm's solves grow long; each stops after "
            "max(10^6, 1000 N) iterations with a ConvergenceWarning",
            stacklevel=2,
        )


def _main(argv):
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    _check_args(args)
    described = describe_features(args.features)
    for entry in described:
        entry["sha256"] = file_digest(entry["path"])
    split = read_split(args.splits, args.format, args.split)
    out = Path(args.out or Path("runs") / Path(args.features[0]).stem)
    report_path = out / "report.json"
    settings = _sweep.report_settings(vars(args))
    split_info = {
        "path": str(args.splits),
        "format": args.format,
        "split": args.split,
        "n_train": len(split.train_ids),
        "n_test": len(split.test_ids),
        "classes": split.classes,
    }
    fingerprint = _sweep.fingerprint(settings, described, split)
    report = _sweep.previous_report(
        report_path, fingerprint, settings, described, split_info, args.overwrite
    )
    data, configs = _load(args, described, split)
    out.mkdir(parents=True, exist_ok=True)
    report.update(
        fingerprint=fingerprint,
        versions=versions(),
        features=[{k: d[k] for k in ("path", "stream", "sha256", "info")} for d in described],
        split=split_info,
        settings=settings,
    )
    cells = report.setdefault("cells", {})
    final_level, final_config = max(args.levels), configs[-1]
    columns = COLUMNS + (DEEP_COLUMNS if args.model == "deep" else ())
    saved = (
        args.kernel
        if args.model == "mkl"
        else {"linear": "deep-concat", "cross": "deep-average"}[args.kernel]
    )
    final_model = None
    todo = [
        (lv, cf, col)
        for lv in args.levels
        for cf in configs
        for col in columns
        if not (lv == final_level and cf == final_config and col == saved)
        and col not in cells.get(str(lv), {}).get(cf, {})
    ]
    todo.append((final_level, final_config, saved))  # the saved model, always refitted
    progress = _sweep.SweepProgress(len(todo), disable=args.quiet or None)
    try:
        with logging_redirect_tqdm():
            for level, config, column in todo:
                progress.start(level, config, column)
                model, cell = _fit_cell(config, column, level, data, args)
                cells.setdefault(str(level), {}).setdefault(config, {})[column] = cell
                if (level, config, column) == (final_level, final_config, saved):
                    final_model = model
                _sweep.add_gains(cells)
                write_json(report_path, report)
                progress.done()
    finally:
        progress.close()
    import joblib

    joblib.dump(final_model, out / "model.joblib")
    final = cells[str(final_level)][final_config][saved]
    report["model"] = {
        "path": str(out / "model.joblib"),
        "level": final_level,
        "config": final_config,
        "model": args.model,
        "kernel": args.kernel,
        "column": saved,
        "mkl_tp": __version__,
        **{k: v for k, v in final.items()},
    }
    write_json(report_path, report)
    _sweep.print_tables(cells, configs, columns, args.levels, args.kernel, len(split.test_ids))
    baseline = cells.get(str(min(args.levels)), {}).get(final_config, {}).get(UNIFORM)
    print(
        f"\nsaved model: level {final_level}, {final_config}, {saved}: "
        f"accuracy {100 * final['accuracy']:.2f}%, mean class accuracy "
        f"{100 * final['mean_class_accuracy']:.2f}%"
        + (
            f" (level {min(args.levels)} baseline {100 * baseline['accuracy']:.2f}%)"
            if baseline is not None
            else ""
        )
    )
    if "stream_weights" in final:
        print(
            "stream weights: "
            + ", ".join(f"{k} {v:.2f}" for k, v in final["stream_weights"].items())
        )
    written = [out / "model.joblib", report_path]
    streams = [d["stream"] for d in described]
    try:
        written += _sweep.write_plots(
            out,
            cells,
            final,
            final_level,
            final_config,
            saved,
            streams,
            configs,
            columns,
            args.levels,
            args.kernel,
        )
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install mkl_tp[plot])")
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


def main(argv=None):
    """Entry point of ``python -m mkl_tp.fit``; returns the exit code."""
    return run_cli(_main, argv, "mkl_tp.fit")


if __name__ == "__main__":
    raise SystemExit(main())
