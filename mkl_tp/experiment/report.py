"""Results of a fit: metrics, the level tables, report.json and plots.

The plots need matplotlib (the ``plot`` extra); it is imported when a plot is drawn, and
scikit-learn when metrics are computed, so that the command lines answer ``--help`` fast.
"""

import json
import math
import os

import numpy as np

from .._utils.persist import write_atomically
from ..pyramid.descriptors import node_level

__all__ = [
    "classification_metrics",
    "format_level_table",
    "gains_over_uniform",
    "write_json",
    "jsonable",
    "plot_beta",
    "plot_beta_per_class",
    "plot_levels",
    "plot_confusion",
]

#: The baseline column: fixed uniform node weights.
UNIFORM = "uniform"


def classification_metrics(y_true, y_pred, classes):
    """Accuracy, mean per-class accuracy and the confusion matrix (rows: true class).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    classes : sequence
        Row/column order of the confusion matrix.

    Returns
    -------
    dict
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "mean_class_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(classes)).tolist(),
        "classes": [str(c) for c in classes],
    }


def gains_over_uniform(cells, key="accuracy"):
    """Learned minus uniform node weights, for every learned cell that has its baseline.

    Parameters
    ----------
    cells : dict
        ``cells[level][config][column]`` = a cell of report.json (a dict holding ``key``);
        column ``"uniform"`` is the baseline of its level and config.
    key : str, default "accuracy"

    Returns
    -------
    dict
        ``gains[level][config][column] = cell[key] - uniform[key]`` for every column but
        ``"uniform"`` (the same level and stream configuration), in the units of ``key``.
    """
    gains = {}
    for level, row in cells.items():
        for config, columns in row.items():
            baseline = columns.get(UNIFORM, {}).get(key)
            if baseline is None:
                continue
            for column, cell in columns.items():
                if column != UNIFORM and cell.get(key) is not None:
                    gains.setdefault(level, {}).setdefault(config, {})[column] = (
                        cell[key] - baseline
                    )
    return gains


def _level_block(table, configs, columns, signed):
    widths = [max(7, len(c)) for c in columns]
    group = sum(widths) + len(widths) - 1
    number = "{:>+{w}.2f}" if signed else "{:>{w}.2f}"
    lines = [
        "level | " + " | ".join(f"{c:^{group}}" for c in configs),
        "      | "
        + " | ".join(" ".join(f"{c:>{w}}" for c, w in zip(columns, widths)) for _ in configs),
    ]
    lines.append("-" * len(lines[-1]))
    for level in sorted(table, key=int):
        cells = []
        for config in configs:
            row = table[level].get(config, {})
            cells.append(
                " ".join(
                    number.format(100 * row[c], w=w) if c in row else f"{'-':>{w}}"
                    for c, w in zip(columns, widths)
                )
            )
        lines.append(f"{int(level):>5} | " + " | ".join(cells))
    return lines


def format_level_table(table, configs, columns, *, signed=False, max_width=100):
    """The level table as text, shaped like the paper's Tables 2-4.

    Parameters
    ----------
    table : dict
        ``table[level][config][column]`` = a fraction (test accuracy, or a difference of
        accuracies); printed in percent, missing cells as ``-``.
    configs : list of str
        Column groups (streams, then ``joint`` / ``late``).
    columns : list of str
        Columns of every group (e.g. ``uniform``, ``linear``, ``cross``).
    signed : bool, default False
        Print a sign on every number (for differences).
    max_width : int, default 100
        Groups that do not fit side by side in this many characters go into further
        blocks below, each with its own header (so wide ``--model deep`` tables stay
        readable in a terminal).

    Returns
    -------
    str
    """
    blocks, current = [], []
    for config in configs:
        trial = current + [config]
        if current and len(_level_block(table, trial, columns, signed)[1]) > max_width:
            blocks.append(current)
            trial = [config]
        current = trial
    blocks.append(current)
    return "\n\n".join("\n".join(_level_block(table, block, columns, signed)) for block in blocks)


def jsonable(value):
    """``value`` with numpy types made plain and non-finite floats made ``None``.

    JSON has no NaN or infinity (Python's ``json`` writes ``NaN`` and ``Infinity``, which
    strict parsers reject); report.json holds ``null`` in their place.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, payload):
    """Write strict JSON atomically: a temporary file in the same folder, then rename.

    Values go through :func:`jsonable` (NaN and infinities become ``null``). The file is
    created with mode ``0o666`` less the process umask, like any other output (a
    ``tempfile.mkstemp`` file would stay ``0o600`` after the rename).

    Raises
    ------
    TypeError
        ``payload`` holds something JSON cannot represent; the previous file is kept.
    OSError
        The file could not be written (a full disk, no permission): ``cannot write PATH:
        reason``, with the errno; the previous file is kept.
    """
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"

    def write(temporary):
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)

    write_atomically(path, write)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _level_ticks(ax, levels, axis="x"):
    """Separators between levels and one ``L<l>`` tick per level."""
    boundaries = np.flatnonzero(np.diff(levels)) + 0.5
    for boundary in boundaries:
        (ax.axvline if axis == "x" else ax.axhline)(boundary, color="0.7", lw=0.8)
    ticks = [np.mean(np.flatnonzero(levels == lv)) for lv in range(1, levels.max() + 1)]
    labels = [f"L{lv}" for lv in range(1, levels.max() + 1)]
    if axis == "x":
        ax.set_xticks(ticks, labels)
    else:
        ax.set_yticks(ticks, labels)


