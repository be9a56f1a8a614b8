"""Extraction throughput: frames per second for the RGB and flow streams, and where time goes.

A moving-pattern video is generated with PyAV (``--size`` at 25 fps); the network has
random weights (throughput does not depend on their values). For each device (this
CPU, and CUDA when available) and stream it measures:

* ``sequential``: one process decodes, resizes, computes flow and runs the network in
  turn, timing each part (the ``decode / flow / resize / network`` shares);
* ``pipelined``: the extractor's own pipeline (``--workers`` decoding processes feeding
  batched inference in the main process, as ``python -m mkl_tp.extract`` runs it) over
  ``--copies`` copies of the video, without writing features; frames/s from the first
  batch on, and the startup (worker processes starting, first video decoding) apart.

A second table times each optical-flow method per frame pair at the resized size, on
one core (as in a decoding worker).

Run: ``PYTHONPATH=. python benchmarks/bench_extract.py`` (about a minute on 2 CPU cores
with the defaults); ``--arch resnet18 --frames 256 --copies 8`` or ``--flow-pairs 20``
for bigger runs.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from mkl_tp.extraction._workers import VideoInputs, loader  # noqa: E402
from mkl_tp.extraction.backbone import build_backbone  # noqa: E402
from mkl_tp.extraction.flow import FLOW_METHODS, OpticalFlow
from mkl_tp.extraction.frames import VideoFrames  # noqa: E402
from mkl_tp.extraction.inputs import NetworkInputs, resize_short_side
from mkl_tp.extraction.run import default_workers  # noqa: E402


def make_video(path, n_frames, size):
    """A video of a bright square moving over a gradient (H, W = size)."""
    import av

    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        for t in range(n_frames):
            frame = np.stack([(xx + 3 * t) % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
            frame[height // 3 : height // 3 + 40, (5 * t) % (width - 40) :][:, :40] = (250, 240, 30)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def sequential(path, stream, net, args):
    """Decode, preprocess and infer in one process; seconds per part and frames."""
    inputs = NetworkInputs(
        path, (stream,), short_side=args.short_side, crop=args.crop, flow_method=args.flow_method
    )
    batch, network = [], 0.0

    def infer():
        nonlocal network
        start = time.perf_counter()
        net(torch.from_numpy(np.stack(batch)))
        if net.device.type == "cuda":
            torch.cuda.synchronize()
        network += time.perf_counter() - start
        batch.clear()

    for _, array in inputs:
        batch.append(array)
        if len(batch) == args.batch_size:
            infer()
    if batch:
        infer()
    return dict(inputs.timings, network=network), inputs.n_frames


def pipelined(path, stream, net, args):
    """The extractor's pipeline over copies of the video.

    Returns the frames, the seconds from the first batch to the end, and the startup
    (worker processes starting and decoding until the first batch arrives).
    """
    jobs = [(f"copy{k}", path, (stream,)) for k in range(args.copies)]
    options = dict(
        short_side=args.short_side, crop=args.crop, flow_method=args.flow_method, flow_bound=20.0
    )
    items = loader(
        VideoInputs(jobs, options, args.batch_size),
        min(args.workers, len(jobs)),
        net.device.type == "cuda",
    )
    frames = 0
    start = time.perf_counter()
    first = None
    for item in items:
        first = first or time.perf_counter()
        if item["kind"] == "frames":
            net(item["data"])
            frames += len(item["data"])
        elif item["kind"] == "error":
            raise RuntimeError(item["message"])
    if net.device.type == "cuda":
        torch.cuda.synchronize()
    return frames, time.perf_counter() - first, first - start


def warm_up(net, channels, args):
    x = torch.randint(0, 256, (args.batch_size, channels, args.crop, args.crop), dtype=torch.uint8)
    net(x)


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    print(line.format(*header))
    for row in rows:
        print(line.format(*row))


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--arch", default="resnet101")
    parser.add_argument("--frames", type=int, default=24, help="frames of the generated video")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    parser.add_argument("--short-side", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--flow-method", default="dis", choices=FLOW_METHODS)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--copies", type=int, default=2, help="videos in the pipelined run")
    parser.add_argument(
        "--flow-pairs", type=int, default=3, help="frame pairs per flow method (0: skip)"
    )
    parser.add_argument(
        "--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    args = parser.parse_args()

    print(machine())
    for device in args.devices:
        if device.startswith("cuda"):
            print(f"{device}: {torch.cuda.get_device_name(torch.device(device))}")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.mp4")
        make_video(path, args.frames, tuple(args.size))
        print(
            f"video: {args.frames} frames of {args.size[0]}x{args.size[1]}, resized to short side "
            f"{args.short_side}, crop {args.crop}; {args.arch}, batch {args.batch_size}, flow "
            f"{args.flow_method}, pipelined: {args.copies} videos over {args.workers} workers\n"
        )
        rows = []
        for device in args.devices:
            for stream, channels in (("rgb", 3), ("flow", 20)):
                net = build_backbone(args.arch, "random", in_channels=channels, device=device)
                warm_up(net, channels, args)
                times, n_frames = sequential(path, stream, net, args)
                total = sum(times.values())
                frames, seconds, startup = pipelined(path, stream, net, args)
                rows.append(
                    [device, stream, n_frames]
                    + [
                        f"{100 * times[k] / total:.0f}%"
                        for k in ("decode", "flow", "resize", "network")
                    ]
                    + [f"{n_frames / total:.1f}", f"{frames / seconds:.1f}", f"{startup:.1f}"]
                )
        print_table(
            [
                "device",
                "stream",
                "frames",
                "decode",
                "flow",
                "resize",
                "network",
                "sequential f/s",
                "pipelined f/s",
                "startup s",
            ],
            rows,
        )

        if args.flow_pairs:
            cv2.setNumThreads(1)  # one core per pair, as in the decoding workers
            grey = []
            for frame in VideoFrames(path):
                frame = resize_short_side(frame, args.short_side)
                grey.append(np.ascontiguousarray(frame.mean(axis=2).astype(np.uint8)))
                if len(grey) > args.flow_pairs:
                    break
            rows = []
            for method in FLOW_METHODS:
                flow = OpticalFlow(method)
                start = time.perf_counter()
                for prev, nxt in zip(grey, grey[1:]):
                    flow(prev, nxt)
                per_pair = (time.perf_counter() - start) / (len(grey) - 1)
                rows.append(
                    [
                        method,
                        f"{grey[0].shape[0]}x{grey[0].shape[1]}",
                        len(grey) - 1,
                        f"{1000 * per_pair:.0f}",
                        f"{1 / per_pair:.1f}",
                    ]
                )
            print()
            print_table(["flow method", "frame", "pairs", "ms/pair", "pairs/s (1 process)"], rows)


if __name__ == "__main__":
    main()
