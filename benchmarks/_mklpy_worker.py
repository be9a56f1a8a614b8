"""Run MKLpy on node kernels saved by bench_peers.py; print one JSON line of results.

Executed by bench_peers.py with the interpreter of a separate virtual environment that
holds MKLpy (it pins its own torch/cvxopt), so it imports nothing from mkl_tp.
"""

import json
import sys
import time

import numpy as np
from sklearn.svm import SVC


def main(path, algorithms):
    from MKLpy.algorithms import AverageMKL, EasyMKL

    data = np.load(path)
    train = [data["train"][p] for p in range(data["train"].shape[0])]
    test = [data["test"][p] for p in range(data["test"].shape[0])]
    y, y_test = data["y"], data["y_test"]
    results = {}
    for name in algorithms:
        if name == "EasyMKL":
            model = EasyMKL(lam=0.1, learner=SVC(C=1.0))
        else:
            model = AverageMKL(learner=SVC(C=1.0))
        start = time.perf_counter()
        model.fit(train, y)
        fit = time.perf_counter() - start
        accuracy = float(np.mean(np.asarray(model.predict(test)) == y_test))
        results[name] = {"fit": fit, "accuracy": accuracy}
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
