"""``python -m mkl_tp.predict`` (``mkl-tp-predict``): apply a saved model to HDF5 feature
caches.

A ``model.skops`` loads without running code from the file: types off an allow-list are
refused before anything is built. A ``model.joblib`` (a deep model, or an older fit) is a
pickle, which runs whatever code it holds, so it is loaded only with ``--trust``
(:mod:`mkl_tp._utils.persist`). scikit-learn, skops and joblib are imported when a model is
loaded, so ``--help`` answers at once.
"""

import argparse
import csv
import os
import signal
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from ._utils.cli import EXIT_OK, UserError, configure_logging, one_line_errors, run_cli
from ._utils.persist import (
    EXTRACTOR_KEYS,
    UnsafeModelError,
    VersionedPickleMixin,
    extractor_record,
    load_model_file,
)
from .experiment import options
from .experiment.inputs import (
    add_split_format_arguments,
    check_frame_streams,
    describe_features,
    load_stream,
    split_format,
)
from .sources.splits import read_split
from .store import list_videos

__all__ = ["main", "build_parser", "load_model", "model_feature_dims", "model_levels"]

_EXPECTED = (
    "expected a model.skops (or, with --trust, a model.joblib) written by python -m mkl_tp.fit"
)
#: Exit status when the reader of standard output goes away (``predict ... | head``): what
#: a shell reports for a tool that SIGPIPE ends, without an error message.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mkl_tp.predict",
        description="Predict labels of videos from their cached features with a model "
        "written by python -m mkl_tp.fit. A model.skops loads without running code from the "
        "file (types other than mkl_tp's, scikit-learn's and numpy's are refused before "
        "anything is built). SECURITY: a model.joblib (deep models) is a pickle; loading it "
        "runs whatever code it holds, so it needs --trust: pass it only for models you made "
        "or trust.",
        epilog="Example: python -m mkl_tp.predict runs/ucf101_s1/model.skops --features "
        "features/ucf101_rgb.h5 --features features/ucf101_flow.h5 --splits "
        "ucfTrainTestlist --format ucf101 --split 1 --out preds.csv. Exit status: 0 done; "
        "1 an unusable model or input; 2 usage; 141 the reader of standard output went "
        "away (| head), with no message.",
    )
    parser.add_argument(
        "model", help="model.skops (or model.joblib with --trust) written by mkl_tp.fit"
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load a pickle (model.joblib): it runs whatever code the file holds, so only for "
        "a file you made or trust",
    )
    parser.add_argument(
        "--features",
        action="append",
        required=True,
        metavar="H5",
        help="HDF5 feature cache, one per stream the model was fitted on",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--list",
        metavar="FILE",
        help="text file of video ids to predict, one per line (default: all "
        "videos of the first feature file)",
    )
    which.add_argument(
        "--splits", metavar="PATH", help="split files: predict the test videos and report accuracy"
    )
    add_split_format_arguments(parser)
    parser.add_argument(
        "--out", metavar="CSV", help="write video_id,prediction[,label] rows here (default: stdout)"
    )
    parser.add_argument(
        "--scores",
        action="store_true",
        help="also write each class's decision score (score_CLASS columns, in the model's "
        "class order) and, for a model with probabilities (fitted with probability=True, "
        "a late-fusion or a deep model), each class's probability (probability_CLASS)",
    )
    parser.add_argument(
        "--frames",
        type=options.argument(options.frames),
        default="all",
        metavar="N",
        help="frames kept per video, evenly spaced: all (default), N, or per stream, e.g. "
        "rgb=25,flow=250 (fit's --test-frames)",
    )
    parser.add_argument(
        "--allow-extractor-mismatch",
        action="store_true",
        help="predict even when the feature files were extracted otherwise than the model's "
        "training features (another backbone, weights, crop, sampling or flow method); "
        "the differences are printed as a warning",
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    return one_line_errors(parser)


def load_model(path, trust=False):
    """Load a model written by ``python -m mkl_tp.fit``.

    Parameters
    ----------
    path : str or os.PathLike
        A model.skops, which loads without running code from the file, or with ``trust`` a
        model.joblib (a pickle).
    trust : bool, default False
        Load a pickle. Unpickling runs whatever code the file holds: only for files you
        made or trust.

    Returns
    -------
    estimator
        A fitted :class:`~mkl_tp.PyramidMKLClassifier`, :class:`~mkl_tp.LateFusionClassifier`
        or :class:`~mkl_tp.deep.DeepPyramidClassifier`.

    Raises
    ------
    UserError
        One line saying what the file is instead (missing, empty, a pickle without
        ``trust``, a .skops file naming types off the allow-list, not a model file, a file
        of another object, an unfitted model, or a model whose modules are not installed);
        nothing from an untrusted file was run.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes); {_EXPECTED}")
    try:
        model = load_model_file(path, trust=trust)
    except UnsafeModelError as exc:
        raise UserError(f"{exc}; {_EXPECTED}") from None
    except ModuleNotFoundError as exc:
        extra = " (pip install mkl_tp[deep])" if exc.name == "torch" else ""
        raise UserError(
            f"{path} needs the module {exc.name!r}, which is not installed{extra}"
        ) from None
    except Exception as exc:  # unpickling garbage raises almost any exception type
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        kind = "a readable .skops model" if zipfile.is_zipfile(path) else "a joblib/pickle file"
        raise UserError(
            f"{path} is not {kind} ({type(exc).__name__}"
            f"{': ' + reason if reason else ''}); {_EXPECTED}"
        ) from None
    if not isinstance(model, VersionedPickleMixin):
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        raise UserError(f"{path} holds a {kind}, not an mkl_tp model; {_EXPECTED}")
    if not hasattr(model, "classes_"):
        raise UserError(f"{path} holds an unfitted {type(model).__name__}; {_EXPECTED}")
    return model


def model_feature_dims(model):
    """Stream name (``None`` for a plain single-stream model) -> feature dimension ``d``.

    Raises
    ------
    UserError
        The model predates ``n_features_per_stream_`` (made by an older mkl_tp).
    """
    from .fusion import LateFusionClassifier

    try:
        if isinstance(model, LateFusionClassifier):
            return {s: model.estimators_[s].n_features_per_stream_[None] for s in model.streams_}
        return dict(model.n_features_per_stream_)
    except AttributeError:
        raise UserError(
            f"this {type(model).__name__} was saved by an older mkl_tp that did "
            "not record its feature dimensions; fit it again"
        ) from None


def model_levels(model):
    """Pyramid depth of a fitted model (the deepest of a late-fusion model's streams)."""
    from .fusion import LateFusionClassifier

    if isinstance(model, LateFusionClassifier):
        return max(m.levels for m in model.estimators_.values())
    return model.levels


def _score_columns(model, X):
    """The ``--scores`` columns: header names and an ``(n_videos, n_columns)`` array.

    ``score_CLASS`` per class of ``model.classes_`` (in that order) from
    ``decision_function``; for two classes its one score ``s`` (positive favours
    ``classes_[1]``) is written as ``-s, s``. Then ``probability_CLASS`` per class when the
    model has ``predict_proba`` (a :class:`~mkl_tp.PyramidMKLClassifier` fitted with
    ``probability=True``, a late-fusion or a deep model); rows of those sum to 1.
    """
    classes = [str(c) for c in model.classes_]
    scores = np.asarray(model.decision_function(X), dtype=float)
    if scores.ndim == 1:
        scores = np.column_stack([-scores, scores])
    header, columns = [f"score_{c}" for c in classes], [scores]
    if hasattr(model, "predict_proba"):
        header += [f"probability_{c}" for c in classes]
        columns.append(np.asarray(model.predict_proba(X), dtype=float))
    return header, np.hstack(columns)


def _check_version(model, path):
    saved = getattr(model, "_mkl_tp_version", None)
    if saved is None:
        warnings.warn(f"{path} does not record the mkl_tp version it was made with", stacklevel=2)
    elif saved != __version__:
        warnings.warn(f"{path} was made with mkl_tp {saved}, this is {__version__}", stacklevel=2)


def _extractor_differences(trained, given):
    """``key=value`` differences between two extractor records (:func:`extractor_record`).

    When either side was not written by mkl_tp's extractor (no ``weights_digest``: an
    imported or bring-your-own file), only the keys both record are compared. The weights'
    name (a path, which moves with the files) counts only when a digest is missing.
    """
    both = "weights_digest" in trained and "weights_digest" in given
    differ = []
    for key in EXTRACTOR_KEYS:
        if not (both or (key in trained and key in given)) or (key == "weights" and both):
            continue
        if trained.get(key) != given.get(key):
            differ.append((key, trained.get(key), given.get(key)))
    return differ


def _check_extractor(model, model_path, sources, allow):
    """Refuse feature files extracted otherwise than the model's training features.

    A model from an mkl_tp older than this check records nothing (``feature_attrs_``) and
    is not checked.

    Raises
    ------
    UserError
        One line: the file, each differing attribute with the model's value and the file's,
        and ``--allow-extractor-mismatch``; with ``allow`` a warning says it instead.
    """
    recorded = getattr(model, "feature_attrs_", None)
    if not isinstance(recorded, dict):
        return
    for name, source in sources.items():
        trained = recorded.get(name)
        if trained is None and len(recorded) == 1 and len(sources) == 1:
            trained = next(iter(recorded.values()))
        if trained is None:
            continue
        differ = _extractor_differences(trained, extractor_record(source["info"]))
        if not differ:
            continue
        listed = "; ".join(
            f"{key}={given!r} in the file, {want!r} in the model's" for key, want, given in differ
        )
        message = (
            f"{source['path']} was extracted otherwise than the features {model_path} was "
            f"fitted on ({listed})"
        )
        if not allow:
            raise UserError(
                f"{message}; extract them as the training features were, or pass "
                "--allow-extractor-mismatch"
            )
        warnings.warn(f"{message}; predicting anyway (--allow-extractor-mismatch)", stacklevel=2)


def _main(argv):
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    model = load_model(args.model, trust=args.trust)
    _check_version(model, args.model)
    dims = model_feature_dims(model)
    described = describe_features(args.features)
    expected = [s for s in dims if s is not None] or [None]
    if len(described) != len(expected):
        raise UserError(
            f"the model was fitted on {len(expected)} stream(s), got {len(described)} --features"
        )
    labels = None
    if args.splits:
        split = read_split(args.splits, split_format(args.format, args.splits), args.split)
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
                "the last '_' part of its name)"
            )
        sources = {name: by_name[name] for name in expected}
    _check_extractor(model, args.model, sources, args.allow_extractor_mismatch)
    check_frame_streams(args.frames, [s["stream"] for s in sources.values()], "--frames")
    streams = {}
    for name, source in sources.items():
        arrays = load_stream(
            source["path"],
            ids,
            model_levels(model),
            subset="test" if args.splits else "listed",
            frames=options.frames_of(args.frames, source["stream"]),
        )
        if arrays[0].shape[1] != dims[name]:
            raise UserError(
                f"{source['path']} has d={arrays[0].shape[1]} features but the "
                f"model expects d={dims[name]} for stream {source['stream']!r}"
            )
        streams[name] = arrays
    X = streams[None] if None in streams else streams
    predictions = model.predict(X)
    rows = [
        [i, p] + ([t] if labels is not None else [])
        for i, p, t in zip(ids, predictions, labels if labels is not None else ids)
    ]
    header = ["video_id", "prediction"] + (["label"] if labels is not None else [])
    if args.scores:
        names, values = _score_columns(model, X)
        header += names
        rows = [row + [float(v) for v in line] for row, line in zip(rows, values)]
    if not _write_rows(args.out, [header] + rows):
        return EXIT_BROKEN_PIPE
    if labels is not None:
        from .experiment.report import classification_metrics

        metrics = classification_metrics(labels, predictions, model.classes_)
        print(
            f"accuracy {100 * metrics['accuracy']:.2f}% on {len(ids)} videos (mean class "
            f"accuracy {100 * metrics['mean_class_accuracy']:.2f}%)",
            file=sys.stderr,
        )
    return EXIT_OK


def _write_rows(out, rows):
    """Write CSV rows to the file ``out``, or to standard output when ``None``.

    Returns ``False`` when standard output's reader went away (``| head``): like a unix
    tool ended by SIGPIPE, that is no error to report.

    Raises
    ------
    UserError
        The rows could not be written (a full disk, no such folder); names where.
    """
    if out is None:
        try:
            csv.writer(sys.stdout).writerows(rows)
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
            return False
        except OSError as exc:
            raise UserError(
                f"cannot write the predictions to standard output: {exc.strerror or exc}"
            ) from None
        return True
    try:
        with open(out, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    except OSError as exc:
        raise UserError(f"cannot write the predictions to {out}: {exc.strerror or exc}") from None
    return True


def _discard_stdout():
    """Point standard output at /dev/null, so Python's flush at exit finds no broken pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # a captured stdout without a file descriptor
        pass


def main(argv=None):
    """Entry point of ``python -m mkl_tp.predict``; returns the exit code."""
    return run_cli(_main, argv, "mkl_tp.predict")


if __name__ == "__main__":
    raise SystemExit(main())
