"""python -m mkl_tp.reproduce (mkl_tp.experiment.paper): the sweeps each of the paper's
tables needs, and the tables printed as 'ours (paper)'."""

import json
from types import SimpleNamespace

import pytest
from _caches import make_cache, write_ucf_split

from mkl_tp import reproduce
from mkl_tp.experiment import paper


def _args(**given):
    values = dict(
        features=["a_rgb.h5", "a_flow.h5"],
        splits="S",
        split=1,
        format=None,
        seed=0,
        deep_networks="auto",
        levels=[1, 2, 3],
        tables={1, 2, 3, 4, 5, 6},
        backbone=[("vgg11", "v_rgb.h5")],
    )
    values.update(given)
    return SimpleNamespace(**values)


def test_each_table_gets_the_sweeps_the_paper_ran():
    todo = paper.runs(_args(), "rgb", "flow")
    levels = todo.pop("levels")
    assert levels[levels.index("--levels") + 1] == "1-3" and "deep" in levels
    assert levels[levels.index("--deep-networks") + 1] == "auto"
    for count in (1, 2, 4, 8, 16):
        sweep = todo.pop(f"pyramids_{count}")
        assert sweep[sweep.index("--deep-pyramids") + 1] == str(count)
        assert sweep[sweep.index("--levels") + 1] == "3"
    strategy = todo["sampling_4"]  # Table 6, #4: train 25 RGB / 50 OF, test 25 / 250
    assert strategy[strategy.index("--train-frames") + 1] == "rgb=25,flow=50"
    assert strategy[strategy.index("--test-frames") + 1] == "rgb=25,flow=250"
    assert {k for k in todo if k.startswith("sampling_")} == {f"sampling_{n}" for n in range(1, 9)}
    backbone = todo["backbone_vgg11"]
    assert backbone[:2] == ["--features", "v_rgb.h5"] and "--model" not in backbone
    assert paper.runs(_args(tables={7}), "rgb", "flow") == {}  # Table 7: nothing to fit


def _report(cells):
    """report.json's cells from {(level, config, column): accuracy}."""
    out = {}
    for (level, config, column), value in cells.items():
        out.setdefault(str(level), {}).setdefault(config, {})[column] = {"accuracy": value}
    return {"cells": out}


def test_the_tables_put_each_figure_beside_the_papers():
    sweep = _report(
        {
            (1, "flow", "linear"): 0.5,
            (1, "flow", "cross"): 0.25,
            (1, "flow", "deep-concat"): 0.125,
            (1, "rgb", "linear"): 0.75,
            (1, "joint", "linear"): 0.875,
            (1, "joint", "deep-concat"): 0.9,
        }
    )
    sweep["cells"]["1"]["joint"]["deep-concat"]["stream_weights"] = {"rgb": 0.3, "flow": 0.7}
    reports = {
        "levels": sweep,
        "sampling_3": _report({(2, "rgb", "deep-concat"): 0.6, (2, "joint", "deep-concat"): 0.7}),
        "backbone_vgg11": _report({(2, "rgb", "uniform"): 0.4}),
    }
    text = paper.tables(reports, "rgb", "flow", {1, 2, 4, 6}, [1, 2])
    table2 = text.split("Table 2")[1].split("\n\n")[0]
    assert "| 1 |  50.00 (78.40) |  25.00 (78.40) |  12.50 (78.66) |      - (78.66) |" in table2
    assert "| 2 |      - (79.53)" in table2  # a cell not run
    table4 = text.split("Table 4")[1].split("\n\n")[0]
    assert "|  50.00 (78.40) |  75.00 (80.28) |  87.50 (88.91) |" in table4
    assert "|  90.00 (89.69) |   0.70 (0.46) |   0.30 (0.54) |" in table4  # w_m, w_a
    table6 = text.split("Table 6")[1].split("\n\n")[0]
    assert "| #3 | 25 | 50 | 25 | 50 |  60.00 (84.23) |      - (81.86) |  70.00 (91.69) |" in table6
    assert "| vgg11 |  40.00 (63.12) |" in text.split("Table 1")[1]
    assert "Table 3" not in text and "Table 5" not in text


@pytest.mark.filterwarnings("ignore:.*no mkl_tp extractor attributes")
def test_the_command_runs_fit_and_prints_its_cells(tmp_path, capsys):
    pytest.importorskip("torch")
    rgb, ids = make_cache(tmp_path, stream="rgb", d=4, seed=0)
    flow, _ = make_cache(tmp_path, stream="flow", d=3, seed=1)
    splits = write_ucf_split(tmp_path / "splits", ids)
    argv = ["--features", str(rgb), "--features", str(flow), "--splits", str(splits)]
    argv += ["--tables", "3", "--levels", "1", "--out", str(tmp_path / "paper")]
    argv += ["--deep-networks", "1"]  # one network per deep model: the quick way
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "paper" / "levels" / "report.json").read_text())
    cell = report["cells"]["1"]["rgb"]["linear"]["accuracy"]
    assert out.startswith("Table 3: appearance stream (rgb)")  # fit's own tables on stderr
    assert f"| 1 | {100 * cell:6.2f} (80.28) |" in out
    assert reproduce.main(argv[:4] + ["--splits", str(splits), "--tables", "1"]) == 2
    assert "Table 1 needs one --backbone" in capsys.readouterr().err
