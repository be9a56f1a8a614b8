"""``python -m mkl_tp.fit`` (``mkl-tp-fit``): HDF5 feature caches + split files -> model,
tables and plots.

Run without arguments it fits the bundled real data (BasicMotions: accelerometer and
gyroscope streams) and prints the level table. scikit-learn (and torch for ``--model deep``)
are imported once the arguments are parsed, so ``--help`` answers at once.
"""

import argparse
import warnings
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from . import __version__
from ._utils.choices import BASE_KERNELS, KERNELS, NODE_NORMS, PYRAMIDS
from ._utils.cli import (
    EXIT_OK,
    UsageError,
    configure_logging,
    file_digest,
    one_line_errors,
    run_cli,
    versions,
)
from .experiment import cells as _sweep
from .experiment import options, sweep
from .experiment.inputs import (
    add_split_format_arguments,
    describe_features,
    split_format,
)
from .experiment.report import UNIFORM, write_json
from .experiment.sweep import C_GRID
from .sources.samples import basic_motions_paths
from .sources.splits import read_split

__all__ = ["main", "build_parser"]

# What the cells' models are made of (mkl_tp.experiment.sweep.fit_cell's keyword arguments).
_MODEL_OPTIONS = (
    "C",
    "kernel",
    "node_norm",
    "tol",
    "max_iter",
    "n_jobs",
    "seed",
    "base_kernel",
    "pyramids",
    "mkl_norm",
    "dask",
    "deep_pyramids",
    "deep_networks",
    "selection_videos",
)
# Node kernels have unit mean diagonal, so the useful C lie in 0.1-100 (the --C auto grid);
# from two orders of magnitude above, libsvm's solves grow long (its iterations grow with
# C) while the model hardly changes: warn.
LARGE_C = 1e4


# -- arguments ------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mkl_tp.fit",
        description="Learn temporal-pyramid node weights (multiple-kernel SVM) from cached "
        "per-frame features and a train/test split; print the level table and write "
        "model.skops (model.joblib, a pickle, with --model deep), report.json, levels.png, "
        "beta.png (and beta/ for every learned cell) and confusion.png. Without --features it "
        "runs on the bundled BasicMotions data.",
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
        "--splits",
        metavar="PATH",
        help="folder of split files, or one split file (a CSV, a Kinetics CSV, an SSv2 JSON "
        "or an mmaction2 list); see --format",
    )
    add_split_format_arguments(data)
    data.add_argument(
        "--allow-overlap",
        action="store_true",
        help="accept videos that are in both train and test (refused by default: the test "
        "accuracy would count videos trained on); report.json records them",
    )
    for subset in ("train", "test"):
        data.add_argument(
            f"--{subset}-frames",
            type=options.argument(options.frames),
            default="all",
            metavar="N",
            help=f"frames kept per {subset} video, evenly spaced: all (default), N, or per "
            "stream, e.g. rgb=25,flow=50 (the paper's Table 6 sampling strategies)",
        )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--kernel",
        choices=KERNELS,
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
        type=options.argument(options.levels),
        metavar="N|A-B|A,B,C",
        help="pyramid depth, a range to sweep (1-6) or a list (2,4,6) "
        "(default: 4; 1-4 on the bundled data)",
    )
    model.add_argument(
        "--base-kernel",
        choices=("auto", "cv") + BASE_KERNELS,
        help="kernel between node descriptors; auto: the estimator's rule "
        "(linear for --kernel linear, rbf for cross); cv: for cross, linear or rbf by "
        "3-fold CV on the training videos (default: the estimator's default)",
    )
    model.add_argument(
        "--node-norm",
        choices=NODE_NORMS,
        default="l2",
        help="per-node normalisation (default: %(default)s)",
    )
    model.add_argument(
        "--C",
        type=options.argument(options.C),
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
        "--deep-pyramids",
        type=options.argument(options.at_least_one),
        default=1,
        metavar="N",
        help="--model deep: temporal pyramids per stream, each with its own weights (the "
        "paper's Table 5; default: 1)",
    )
    model.add_argument(
        "--deep-networks",
        type=options.argument(options.networks),
        default="auto",
        metavar="N|auto",
        help="--model deep: networks averaged per model, each from its own initialisation; "
        "auto: 5 below 1000 training videos, 1 from there up (default: auto)",
    )
    model.add_argument(
        "--mkl-norm",
        type=options.argument(options.mkl_norm),
        metavar="P|inf|auto",
        help="lp-norm MKL: p = 1 gives sparse node weights, larger p spreads "
        "them (inf: uniform), auto: the estimator's rule (default: the "
        "estimator's default)",
    )
    model.add_argument(
        "--selection-videos",
        type=options.argument(options.at_least_one),
        metavar="N",
        help="--mkl-norm auto and --base-kernel cv judge at most N training videos (a "
        "stratified subset of larger sets): a larger N resolves smaller gains at a cost "
        "that grows with its square (default: the estimator's, 1000)",
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
        "--tol",
        type=options.argument(options.positive),
        default=1e-3,
        help="solver tolerance (default: 1e-3)",
    )
    model.add_argument(
        "--max-iter",
        type=options.argument(options.at_least_one),
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
        "allow_overlap": args.allow_overlap,
    }
    fingerprint = _sweep.fingerprint(settings, described, split)
    report = _sweep.previous_report(
        report_path, fingerprint, settings, described, split_info, args.overwrite
    )
    data, configs = sweep.load_data(
        described,
        split,
        max_level=max(args.levels),
        fusion=args.fusion,
        allow_overlap=args.allow_overlap,
        frames={"train": args.train_frames, "test": args.test_frames},
    )
    split_info["overlap"] = data["overlap"]
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
    columns, saved = sweep.columns_and_saved(args.model, args.kernel)
    todo = sweep.pending_cells(cells, args.levels, configs, columns, saved)
    options = {k: getattr(args, k) for k in _MODEL_OPTIONS}
    progress = _sweep.SweepProgress(len(todo), disable=args.quiet or None)
    try:
        with logging_redirect_tqdm():
            final_model = sweep.fit_cells(
                todo,
                data,
                cells,
                save=lambda: write_json(report_path, report),
                progress=progress,
                **options,
            )
    finally:
        progress.close()
    from ._utils.persist import extractor_record, save_model

    # How the training features were made, for predict to compare (a plain model of one
    # stream is keyed by None, as its feature dimensions are).
    final_model.feature_attrs_ = {
        (d["stream"] if len(described) > 1 else None): extractor_record(d["info"])
        for d in described
    }
    model_path = save_model(final_model, out)  # model.skops; model.joblib (a pickle) if deep
    final = cells[str(final_level)][final_config][saved]
    report["model"] = {
        "path": str(model_path),
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
    written = [model_path, report_path]
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
