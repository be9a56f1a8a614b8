"""Issue 22, storage, labels and model files: results you can trust.

Each test reproduces a fault that went unnoticed before (float16 overflow stored as a
complete video, NaN or continuous labels taken as classes, a hostile HDF5 file ending in a
traceback or a hang, a model file that runs code when loaded, a broken pipe or a full disk
reported without the path) and checks that it is now refused with a line naming it. The
rows of ``docs/faults.rst`` ("Storage, labels and model files") point here.
"""

import errno
import os
import pickle
import resource
import subprocess
import sys
import textwrap
import warnings

import h5py
import numpy as np
import pytest
from _caches import make_cache

from mkl_tp import LateFusionClassifier, PyramidMKLClassifier, extract, predict, store
from mkl_tp._utils.persist import UnsafeModelError, load_model_file, save_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFO16 = {"stream": "rgb", "feature_dim": 4, "dtype": "float16"}


def _videos(n=12, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(4, 9)), d)) + (i % 2) for i in range(n)]


def _quick(**kwargs):
    return PyramidMKLClassifier(levels=2, max_iter=5, **kwargs)


def _fitted(X=None, y=None):
    X = _videos() if X is None else X
    y = np.arange(len(X)) % 2 if y is None else y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few iterations: ConvergenceWarning
        return _quick().fit(X, y)


def _python(script, *args, **kwargs):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        env=dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


# -- 5. values beyond the storage dtype -------------------------------------------------
def test_values_beyond_float16_are_a_failure_not_inf(tmp_path):
    path = tmp_path / "f_rgb.h5"
    with store.FeatureWriter(path, INFO16) as writer:
        writer.write("edge", np.full((2, 4), 65504.0))  # float16's largest value: fits
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no numpy "overflow encountered in cast"
            with pytest.raises(ValueError) as raised:
                writer.write("big", np.full((3, 4), 1e6))
    message = str(raised.value)
    assert "video 'big'" in message and "float16" in message and "--dtype float32" in message
    assert store.list_videos(path) == ["edge"]
    assert np.isfinite(store.load_features(path)[1][0]).all()


