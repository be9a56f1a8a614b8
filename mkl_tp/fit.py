"""``python -m mkl_tp.fit``: HDF5 feature caches + split files -> model, tables and plots.

Run without arguments it fits the bundled real data (BasicMotions: accelerometer and
gyroscope streams) and prints the level table.
"""

import argparse
import hashlib
import json
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from . import __version__
from ._cli import (
    EXIT_OK,
    UsageError,
    UserError,
    add_split_format_arguments,
    configure_logging,
    describe_features,
    file_digest,
    load_stream,
    run_cli,
    versions,
)
from .datasets import basic_motions_paths, read_split
from .estimator import PyramidMKLClassifier
from .fusion import LateFusionClassifier
from .kernels import BASE_KERNELS, NODE_NORMS
from .report import (
    classification_metrics,
    format_level_table,
    plot_beta,
    plot_confusion,
    write_json,
)

__all__ = ["main", "build_parser"]

COLUMNS = ("uniform", "linear", "cross")
DEEP_COLUMNS = ("deep-concat", "deep-average")
C_GRID = (0.1, 1.0, 10.0, 100.0)
# Arguments that change a cell's result: a report made with others is not resumed. (--model
# only adds columns, so a deep run extends a finished shallow sweep.)
_SETTINGS = ("kernel", "base_kernel", "node_norm", "C", "fusion", "tol", "max_iter", "seed")


