"""The record, progress and outputs of a ``python -m mkl_tp.fit`` sweep.

report.json's settings and fingerprint, resuming a previous report or refusing an ``--out``
that holds results of other inputs or settings, the bar over the cells, and what is written
from the cells: the level tables on stdout, levels.png, the beta plots and confusion.png.
:mod:`~mkl_tp.experiment.sweep` fits the cells.
"""

import hashlib
import json
import math
import threading
import time

import numpy as np
from tqdm import tqdm

from .._utils.cli import UsageError
from .report import UNIFORM, format_level_table, gains_over_uniform

__all__ = [
    "SETTINGS",
    "SweepProgress",
    "add_gains",
    "fingerprint",
    "previous_report",
    "print_tables",
    "report_settings",
    "write_plots",
]

# Arguments that change a cell's result: a report made with others is not resumed. (--model
# only adds columns, so a deep run extends a finished shallow sweep.)
SETTINGS = ("kernel", "base_kernel", "node_norm", "C", "fusion", "tol", "max_iter", "seed")
# Settings added since: the value every earlier report had. They enter the fingerprint only
# when they differ from it, so that reports written before them still resume.
LEGACY_SETTINGS = {
    "pyramids": "shared",
    "mkl_norm": 1.0,
    "train_frames": "all",
    "test_frames": "all",
    "deep_pyramids": 1,
    # Earlier reports' deep cells had one network, which their code called its default.
    "deep_networks": "auto",
    # Judged on a subset of 3,000 videos before the default became 1,000.
    "selection_videos": 3000,
}


def _setting(value):
    """A setting as report.json holds it (JSON has no infinity)."""
    return "inf" if isinstance(value, float) and math.isinf(value) else value


def report_settings(given):
    """The settings of report.json from the options as given (a mapping; ``None`` where left
    out, recorded as the estimator's default: for ``"auto"``, what its rule chose is in each
    cell)."""
    from ..estimator import PyramidMKLClassifier

    defaults = {**LEGACY_SETTINGS, **PyramidMKLClassifier().get_params()}
    return {
        k: _setting(defaults[k] if given.get(k) is None else given[k])
        for k in ("model",) + SETTINGS + tuple(LEGACY_SETTINGS)
    }


