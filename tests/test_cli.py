"""Tests for mkl_tp._utils.cli: one exit-code table for the three commands, argparse in them."""

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mkl_tp import extract, fit, predict
from mkl_tp._utils import cli as _cli
from mkl_tp._utils.cli import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    UserError,
    run_cli,
)

PACKAGE = Path(__file__).resolve().parents[1] / "mkl_tp"
# The commands, and the parsers of fit's and predict's option values (argparse types).
COMMAND_LINES = {"extract.py", "fit.py", "predict.py", "reproduce.py", "experiment/options.py"}


def test_exit_code_table():
    assert (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED) == (0, 1, 2, 130)


@pytest.mark.parametrize(
    "raised, code, printed",
    [
        (UsageError("--a needs --b"), EXIT_USAGE, "prog: error: --a needs --b"),
        (UserError("file not found: x"), EXIT_FAILURE, "prog: error: file not found: x"),
        (ValueError("x.h5: bad"), EXIT_FAILURE, "prog: error: x.h5: bad"),
        (OSError("disk full"), EXIT_FAILURE, "prog: error: disk full"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "prog: interrupted; finished work is kept"),
    ],
)
def test_run_cli_maps_errors_to_one_line_and_a_code(capsys, raised, code, printed):
    def main(argv):
        raise raised

    assert run_cli(main, [], "prog") == code
    assert capsys.readouterr().err.strip().splitlines() == [printed]


def test_run_cli_passes_the_code_through_and_warnings_as_one_line(capsys):
    def main(argv):
        warnings.warn("careful", stacklevel=1)
        return 3

    assert run_cli(main, [], "prog") == 3
    assert capsys.readouterr().err.strip() == "prog: warning: careful"


def test_usage_errors_exit_2_in_every_command(tmp_path, capsys):
    # Checks of the command line that argparse cannot express...
    assert (
        extract.main([str(tmp_path), "--out", str(tmp_path / "x"), "--batch-size", "0"])
        == EXIT_USAGE
    )
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert fit.main(["--features", str(tmp_path / "x.h5")]) == EXIT_USAGE
    assert "--features needs --splits" in capsys.readouterr().err
    # ...and argparse's own, which exit with the same code.
    for main, argv in (
        (extract.main, ["--no-such-option"]),
        (fit.main, ["--levels", "0-3"]),
        (predict.main, ["model.joblib", "--features", "a.h5", "--list", "l.txt", "--splits", "s"]),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == EXIT_USAGE
        assert "error:" in capsys.readouterr().err


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_command_lines_import_argparse():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "_utils" / "cli.py" in sources and PACKAGE / "store" / "_runs.py" in sources
    importers = {str(p.relative_to(PACKAGE)) for p in sources if "argparse" in _imports(p)}
    assert importers <= COMMAND_LINES, importers - COMMAND_LINES
    assert "argparse" not in _imports(Path(_cli.__file__))


def _imported_by(*args):
    """Top-level modules imported by ``python -X importtime ARGS`` (its stderr lists them)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        timeout=60,
    )
    names = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, names


HEAVY = {"torch", "torchvision", "cv2", "av", "sklearn", "scipy", "matplotlib", "joblib", "cvxpy"}


@pytest.mark.parametrize("command", ["extract", "fit", "predict"])
def test_help_imports_nothing_heavy(command):
    # --help must not wait for torch, OpenCV or scikit-learn: they cost seconds to import.
    result, names = _imported_by("-m", f"mkl_tp.{command}", "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    assert not names & HEAVY, names & HEAVY


def test_import_mkl_tp_stays_light():
    _, names = _imported_by("-c", "import mkl_tp, mkl_tp.extraction, mkl_tp.store")
    assert not names & HEAVY, names & HEAVY


def test_the_lazy_public_api_is_complete():
    import mkl_tp

    for name in mkl_tp.__all__:
        assert getattr(mkl_tp, name) is not None
    assert mkl_tp.PyramidMKLClassifier.__module__ == "mkl_tp.estimator"
    assert "DeepPyramidClassifier" in dir(mkl_tp)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = mkl_tp.nothing


@pytest.mark.parametrize(
    "main, argv, fragment",
    [
        (fit.main, ["--levels", "0-3"], "levels must lie in 1..10"),
        (predict.main, ["m.joblib"], "the following arguments are required: --features"),
        (extract.main, ["src", "--out", "x", "--fps", "2", "--stride", "3"], "not allowed with"),
    ],
)
def test_argparse_errors_are_one_line(capsys, main, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0] and fragment in lines[0], lines
