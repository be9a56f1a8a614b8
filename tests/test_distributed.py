"""The primal alpha-step on a Dask cluster (row shards on workers) against the local one."""

import numpy as np
import pytest
from _problems import problem, videos

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')"
)

from mkl_tp import PyramidMKLClassifier  # noqa: E402
from mkl_tp.kernels.combine import weighted_features  # noqa: E402
from mkl_tp.solvers import fit_mkl  # noqa: E402
from mkl_tp.solvers.distributed import _CLIENTS, ShardedBlocks, is_dask_device  # noqa: E402
from mkl_tp.solvers.primal import svm_duals_primal  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # Two workers in this process: the same scatter/submit/gather path as worker processes
    # (benchmarks/bench_primal.py --dask runs processes), without their start-up time.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        try:
            yield client
        finally:
            # The estimator keeps one client per scheduler address for the session
            # (solvers.distributed._CLIENTS): close them while the cluster is up, or they
            # retry for 30 s after it closes and log an error into a later test's stderr.
            while _CLIENTS:
                _CLIENTS.popitem()[1].close()


def test_dask_device_names():
    assert is_dask_device("dask") and is_dask_device("tcp://10.0.0.1:8786")
    assert not is_dask_device("cuda") and not is_dask_device(None)


@pytest.mark.parametrize("kind", ["linear", "cross"])
def test_sharded_products_and_rows_equal_the_local_ones(client, kind):
    blocks, _ = problem(seed=2, n=37)
    beta = np.array([0.4, 0.3, 0.2, 0.1])
    local = weighted_features(blocks, beta, kind) / np.sqrt(2.0)
    sharded = ShardedBlocks(client, blocks, n_shards=3).features(beta, kind, scale=2.0)
    rng = np.random.default_rng(0)
    W, V = rng.normal(size=(local.shape[1], 3)), rng.normal(size=(37, 3))
    np.testing.assert_allclose(sharded.matmul(W), local @ W, rtol=1e-12)
    np.testing.assert_allclose(sharded.rmatmul(V), local.T @ V, rtol=1e-12, atol=1e-12)
    index = np.array([36, 0, 12, 13, 25])
    np.testing.assert_allclose(sharded.rows(index), local[index], rtol=1e-15)
    assert sharded.max_row_norm() == pytest.approx((local**2).sum(1).max(), rel=1e-12)


def test_sharded_svm_duals_equal_the_local_solve(client):
    blocks, Y = problem(seed=5, n=60)
    beta = np.full(4, 0.25)
    local = svm_duals_primal(weighted_features(blocks, beta, "linear"), Y, 1.0, tol=1e-8)
    sharded = svm_duals_primal(
        ShardedBlocks(client, blocks).features(beta, "linear"), Y, 1.0, tol=1e-8
    )
    np.testing.assert_allclose(sharded.objective, local.objective, rtol=1e-10)
    np.testing.assert_allclose(sharded.coef, local.coef, atol=1e-8)
    np.testing.assert_allclose(sharded.intercept, local.intercept, atol=1e-8)


# A few alpha-steps suffice: the two fits take the same path step by step (the cluster
# only changes the order of floating-point sums), so they must agree wherever they stop.
_STEPS = 6


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kernel", ["linear", "cross"])
def test_mkl_fit_on_dask_equals_the_local_fit(client, kernel):
    blocks, Y = problem(seed=1, n=50)
    local = fit_mkl(blocks, Y, kernel=kernel, solver="primal", tol=1e-6, max_iter=_STEPS)
    remote = fit_mkl(
        blocks,
        Y,
        kernel=kernel,
        solver="primal",
        tol=1e-6,
        max_iter=_STEPS,
        solver_options={"dask": "dask"},
    )
    assert remote.objective == pytest.approx(local.objective, rel=1e-9)
    np.testing.assert_allclose(remote.beta, local.beta, atol=1e-7)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimator_on_a_scheduler_address_equals_the_local_fit(client):
    X, y = videos(n=36, seed=2)
    options = dict(levels=2, solver="primal", mkl_norm=1.0, tol=1e-6, max_iter=_STEPS)
    local = PyramidMKLClassifier(**options).fit(X, y)
    remote = PyramidMKLClassifier(dask=client.scheduler.address, **options).fit(X, y)
    np.testing.assert_allclose(remote.beta_, local.beta_, atol=1e-7)
    np.testing.assert_allclose(remote.decision_function(X), local.decision_function(X), atol=1e-6)
    with pytest.warns(FutureWarning, match="pass dask="):
        old = PyramidMKLClassifier(device=client.scheduler.address, **options).fit(X, y)
    np.testing.assert_allclose(old.beta_, local.beta_, atol=1e-7)


def test_dask_needs_the_primal_solver():
    X, y = videos(n=12, seed=0)
    with pytest.raises(ValueError, match="dask runs the primal solver"):
        PyramidMKLClassifier(levels=1, solver="libsvm", dask=True).fit(X, y)


@pytest.mark.slow
def test_fit_command_runs_on_a_dask_scheduler(client, tmp_path, capsys):
    from mkl_tp.fit import main

    code = main(
        [
            "--dask",
            client.scheduler.address,
            "--levels",
            "2",
            "--max-iter",
            "5",
            "--mkl-norm",
            "1",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    assert (tmp_path / "model.skops").exists()