def fingerprint(settings, described, split):
    """sha256 of what makes a cell's result: the feature files, the split, the settings."""
    fixed = {k: settings[k] for k in SETTINGS}
    fixed.update({k: settings[k] for k, legacy in LEGACY_SETTINGS.items() if settings[k] != legacy})
    payload = {
        "features": [d["sha256"] for d in described],
        "split": hashlib.sha256(json.dumps(split._asdict(), sort_keys=True).encode()).hexdigest(),
        "settings": fixed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _differences(previous, settings, described, split_info):
    """What differs between a previous report and this run, in words."""
    found = []
    old = previous.get("settings", {})
    for key in SETTINGS + tuple(LEGACY_SETTINGS):
        then = old.get(key, LEGACY_SETTINGS.get(key))
        if then != settings[key]:
            found.append(f"{key} {then!r} there, {settings[key]!r} now")
    old_features = [(f.get("path"), f.get("sha256")) for f in previous.get("features", [])]
    if [sha for _, sha in old_features] != [d["sha256"] for d in described]:
        found.append("features " + ", ".join(str(p) for p, _ in old_features) + " there")
    old_split = previous.get("split", {})
    if any(old_split.get(k) != split_info[k] for k in ("path", "format", "split")):
        found.append(
            f"split {old_split.get('path')} ({old_split.get('format')}, "
            f"{old_split.get('split')}) there"
        )
    return found


def previous_report(report_path, fingerprint, settings, described, split_info, overwrite):
    """The report to extend: the previous one if made with the same inputs and settings.

    Raises
    ------
    UsageError
        ``report_path`` holds results of other inputs or settings and ``overwrite`` is off.
    """
    if not report_path.is_file():
        return {}
    try:
        previous = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if isinstance(previous, dict) and previous.get("fingerprint") == fingerprint:
        return previous
    if overwrite:
        return {}
    if isinstance(previous, dict):
        found = _differences(previous, settings, described, split_info) or [
            "made by another version of mkl_tp.fit"
        ]
    else:
        found = ["not a report of mkl_tp.fit"]
    raise UsageError(
        f"{report_path} holds results of other inputs or settings "
        f"({'; '.join(found)}); pass --overwrite to replace them, or choose "
        "another --out"
    )


# -- progress ---------------------------------------------------------------------------
class SweepProgress:
    """The sweep's bar: one step per cell, named after the cell being fitted, redrawn every
    ``interval`` seconds with that cell's elapsed time, so a long cell never looks hung.

    Parameters
    ----------
    total : int
        Cells to fit.
    disable : bool or None
        tqdm's: None shows the bar on a terminal only.
    interval : float, default 1.0
        Seconds between redraws.
    **kwargs
        More tqdm arguments (``file``).
    """

    def __init__(self, total, disable, interval=1.0, **kwargs):
        self.bar = tqdm(
            total=total, unit="cell", desc="fitting", disable=disable, dynamic_ncols=True, **kwargs
        )
        self.interval = interval
        self._cell, self._started = None, None
        self._stop = threading.Event()
        self._ticker = None
        if not self.bar.disable:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def start(self, level, config, column):
        """A cell begins: its name goes in front of the bar."""
        self._cell, self._started = f"level {level} {config} {column}", time.perf_counter()
        self.bar.set_description_str(self._cell, refresh=False)
        self._show()

    def done(self):
        """The cell is fitted."""
        self._started = None
        self.bar.update(1)

    def _show(self):
        started = self._started  # read once: the ticker thread runs beside done()
        if started is not None:
            self.bar.set_postfix_str(
                f"this cell {time.perf_counter() - started:.0f} s", refresh=False
            )
        self.bar.refresh()

    def _tick(self):
        while not self._stop.wait(self.interval):
            self._show()

    def close(self):
        """Stop redrawing and close the bar."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.bar.close()


# -- outputs ----------------------------------------------------------------------------
def _beta_rows(beta, streams):
    """``beta`` as rows of node weights with a name each (streams x pyramids)."""
    beta = np.asarray(beta, dtype=float)
    rows = beta.reshape(-1, beta.shape[-1])
    per_stream = rows.shape[0] // len(streams)
    names = [s if per_stream == 1 else f"{s} #{k + 1}" for s in streams for k in range(per_stream)]
    return rows, names


def _tasks(classes):
    """One-vs-rest task names: every class, or ``"b vs a"`` for two classes."""
    return [f"{classes[1]} vs {classes[0]}"] if len(classes) == 2 else list(classes)


def _plot_cell_beta(cell, config, streams, path, title):
    from .report import plot_beta, plot_beta_per_class

    if cell.get("pyramids") != "per_class":
        rows, names = _beta_rows(cell["beta"], streams)
        plot_beta(rows, names, path, title=title)
        return
    beta = np.asarray(cell["beta"], dtype=float)
    if config == "late":  # one (n_tasks, P) per stream
        per_stream = beta
    elif beta.ndim == 2:  # one stream: (n_tasks, P)
        per_stream = beta[None]
    else:  # joint: (n_tasks, n_streams, P)
        per_stream = beta.transpose(1, 0, 2)
    plot_beta_per_class(per_stream, streams, _tasks(cell["classes"]), path, title=title)


def write_plots(
    out, cells, final, final_level, final_config, saved, streams, configs, columns, levels, kernel
):
    """levels.png, beta.png (the saved model), beta/ (every learned cell), confusion.png."""
    from .report import plot_confusion, plot_levels

    def streams_of(config):
        return streams if config in ("joint", "late") else [config]

    written = []
    table = {
        lv: {cf: {col: c["accuracy"] for col, c in row.items()} for cf, row in r.items()}
        for lv, r in cells.items()
        if int(lv) in levels
    }
    plot_levels(
        table,
        configs,
        columns,
        out / "levels.png",
        title=f"test accuracy vs pyramid depth ({kernel} uniform baseline)",
    )
    written.append(out / "levels.png")
    if "beta" in final:
        _plot_cell_beta(
            final,
            final_config,
            streams_of(final_config),
            out / "beta.png",
            f"node weights, level {final_level}, {final_config}, {saved}",
        )
        written.append(out / "beta.png")
    folder = out / "beta"
    folder.mkdir(exist_ok=True)
    for level in levels:
        for config in configs:
            for column, cell in cells.get(str(level), {}).get(config, {}).items():
                if column != UNIFORM and column in columns and "beta" in cell:
                    _plot_cell_beta(
                        cell,
                        config,
                        streams_of(config),
                        folder / f"L{level}_{config}_{column}.png",
                        f"node weights, level {level}, {config}, {column}",
                    )
    written.append(folder)
    plot_confusion(
        final["confusion_matrix"],
        final["classes"],
        out / "confusion.png",
        title=f"{final_config}, level {final_level}",
    )
    written.append(out / "confusion.png")
    return written


def add_gains(cells):
    """Every learned cell's ``vs_uniform``: its accuracies minus the uniform cell's."""
    for key in ("accuracy", "mean_class_accuracy"):
        for level, row in gains_over_uniform(cells, key).items():
            for config, columns in row.items():
                for column, gain in columns.items():
                    cells[level][config][column].setdefault("vs_uniform", {})[key] = gain


def print_tables(cells, configs, columns, levels, kernel, n_test):
    table = {
        lv: {cf: {col: c["accuracy"] for col, c in row.items()} for cf, row in r.items()}
        for lv, r in cells.items()
        if int(lv) in levels
    }
    print(
        f"test accuracy (%) on {n_test} videos; uniform uses kernel={kernel}; "
        "level 1 = global average pooling"
    )
    print(format_level_table(table, configs, columns))
    gains = {lv: row for lv, row in gains_over_uniform(cells).items() if int(lv) in levels}
    learned = [c for c in columns if c != UNIFORM]
    if gains:
        print("\nlearned - uniform (percentage points; same level and streams)")
        print(format_level_table(gains, configs, learned, signed=True))
    decisions = _decisions(cells, levels)
    if decisions:
        print(
            "\nwhat learning decided (by cross-validation on the training videos: the lp norm "
            "of the node weights, the cross kernel's base kernel and its check against "
            "kernel='linear'; out-of-fold accuracy %):"
        )
        print("\n".join(decisions))


def _decisions(cells, levels):
    """One line per choice made in a cell: the candidates' out-of-fold accuracies and the
    sentence of the choice -- the lp norm (``selection`` from ``C auto``, else the
    estimator's), the cross kernel's base kernel and its check against the linear kernel."""
    lines = []
    for level, row in sorted(cells.items(), key=lambda item: int(item[0])):
        if int(level) not in levels:
            continue
        for config, columns in row.items():
            for column, cell in columns.items():
                norm = cell.get("selection", {})
                norm = norm if "decision" in norm else cell.get("mkl_norm_selection")
                base = cell.get("base_kernel_selection") or {}
                linear = ""
                if "linear_kernel" in base:  # reports before the check of the fitted weights
                    linear = f"; kernel='linear' {100 * base['linear_kernel']:.1f}"
                    linear += _BLIND if base.get("linear_kernel_better") else ""
                for record, prefix, extra in ((norm, "p=", ""), (base, "", linear)):
                    if not record:
                        continue
                    scores = ", ".join(
                        f"{'' if c.startswith('level') else prefix}{c} {100 * a:.1f}"
                        for c, a in record["candidates"].items()
                    )
                    lines.append(
                        f"  L{level} {config} {column}: {record['decision']} "
                        f"[{scores}{extra}; {record.get('seconds', 0):.1f} s]"
                    )
                check = cell.get("linear_kernel_check")
                if check:
                    lines.append(
                        f"  L{level} {config} {column}: {check['decision']} [cross kernel "
                        f"{100 * check['cross_kernel']:.1f}, kernel='linear' "
                        f"{100 * check['linear_kernel']:.1f}; {check['seconds']:.1f} s]"
                    )
            gap = _cross_gap(columns)
            if gap:
                lines.append(f"  L{level} {config} cross: {gap}")
    return lines


_BLIND = (
    " -- kernel='linear' does better out of fold: Eq. 2 averages the nodes of a level, "
    "blind to their order"
)


def _cross_gap(columns):
    """The sentence saying that the cross cell's C search scored well below the linear
    cell's out of fold (more than two standard errors of the difference of two accuracies
    on the same videos, taken as independent: a conservative bound), else ``""``."""
    cross = columns.get("cross", {}).get("selection", {})
    linear = columns.get("linear", {}).get("selection", {})
    n = cross.get("n_videos")
    if "cv_accuracy" not in cross or not n:
        return ""
    if "candidates" in linear:
        theirs = linear["candidates"][linear["chosen"]]
    else:
        theirs = linear.get("cv_accuracy")
    ours = cross["cv_accuracy"]
    if theirs is None:
        return ""
    error = math.sqrt((ours * (1 - ours) + theirs * (1 - theirs)) / n)
    if theirs - ours <= 2 * error:
        return ""
    return (
        f"out of fold {100 * ours:.1f} against {100 * theirs:.1f} for linear (C search){_BLIND}"
        ", so it may not separate these classes: prefer the linear cell"
    )
