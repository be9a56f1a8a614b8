"""Metrics, the level table, atomic JSON and plots."""

import json
import os
import stat

import numpy as np
import pytest

from mkl_tp.experiment.report import (
    classification_metrics,
    format_level_table,
    gains_over_uniform,
    plot_beta,
    plot_beta_per_class,
    plot_confusion,
    plot_levels,
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
    table = {
        "1": {"rgb": {"uniform": 0.5, "linear": 0.5}},
        "2": {"rgb": {"uniform": 0.5, "linear": 0.625, "cross": 0.75}},
    }
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


def test_write_json_applies_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "report.json", {"a": 1})
        (tmp_path / "other.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "other.txt").stat().st_mode) == 0o644


def _strict(text):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_write_json_writes_strict_json(tmp_path):
    path = tmp_path / "report.json"
    write_json(
        path,
        {
            "C": float("inf"),
            "fps": float("nan"),
            "n": np.int64(3),
            "beta": np.array([0.25, 0.75]),
            "nested": [{"x": -np.inf}],
        },
    )
    assert _strict(path.read_text()) == {
        "C": None,
        "fps": None,
        "n": 3,
        "beta": [0.25, 0.75],
        "nested": [{"x": None}],
    }


def test_gains_over_uniform_per_level_and_config():
    cells = {
        "1": {
            "rgb": {"uniform": {"accuracy": 0.5}, "linear": {"accuracy": 0.625}},
            "joint": {"linear": {"accuracy": 0.75}},
        },  # no baseline: no gain
        "2": {"rgb": {"uniform": {"accuracy": 0.5}, "cross": {"accuracy": 0.25}}},
    }
    assert gains_over_uniform(cells) == {
        "1": {"rgb": {"linear": 0.125}},
        "2": {"rgb": {"cross": -0.25}},
    }


def test_signed_table_and_wide_tables_split_into_blocks():
    table = {"1": {"rgb": {"linear": 0.125, "cross": -0.25}}}
    lines = format_level_table(table, ["rgb"], ["linear", "cross"], signed=True).splitlines()
    assert lines[3].split("|")[1].split() == ["+12.50", "-25.00"]
    columns = ["uniform", "linear", "cross", "deep-concat", "deep-average"]
    row = dict.fromkeys(columns, 1.0)
    wide = {str(lv): {c: row for c in ("rgb", "flow", "joint")} for lv in (1, 2, 3)}
    text = format_level_table(wide, ["rgb", "flow", "joint"], columns)
    assert max(len(line) for line in text.splitlines()) <= 100
    headers = [line for line in text.splitlines() if line.startswith("level |")]
    assert [h.split("|")[1].strip() for h in headers] == ["rgb", "flow", "joint"]
    assert text.count("100.00") == 3 * 3 * 5  # every cell, once


def test_levels_and_per_class_plots_are_png_files(tmp_path):
    table = {
        "1": {"rgb": {"uniform": 0.5, "linear": 0.5}},
        "2": {"rgb": {"uniform": 0.5, "linear": 0.625, "cross": 0.75}},
    }
    plot_levels(table, ["rgb"], ["uniform", "linear", "cross"], tmp_path / "levels.png")
    beta = np.random.default_rng(0).dirichlet(np.ones(14), size=3).reshape(3, 2, 7)
    plot_beta_per_class(
        beta.transpose(1, 0, 2),
        ["rgb", "flow"],
        ["a", "b", "c"],
        tmp_path / "classes.png",
        title="t",
    )
    for name in ("levels.png", "classes.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tables_say_what_learning_decided(capsys):
    from mkl_tp.experiment.cells import print_tables

    kept = {"candidates": {"inf": 0.8}, "chosen": "inf", "decision": "p=inf kept: x"}
    chosen = {"candidates": {"inf": 0.6, "1": 0.7}, "chosen": "1", "decision": "p=1 chosen"}
    cells = {
        "2": {
            "rgb": {
                "uniform": {"accuracy": 0.5},
                "linear": {"accuracy": 0.5, "mkl_norm_selection": {**kept, "seconds": 0.25}},
                "cross": {
                    "accuracy": 0.6,
                    "selection": {**chosen, "seconds": 2.0},
                    "base_kernel_selection": {
                        "candidates": {"linear": 0.4, "rbf": 0.55},
                        "chosen": "rbf",
                        "decision": "base kernel rbf chosen over base kernel linear",
                        "linear_kernel": 0.7,
                        "seconds": 1.5,
                    },
                    "linear_kernel_check": {
                        "cross_kernel": 0.55,
                        "linear_kernel": 0.9,
                        "linear_kernel_better": True,
                        "decision": "kernel='linear' better",
                        "seconds": 0.25,
                    },
                },
            }
        }
    }
    print_tables(cells, ["rgb"], ["uniform", "linear", "cross"], [2], "linear", 10)
    out = capsys.readouterr().out
    assert "L2 rgb linear: p=inf kept: x [p=inf 80.0; 0.2 s]" in out
    assert "L2 rgb cross: p=1 chosen [p=inf 60.0, p=1 70.0; 2.0 s]" in out
    # A report written before the check of the fitted weights: the linear kernel's score
    # beside the base kernels.
    assert (
        "L2 rgb cross: base kernel rbf chosen over base kernel linear "
        "[linear 40.0, rbf 55.0; kernel='linear' 70.0; 1.5 s]"
    ) in out
    assert (
        "L2 rgb cross: kernel='linear' better [cross kernel 55.0, kernel='linear' 90.0; 0.2 s]"
    ) in out


def test_a_long_levels_title_fits_a_single_panel(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from mkl_tp.experiment import report

    shown = {}
    close = pyplot.close

    def keep(figure):  # measure the title before the figure is closed
        figure.canvas.draw()
        box = figure.texts[0].get_window_extent()
        shown["inside"] = box.x0 >= 0 and box.x1 <= figure.bbox.width
        close(figure)

    monkeypatch.setattr(pyplot, "close", keep)
    table = {"1": {"rgb": {"uniform": 0.5}}, "2": {"rgb": {"uniform": 0.6}}}
    title = "BasicMotions: test accuracy against pyramid depth, kernel=linear, 40 test videos"
    report.plot_levels(table, ["rgb"], ["uniform"], tmp_path / "levels.png", title=title)
    assert shown["inside"]
