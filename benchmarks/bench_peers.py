"""Against the Python MKL peer (issue 5, target 3): MKLpy's EasyMKL and AverageMKL.

All methods get the same node kernels (levels-pyramid nodes of seeded synthetic
order-sensitive data, l2-normalised, unit mean diagonal, 10 classes, d = 512) and the same
SVM (C = 1). Ours is ``fit_mkl`` (the estimator's solver) on the node blocks whose kernels
those are; its time includes forming the node kernels, MKLpy's does not (it is handed
them). MKLpy runs in a subprocess with the interpreter given by ``--mklpy-python`` (a
separate virtual environment, because MKLpy pins its own torch and cvxopt), in the same
run on the same machine; only its ``fit`` is timed.

Run: ``PYTHONPATH=. python benchmarks/bench_peers.py --mklpy-python /tmp/venv-mklpy/bin/python``
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from _common import machine_line, order_sensitive_videos, print_table

from mkl_tp.kernels.feature_maps import normalize_nodes, unit_diagonal_scales
from mkl_tp.pyramid.descriptors import node_descriptors_batch
from mkl_tp.solvers import fit_mkl
from mkl_tp.solvers.svm import one_vs_rest_labels

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_mklpy_worker.py")


def _available_bytes():
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        return 16 * 2**30


def scaled_nodes(X, levels, scales=None):
    psi = normalize_nodes(node_descriptors_batch(X, levels), "l2")
    if scales is None:
        scales = unit_diagonal_scales(psi)
    return psi / np.sqrt(scales)[None, :, None], scales


def ours(block, block_test, y, y_test, kernel, classes):
    start = time.perf_counter()
    result = fit_mkl(
        [block],
        one_vs_rest_labels(y, classes),
        kernel=kernel,
        C=1.0,
        tol=1e-3,
        cache_bytes=4096 * 2**20,
    )
    fit = time.perf_counter() - start
    beta = result.beta
    if kernel == "linear":
        Z = block * np.sqrt(beta)[None, :, None]
        Z_test = block_test * np.sqrt(beta)[None, :, None]
    else:
        Z = np.tensordot(block, beta, axes=([1], [0]))[:, None]
        Z_test = np.tensordot(block_test, beta, axes=([1], [0]))[:, None]
    K_test = Z_test.reshape(len(Z_test), -1) @ Z.reshape(len(Z), -1).T / result.normaliser
    scores = K_test @ result.duals.coef + result.duals.intercept
    return fit, float(np.mean(np.argmax(scores, axis=1) == y_test)), result.n_iter


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--levels", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--mklpy-python", default="/tmp/venv-mklpy/bin/python")
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=1000)
    args = parser.parse_args()
    print(machine_line())
    has_mklpy = (
        subprocess.run([args.mklpy_python, "-c", "import MKLpy"], capture_output=True).returncode
        == 0
        if os.path.exists(args.mklpy_python)
        else False
    )
    if not has_mklpy:
        print(
            f"MKLpy cannot be imported with {args.mklpy_python}: install it there "
            "(python3 -m venv /tmp/venv-mklpy && /tmp/venv-mklpy/bin/pip install MKLpy); "
            "only our rows are printed"
        )
    columns = [
        ("N", "N", "{}"),
        ("levels", "L", "{}"),
        ("method", "method", "{}"),
        ("fit", "fit s", "{:.2f}"),
        ("acc", "test acc", "{:.3f}"),
        ("ratio", "fit / EasyMKL fit", "{:.2f}"),
    ]
    rows = []
    for n in args.sizes:
        X, y = order_sensitive_videos(n, args.d, args.classes, seed=0)
        X_test, y_test = order_sensitive_videos(args.n_test, args.d, args.classes, seed=1)
        for levels in args.levels:
            block, scales = scaled_nodes(X, levels)
            block_test, _ = scaled_nodes(X_test, levels, scales)
            found = {}
            # MKLpy's EasyMKL was OOM-killed at 23.7 GB resident for N=500, 63 nodes:
            # about 3 P^2 N^2 float64 (dmesg). Do not start it where that cannot fit.
            need = 3 * 8 * block.shape[1] ** 2 * n**2
            available = _available_bytes()
            if has_mklpy and need > 0.8 * available:
                print(
                    f"MKLpy skipped at N={n}, levels={levels}: EasyMKL needs about "
                    f"3 P^2 N^2 x 8 bytes = {need / 2**30:.0f} GiB (measured: killed by the "
                    f"out-of-memory killer at 23.7 GB for N=500, P=63), "
                    f"{available / 2**30:.0f} GiB available"
                )
            elif has_mklpy:
                with tempfile.TemporaryDirectory() as folder:
                    path = os.path.join(folder, "kernels.npz")
                    train = np.einsum("npd,mpd->pnm", block, block, optimize=True)
                    test = np.einsum("npd,mpd->pnm", block_test, block, optimize=True)
                    np.savez(path, train=train, test=test, y=y, y_test=y_test)
                    del train, test
                    done = subprocess.run(
                        [args.mklpy_python, WORKER, path, "EasyMKL", "AverageMKL"],
                        capture_output=True,
                        text=True,
                    )
                if done.returncode != 0:
                    signal = -done.returncode
                    reason = (
                        f"exit status {done.returncode}"
                        if signal < 0
                        else f"killed by signal {signal}"
                        + (
                            " (SIGKILL: most likely the out-of-memory killer)"
                            if signal == 9
                            else ""
                        )
                    )
                    print(
                        f"MKLpy failed at N={n}, levels={levels}: {reason}; "
                        f"stderr: {done.stderr[-1500:].strip() or '(empty)'}"
                    )
                else:
                    found = json.loads(done.stdout.strip().splitlines()[-1])
            easy = found.get("EasyMKL", {}).get("fit")
            for name, value in found.items():
                rows.append(
                    dict(
                        N=n,
                        levels=levels,
                        method=f"MKLpy {name}",
                        fit=value["fit"],
                        acc=value["accuracy"],
                        ratio=value["fit"] / easy if easy else None,
                    )
                )
                print_table([rows[-1]], columns)
            for kernel in ("linear", "cross"):
                fit, accuracy, n_iter = ours(block, block_test, y, y_test, kernel, args.classes)
                rows.append(
                    dict(
                        N=n,
                        levels=levels,
                        method=f"mkl_tp {kernel} ({n_iter} it)",
                        fit=fit,
                        acc=accuracy,
                        ratio=fit / easy if easy else None,
                    )
                )
                print_table([rows[-1]], columns)
    print("\nSummary (ratio < 1: faster than MKLpy EasyMKL)")
    print_table(rows, columns)


if __name__ == "__main__":
    main()
