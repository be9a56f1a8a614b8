"""Small feature caches and split files for the fit and predict tests."""

import h5py
import numpy as np

CLASSES = ["Archery", "Bowling", "Diving"]


def make_cache(folder, n_per_class=8, seed=0, stream="rgb", d=4, nan_video=None):
    """A 'bring your own features' file: /videos/<Class>/<video> -> (T, d), no attrs.

    The class shows in the second half of each video only.
    """
    rng = np.random.default_rng(seed)
    path = folder / f"toy_{stream}.h5"
    ids = []
    with h5py.File(path, "w") as h5:
        for c, name in enumerate(CLASSES):
            for g in range(n_per_class):
                vid = f"{name}/v_{name}_g{g:02d}_c01"
                T = int(rng.integers(4, 30))
                x = rng.normal(size=(T, d)).astype(np.float32)
                x[T // 2 :, c % d] += 0.8
                if vid == nan_video:
                    x[1, 0] = np.nan
                h5.create_dataset(f"videos/{vid}", data=x)
                ids.append((vid, name, g))
    return path, ids


def write_ucf_split(folder, ids):
    folder.mkdir(exist_ok=True)
    (folder / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    train = [(v, n) for v, n, g in ids if g % 4 != 0]
    test = [(v, n) for v, n, g in ids if g % 4 == 0]
    (folder / "trainlist01.txt").write_text(
        "".join(f"{v}.avi {CLASSES.index(n) + 1}\n" for v, n in train)
    )
    (folder / "testlist01.txt").write_text("".join(f"{v}.avi\n" for v, n in test))
    return folder
