"""python -m mkl_tp.fit and mkl_tp.predict end to end on small HDF5 caches."""

import csv
import json
import subprocess
import sys

import h5py
import joblib
import numpy as np
import pytest
from _caches import CLASSES, make_cache, write_ucf_split

from mkl_tp import fit, predict
from mkl_tp._utils.params import without_cross_check
from mkl_tp.experiment import cells, sweep


@pytest.fixture
def toy(tmp_path):
    rgb, ids = make_cache(tmp_path, stream="rgb", d=4, seed=0)
    flow, _ = make_cache(tmp_path, stream="flow", d=3, seed=1)
    splits = write_ucf_split(tmp_path / "splits", ids)
    return tmp_path, rgb, flow, splits


def run_fit(*argv):
    return fit.main([str(a) for a in argv])


def test_two_streams_end_to_end_and_predict_reproduces(toy, capsys):
    tmp, rgb, flow, splits = toy
    out = tmp / "run"
    code = run_fit(
        "--features",
        rgb,
        "--features",
        flow,
        "--splits",
        splits,
        "--format",
        "ucf101",
        "--levels",
        "1-2",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert f"warning: {rgb}: no mkl_tp extractor attributes" in captured.err
    assert "rgb" in printed and "flow" in printed and "joint" in printed
    report = json.loads((out / "report.json").read_text())
    cells = report["cells"]
    assert set(cells) == {"1", "2"}
    assert set(cells["2"]) == {"rgb", "flow", "joint"}
    assert set(cells["2"]["joint"]) == {"uniform", "linear", "cross"}
    model_cell = report["model"]
    assert model_cell["level"] == 2 and model_cell["config"] == "joint"
    assert sum(model_cell["stream_weights"].values()) == pytest.approx(1.0)
    assert len(report["features"][0]["sha256"]) == 64
    assert np.array(model_cell["confusion_matrix"]).sum() == report["split"]["n_test"]
    for name in ("model.skops", "beta.png", "confusion.png"):
        assert (out / name).is_file()
    model = predict.load_model(out / "model.skops")
    assert model.streams_ == ["rgb", "flow"]
    assert model._mkl_tp_version == report["versions"]["mkl_tp"]

    preds = tmp / "preds.csv"
    code = predict.main(
        [
            str(out / "model.skops"),
            "--features",
            str(rgb),
            "--features",
            str(flow),
            "--splits",
            str(splits),
            "--format",
            "ucf101",
            "--out",
            str(preds),
            "--quiet",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(preds.open()))
    accuracy = np.mean([r["prediction"] == r["label"] for r in rows])
    assert accuracy == pytest.approx(model_cell["accuracy"])
    assert f"accuracy {100 * accuracy:.2f}%" in capsys.readouterr().err


def test_compressed_leaves_give_the_same_model_as_raw_frames(toy):
    from mkl_tp import PyramidMKLClassifier, node_descriptors_batch
    from mkl_tp.experiment.inputs import load_stream

    tmp, rgb, _, _ = toy
    with h5py.File(rgb) as h5:
        ids = [f"{c}/{v}" for c in CLASSES for v in h5["videos"][c]]
        raw = [h5["videos"][i][()] for i in ids]
    y = [i.split("/")[0] for i in ids]
    leaves = load_stream(rgb, ids, levels=3)
    assert all(x.shape == (4, 4) for x in leaves)
    for levels in (1, 2, 3):
        np.testing.assert_allclose(
            node_descriptors_batch(leaves, levels),
            node_descriptors_batch(raw, levels),
            rtol=1e-12,
            atol=1e-12,
        )
    # Same kernels up to rounding; the solver stops at a relative gap of tol, so the two fits
    # agree to that tolerance (libsvm's working sets react to 1e-16 differences).
    a = PyramidMKLClassifier(levels=3, tol=1e-3).fit(raw, y)
    b = PyramidMKLClassifier(levels=3, tol=1e-3).fit(leaves, y)
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-3)
    np.testing.assert_allclose(a.beta_, b.beta_, atol=1e-3)
    np.testing.assert_array_equal(a.predict(raw), b.predict(leaves))


def test_an_interrupted_fit_exits_130_and_keeps_the_finished_cells(toy, monkeypatch, capsys):
    tmp, rgb, _, splits = toy
    real = sweep.fit_cells

    def interrupted(todo, data, kept, save=None, **kwargs):  # Ctrl-C after the first cell
        real(todo[:1], data, kept, save=save, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "fit_cells", interrupted)
    out = tmp / "stopped"
    args = ["--features", rgb, "--splits", splits, "--out", out, "--quiet", "--levels", "1"]
    assert run_fit(*args) == 130
    assert "interrupted; finished work is kept" in capsys.readouterr().err
    cells = json.loads((out / "report.json").read_text())["cells"]
    assert sum(len(row["rgb"]) for row in cells.values()) == 1


def test_interrupted_sweep_keeps_finished_cells(toy):
    from mkl_tp.experiment.inputs import describe_features
    from mkl_tp.sources.splits import read_split

    tmp, rgb, _, splits = toy
    split = read_split(splits, "ucf101", 1)
    with pytest.warns(UserWarning, match="no mkl_tp extractor attributes"):
        described = describe_features([rgb])
    data, configs = sweep.load_data(described, split, max_level=2)
    columns, saved = sweep.columns_and_saved("mkl", "linear")
    todo = sweep.pending_cells({}, [1, 2], configs, columns, saved)
    assert len(todo) == 6 and todo[-1] == (2, "rgb", "linear")  # the saved model's cell last

    class Interrupted:  # Ctrl-C as the fifth cell starts
        started = 0

        def start(self, level, config, column):
            if self.started == 4:
                raise KeyboardInterrupt
            self.started += 1

        def done(self):
            pass

    kept, saves = {}, []
    with pytest.raises(KeyboardInterrupt):
        sweep.fit_cells(
            todo,
            data,
            kept,
            save=lambda: saves.append(json.dumps(kept)),
            progress=Interrupted(),
            C=1.0,
        )
    assert sum(len(row["rgb"]) for row in kept.values()) == 4
    assert len(saves) == 4 and json.loads(saves[-1]) == kept  # saved after every cell
    # 6 cells in all: 4 kept, 2 left (the saved model's cell is always refitted)
    left = sweep.pending_cells(kept, [1, 2], configs, columns, saved)
    assert left == [(2, "rgb", "cross"), (2, "rgb", "linear")]
    model = sweep.fit_cells(left, data, kept, C=1.0)
    assert sum(len(row["rgb"]) for row in kept.values()) == 6
    assert (model.levels, model.kernel) == (2, "linear")

    # the command line resumes: a deeper sweep keeps the finished cells of the same settings
    args = ["--features", rgb, "--splits", splits, "--out", tmp / "run", "--quiet"]
    assert run_fit(*args, "--levels", "1") == 0
    first = json.loads((tmp / "run" / "report.json").read_text())["cells"]
    assert run_fit(*args, "--levels", "1-2") == 0
    report = json.loads((tmp / "run" / "report.json").read_text())["cells"]
    assert report["1"] == first["1"] and set(report["2"]["rgb"]) == set(columns)


def test_late_fusion_and_csv_split(tmp_path):
    rgb, ids = make_cache(tmp_path, stream="rgb")
    flow, _ = make_cache(tmp_path, stream="flow", d=3, seed=2)
    split = tmp_path / "split.csv"
    split.write_text(
        "video_id,label,subset\n"
        + "".join(f"{v}.mp4,{n},{'test' if g % 4 == 0 else 'train'}\n" for v, n, g in ids)
    )
    out = tmp_path / "late"
    code = run_fit(
        "--features",
        rgb,
        "--features",
        flow,
        "--splits",
        split,
        "--format",
        "csv",
        "--fusion",
        "late",
        "--levels",
        "2",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["config"] == "late"
    assert sum(report["model"]["stream_weights"].values()) == pytest.approx(1.0)


def test_C_auto_picks_from_the_grid(toy):
    tmp, rgb, _, splits = toy
    assert (
        run_fit(
            "--features",
            rgb,
            "--splits",
            splits,
            "--levels",
            "1",
            "--C",
            "auto",
            "--out",
            tmp / "auto",
            "--quiet",
        )
        == 0
    )
    report = json.loads((tmp / "auto" / "report.json").read_text())
    assert report["model"]["C"] in sweep.C_GRID


@pytest.mark.parametrize("base_kernel", ["auto", "cv"])
def test_searches_and_helper_fits_leave_the_cross_check_to_the_final_fit(base_kernel):
    """The C search's fold fits, Platt's folds of probability=True and the late fusion's
    folds are not kept: they skip the cross kernel's check (and its warning); the model
    kept runs it, once (one per stream with late fusion)."""
    import warnings

    from mkl_tp import LateFusionClassifier, PyramidMKLClassifier

    # Order-blind halves: the check warns on every cross fit.
    rng = np.random.default_rng(0)
    a, b = np.eye(3)[0], np.eye(3)[1]
    y = np.arange(30) % 2
    X = [
        np.vstack([np.tile(p, (6, 1)) for p in ((a, b) if label == 0 else (b, a))])
        + 0.3 * rng.normal(size=(12, 3))
        for label in y
    ]

    def cross(**options):
        return PyramidMKLClassifier(levels=2, kernel="cross", base_kernel=base_kernel, **options)

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sweep.select_C(X, y, lambda C, norm: cross(C=C))
        with without_cross_check():
            assert cross().fit(X, y).linear_kernel_better_ is None
    for model, X_fit, kept in (
        (cross(), X, 1),
        (cross(probability=True), X, 1),
        (LateFusionClassifier(cross()), {"a": X, "b": X}, 2),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X_fit, y)
        assert sum("Eq. 2" in str(w.message) for w in caught) == kept


def test_C_auto_chooses_the_norm_with_C_by_the_one_standard_error_rule():
    """The joint search gives each norm its best C and keeps uniform weights unless a
    learned norm is better by more than one standard error (fits faked: known answers)."""

    y = np.repeat([0, 1, 2], 40)
    i = np.arange(len(y))
    # Which videos each (norm, C) gets right out of fold; anything else gets 30 %.
    right = {
        (np.inf, 10.0): i % 10 < 7,  # uniform: 0.70
        (2.0, 1.0): (i + 3) % 10 < 7,  # 0.70, other videos: no gain
        (1.0, 100.0): i % 20 < 19,
    }  # 0.95: +0.25, one standard error 0.04

    class Fake:
        def __init__(self, C, norm):
            self.key = (norm, C)

        def fit(self, X, labels):
            return self

        def predict(self, X):
            index = np.asarray(X)
            hit = right.get(self.key, i % 10 < 3)[index]
            return np.where(hit, y[index], (y[index] + 1) % 3)

    def build(C, norm):
        return Fake(C, norm)

    X = list(i)
    C, norm, record = sweep.select_C(X, y, build, search_norm=True)
    assert (C, norm) == (100.0, 1.0)
    assert record["chosen"] == "1" and set(record["candidates"]) == {"inf", "2", "1"}
    assert record["C"]["1"] == 100.0 and record["decision"].startswith("p=1 chosen over p=inf")
    right[(1.0, 100.0)] = (i + 5) % 20 < 15  # 0.75: +0.05 against an error of 0.07
    C, norm, record = sweep.select_C(X, y, build, search_norm=True)
    assert (C, norm) == (10.0, np.inf)
    assert record["decision"].startswith("p=inf kept: no candidate beat it")
    assert record["candidates"]["1"] == 0.75
    right[(None, 10.0)] = i % 10 < 7  # other columns search C alone
    assert not sweep.searches_norm("cross", None)
    assert sweep.select_C(X, y, build, search_norm=False)[:2] == (10.0, None)
    assert sweep.searches_norm("linear", None) and sweep.searches_norm("linear", "auto")
    assert not sweep.searches_norm("linear", 2.0)  # a norm given on the command line is kept


def test_user_errors_exit_1_with_one_line(toy, capsys):
    tmp, rgb, flow, splits = toy
    assert run_fit("--features", tmp / "nope.h5", "--splits", splits) == 1
    assert "feature file not found" in capsys.readouterr().err
    assert run_fit("--features", rgb, "--splits", tmp / "missing") == 1
    assert "split folder not found" in capsys.readouterr().err
    (splits / "testlist01.txt").write_text("Curling/v_Curling_g01_c01.avi\n")
    assert run_fit("--features", rgb, "--splits", splits) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "label 'Curling'" in errors[0]
    (splits / "testlist01.txt").write_text("Archery/v_Archery_g99_c01.avi\n")
    assert run_fit("--features", rgb, "--splits", splits) == 1
    assert (
        f"split videos are not in {rgb}: test 1 of 1 (Archery/v_Archery_g99_c01)"
        in capsys.readouterr().err
    )


def test_usage_errors_exit_2(toy, capsys):
    tmp, rgb, _, splits = toy
    assert run_fit("--features", rgb) == 2
    assert "--features needs --splits" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run_fit("--features", rgb, "--splits", splits, "--format", "kinetics")
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        run_fit("--levels", "0-3")
    assert exit_info.value.code == 2


def test_nan_features_name_the_video(tmp_path, capsys):
    rgb, ids = make_cache(tmp_path, nan_video="Bowling/v_Bowling_g03_c01")
    splits = write_ucf_split(tmp_path / "splits", ids)
    assert run_fit("--features", rgb, "--splits", splits, "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "error:" in err and "'Bowling/v_Bowling_g03_c01'" in err and "NaN" in err


def test_predict_checks_the_feature_dimension_and_version(toy, capsys, monkeypatch):
    tmp, rgb, flow, splits = toy
    assert (
        run_fit(
            "--features", rgb, "--splits", splits, "--levels", "1", "--out", tmp / "one", "--quiet"
        )
        == 0
    )
    code = predict.main([str(tmp / "one" / "model.skops"), "--features", str(flow)])
    assert code == 1
    assert "has d=3 features but the model expects d=4" in capsys.readouterr().err
    monkeypatch.setattr(predict, "__version__", "99.0")
    assert predict.main([str(tmp / "one" / "model.skops"), "--features", str(rgb)]) == 0
    assert "was made with mkl_tp 0.1.0, this is 99.0" in capsys.readouterr().err


@pytest.mark.slow
def test_default_run_on_the_bundled_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fit.main([]) == 0
    printed = capsys.readouterr().out
    assert "accel" in printed and "gyro" in printed
    report = json.loads((tmp_path / "runs" / "basic_motions" / "report.json").read_text())
    assert set(report["cells"]) == {"1", "2", "3", "4"}
    assert report["model"]["accuracy"] > 0.7


def test_deep_model_columns_and_predict(toy, capsys):
    tmp, rgb, _, splits = toy
    out = tmp / "deep"
    assert (
        run_fit(
            "--features",
            rgb,
            "--splits",
            splits,
            "--levels",
            "2",
            "--model",
            "deep",
            "--deep-networks",
            "2",
            "--kernel",
            "cross",
            "--out",
            out,
            "--quiet",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "deep-concat" in printed and "deep-average" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["column"] == "deep-average"
    assert set(report["cells"]["2"]["rgb"]) == {
        "uniform",
        "linear",
        "cross",
        "deep-concat",
        "deep-average",
    }
    assert report["settings"]["deep_networks"] == 2
    assert report["cells"]["2"]["rgb"]["deep-concat"]["n_networks"] == 2
    assert report["cells"]["2"]["rgb"]["deep-concat"]["standardise"] == "nodes"
    model = joblib.load(out / "model.joblib")
    assert type(model).__name__ == "DeepPyramidClassifier" and model.mode == "average"
    assert model.n_networks_ == 2
    assert (
        predict.main(
            [
                str(out / "model.joblib"),  # a pickle: deep models hold torch modules
                "--trust",
                "--features",
                str(rgb),
                "--splits",
                str(splits),
                "--quiet",
                "--out",
                str(tmp / "p.csv"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((tmp / "p.csv").open()))
    accuracy = np.mean([r["prediction"] == r["label"] for r in rows])
    assert accuracy == pytest.approx(report["model"]["accuracy"])


@pytest.mark.slow
def test_from_generated_videos_through_extract_fit_and_predict(tmp_path, capsys):
    """The whole pipeline: real video files -> extract (small arch, random weights) -> fit."""
    from _videos import write_video

    from mkl_tp import extract

    steps = {"Slow": 1, "Medium": 3, "Fast": 6}  # the square's speed in px per frame
    lines = []
    for name, step in steps.items():
        for g in range(4):
            write_video(
                tmp_path / "videos" / name / f"v_{name}_g{g:02d}_c01.avi",
                n_frames=5 + g,
                size=(40, 48),
                step=step,
            )
            lines.append((f"{name}/v_{name}_g{g:02d}_c01.avi", name, g))
    split = tmp_path / "split.csv"
    split.write_text(
        "video_id,label,subset\n"
        + "".join(f"{v},{n},{'test' if g == 0 else 'train'}\n" for v, n, g in lines)
    )
    features = tmp_path / "features" / "toy"
    assert (
        extract.main(
            [
                str(tmp_path / "videos"),
                "--out",
                str(features),
                "--stream",
                "both",
                "--arch",
                "resnet18",
                "--weights",
                "random",
                "--short-side",
                "32",
                "--crop",
                "32",
                "--flow-method",
                "dis",
                "--workers",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    rgb, flow = f"{features}_rgb.h5", f"{features}_flow.h5"
    out = tmp_path / "run"
    assert (
        run_fit(
            "--features",
            rgb,
            "--features",
            flow,
            "--splits",
            split,
            "--format",
            "csv",
            "--levels",
            "1-2",
            "--out",
            out,
            "--quiet",
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err  # mkl_tp's own caches: no complaint
    report = json.loads((out / "report.json").read_text())
    assert [f["stream"] for f in report["features"]] == ["rgb", "flow"]
    assert report["features"][0]["info"]["arch"] == "resnet18"
    assert report["model"]["config"] == "joint"
    assert (
        predict.main(
            [
                str(out / "model.skops"),
                "--features",
                rgb,
                "--features",
                flow,
                "--splits",
                str(split),
                "--format",
                "csv",
                "--quiet",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    accuracy = np.mean([r["prediction"] == r["label"] for r in rows])
    assert len(rows) == 3 and accuracy == pytest.approx(report["model"]["accuracy"])


def test_streams_from_different_extractors_are_named_in_a_warning(toy, capsys):
    tmp, rgb, flow, splits = toy
    for path, arch, version in ((rgb, "resnet101", "0.1.0"), (flow, "resnet50", "0.0.9")):
        with h5py.File(path, "a") as h5:
            h5.attrs.update(arch=arch, mkl_tp_version=version)
    assert (
        run_fit(
            "--features",
            rgb,
            "--features",
            flow,
            "--splits",
            splits,
            "--levels",
            "1",
            "--out",
            tmp / "mixed",
            "--quiet",
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "differ in mkl_tp_version: {'rgb': '0.1.0', 'flow': '0.0.9'}" in err
    assert "differ in arch: {'rgb': 'resnet101', 'flow': 'resnet50'}" in err
    assert "no mkl_tp extractor attributes" not in err


# -- C, report.json and progress (issue 10, item 2) --------------------------------------------
def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize(
    "option, value",
    [
        ("--C", "inf"),
        ("--C", "nan"),
        ("--C", "-1"),
        ("--C", "0"),
        ("--tol", "inf"),
        ("--tol", "0"),
        ("--max-iter", "0"),
        ("--mkl-norm", "0.5"),
        ("--mkl-norm", "nan"),
        ("--deep-networks", "0"),
        ("--deep-networks", "two"),
    ],
)
def test_non_finite_or_non_positive_numbers_are_usage_errors(toy, capsys, option, value):
    tmp, rgb, _, splits = toy
    with pytest.raises(SystemExit) as exit_info:
        run_fit("--features", rgb, "--splits", splits, option, value, "--out", tmp / "x")
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"argument {option}:" in lines[0] and repr(value) in lines[0]
    assert not (tmp / "x").exists()


def test_large_C_warns_and_the_report_is_strict_json(toy, capsys):
    tmp, rgb, _, splits = toy
    assert (
        run_fit(
            "--features",
            rgb,
            "--splits",
            splits,
            "--levels",
            "1",
            "--C",
            "1e5",
            "--mkl-norm",
            "inf",
            "--out",
            tmp / "big",
            "--quiet",
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "warning: --C 100000 is very large" in err and "1000 N) iterations" in err
    report = _strict_json(tmp / "big" / "report.json")
    assert report["settings"]["C"] == 1e5 and report["settings"]["mkl_norm"] == "inf"


def test_mkl_norm_and_pyramids_reach_the_estimator(toy):
    model = sweep.make_model("rgb", "linear", 2, C=1.0, mkl_norm="auto", pyramids="per_class")
    assert model.mkl_norm == "auto" and model.pyramids == "per_class"
    assert fit.build_parser().parse_args(["--mkl-norm", "inf"]).mkl_norm == float("inf")
    args = fit.build_parser().parse_args([])
    assert (args.mkl_norm, args.pyramids, args.base_kernel) == (None, None, None)
    default = sweep.make_model("rgb", "linear", 2, C=1.0)
    defaults = type(default)().get_params()  # options left out keep the estimator's defaults
    for name in ("mkl_norm", "pyramids", "base_kernel"):
        assert getattr(default, name) == defaults[name]
    model = sweep.make_model("rgb", "cross", 2, C=1.0, base_kernel="rbf", pyramids="auto")
    assert model.base_kernel == "rbf" and model.pyramids == "auto"


def test_the_command_line_help_imports_no_scikit_learn():
    # The choices come from mkl_tp._utils.choices, so --help stays light.
    code = "import sys, mkl_tp.fit; mkl_tp.fit.build_parser(); print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_sweep_bar_names_the_cell_and_keeps_moving():
    import io
    import time

    out = io.StringIO()
    progress = cells.SweepProgress(2, disable=False, interval=0.05, file=out)
    progress.start(3, "joint", "cross")
    time.sleep(0.3)  # a long cell: redrawn meanwhile
    shown = out.getvalue()
    progress.done()
    progress.close()
    assert "level 3 joint cross" in shown and "this cell 0 s" in shown
    assert shown.count("\r") >= 3


# -- plots and tables (item 9) ----------------------------------------------------------------
def test_levels_plot_beta_for_every_learned_cell_and_gains(toy, capsys):
    tmp, rgb, flow, splits = toy
    out = tmp / "run"
    assert (
        run_fit(
            "--features",
            rgb,
            "--features",
            flow,
            "--splits",
            splits,
            "--levels",
            "1,2",
            "--out",
            out,
            "--quiet",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "learned - uniform (percentage points; same level and streams)" in printed
    assert max(len(line) for line in printed.splitlines() if "|" in line) <= 100
    report = _strict_json(out / "report.json")
    for level in ("1", "2"):
        for config in ("rgb", "flow", "joint"):
            row = report["cells"][level][config]
            assert "vs_uniform" not in row["uniform"]
            for column in ("linear", "cross"):
                assert row[column]["vs_uniform"]["accuracy"] == pytest.approx(
                    row[column]["accuracy"] - row["uniform"]["accuracy"]
                )
                assert (out / "beta" / f"L{level}_{config}_{column}.png").is_file()
    assert (out / "levels.png").read_bytes()[:4] == b"\x89PNG"
    from mkl_tp import PyramidMKLClassifier

    defaults = PyramidMKLClassifier().get_params()
    for name in ("pyramids", "base_kernel", "mkl_norm"):  # recorded, and what auto chose
        assert report["settings"][name] == defaults[name]
        assert name in report["cells"]["2"]["joint"]["linear"]
    # the normalised cross kernel ignores the norm: its cells do not record one
    assert "mkl_norm" not in report["cells"]["2"]["joint"]["cross"]
    assert "pyramids" in report["cells"]["2"]["joint"]["cross"]


def test_per_class_pyramids(toy):
    tmp, rgb, flow, splits = toy
    out = tmp / "pc"
    assert (
        run_fit(
            "--features",
            rgb,
            "--features",
            flow,
            "--splits",
            splits,
            "--levels",
            "2",
            "--pyramids",
            "per_class",
            "--out",
            out,
            "--quiet",
        )
        == 0
    )
    report = _strict_json(out / "report.json")
    assert report["settings"]["pyramids"] == "per_class"
    joint = report["cells"]["2"]["joint"]["linear"]
    assert np.shape(joint["beta"]) == (3, 2, 3)  # classes x streams x nodes
    assert sum(joint["stream_weights"].values()) == pytest.approx(1.0)
    assert np.shape(report["cells"]["2"]["rgb"]["cross"]["beta"]) == (3, 3)
    for name in ("beta.png", "beta/L2_joint_cross.png", "beta/L2_rgb_linear.png"):
        assert (out / name).is_file()


# -- messages (item 11) -----------------------------------------------------------------------
def test_missing_train_and_test_videos_are_reported_together(tmp_path, capsys):
    from mkl_tp.store import FeatureWriter

    rgb, ids = make_cache(tmp_path)
    splits = write_ucf_split(
        tmp_path / "splits",
        ids
        + [("Archery/v_Archery_g99_c01", "Archery", 1), ("Diving/v_Diving_g98_c01", "Diving", 0)],
    )
    assert run_fit("--features", rgb, "--splits", splits, "--out", tmp_path / "o") == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert "2 of 26 split videos are not in" in errors[0]
    assert "train 1 of 19 (Archery/v_Archery_g99_c01)" in errors[0]
    assert "test 1 of 7 (Diving/v_Diving_g98_c01)" in errors[0]
    # a video that failed extraction comes with its reason
    cache = tmp_path / "ours_rgb.h5"
    with FeatureWriter(cache, {"stream": "rgb", "feature_dim": 4, "dtype": "float32"}) as writer:
        for vid, _, _ in ids:
            writer.write(vid, np.ones((3, 4)))
        writer.record_failure("Diving/v_Diving_g98_c01", "cannot decode x.avi after 3 frames")
    assert run_fit("--features", cache, "--splits", splits, "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert (
        "1 of them failed extraction: 'Diving/v_Diving_g98_c01': cannot decode x.avi after 3 frames"
        in err
    )
    assert "no mkl_tp extractor attributes" not in err  # an mkl_tp cache (import-like)


def test_level_ranges_in_help_and_reversed(capsys):
    with pytest.raises(SystemExit):
        run_fit("--help")
    assert "--levels N|A-B|A,B,C" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        run_fit("--levels", "3-1")
    assert exit_info.value.code == 2
    assert "the range '3-1' is reversed; write 1-3" in capsys.readouterr().err
    assert fit.build_parser().parse_args(["--levels", "4,2"]).levels == [2, 4]


def test_a_csv_split_needs_no_format(tmp_path, capsys):
    rgb, ids = make_cache(tmp_path)
    split = tmp_path / "split.csv"
    split.write_text(
        "video_id,label,subset\n"
        + "".join(f"{v},{n},{'test' if g % 4 == 0 else 'train'}\n" for v, n, g in ids)
    )
    assert (
        run_fit(
            "--features",
            rgb,
            "--splits",
            split,
            "--levels",
            "1",
            "--out",
            tmp_path / "c",
            "--quiet",
        )
        == 0
    )
    assert _strict_json(tmp_path / "c" / "report.json")["split"]["format"] == "csv"


def test_imported_caches_are_not_foreign(tmp_path, capsys):
    from mkl_tp.store import import_arrays

    _, ids = make_cache(tmp_path)
    rng = np.random.default_rng(0)
    for vid, name, _ in ids:
        (tmp_path / "arrays" / name).mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "arrays" / f"{vid}.npy", rng.normal(size=(6, 4)))
    import_arrays(tmp_path / "arrays", str(tmp_path / "imported_rgb.h5"), stream="rgb")
    splits = write_ucf_split(tmp_path / "splits", ids)
    assert (
        run_fit(
            "--features",
            tmp_path / "imported_rgb.h5",
            "--splits",
            splits,
            "--levels",
            "1",
            "--out",
            tmp_path / "i",
            "--quiet",
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err


def test_an_out_with_results_of_other_settings_is_refused(toy, capsys):
    tmp, rgb, _, splits = toy
    args = ["--features", rgb, "--splits", splits, "--levels", "1", "--out", tmp / "r", "--quiet"]
    assert run_fit(*args) == 0
    before = (tmp / "r" / "report.json").read_text()
    assert run_fit(*args, "--kernel", "cross", "--C", "10") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "holds results of other inputs or settings" in err[-1]
    assert "kernel 'linear' there, 'cross' now" in err[-1] and "C 1.0 there, 10.0 now" in err[-1]
    assert "--overwrite" in err[-1]
    assert (tmp / "r" / "report.json").read_text() == before
    assert run_fit(*args, "--kernel", "cross", "--overwrite") == 0
    assert _strict_json(tmp / "r" / "report.json")["settings"]["kernel"] == "cross"
    assert run_fit(*args, "--kernel", "cross", "--levels", "1-2") == 0  # same settings: extends


def test_selection_videos_reaches_the_models_and_the_fingerprint(toy, capsys, monkeypatch):
    """--selection-videos is the estimator's selection_videos in every MKL cell, recorded in
    report.json; another value is another experiment (not resumed), as is a report written
    before the option, whose selection judged 3,000 videos."""
    from mkl_tp.experiment import sweep

    tmp, rgb, _, splits = toy
    made = []
    original = sweep.make_model

    def spy(*args, **kwargs):
        model = original(*args, **kwargs)
        made.append(getattr(model, "selection_videos", None))
        return model

    monkeypatch.setattr(sweep, "make_model", spy)
    out = tmp / "run"
    common = ["--features", str(rgb), "--splits", str(splits), "--levels", "2", "--quiet"]
    assert fit.main(common + ["--out", str(out), "--selection-videos", "20"]) == 0
    assert made and set(made) == {20}
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["selection_videos"] == 20
    assert fit.main(common + ["--out", str(out)]) == 2
    assert "selection_videos 20 there, 1000 now" in capsys.readouterr().err
    # A report from before the option: its settings lack the key and its fingerprint is
    # that of 3,000 (the legacy value, left out of fingerprints).
    old = tmp / "old"
    assert fit.main(common + ["--out", str(old), "--selection-videos", "3000"]) == 0
    report = json.loads((old / "report.json").read_text())
    del report["settings"]["selection_videos"]
    (old / "report.json").write_text(json.dumps(report))
    assert fit.main(common + ["--out", str(old), "--selection-videos", "3000"]) == 0
    assert fit.main(common + ["--out", str(old)]) == 2
    assert "selection_videos 3000 there, 1000 now" in capsys.readouterr().err