def test_import_of_values_beyond_float16_records_a_failure(tmp_path, capsys):
    src = tmp_path / "arrays"
    src.mkdir()
    np.save(src / "big.npy", np.full((3, 4), 1e6))
    np.save(src / "ok.npy", np.ones((3, 4)))
    out = tmp_path / "imp_rgb.h5"
    code = extract.main(["import", str(src), "--out", str(out), "--dtype", "float16", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "rgb: 1 done, 0 skipped, 1 failed" in captured.out
    assert store.list_videos(out) == ["ok"]
    assert "--dtype float32" in store.failed_videos(out)["big"]
    assert "overflow encountered" not in captured.err


def test_extraction_overflowing_float16_records_failures(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    from _videos import write_video

    from mkl_tp.extraction import backbone

    root = tmp_path / "videos"
    write_video(os.fspath(root / "walk" / "a.mp4"), 4)
    write_video(os.fspath(root / "walk" / "b.mp4"), 3)
    call = backbone.Backbone.__call__
    # Random weights of a deep network can give activations beyond float16's range.
    monkeypatch.setattr(backbone.Backbone, "__call__", lambda self, b: call(self, b) + 1e6)
    out = tmp_path / "features" / "toy"
    argv = [str(root), "--out", str(out), "--stream", "rgb", "--arch", "resnet18"]
    argv += ["--weights", "random", "--short-side", "40", "--crop", "32", "--workers", "0"]
    code = extract.main(argv + ["--quiet"])  # --dtype float16 is the default
    captured = capsys.readouterr()
    assert code == 1 and "0 done" in captured.out and "2 failed" in captured.out
    path = store.output_path(str(out), "rgb")
    assert store.list_videos(path) == []
    assert all("--dtype float32" in why for why in store.failed_videos(path).values())


# -- 8. labels and features as scikit-learn checks them ----------------------------------
@pytest.mark.parametrize(
    "labels, fragment",
    [
        (lambda n: np.where(np.arange(n) == 3, np.nan, np.arange(n) % 2), "missing label"),
        (lambda n: [0, 1] * (n // 2 - 1) + [None, 1], "missing label(s) (None or NaN)"),
        (lambda n: np.random.default_rng(0).normal(size=n), "continuous target"),
        (lambda n: np.arange(n) % 2 + 0.5j, "complex"),
        (lambda n: np.array(["a", 1] * (n // 2), dtype=object), "y "),
    ],
)
def test_labels_that_are_not_classes_are_refused(labels, fragment):
    X = _videos()
    with pytest.raises(ValueError) as raised:
        _quick().fit(X, labels(len(X)))
    assert fragment in str(raised.value)


def test_nan_labels_name_their_positions():
    X = _videos()
    y = (np.arange(len(X)) % 2).astype(float)
    y[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"2 missing label\(s\) .* at positions 3, 7"):
        _quick().fit(X, y)


def test_the_deep_classifier_checks_labels_the_same_way():
    pytest.importorskip("torch")
    from mkl_tp.deep import DeepPyramidClassifier

    X = _videos()
    with pytest.raises(ValueError, match="continuous target"):
        DeepPyramidClassifier(levels=2, epochs=1).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="complex128: features must be real"):
        DeepPyramidClassifier(levels=2, epochs=1).fit(
            [x.astype(complex) for x in X], np.arange(len(X)) % 2
        )


def test_complex_features_are_refused_not_cast():
    X = [x.astype(complex) for x in _videos()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning would be the only sign
        with pytest.raises(ValueError, match="sequence 0 has dtype complex128"):
            _quick().fit(X, np.arange(len(X)) % 2)


def test_a_mapping_for_a_model_fitted_on_a_list_is_a_clear_error():
    X = _videos()
    model = _fitted(X)
    with pytest.raises(ValueError, match=r"fitted on a plain list .* streams \['rgb'\]"):
        model.predict({"rgb": X})


# -- 9. hostile HDF5 files -----------------------------------------------------------------
def _byo(path, build):
    with h5py.File(path, "w") as h5:
        videos = h5.create_group("videos")
        videos["a"] = np.ones((3, 4))
        build(videos)
    return path


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda g: g.__setitem__("loop", h5py.SoftLink("/videos/loop")), "videos/loop"),
        (
            lambda g: (
                g.__setitem__("x", h5py.SoftLink("/videos/y")),
                g.__setitem__("y", h5py.SoftLink("/videos/x")),
            ),
            "videos/x -> /videos/y",
        ),
    ],
)
def test_a_soft_link_loop_is_a_clear_error(tmp_path, build, fragment):
    path = _byo(tmp_path / "loop.h5", build)
    for read in (store.list_videos, store.load_features):
        with pytest.raises(ValueError) as raised:
            read(path)
        assert str(path) in str(raised.value) and fragment in str(raised.value)
        assert "loops" in str(raised.value)


def test_a_hard_link_cycle_ends_with_an_error_not_a_hang(tmp_path):
    path = _byo(tmp_path / "cycle.h5", lambda g: g.__setitem__("self", g))

    # Before, the walk followed videos/self/self/... until memory ran out: a subprocess with
    # a timeout and a bounded address space.
    def bounded():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = _python(
        """
        import sys
        from mkl_tp import store
        try:
            store.list_videos(sys.argv[1])
        except ValueError as exc:
            print(exc)
        """,
        path,
        preexec_fn=bounded,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(path) in proc.stdout and "videos/self links to a group already listed" in proc.stdout


def test_a_dataset_declaring_more_than_memory_is_refused_before_reading(tmp_path):
    def huge(group):
        group.create_dataset("huge", shape=(10**12, 4), dtype="float64", chunks=(1024, 4))

    path = _byo(tmp_path / "big.h5", huge)
    with pytest.raises(ValueError) as raised:
        store.load_features(path)
    message = str(raised.value)
    assert str(path) in message and "videos/huge declares shape (1000000000000, 4)" in message
    assert "29.1 TiB" in message and "memory available" in message
    sequence = store.FeatureSequence(path, ["a", "huge"])
    assert sequence[0].shape == (3, 4)
    with pytest.raises(ValueError, match="videos/huge declares shape"):
        sequence[1]


def test_fit_on_a_dataset_declaring_10_12_rows_gives_one_line(tmp_path, capsys):
    from _caches import write_ucf_split

    from mkl_tp import fit

    path, ids = make_cache(tmp_path)
    victim = ids[1][0]
    with h5py.File(path, "a") as h5:
        del h5["videos/" + victim]
        h5.create_dataset("videos/" + victim, shape=(10**12, 4), dtype="float32", chunks=(64, 4))
    splits = write_ucf_split(tmp_path / "splits", ids)
    code = fit.main(["--features", str(path), "--splits", str(splits), "--levels", "1"])
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error:" in line]
    assert len(errors) == 1 and str(path) in errors[0] and f"videos/{victim}" in errors[0]


def test_import_of_an_array_declaring_10_12_rows_records_a_failure(tmp_path, capsys):
    from numpy.lib import format as npy_format

    src = tmp_path / "arrays"
    src.mkdir()
    with open(src / "huge.npy", "wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 4)}
        npy_format.write_array_header_1_0(handle, header)
        handle.write(np.ones(8).tobytes())
    with open(src / "short.npy", "wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (100, 4)}
        npy_format.write_array_header_1_0(handle, header)
        handle.write(np.ones(8).tobytes())
    np.save(src / "ok.npy", np.ones((3, 4)))
    out = tmp_path / "imp_rgb.h5"
    assert extract.main(["import", str(src), "--out", str(out), "--quiet"]) == 1
    assert "1 done, 0 skipped, 2 failed" in capsys.readouterr().out
    failed = store.failed_videos(out)
    assert "declares shape (1000000000000, 4)" in failed["huge"] and "memory" in failed["huge"]
    assert "huge.npy" in failed["huge"]
    assert "truncated" in failed["short"]


# -- 11. model files that load without running code ----------------------------------------
class _RunsCode:
    """Unpickling calls ``os.system`` (any callable a pickle names would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_predict_does_not_run_a_pickle_without_trust(tmp_path, capsys):
    features, _ = make_cache(tmp_path)
    marker = tmp_path / "ran"
    model = tmp_path / "model.joblib"
    model.write_bytes(pickle.dumps(_RunsCode(marker)))
    assert predict.main([str(model), "--features", str(features)]) == 1
    assert not marker.exists()
    error = capsys.readouterr().err
    assert str(model) in error and "--trust" in error and "runs whatever code" in error


def test_a_skops_file_naming_other_types_is_refused_before_anything_is_built(tmp_path, capsys):
    import skops.io

    features, _ = make_cache(tmp_path)
    model = tmp_path / "model.skops"
    skops.io.dump({"call": os.system, "model": _fitted()}, model)
    assert predict.main([str(model), "--features", str(features)]) == 1
    error = capsys.readouterr().err
    assert str(model) in error and "system" in error and "it was not loaded" in error
    with pytest.raises(UnsafeModelError):
        load_model_file(model, trust=True)  # --trust is for pickles: skops types still checked


@pytest.mark.parametrize("streams", [None, ["rgb", "flow"]])
def test_models_round_trip_through_the_safe_format(tmp_path, streams):
    X = _videos()
    y = np.array(["walk", "run"] * (len(X) // 2))
    data = X if streams is None else {s: X for s in streams}
    model = _fitted(data, y)
    path = save_model(model, tmp_path)
    assert path.name == "model.skops"
    loaded = predict.load_model(path)
    np.testing.assert_array_equal(loaded.predict(data), model.predict(data))
    np.testing.assert_allclose(loaded.decision_function(data), model.decision_function(data))
    assert loaded.n_features_per_stream_ == model.n_features_per_stream_
    assert loaded._mkl_tp_version == model.__getstate__()["_mkl_tp_version"]


def test_late_fusion_round_trips_through_the_safe_format(tmp_path):
    X = _videos()
    data = {"rgb": X, "flow": X}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LateFusionClassifier(_quick()).fit(data, np.arange(len(X)) % 2)
    path = save_model(model, tmp_path)
    assert path.suffix == ".skops"
    np.testing.assert_array_equal(predict.load_model(path).predict(data), model.predict(data))


def test_a_deep_model_is_a_pickle_loaded_only_with_trust(tmp_path, capsys):
    pytest.importorskip("torch")
    from mkl_tp.deep import DeepPyramidClassifier

    features, ids = make_cache(tmp_path)
    X = store.load_features(features)[1]
    y = [i[1] for i in ids]
    model = DeepPyramidClassifier(levels=2, epochs=2, random_state=0).fit(X, y)
    path = save_model(model, tmp_path)
    assert path.name == "model.joblib"  # torch modules: skops cannot store them
    assert predict.main([str(path), "--features", str(features)]) == 1
    assert "--trust" in capsys.readouterr().err
    assert predict.main([str(path), "--features", str(features), "--trust"]) == 0
    assert capsys.readouterr().out.startswith("video_id,prediction")


# -- 12. a closed pipe, a full disk ------------------------------------------------------
def test_predict_into_a_closed_pipe_exits_quietly(tmp_path):
    features, _ = make_cache(tmp_path)
    model = save_model(_fitted(store.load_features(features)[1], np.arange(24) % 3), tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mkl_tp.predict", str(model), "--features", str(features)],
        env=dict(os.environ, PYTHONPATH=ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # `| head -0`: the reader is gone before the first row
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code == predict.EXIT_BROKEN_PIPE == 141
    assert "error" not in err and "Broken pipe" not in err and "Traceback" not in err, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_predict_onto_a_full_disk_names_the_file(tmp_path, capsys):
    features, _ = make_cache(tmp_path)
    model = save_model(_fitted(store.load_features(features)[1], np.arange(24) % 3), tmp_path)
    argv = [str(model), "--features", str(features), "--out", "/dev/full"]
    assert predict.main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert "cannot write the predictions to /dev/full: No space left on device" in error


def test_saving_a_model_onto_a_full_disk_names_the_file(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), like a full disk.
    script = """
    import resource, signal, sys
    import numpy as np
    from mkl_tp import PyramidMKLClassifier
    from mkl_tp._utils.persist import save_model
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(6, 4)) for _ in range(8)]
    model = PyramidMKLClassifier(levels=2, max_iter=2).fit(X, np.arange(8) % 2)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
    try:
        save_model(model, sys.argv[1])
    except OSError as exc:
        print(exc.errno, exc)
    """
    proc = _python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{errno.EFBIG} cannot write the model {tmp_path / 'model.skops'}" in proc.stdout
    assert os.listdir(tmp_path) == []  # no half-written model, no temporary file