def plot_beta(beta, streams, path, title=""):
    """Node weights per level, one panel per stream (like the paper's Fig. 5).

    Parameters
    ----------
    beta : array-like of shape (n_streams, n_nodes)
    streams : list of str
    path : str
        PNG to write.
    title : str
    """
    plt = _pyplot()
    beta = np.atleast_2d(beta)
    n_nodes_ = beta.shape[1]
    levels = np.array([node_level(p)[0] for p in range(n_nodes_)])
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, levels.max()))
    figure, axes = plt.subplots(
        len(streams),
        1,
        figsize=(max(6, 0.18 * n_nodes_ + 3), 2.4 * len(streams)),
        squeeze=False,
        sharey=True,
    )
    for ax, weights, name in zip(axes[:, 0], beta, streams):
        ax.bar(np.arange(n_nodes_), weights, color=colours[levels - 1])
        _level_ticks(ax, levels)
        ax.set_ylabel(f"{name}\nβ (sum {weights.sum():.2f})")
    _save_node_figure(plt, figure, axes, title, path)


def _save_node_figure(plt, figure, axes, title, path):
    """Title on top, the node axis named at the bottom, written to ``path`` and closed."""
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("pyramid level (nodes left to right in time)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_beta_per_class(beta, streams, tasks, path, title=""):
    """Per-class node weights as class x node heat maps, one panel per stream.

    Parameters
    ----------
    beta : array-like of shape (n_streams, n_tasks, n_nodes)
        One weight vector per one-vs-rest task (``pyramids="per_class"``); each task's
        weights sum to 1 over all streams.
    streams : list of str
    tasks : list of str
        Row labels: the class of each task (``"b vs a"`` for a binary problem).
    path : str
        PNG to write.
    title : str
    """
    plt = _pyplot()
    beta = np.asarray(beta, dtype=float)
    n_tasks, n_nodes_ = beta.shape[1:]
    levels = np.array([node_level(p)[0] for p in range(n_nodes_)])
    figure, axes = plt.subplots(
        len(streams),
        1,
        squeeze=False,
        figsize=(max(6, 0.18 * n_nodes_ + 4), max(2.0, 0.22 * n_tasks + 1.2) * len(streams)),
    )
    top = float(beta.max()) or 1.0
    fontsize = max(4, 9 - n_tasks // 15)
    for ax, weights, name in zip(axes[:, 0], beta, streams):
        image = ax.imshow(
            weights, aspect="auto", cmap="viridis", vmin=0, vmax=top, interpolation="nearest"
        )
        _level_ticks(ax, levels)
        ax.set_yticks(np.arange(n_tasks), tasks, fontsize=fontsize)
        ax.set_ylabel(name)
        figure.colorbar(image, ax=ax, fraction=0.03, label="β")
    _save_node_figure(plt, figure, axes, title, path)


def plot_levels(table, configs, columns, path, title=""):
    """Test accuracy against pyramid depth: one panel per stream configuration, one line
    per node weighting; level 1 (global average pooling) is marked.

    Parameters
    ----------
    table : dict
        ``table[level][config][column]`` = test accuracy (a fraction).
    configs : list of str
        Panels (streams, then ``joint`` / ``late``).
    columns : list of str
        Lines (``uniform``, ``linear``, ``cross``, deep columns).
    path : str
        PNG to write.
    title : str
    """
    plt = _pyplot()
    levels = sorted(int(level) for level in table)
    figure, axes = plt.subplots(
        1, len(configs), squeeze=False, sharey=True, figsize=(1.0 + 3.6 * len(configs), 3.4)
    )
    markers = "osD^v<>"
    for ax, config in zip(axes[0], configs):
        for k, column in enumerate(columns):
            points = [
                (lv, 100 * table[str(lv)][config][column])
                for lv in levels
                if column in table[str(lv)].get(config, {})
            ]
            if points:
                x, y = zip(*points)
                # The baseline is drawn dashed and on top, so it shows where lines coincide.
                ax.plot(
                    x,
                    y,
                    marker=markers[k % len(markers)],
                    label=column,
                    linestyle="--" if column == UNIFORM else "-",
                    zorder=3 if column == UNIFORM else 2,
                )
        if 1 in levels:
            ax.axvline(1, color="0.6", lw=0.8, ls=":")
        ax.set_xticks(
            levels, [f"{lv}\nglobal average\npooling" if lv == 1 else str(lv) for lv in levels]
        )
        ax.set_xlabel("pyramid depth (levels)")
        ax.set_title(config)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, -1].legend(fontsize=8, loc="best")
    if title:
        # Wrapped to the figure's width: one panel is narrower than most titles.
        figure.suptitle(_wrapped(title, figure.get_figwidth()), fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _wrapped(title, width_inches):
    """``title`` in lines that fit ``width_inches`` at 10 points (about 0.085 in a char)."""
    import textwrap

    return textwrap.fill(title, width=max(20, int(width_inches / 0.085)))


def plot_confusion(matrix, classes, path, title=""):
    """Row-normalised confusion matrix as an image.

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        Counts, rows = true class.
    classes : list of str
    path : str
    title : str
    """
    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.25 * len(classes), 30)
    figure, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=90, fontsize=max(4, 10 - len(classes) // 12))
    ax.set_yticks(ticks, classes, fontsize=max(4, 10 - len(classes) // 12))
    if len(classes) <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(
                    j,
                    i,
                    int(count),
                    ha="center",
                    va="center",
                    color="white" if rates[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
