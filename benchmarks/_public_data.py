"""Public sequence classification sets that pip can fetch: the UCR/UEA files aeon ships.

Not part of the package. The ``aeon`` wheel (BSD-3-Clause) carries a few archive data sets
as ``.ts`` files; this module finds them in an installed ``aeon`` (without importing it) or
downloads the wheel once with ``pip download --no-deps`` (the package index, never a data
hub) into ``~/.cache/mkl_tp/`` and reads the files from it. Cite Dau et al., "The UCR time
series archive" (2019) and Bagnall et al., "The UEA multivariate time series classification
archive, 2018", arXiv:1811.00075.
"""

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from mkl_tp.sources.samples import read_ts

# Classification sets shipped in aeon 1.6 (train/test sizes, classes, channels, lengths):
# ArrowHead 36/175, 3, 1, 251; GunPoint 50/150, 2, 1, 150; ItalyPowerDemand 67/1029, 2, 1,
# 24; JapaneseVowels 270/370, 9, 12, 7-26; PickupGestureWiimoteZ 50/50, 10, 1, 29-361;
# OSULeaf 200/242, 6, 1, 427; ACSF1 100/100, 10, 1, 1460; BasicMotions 40/40, 4, 6, 100.
AEON_SETS = (
    "ArrowHead",
    "GunPoint",
    "ItalyPowerDemand",
    "JapaneseVowels",
    "PickupGestureWiimoteZ",
    "OSULeaf",
    "ACSF1",
    "BasicMotions",
)
AEON_VERSION = "1.6.0"
CACHE = Path(os.environ.get("MKL_TP_CACHE", Path.home() / ".cache" / "mkl_tp"))


def _installed_folder():
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return folder if folder.is_dir() else None


def _downloaded_folder():
    folder = CACHE / f"aeon-{AEON_VERSION}"
    if not (folder / "GunPoint").is_dir():
        wheels = CACHE / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        found = list(wheels.glob(f"aeon-{AEON_VERSION}-*.whl"))
        if not found:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "-q",
                    "-d",
                    str(wheels),
                    f"aeon=={AEON_VERSION}",
                ],
                check=True,
            )
            found = list(wheels.glob(f"aeon-{AEON_VERSION}-*.whl"))
        with zipfile.ZipFile(found[0]) as wheel:
            for name in wheel.namelist():
                parts = name.split("/")
                if name.endswith(".ts") and parts[:3] == ["aeon", "datasets", "data"]:
                    target = folder / "/".join(parts[3:])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(wheel.read(name))
    return folder


def data_folder():
    """Folder holding ``<Name>/<Name>_TRAIN.ts`` files (installed aeon, else downloaded)."""
    return _installed_folder() or _downloaded_folder()


def frame_features(train, test):
    """Standardised value and its square per channel (statistics of the training frames)."""
    frames = np.concatenate(train)
    mean, scale = frames.mean(axis=0), frames.std(axis=0)
    scale[scale == 0] = 1.0

    def features(x):
        z = (x - mean) / scale
        return np.hstack([z, z * z])

    return [features(x) for x in train], [features(x) for x in test]


def load_set(name, raw=False):
    """``(X_train, y_train, X_test, y_test)`` of one set, frame features as above (or raw)."""
    folder = data_folder() / name
    train = read_ts(folder / f"{name}_TRAIN.ts", prefix="train")
    test = read_ts(folder / f"{name}_TEST.ts", prefix="test")
    X_train, X_test = (train.X, test.X) if raw else frame_features(train.X, test.X)
    return X_train, np.asarray(train.y), X_test, np.asarray(test.y)
