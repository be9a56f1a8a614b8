"""Node descriptors: one matrix product per length against the prefix-sum formula.

:func:`mkl_tp.pyramid.node_descriptors_batch` pools each group of equal-length videos as
one batched product ``W_T X`` (BLAS). Its peer, run in the same process on the same
videos, is the implementation it replaced: one float64 prefix sum per video, the
integral gathered at the ``2**(L-1) + 1`` leaf boundaries and one difference per node
(kept below as ``prefix_sum_descriptors``). Both are called the way the estimator calls
them (``mkl_tp.kernels.streams``: chunks of ``CHUNK_BYTES`` of descriptors, float32 out),
on seeded random frames of two settings: the UCF-101 bench's (``bench_scale.py``: 8-24
frames, d = 2048, levels 6) and the Kinetics bench's (``bench_kinetics.py``: 20-100
frames, d = 512, levels 4). Prints seconds (best of ``--repeats``), the ratio and the
largest difference. The products use BLAS's threads and the peer's numpy passes one
thread, so the ratio depends on the thread count (the machine line says it).

Run: ``PYTHONPATH=. python benchmarks/bench_pooling.py [--videos 3000] [--repeats 3]``
"""

import argparse
import time

import numpy as np
from _common import machine_line, print_table

from mkl_tp.kernels.streams import CHUNK_BYTES
from mkl_tp.pyramid.descriptors import n_nodes, node_bounds, node_descriptors_batch

SETTINGS = {
    "UCF-101 bench": dict(min_len=8, max_len=24, d=2048, levels=6),
    "Kinetics bench": dict(min_len=20, max_len=100, d=512, levels=4),
}


def prefix_sum_descriptors(arrays, levels, out):
    """The replaced implementation (commit 3f5da42): prefix sums and boundary gathers."""
    bounds = node_bounds(levels)
    breaks = np.arange(2 ** (levels - 1) + 1) / 2.0 ** (levels - 1)
    start_of = np.searchsorted(breaks, bounds[:, 0])
    stop_of = np.searchsorted(breaks, bounds[:, 1])
    lengths = np.array([x.shape[0] for x in arrays], dtype=np.int64)
    frame_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    prefix_starts = frame_starts + np.arange(len(arrays))
    frames = np.concatenate(arrays).astype(np.float64, copy=False)
    prefix = np.empty((frames.shape[0] + len(arrays), frames.shape[1]))
    for x_start, s_start, length in zip(frame_starts, prefix_starts, lengths):
        prefix[s_start] = 0.0
        np.cumsum(
            frames[x_start : x_start + length],
            axis=0,
            out=prefix[s_start + 1 : s_start + 1 + length],
        )
    scaled = breaks[None, :] * lengths[:, None]
    j = np.minimum(np.floor(scaled).astype(np.int64), lengths[:, None] - 1)
    frac = (scaled - j)[..., None]
    integral = prefix[prefix_starts[:, None] + j] + frac * frames[frame_starts[:, None] + j]
    width = (bounds[:, 1] - bounds[:, 0])[None, :] * lengths[:, None]
    difference = np.empty((len(arrays), frames.shape[1]))
    for p in range(bounds.shape[0]):
        np.subtract(integral[:, stop_of[p]], integral[:, start_of[p]], out=difference)
        np.divide(difference, width[:, p, None], out=out[:, p])


def prefix_sum_batch(arrays, levels, dtype, chunk_bytes):
    """The replaced ``node_descriptors_batch``: its own chunks of frames, a new array."""
    d = arrays[0].shape[1]
    out = np.empty((len(arrays), n_nodes(levels), d), dtype=dtype)
    first, used = 0, 0
    for i, x in enumerate(arrays):
        used += x.shape[0] * d * 8
        if used >= chunk_bytes or i == len(arrays) - 1:
            prefix_sum_descriptors(arrays[first : i + 1], levels, out[first : i + 1])
            first, used = i + 1, 0
    return out


def pool(arrays, levels, method, out):
    """Every video's descriptors into ``out``, a chunk of videos at a time, as
    ``mkl_tp.kernels.streams.stream_descriptors`` did (the peer: into a new array, then
    copied) and does (written in place)."""
    step = max(1, CHUNK_BYTES // (n_nodes(levels) * arrays[0].shape[1] * 8))
    for start in range(0, len(arrays), step):
        part = arrays[start : start + step]
        if method == "prefix sums":
            out[start : start + len(part)] = prefix_sum_batch(part, levels, out.dtype, CHUNK_BYTES)
        else:
            node_descriptors_batch(
                part, levels, chunk_bytes=CHUNK_BYTES, out=out[start : start + len(part)]
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    rows = []
    for name, s in SETTINGS.items():
        rng = np.random.default_rng(0)
        arrays = [
            rng.standard_normal((int(rng.integers(s["min_len"], s["max_len"] + 1)), s["d"])).astype(
                np.float32
            )
            for _ in range(args.videos)
        ]
        outputs, seconds = {}, {}
        for method in ("prefix sums", "W_T X"):
            out = np.zeros((len(arrays), n_nodes(s["levels"]), s["d"]), np.float32)
            best = np.inf
            for _ in range(args.repeats):
                start = time.perf_counter()
                pool(arrays, s["levels"], method, out)
                best = min(best, time.perf_counter() - start)
            outputs[method], seconds[method] = out, best
        rows.append(
            {
                "setting": name,
                "videos": args.videos,
                "frames": sum(map(len, arrays)),
                "prefix": seconds["prefix sums"],
                "product": seconds["W_T X"],
                "ratio": seconds["W_T X"] / seconds["prefix sums"],
                "diff": float(np.abs(outputs["W_T X"] - outputs["prefix sums"]).max()),
            }
        )
    print_table(
        rows,
        [
            ("setting", "setting", "{}"),
            ("videos", "videos", "{}"),
            ("frames", "frames", "{}"),
            ("prefix", "prefix sums s", "{:.2f}"),
            ("product", "W_T X s", "{:.2f}"),
            ("ratio", "ratio", "{:.2f}"),
            ("diff", "max |diff|", "{:.1e}"),
        ],
    )


if __name__ == "__main__":
    main()
