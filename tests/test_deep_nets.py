"""Tests of mkl_tp.deep.nets: the stream head builds its pyramid, reduces once in "average"
mode, and PyramidNet fuses streams as a mixture of their softmax outputs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="mkl_tp.deep needs the 'deep' extra (torch)")

from mkl_tp.deep import TemporalPyramidPool  # noqa: E402
from mkl_tp.deep.nets import PyramidNet, StreamHead  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("mode, width", [("concat", 2 * 4 * 7), ("average", 2 * 4)])
def test_stream_head_builds_its_pool(mode, width):
    head = StreamHead(5, 3, 3, mode, 2, node_dim=4, hidden=6)
    assert isinstance(head.pool, TemporalPyramidPool)
    assert (head.pool.levels, head.pool.mode, head.pool.n_pyramids) == (3, mode, 2)
    assert head.reduce.in_features == 5 and head.reduce.out_features == 4
    assert head.fuse[0].in_features == width and head.classify.out_features == 3
    with pytest.raises(ValueError, match="mode"):
        StreamHead(5, 3, 3, "max")


def test_average_mode_reduces_the_weighted_mean_once():
    # sum_p beta_p (W psi_p + b) = W (sum_p beta_p psi_p) + b, as beta sums to 1
    torch.manual_seed(0)
    head = StreamHead(5, 3, 3, "average", 2, node_dim=4, hidden=6).double().eval()
    with torch.no_grad():
        head.pool.beta_hat.normal_()
        psi = torch.randn(8, 7, 5, dtype=torch.float64)
        per_node = head.pool.aggregate(head.reduce(psi))
        expected = head.classify(head.fuse(per_node.flatten(1)))
        np.testing.assert_allclose(head(psi).numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_pyramid_net_is_a_mixture_of_stream_softmaxes():
    torch.manual_seed(0)
    heads = [StreamHead(d, 3, 2, node_dim=4, hidden=6).double().eval() for d in (5, 2)]
    net = PyramidNet(heads).double()
    with torch.no_grad():
        net.stream_logits.copy_(torch.tensor([0.3, -0.8]))
        psis = [torch.randn(6, 3, d, dtype=torch.float64) for d in (5, 2)]
        log_p = net(psis)
        w = torch.softmax(net.stream_logits, dim=0)
        expected = sum(
            w[s] * torch.softmax(head(psi), dim=1) for s, (head, psi) in enumerate(zip(heads, psis))
        )
    np.testing.assert_allclose(log_p.exp().numpy(), expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(log_p.exp().sum(dim=1).numpy(), 1.0, rtol=1e-12)
