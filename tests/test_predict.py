"""python -m mkl_tp.predict on files that are not models; its console script (the end to end
runs with real models are in test_fit.py)."""

import configparser
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from _caches import make_cache
from sklearn.svm import SVC

from mkl_tp import PyramidMKLClassifier, predict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def features(tmp_path):
    return make_cache(tmp_path)[0]


def _svc(path):
    joblib.dump(SVC().fit(np.eye(4), [0, 1, 0, 1]), path)


def _svc_skops(path):
    import skops.io

    skops.io.dump(SVC().fit(np.eye(4), [0, 1, 0, 1]), path)


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _plain_pickle(path):
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def _damaged_skops(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", "{not json")


def _unfitted_skops(path):
    import skops.io

    skops.io.dump(PyramidMKLClassifier(), path)


@pytest.mark.parametrize(
    "name, make, trust, fragments",
    [
        ("model.joblib", _svc, True, ["holds a sklearn.svm._classes.SVC, not an mkl_tp model"]),
        ("model.skops", _svc_skops, False, ["holds a sklearn.svm._classes.SVC, not an mkl_tp"]),
        ("model.joblib", _random_bytes, True, ["is not a joblib/pickle file"]),
        ("model.joblib", _random_bytes, False, ["is not a .skops model", "--trust"]),
        ("model.skops", _damaged_skops, False, ["is not a readable .skops model"]),
        ("model.joblib", lambda path: path.write_bytes(b""), False, ["is empty (0 bytes)"]),
        ("model.joblib", _plain_pickle, True, ["holds a builtins.dict, not an mkl_tp model"]),
        ("model.joblib", _plain_pickle, False, ["a pickle (joblib) file", "--trust"]),
        (
            "model.joblib",
            lambda path: joblib.dump(PyramidMKLClassifier(), path),
            True,
            ["holds an unfitted PyramidMKLClassifier"],
        ),
        ("model.skops", _unfitted_skops, False, ["holds an unfitted PyramidMKLClassifier"]),
    ],
)
def test_a_file_that_is_not_a_model_gives_one_line(
    tmp_path, features, capsys, name, make, trust, fragments
):
    model = tmp_path / name
    make(model)
    argv = [str(model), "--features", str(features)] + (["--trust"] if trust else [])
    assert predict.main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mkl_tp.predict: error: "), lines
    assert str(model) in lines[0] and (
        "expected a model.skops (or, with --trust, a model.joblib) written by python -m "
        "mkl_tp.fit" in lines[0]
    )
    for fragment in fragments:
        assert fragment in lines[0]


def test_predict_has_a_console_script():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = dict(
        line.split(" = ")
        for line in config["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    assert scripts == {
        "mkl-tp-extract": "mkl_tp.extract:main",
        "mkl-tp-fit": "mkl_tp.fit:main",
        "mkl-tp-predict": "mkl_tp.predict:main",
        "mkl-tp-reproduce": "mkl_tp.reproduce:main",
    }
    assert callable(predict.main)