def _levels(text):
    """``6`` -> [6]; ``1-6`` -> [1..6]; ``2,4,6`` -> [2, 4, 6]."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
            levels = list(range(low, high + 1))
        else:
            levels = sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N, A-B or A,B,C, got {text!r}") from None
    if not levels or min(levels) < 1 or max(levels) > 10:
        raise argparse.ArgumentTypeError(f"levels must lie in 1..10, got {text!r}")
    return levels


def _C(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"C must be positive, got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mkl_tp.fit",
        description="Learn temporal-pyramid node weights (multiple-kernel SVM) from cached "
        "per-frame features and a train/test split; print the level table and write "
        "model.joblib, report.json, beta.png and confusion.png. Without --features it runs "
        "on the bundled BasicMotions data.",
        epilog="Example: python -m mkl_tp.fit --features features/ucf101_rgb.h5 --features "
        "features/ucf101_flow.h5 --splits ucfTrainTestlist --format ucf101 --split 1 "
        "--kernel linear --levels 1-6 --out runs/ucf101_s1",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--features", action="append", metavar="H5",
                      help="HDF5 feature cache (/videos/<id> -> (T, d)); give twice for two "
                      "streams (e.g. _rgb.h5 and _flow.h5)")
    data.add_argument("--splits", metavar="PATH",
                      help="folder of split files (or the CSV file for --format csv)")
    add_split_format_arguments(data)
    model = parser.add_argument_group("model")
    model.add_argument("--kernel", choices=("linear", "cross"), default="linear",
                       help="node-kernel combination of the saved model: linear = weighted "
                       "sum of node kernels (concatenation), cross = kernel of the weighted "
                       "mean descriptor (averaging); the table shows both (default: "
                       "%(default)s)")
    model.add_argument("--model", choices=("mkl", "deep"), default="mkl",
                       help="mkl = the multiple-kernel SVM; deep = the end-to-end pyramid "
                       "network on the cached features (needs torch: the deep extra), "
                       "'concat' for --kernel linear, 'average' for cross; the table then "
                       "shows deep columns beside the shallow ones (default: %(default)s)")
    model.add_argument("--levels", type=_levels, metavar="N|A-B",
                       help="pyramid depth, or a range to sweep (default: 4; 1-4 on the "
                       "bundled data)")
    model.add_argument("--base-kernel", choices=BASE_KERNELS, default="linear",
                       help="kernel between node descriptors (default: %(default)s)")
    model.add_argument("--node-norm", choices=NODE_NORMS, default="l2",
                       help="per-node normalisation (default: %(default)s)")
    model.add_argument("--C", type=_C, default=1.0, metavar="C|auto",
                       help=f"SVM box constraint, or 'auto' for 3-fold stratified CV on the "
                       f"training videos over {C_GRID} (default: 1)")
    model.add_argument("--fusion", choices=("joint", "late"), default="joint",
                       help="two streams: one simplex over both streams' nodes (joint), or "
                       "one model per stream fused with a weight learned on held-out folds "
                       "(late) (default: %(default)s)")
    model.add_argument("--tol", type=float, default=1e-3, help="solver tolerance (default: 1e-3)")
    model.add_argument("--max-iter", type=int, default=100,
                       help="most alternating iterations (default: 100)")
    model.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run = parser.add_argument_group("run")
    run.add_argument("--out", metavar="DIR",
                     help="output folder (default: runs/<name of the first feature file>); "
                     "re-running with the same inputs keeps the finished levels")
    run.add_argument("--n-jobs", type=int, default=-1,
                     help="threads over one-vs-rest SVMs; -1 = all cores (default: -1)")
    run.add_argument("--quiet", action="store_true", help="no progress, only the table")
    return parser


def _subset(X, index):
    if isinstance(X, dict):
        return {name: [seqs[i] for i in index] for name, seqs in X.items()}
    return [X[i] for i in index]


def _make_model(config, column, level, C, args):
    if column in DEEP_COLUMNS:
        from .deep import DeepPyramidClassifier

        base = DeepPyramidClassifier(levels=level, mode=column.split("-")[1],
                                     random_state=args.seed)
        return LateFusionClassifier(base, random_state=args.seed) if config == "late" else base
    weights = "uniform" if column == "uniform" else "learn"
    kernel = args.kernel if column == "uniform" else column
    base = PyramidMKLClassifier(
        levels=level, kernel=kernel, base_kernel=args.base_kernel, node_norm=args.node_norm,
        C=C, tol=args.tol, max_iter=args.max_iter, node_weights=weights, n_jobs=args.n_jobs,
        random_state=args.seed)
    if config == "late":
        return LateFusionClassifier(base, random_state=args.seed)
    return base


def _select_C(config, column, level, X, y, args):
    """C by 3-fold stratified cross-validation on the training videos."""
    folds = list(StratifiedKFold(3, shuffle=True, random_state=args.seed).split(
        np.zeros(len(y)), y))
    scores = []
    for C in C_GRID:
        accuracy = [_make_model(config, column, level, C, args)
                    .fit(_subset(X, train), y[train]).score(_subset(X, test), y[test])
                    for train, test in folds]
        scores.append(np.mean(accuracy))
    return C_GRID[int(np.argmax(scores))]


def _fit_cell(config, column, level, data, args):
    X_train = data["train"][config]
    if column in DEEP_COLUMNS:
        C = None  # the network has no box constraint
    elif args.C == "auto":
        C = _select_C(config, column, level, X_train, data["y_train"], args)
    else:
        C = args.C
    model = _make_model(config, column, level, C, args)
    start = time.perf_counter()
    model.fit(X_train, data["y_train"])
    seconds = time.perf_counter() - start
    predicted = model.predict(data["test"][config])
    cell = {"C": C, "fit_seconds": round(seconds, 3),
            **classification_metrics(data["y_test"], predicted, model.classes_)}
    if isinstance(model, LateFusionClassifier):
        cell["stream_weights"] = dict(zip(model.streams_, model.stream_weights_.tolist()))
        cell["beta"] = [model.estimators_[s].beta_.tolist() for s in model.streams_]
    elif column in DEEP_COLUMNS:
        cell.update(beta=np.asarray(model.beta_).tolist(), n_iter=model.n_iter_,
                    loss_curve=model.loss_curve_)
        if config == "joint":
            cell["stream_weights"] = dict(zip(model.streams_, model.stream_weights_.tolist()))
    else:
        cell.update(beta=np.atleast_2d(model.beta_).tolist(), n_iter=model.n_iter_,
                    objective=model.objective_, converged=model.converged_)
        if config == "joint":
            cell["stream_weights"] = dict(zip(model.streams_, model.beta_.sum(axis=1).tolist()))
    return model, cell


def _beta_rows(beta, streams):
    """``beta`` as rows of node weights with a name each (streams x pyramids)."""
    beta = np.asarray(beta, dtype=float)
    rows = beta.reshape(-1, beta.shape[-1])
    per_stream = rows.shape[0] // len(streams)
    names = [s if per_stream == 1 else f"{s} #{k + 1}" for s in streams for k in range(per_stream)]
    return rows, names


def _load(args, described):
    split = read_split(args.splits, args.format, args.split)
    # Streams may differ in frame counts for a video: pyramid nodes live in normalised time,
    # so they stay aligned without resampling.
    unseen = sorted(set(split.test_labels) - set(split.train_labels))
    if unseen:
        raise UserError(f"test labels never seen in training: {unseen[:5]}")
    data = {"y_train": np.array(split.train_labels), "y_test": np.array(split.test_labels),
            "train": {}, "test": {}}
    for entry in described:
        for subset in ("train", "test"):
            ids = split.train_ids if subset == "train" else split.test_ids
            data[subset][entry["stream"]] = load_stream(entry["path"], ids, max(args.levels))
    streams = [d["stream"] for d in described]
    if len(streams) > 1:
        for subset in ("train", "test"):
            data[subset][args.fusion] = {s: data[subset][s] for s in streams}
    configs = streams + ([args.fusion] if len(streams) > 1 else [])
    return split, data, configs


def _fingerprint(args, described, split):
    payload = {
        "features": [d["sha256"] for d in described],
        "split": hashlib.sha256(json.dumps(split._asdict(), sort_keys=True).encode()).hexdigest(),
        "settings": {k: getattr(args, k) for k in _SETTINGS},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _main(argv):
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    if args.features is None:
        if args.splits is not None:
            raise UsageError("--splits needs --features")
        bundled = basic_motions_paths()
        args.features, args.splits, args.format = bundled["features"], bundled["split"], "csv"
        args.out = args.out or "runs/basic_motions"
        args.levels = args.levels or [1, 2, 3, 4]
    elif args.splits is None:
        raise UsageError("--features needs --splits (and --format) to know the labels")
    args.levels = args.levels or [4]
    if len(args.features) > 2:
        raise UsageError(f"at most two streams, got {len(args.features)} --features")
    described = describe_features(args.features)
    for entry in described:
        entry["sha256"] = file_digest(entry["path"])
    split, data, configs = _load(args, described)
    out = Path(args.out or Path("runs") / Path(args.features[0]).stem)
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.json"
    fingerprint = _fingerprint(args, described, split)
    report = {}
    if report_path.is_file():
        previous = json.loads(report_path.read_text(encoding="utf-8"))
        if previous.get("fingerprint") == fingerprint:
            report = previous
    report.update(
        fingerprint=fingerprint, versions=versions(),
        features=[{k: d[k] for k in ("path", "stream", "sha256", "info")} for d in described],
        split={"path": str(args.splits), "format": args.format, "split": args.split,
               "n_train": len(split.train_ids), "n_test": len(split.test_ids),
               "classes": split.classes},
        settings={k: getattr(args, k) for k in ("model",) + _SETTINGS},
    )
    cells = report.setdefault("cells", {})
    final_level, final_config = max(args.levels), configs[-1]
    columns = COLUMNS + (DEEP_COLUMNS if args.model == "deep" else ())
    saved = args.kernel if args.model == "mkl" else \
        {"linear": "deep-concat", "cross": "deep-average"}[args.kernel]
    final_model = None
    todo = [(lv, cf, col) for lv in args.levels for cf in configs for col in columns
            if not (lv == final_level and cf == final_config and col == saved)
            and col not in cells.get(str(lv), {}).get(cf, {})]
    todo.append((final_level, final_config, saved))  # the saved model, always refitted
    for level, config, column in tqdm(todo, desc="fitting", unit="model",
                                      disable=args.quiet or None):
        model, cell = _fit_cell(config, column, level, data, args)
        cells.setdefault(str(level), {}).setdefault(config, {})[column] = cell
        if (level, config, column) == (final_level, final_config, saved):
            final_model = model
        write_json(report_path, report)
    joblib.dump(final_model, out / "model.joblib")
    final = cells[str(final_level)][final_config][saved]
    report["model"] = {"path": str(out / "model.joblib"), "level": final_level,
                       "config": final_config, "model": args.model, "kernel": args.kernel,
                       "column": saved, "mkl_tp": __version__,
                       **{k: v for k, v in final.items()}}
    write_json(report_path, report)
    table = {lv: {cf: {col: c["accuracy"] for col, c in row.items()} for cf, row in r.items()}
             for lv, r in cells.items() if int(lv) in args.levels}
    print(f"test accuracy (%) on {len(split.test_ids)} videos; uniform uses kernel="
          f"{args.kernel}; level 1 = global average pooling")
    print(format_level_table(table, configs, columns))
    baseline = table.get(str(min(args.levels)), {}).get(final_config, {}).get("uniform")
    print(f"\nsaved model: level {final_level}, {final_config}, {saved}: "
          f"accuracy {100 * final['accuracy']:.2f}%, mean class accuracy "
          f"{100 * final['mean_class_accuracy']:.2f}%"
          + (f" (level {min(args.levels)} baseline {100 * baseline:.2f}%)"
             if baseline is not None else ""))
    if "stream_weights" in final:
        print("stream weights: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                             final["stream_weights"].items()))
    written = [out / "model.joblib", report_path]
    try:
        if "beta" in final:
            rows, names = _beta_rows(final["beta"],
                                     getattr(final_model, "streams_", [final_config]))
            plot_beta(rows, names, out / "beta.png",
                      title=f"node weights, level {final_level}, {saved}")
            written.append(out / "beta.png")
        plot_confusion(final["confusion_matrix"], final["classes"], out / "confusion.png",
                       title=f"{final_config}, level {final_level}")
        written.append(out / "confusion.png")
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install mkl_tp[plot])")
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


def main(argv=None):
    """Entry point of ``python -m mkl_tp.fit``; returns the exit code."""
    return run_cli(_main, argv, "mkl_tp.fit")


if __name__ == "__main__":
    raise SystemExit(main())
