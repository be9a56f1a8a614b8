"""Metrics, the level table, atomic JSON and plots."""

import json

import numpy as np
import pytest

from mkl_tp.report import (
    classification_metrics,
    format_level_table,
    plot_beta,
    plot_confusion,
    write_json,
)


def test_metrics_against_hand_counts():
    y_true = ["a", "a", "a", "b"]
    y_pred = ["a", "a", "b", "b"]
    metrics = classification_metrics(y_true, y_pred, ["a", "b"])
    assert metrics["accuracy"] == 0.75
    assert metrics["mean_class_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert metrics["confusion_matrix"] == [[2, 1], [0, 1]]


def test_level_table_layout():
    table = {"1": {"rgb": {"uniform": 0.5, "linear": 0.5}},
             "2": {"rgb": {"uniform": 0.5, "linear": 0.625, "cross": 0.75}}}
    text = format_level_table(table, ["rgb"], ["uniform", "linear", "cross"])
    lines = text.splitlines()
    assert "rgb" in lines[0] and "uniform" in lines[1]
    assert lines[3].split("|")[1].split() == ["50.00", "50.00", "-"]
    assert lines[4].split("|")[1].split() == ["50.00", "62.50", "75.00"]


def test_write_json_replaces_atomically(tmp_path):
    path = tmp_path / "report.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 2}  # the old report survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_plots_are_png_files(tmp_path):
    plot_beta(np.full((2, 7), 1 / 14), ["rgb", "flow"], tmp_path / "beta.png", title="t")
    plot_confusion([[3, 1], [0, 4]], ["a", "b"], tmp_path / "confusion.png")
    for name in ("beta.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
