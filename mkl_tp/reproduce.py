"""``python -m mkl_tp.reproduce``: the paper's Tables 1-6 run on your caches through
``python -m mkl_tp.fit``, and Tables 1-7 printed beside the paper's UCF-101 figures
(:mod:`mkl_tp.experiment.paper`).

Each sweep is written to its own folder under ``--out`` and resumed when run again; each
sweep's level table goes to standard error, standard output holds the tables alone.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

from . import fit
from ._utils.cli import UsageError, one_line_errors, run_cli
from .experiment import options
from .experiment.inputs import add_split_format_arguments, describe_features
from .experiment.paper import runs, tables

__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m mkl_tp.reproduce",
        description="Run the paper's Tables 1-6 on your caches through python -m mkl_tp.fit "
        "(each sweep in a folder under --out, resumed when run again) and print each of "
        "them as 'ours (paper)', beside the paper's UCF-101 figures.",
    )
    parser.add_argument(
        "--features",
        action="append",
        required=True,
        metavar="H5",
        help="the appearance (rgb) and the motion (flow) caches, in that order unless their "
        "stream names say which",
    )
    parser.add_argument("--splits", required=True, metavar="PATH", help="split files (as fit)")
    add_split_format_arguments(parser)
    parser.add_argument("--out", default="runs/paper", help="folder of the sweeps (runs/paper)")
    parser.add_argument(
        "--tables",
        type=options.argument(options.levels),
        default=[2, 3, 4, 5, 6, 7],
        metavar="2-7",
        help="tables to run and print (1-7; default 2-7; 1 needs --backbone)",
    )
    parser.add_argument(
        "--levels",
        type=options.argument(options.levels),
        default=list(range(1, 7)),
        metavar="1-6",
        help="pyramid depths of Tables 2-4; the deepest is Tables 1, 5 and 6's (default 1-6)",
    )
    parser.add_argument(
        "--backbone",
        action="append",
        default=[],
        metavar="NAME=H5",
        help="Table 1: an appearance cache extracted with --arch NAME (give one per backbone)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--deep-networks",
        type=options.argument(options.networks),
        default="auto",
        metavar="N|auto",
        help="networks averaged per deep model, as fit's --deep-networks (default: auto)",
    )
    parser.add_argument("--print-only", action="store_true", help="fit nothing; print the tables")
    return one_line_errors(parser)


def _main(argv):
    args = _parser().parse_args(argv)
    args.tables = set(args.tables)
    if len(args.features) != 2:
        raise UsageError(f"give the rgb and the flow caches, got {len(args.features)} --features")
    if 1 in args.tables and not args.backbone:
        raise UsageError("Table 1 needs one --backbone NAME=H5 per backbone")
    pairs = [b.partition("=") for b in args.backbone]
    if any(not name or not path for name, _, path in pairs):
        raise UsageError(f"--backbone takes NAME=H5, got {args.backbone}")
    args.backbone = [(name, path) for name, _, path in pairs]
    streams = [d["stream"] for d in describe_features(args.features)]
    appearance, motion = ("rgb", "flow") if set(streams) == {"rgb", "flow"} else streams
    reports = {}
    for name, fit_args in runs(args, appearance, motion).items():
        folder = Path(args.out) / name
        if not args.print_only:
            print(f"== {name}: python -m mkl_tp.fit {' '.join(fit_args)}", file=sys.stderr)
            with contextlib.redirect_stdout(sys.stderr):  # stdout: the tables alone
                code = fit.main(fit_args + ["--out", str(folder), "--quiet"])
            if code:
                return code
        report = folder / "report.json"
        reports[name] = json.loads(report.read_text()) if report.is_file() else {}
    print(tables(reports, appearance, motion, args.tables, sorted(args.levels)))
    return 0


def main(argv=None):
    """Entry point of ``python -m mkl_tp.reproduce``; returns the exit code."""
    return run_cli(_main, argv, "mkl_tp.reproduce")


if __name__ == "__main__":
    raise SystemExit(main())
