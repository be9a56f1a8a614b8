"""Results of a fit: metrics, the level table, report.json and plots."""

import json
import os
import tempfile

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

from .pyramid import node_level

__all__ = ["classification_metrics", "format_level_table", "write_json", "plot_beta",
           "plot_confusion"]


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
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "mean_class_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(classes)).tolist(),
        "classes": [str(c) for c in classes],
    }


def format_level_table(table, configs, columns):
    """The level table as text, shaped like the paper's Tables 2-4.

    Parameters
    ----------
    table : dict
        ``table[level][config][column]`` = test accuracy (missing cells print as ``-``).
    configs : list of str
        Column groups (streams, then ``joint`` / ``late``).
    columns : list of str
        Columns of every group (e.g. ``uniform``, ``linear``, ``cross``).

    Returns
    -------
    str
    """
    width = max(8, *(len(c) for c in columns))
    group = width * len(columns) + len(columns) - 1
    lines = ["level | " + " | ".join(f"{c:^{group}}" for c in configs),
             "      | " + " | ".join(" ".join(f"{c:>{width}}" for c in columns)
                                     for _ in configs)]
    lines.append("-" * len(lines[-1]))
    for level in sorted(table, key=int):
        cells = []
        for config in configs:
            row = table[level].get(config, {})
            cells.append(" ".join(
                f"{100 * row[c]:>{width}.2f}" if c in row else f"{'-':>{width}}"
                for c in columns))
        lines.append(f"{int(level):>5} | " + " | ".join(cells))
    return "\n".join(lines)


def write_json(path, payload):
    """Write JSON atomically: a temporary file in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2, sort_keys=False)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    figure, axes = plt.subplots(len(streams), 1, figsize=(max(6, 0.18 * n_nodes_ + 3),
                                                           2.4 * len(streams)),
                                squeeze=False, sharey=True)
    for ax, weights, name in zip(axes[:, 0], beta, streams):
        ax.bar(np.arange(n_nodes_), weights, color=colours[levels - 1])
        for boundary in np.flatnonzero(np.diff(levels)) + 0.5:
            ax.axvline(boundary, color="0.7", lw=0.8)
        ax.set_ylabel(f"{name}\nβ (sum {weights.sum():.2f})")
        ax.set_xticks([np.mean(np.flatnonzero(levels == lv)) for lv in range(1, levels.max() + 1)])
        ax.set_xticklabels([f"L{lv}" for lv in range(1, levels.max() + 1)])
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("pyramid level (nodes left to right in time)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


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
                ax.text(j, i, int(count), ha="center", va="center",
                        color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
