"""Rewriting the bundled BasicMotions feature caches from the shipped ``.ts`` files."""

import csv
from pathlib import Path

from ..sources.samples import _BASIC_MOTIONS_STREAMS, load_basic_motions


def write_basic_motions_cache(folder):
    """Write BasicMotions as two feature caches and a CSV split (how the bundle is made).

    Parameters
    ----------
    folder : str or path-like
        Receives ``basic_motions_accel.h5``, ``basic_motions_gyro.h5`` and
        ``basic_motions_split1.csv``.
    """
    from ..store import FeatureWriter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train, test = load_basic_motions()
    for stream, channels in _BASIC_MOTIONS_STREAMS.items():
        info = {
            "stream": stream,
            "arch": "raw",
            "weights": "none",
            "feature_dim": channels.stop - channels.start,
            "dtype": "float32",
            "source": "UEA archive BasicMotions (aeon, BSD-3-Clause), 10 Hz smartwatch",
        }
        with FeatureWriter(folder / f"basic_motions_{stream}.h5", info) as writer:
            for subset in (train, test):
                for video_id, x in zip(subset.ids, subset.X):
                    writer.write(
                        video_id,
                        x[:, channels],
                        fps=10.0,
                        source=f"BasicMotions_{video_id[:-4].upper()}.ts",
                    )
    with open(folder / "basic_motions_split1.csv", "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["video_id", "label", "subset"])
        for name, subset in (("train", train), ("test", test)):
            writer.writerows([i, label, name] for i, label in zip(subset.ids, subset.y))
