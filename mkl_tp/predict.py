"""``python -m mkl_tp.predict``: apply a saved model to HDF5 feature caches.

model.joblib is a pickle: load only files you trust (unpickling can run arbitrary code).
"""

import argparse
import csv
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np

from . import __version__
from ._cli import (
    EXIT_OK,
    UserError,
    add_split_format_arguments,
    configure_logging,
    describe_features,
    load_stream,
    run_cli,
)
from .datasets import read_split
from .fusion import LateFusionClassifier
from .report import classification_metrics
from .store import list_videos

__all__ = ["main", "build_parser", "model_feature_dims", "model_levels"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mkl_tp.predict",
        description="Predict labels of videos from their cached features with a model "
        "written by python -m mkl_tp.fit. SECURITY: model.joblib is a pickle; loading it can "
        "run arbitrary code, so load only models you made or trust.",
        epilog="Example: python -m mkl_tp.predict runs/ucf101_s1/model.joblib --features "
        "features/ucf101_rgb.h5 --features features/ucf101_flow.h5 --splits "
        "ucfTrainTestlist --format ucf101 --split 1 --out preds.csv",
    )
    parser.add_argument("model", help="model.joblib written by mkl_tp.fit (trusted files only)")
    parser.add_argument("--features", action="append", required=True, metavar="H5",
                        help="HDF5 feature cache, one per stream the model was fitted on")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--list", metavar="FILE",
                       help="text file of video ids to predict, one per line (default: all "
                       "videos of the first feature file)")
    which.add_argument("--splits", metavar="PATH",
                       help="split files: predict the test videos and report accuracy")
    add_split_format_arguments(parser)
    parser.add_argument("--out", metavar="CSV",
                        help="write video_id,prediction[,label] rows here (default: stdout)")
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    return parser


def model_feature_dims(model):
    """Stream name (``None`` for a plain single-stream model) -> feature dimension ``d``."""
    if isinstance(model, LateFusionClassifier):
        return {s: model.estimators_[s].n_features_per_stream_[None] for s in model.streams_}
    return dict(model.n_features_per_stream_)


def model_levels(model):
    """Pyramid depth of a fitted model (the deepest of a late-fusion model's streams)."""
    if isinstance(model, LateFusionClassifier):
        return max(m.levels for m in model.estimators_.values())
    return model.levels


def _check_model(model, path):
    if not hasattr(model, "predict") or not hasattr(model, "classes_"):
        raise UserError(f"{path} does not hold a fitted mkl_tp model")
    saved = getattr(model, "_mkl_tp_version", None)
    if saved is None:
        warnings.warn(f"{path} does not record the mkl_tp version it was made with",
                      stacklevel=2)
    elif saved != __version__:
        warnings.warn(f"{path} was made with mkl_tp {saved}, this is {__version__}",
                      stacklevel=2)


def _main(argv):
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    if not Path(args.model).is_file():
        raise UserError(f"model file not found: {args.model}")
    model = joblib.load(args.model)
    _check_model(model, args.model)
    dims = model_feature_dims(model)
    described = describe_features(args.features)
    expected = [s for s in dims if s is not None] or [None]
    if len(described) != len(expected):
        raise UserError(f"the model was fitted on {len(expected)} stream(s), got "
                        f"{len(described)} --features")
    labels = None
    if args.splits:
        split = read_split(args.splits, args.format, args.split)
        ids, labels = split.test_ids, np.array(split.test_labels)
    elif args.list:
        with open(args.list, encoding="utf-8") as handle:
            ids = [line.split()[0] for line in handle if line.strip()]
    else:
        ids = list_videos(described[0]["path"])
    if expected == [None]:
        sources = {None: described[0]}
    else:
        by_name = {d["stream"]: d for d in described}
        if set(by_name) != set(expected):
            raise UserError(
                f"the model's streams are {expected} but the feature files give "
                f"{sorted(by_name)} (names come from each file's 'stream' attribute, else "
                "the last '_' part of its name)")
        sources = {name: by_name[name] for name in expected}
    streams = {}
    for name, source in sources.items():
        arrays = load_stream(source["path"], ids, model_levels(model))
        if arrays[0].shape[1] != dims[name]:
            raise UserError(f"{source['path']} has d={arrays[0].shape[1]} features but the "
                            f"model expects d={dims[name]} for stream {source['stream']!r}")
        streams[name] = arrays
    X = streams[None] if None in streams else streams
    predictions = model.predict(X)
    rows = [[i, p] + ([t] if labels is not None else [])
            for i, p, t in zip(ids, predictions, labels if labels is not None else ids)]
    header = ["video_id", "prediction"] + (["label"] if labels is not None else [])
    handle = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        if args.out:
            handle.close()
    if labels is not None:
        metrics = classification_metrics(labels, predictions, model.classes_)
        print(f"accuracy {100 * metrics['accuracy']:.2f}% on {len(ids)} videos (mean class "
              f"accuracy {100 * metrics['mean_class_accuracy']:.2f}%)", file=sys.stderr)
    return EXIT_OK


def main(argv=None):
    """Entry point of ``python -m mkl_tp.predict``; returns the exit code."""
    return run_cli(_main, argv, "mkl_tp.predict")


if __name__ == "__main__":
    raise SystemExit(main())
