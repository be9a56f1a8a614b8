"""Shared pieces of the command-line tools: the exit codes and the runner, errors, logging."""

import hashlib
import logging
import sys
import warnings

from .. import __version__

# Root attributes compared between the streams of one fit.
_EXTRACTOR_ATTRS = ("arch", "mkl_tp_version")
# Split ids, and reasons of failed extractions, shown in one error.
_MAX_SHOWN_IDS = 5
_MAX_SHOWN_REASONS = 3


# The exit codes of every command (extract, fit, predict), documented in docs/cli_*.rst.
EXIT_OK = 0
#: The command ran and failed: some videos failed, a run stopped part-way, unusable data.
EXIT_FAILURE = 1
#: The command line is wrong (argparse exits with 2 itself); for extract also an input or
#: output that keeps the run from starting.
EXIT_USAGE = 2
#: SIGINT (128 + 2), or SIGTERM where a command turns it into SIGINT; finished work is kept.
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit code :data:`EXIT_FAILURE`."""


class UsageError(UserError):
    """Options that do not go together or cannot be used: one line, :data:`EXIT_USAGE`."""


def run_cli(main, argv, prog):
    """Run ``main(argv)``: warnings and user errors become one line each on stderr.

    Returns the exit code: ``main``'s, :data:`EXIT_USAGE` for a :class:`UsageError`,
    :data:`EXIT_FAILURE` for another user error (or a ``ValueError`` / ``OSError``),
    :data:`EXIT_INTERRUPTED` when interrupted. argparse's own usage errors exit with
    :data:`EXIT_USAGE` through ``SystemExit``.
    """

    def one_line(message, category, *args, **kwargs):
        # tqdm.write keeps the line off a progress bar that may be on screen.
        from tqdm import tqdm

        tqdm.write(f"{prog}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = one_line
        try:
            return main(argv)
        except UsageError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (UserError, ValueError, FileNotFoundError, OSError) as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; finished work is kept", file=sys.stderr)
            return EXIT_INTERRUPTED


def one_line_errors(parser):
    """Make an ``argparse`` parser's usage errors one line, ``PROG: error: ... (see --help)``,
    with :data:`EXIT_USAGE` (argparse prints the whole usage first, several lines here)."""

    def error(message):
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message} (see --help)\n")

    parser.error = error
    return parser


def configure_logging(quiet):
    """Log lines on stderr: the package's progress (INFO) unless ``quiet``, warnings always.

    Warnings and errors carry their level (``WARNING: ...``); progress lines are bare.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("mkl_tp").setLevel(logging.WARNING if quiet else logging.INFO)


class _LevelFormatter(logging.Formatter):
    def format(self, record):
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname}: {message}"


def file_digest(path, chunk=1 << 24):
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def versions():
    """Versions of mkl_tp and the libraries that shape its results."""
    import cvxpy
    import h5py
    import numpy
    import scipy
    import sklearn

    return {
        "mkl_tp": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "cvxpy": cvxpy.__version__,
        "h5py": h5py.__version__,
    }
