"""Tests of mkl_tp.deep.pool: the pyramid layer against mkl_tp.pyramid and the paper's
Eqs. 5-6."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")

from mkl_tp import node_bounds, node_descriptors_batch  # noqa: E402
from mkl_tp.deep import TemporalPyramidPool  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _packed(arrays, dtype=torch.float64):
    return torch.from_numpy(np.concatenate(arrays)).to(dtype), [x.shape[0] for x in arrays]


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_node_descriptors_equal_core(levels):
    rng = np.random.default_rng(levels)
    lengths = [1, 2, 3, 7, 8, 13, 16, 31, 100, 1]  # T = 1 and T < 2**(levels-1) included
    arrays = [rng.normal(size=(t, 5)) + 1e3 * i for i, t in enumerate(lengths)]
    frames, lengths = _packed(arrays)
    psi = TemporalPyramidPool(levels).node_descriptors(frames, lengths)
    assert psi.dtype == torch.float64 and psi.shape == (10, 2**levels - 1, 5)
    np.testing.assert_allclose(
        psi.numpy(), node_descriptors_batch(arrays, levels), rtol=0, atol=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(
    levels=st.integers(1, 7),
    lengths=st.lists(st.integers(1, 70), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_node_descriptors_equal_core_property(levels, lengths, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(t, 2)) for t in lengths]
    psi = TemporalPyramidPool(levels).node_descriptors(*_packed(arrays))
    np.testing.assert_allclose(
        psi.numpy(), node_descriptors_batch(arrays, levels), rtol=0, atol=1e-9
    )


def test_node_descriptors_float32_no_cancellation_across_videos():
    # One global prefix sum over 3000 videos of mean 100 would lose ~6e-2 relative in
    # float32; the layer's per-segment sums keep rounding local to each video.
    rng = np.random.default_rng(0)
    arrays = [
        (rng.normal(size=(t, 4)) + 100).astype(np.float32) for t in rng.integers(1, 60, size=3000)
    ]
    frames, lengths = _packed(arrays, torch.float32)
    psi = TemporalPyramidPool(4).node_descriptors(frames, lengths)
    assert psi.dtype == torch.float32
    np.testing.assert_allclose(psi.numpy(), node_descriptors_batch(arrays, 4), rtol=1e-5)


@pytest.mark.parametrize("mode", ["concat", "average"])
def test_forward_weights_nodes_with_beta(mode):
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(t, 3)) for t in (1, 5, 9)]
    pool = TemporalPyramidPool(3, mode=mode, n_pyramids=2).double()
    with torch.no_grad():
        pool.beta_hat.copy_(torch.from_numpy(rng.normal(size=(2, 7))))
    out = pool(*_packed(arrays)).detach().numpy()
    beta = pool.beta.detach().numpy()
    psi = node_descriptors_batch(arrays, 3)
    if mode == "concat":
        expected = (beta[None, :, :, None] * psi[:, None]).reshape(3, 2, 7 * 3)
    else:
        expected = np.einsum("mp,npd->nmd", beta, psi)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_beta_is_a_softmax_on_the_simplex():
    pool = TemporalPyramidPool(4, n_pyramids=3)
    assert pool.beta.shape == (3, 15)
    np.testing.assert_allclose(pool.beta.detach().numpy(), 1 / 15)  # uniform at start
    with torch.no_grad():
        pool.beta_hat.normal_(std=5.0)
    beta = pool.beta.detach().double().numpy()
    assert (beta > 0).all()
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("mode", ["concat", "average"])
def test_gradcheck_frames_and_beta_hat(mode):
    pool = TemporalPyramidPool(3, mode=mode, n_pyramids=2).double()
    gen = torch.Generator().manual_seed(0)
    lengths = [1, 3, 6]
    frames = torch.randn(10, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    beta_hat = torch.randn(2, 7, dtype=torch.float64, generator=gen, requires_grad=True)

    def layer(frames, beta_hat):
        return torch.func.functional_call(pool, {"beta_hat": beta_hat}, (frames, lengths))

    assert torch.autograd.gradcheck(layer, (frames, beta_hat), eps=1e-6, atol=1e-8)


def test_beta_jacobian_is_eq5():
    pool = TemporalPyramidPool(2, n_pyramids=2).double()
    with torch.no_grad():
        pool.beta_hat.normal_(generator=torch.Generator().manual_seed(3))
    beta = pool.beta
    jac = torch.stack(
        [
            torch.autograd.grad(beta[m, p], pool.beta_hat, retain_graph=True)[0]
            for m in range(2)
            for p in range(3)
        ]
    ).reshape(2, 3, 2, 3)
    # d beta_{m,p} / d beta_hat_{m',k} = 1{m = m'} beta_{m,k} (delta_pk - beta_{m,p})
    b = beta.detach().numpy()
    expected = np.zeros((2, 3, 2, 3))
    for m in range(2):
        for p in range(3):
            for k in range(3):
                expected[m, p, m, k] = b[m, k] * ((p == k) - b[m, p])
    np.testing.assert_allclose(jac.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["concat", "average"])
def test_frame_gradient_is_eq6_membership(mode):
    # T divisible by 2**(L-1): every frame lies wholly in one node per level, and
    # dE/dphi(f_t) = sum_{m,p} 1{t in N_p} beta_{m,p} dE/d(node output) / |N_p|.
    levels, lengths, d = 3, [8, 4], 2
    pool = TemporalPyramidPool(levels, mode=mode, n_pyramids=2).double()
    with torch.no_grad():
        pool.beta_hat.copy_(
            torch.tensor(
                [[0.1, -0.4, 0.3, 0.9, -1.0, 0.2, 0.5], [0.0, 0.7, -0.2, 0.1, 0.4, -0.3, 0.6]]
            )
        )
    gen = torch.Generator().manual_seed(1)
    frames = torch.randn(12, d, dtype=torch.float64, generator=gen, requires_grad=True)
    out = pool(frames, lengths)
    upstream = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    (out * upstream).sum().backward()

    beta = pool.beta.detach().numpy()
    g = upstream.numpy()
    bounds = node_bounds(levels)
    expected = np.zeros((12, d))
    start = 0
    for i, T in enumerate(lengths):
        for t in range(T):
            for p, (a, b) in enumerate(bounds):
                size = round((b - a) * T)
                if not a * T <= t < b * T:
                    continue
                for m in range(2):
                    g_node = g[i, m, p * d : (p + 1) * d] if mode == "concat" else g[i, m]
                    expected[start + t] += beta[m, p] * g_node / size
        start += T
    np.testing.assert_allclose(frames.grad.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="levels"):
        TemporalPyramidPool(0)
    with pytest.raises(ValueError, match="mode"):
        TemporalPyramidPool(2, mode="max")
    with pytest.raises(ValueError, match="n_pyramids"):
        TemporalPyramidPool(2, n_pyramids=0)
    pool = TemporalPyramidPool(2)
    with pytest.raises(ValueError, match="sum to frames.shape"):
        pool.node_descriptors(torch.zeros(5, 2), [2, 2])
    with pytest.raises(ValueError, match="lengths must be >= 1"):
        pool.node_descriptors(torch.zeros(5, 2), [5, 0])
