"""Writing a feature cache video by video: cost per video as the cache grows.

:class:`mkl_tp.store.FeatureWriter` commits every video through a redo journal (one
``fsync``-ed journal per video by default), so what one commit writes decides how an
extraction of a large collection slows down. The cache is written in HDF5 1.8's format
(:data:`mkl_tp.store._format.LIBVER`), whose groups keep their links in a B-tree and a
fractal heap. Its peer, run in the same process on the same videos, is the library's
default ("earliest") format that caches were written in before: every name of a group
in one local heap, rewritten whole at each commit.

Both write ``--n`` videos with flat ids (one ``/videos`` group, as ``bench_kinetics.py``
does) of ``--frames`` x ``--d`` float16 features. Prints, per block of
``--every`` videos: milliseconds per video and the journal's pages (4 KiB) in the block's
last commit; then the ratio of the last block's time per video.

Run: ``PYTHONPATH=. python benchmarks/bench_store.py [--n 40000] [--no-durable]``
"""

import argparse
import os
import tempfile
import time

import numpy as np
from _common import machine_line, print_table

from mkl_tp.store import FeatureWriter, _write
from mkl_tp.store._journal import JournaledFile

PEER = ("earliest", "latest")  # h5py's default


def write_cache(path, n, frames, d, every, durable, libver):
    """Rows ``(videos, ms per video, pages of the last commit)``, one per ``every`` videos."""
    pages, commit = [], JournaledFile.commit

    def counted(self):
        pages.append(len(self._pages))
        return commit(self)

    rows, chosen = [], _write.LIBVER
    features = np.random.default_rng(0).standard_normal((frames, d)).astype(np.float16)
    try:
        JournaledFile.commit, _write.LIBVER = counted, libver
        with FeatureWriter(path, {"feature_dim": d, "dtype": "float16"}, durable=durable) as writer:
            start = time.perf_counter()
            for i in range(1, n + 1):
                writer.write(f"v{i:07d}", features)
                if i % every == 0:
                    now = time.perf_counter()
                    rows.append((i, 1e3 * (now - start) / every, pages[-1]))
                    start = now
    finally:
        JournaledFile.commit, _write.LIBVER = commit, chosen
    return rows, os.path.getsize(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40000)
    parser.add_argument("--every", type=int, default=10000)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--no-durable", action="store_true", help="no fsync per commit")
    parser.add_argument("--dir", default=None, help="folder of the caches (a temporary one)")
    args = parser.parse_args()
    print(machine_line())
    table, last = [], {}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for name, libver in (("HDF5 1.8 (LIBVER)", _write.LIBVER), ("earliest (peer)", PEER)):
            path = os.path.join(folder, f"{libver[0]}.h5")
            rows, size = write_cache(
                path, args.n, args.frames, args.d, args.every, not args.no_durable, libver
            )
            os.remove(path)
            for videos, ms, pages in rows:
                table.append(
                    dict(
                        format=name,
                        videos=videos,
                        ms=ms,
                        pages=pages,
                        size=size / 2**20 if videos == args.n else None,
                    )
                )
            last[name] = rows[-1][1]
    print_table(
        table,
        [
            ("format", "format", "{}"),
            ("videos", "videos", "{}"),
            ("ms", "ms / video", "{:.2f}"),
            ("pages", "pages in commit", "{}"),
            ("size", "file MiB", "{:.0f}"),
        ],
    )
    mine, peer = last["HDF5 1.8 (LIBVER)"], last["earliest (peer)"]
    print(f"\nlast block: {mine:.2f} ms / video against {peer:.2f} (ratio {mine / peer:.2f})")


if __name__ == "__main__":
    main()
