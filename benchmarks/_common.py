"""Shared helpers of the benchmark scripts: seeded synthetic data, timing, peak memory.

Not part of the package. Every script imports this file from its own folder.
"""

import os
import platform
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def order_sensitive_videos(
    n,
    d,
    n_classes=10,
    seed=0,
    min_len=16,
    max_len=48,
    n_parts=4,
    signal=0.6,
    dtype=np.float32,
    class_seed=0,
):
    """Seeded synthetic videos whose class lies in the order of their sub-actions.

    Every class is a sequence of ``n_parts`` sub-actions drawn from a pool of
    ``n_parts`` shared prototypes, so several classes have the same mean over the whole
    video (level 1 cannot tell them apart) and only finer pyramid levels can. Frames are
    ``relu(prototype * signal + noise)``, like post-ReLU CNN features; lengths vary.
    ``class_seed`` fixes the classes (prototypes and orders), ``seed`` the videos, so a
    test set is the same call with another ``seed``.

    Returns
    -------
    X : list of ndarray (T_i, d), y : ndarray of shape (n,)
    """
    y, videos = order_sensitive_stream(
        n, d, n_classes, seed, min_len, max_len, n_parts, signal, dtype, class_seed
    )
    return list(videos), y


def order_sensitive_stream(
    n,
    d,
    n_classes=10,
    seed=0,
    min_len=16,
    max_len=48,
    n_parts=4,
    signal=0.6,
    dtype=np.float32,
    class_seed=0,
):
    """:func:`order_sensitive_videos` one video at a time (the same videos for the same
    arguments): ``(y, iterator of (T_i, d) arrays)``, for sets larger than memory."""
    classes = np.random.default_rng(class_seed)
    prototypes = classes.normal(size=(n_parts, d))
    orders = np.array([classes.permutation(n_parts) for _ in range(n_classes)])
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)

    def videos():
        for label in y:
            T = int(rng.integers(min_len, max_len + 1))
            part = np.minimum((np.arange(T) * n_parts) // T, n_parts - 1)
            frames = signal * prototypes[orders[label, part]] + rng.normal(size=(T, d))
            yield np.maximum(frames, 0.0).astype(dtype)

    return y, videos()


class PeakRSS:
    """Peak resident set size of this process and its children (joblib workers) while the
    block runs, sampled every 50 ms. Pages shared with a worker (memory-mapped arrays) count
    once per process, so this errs high."""

    def __init__(self, interval=0.05):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self.peak = 0
        self.start = 0

    def _rss(self):
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # a worker that just ended
                pass
        return total

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self._interval)

    def __enter__(self):
        self.start = self._rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_gib(self):
        return self.peak / 2**30

    @property
    def extra_gib(self):
        return (self.peak - self.start) / 2**30


@contextmanager
def timed(out, key):
    start = time.perf_counter()
    yield
    out[key] = time.perf_counter() - start


def convergence_label(clf, caught):
    """The "conv" column: "no(max_iter)" when the fit warned ``ConvergenceWarning`` (other
    warnings recorded beside it say nothing about convergence), else ``converged_``."""
    from sklearn.exceptions import ConvergenceWarning

    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return "no(max_iter)"
    return "yes" if clf.converged_ else "no"


def machine_line():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        memory = "? GiB"
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i["user_api"] == "blas"]
        # numpy's own BLAS (scipy, torch and solvers may load others).
        info = [i for i in info if "numpy" in i["filepath"]] or info
        if info:
            blas = (
                f", numpy BLAS {info[0]['internal_api']} "
                f"{info[0].get('architecture', '')} {info[0]['num_threads']} threads"
            )
    except ImportError:
        pass
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {memory}, Python "
        f"{platform.python_version()}, numpy {np.__version__}{blas}; "
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} "
        f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']}"
    )


def print_table(rows, columns, file=None):
    """Plain fixed-width table of ``rows`` (dicts) with ``columns`` = [(key, title, fmt)]."""
    cells = [[title for _, title, _ in columns]]
    for row in rows:
        cells.append(
            [("-" if row.get(key) is None else fmt.format(row[key])) for key, _, fmt in columns]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)), file=file, flush=True)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=file, flush=True)
