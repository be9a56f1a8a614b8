"""Tests of mkl_tp.deep.finetune: chunked backbone features and Eq. 7's periodic frame
selection, on tiny generated videos through a randomly initialised ResNet-18."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="mkl_tp.deep.finetune needs the 'deep' extra (torch)")
pytest.importorskip("torchvision", reason="trunk needs torchvision")

from mkl_tp.deep import TemporalPyramidPool  # noqa: E402
from mkl_tp.deep.finetune import (
    finetune,
    frame_features,
    periodic_frames,
    predict_videos,
    trunk,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trunk(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return trunk("resnet18").to(dtype).eval()


def _videos(lengths, seed=0, size=32):
    """Two classes: class 1 videos are brighter in their second half."""
    gen = torch.Generator().manual_seed(seed)
    videos, labels = [], []
    for i, t in enumerate(lengths):
        clip = torch.randn(t, 3, size, size, generator=gen)
        if i % 2:
            clip[t // 2 :] += 2.0
        videos.append(clip)
        labels.append("bright" if i % 2 else "plain")
    return videos, np.array(labels)


def test_periodic_frames_restart_in_every_video_and_cover_all_frames():
    lengths = [3, 5, 1]
    np.testing.assert_array_equal(
        periodic_frames(lengths, epoch=1, K=2).numpy(), [0, 1, 0, 0, 1, 0, 1, 0, 0]
    )  # local t = 0 1 2 | 0 1 2 3 4 | 0
    K = 3
    counts = sum(periodic_frames(lengths, epoch, K).long() for epoch in range(7, 7 + K))
    np.testing.assert_array_equal(counts.numpy(), 1)  # every frame once per K epochs
    assert periodic_frames(lengths, 4, 1).all()  # K = 1: the full gradient of Eq. 6


def test_frame_features_do_not_depend_on_chunking():
    backbone = _trunk()
    frames = torch.randn(11, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = backbone(frames)
    mask = periodic_frames([4, 7], epoch=0, K=3)
    for chunk_size in (1, 4, 64):
        np.testing.assert_allclose(
            frame_features(backbone, frames, mask, chunk_size).detach().numpy(),
            whole.numpy(),
            rtol=1e-5,
            atol=1e-5,
        )


def test_backbone_gradient_is_eq7():
    # Reference: every frame through the backbone with a graph, the unselected ones
    # detached. Our chunked path must give the same backbone gradient (float64).
    backbone = _trunk(dtype=torch.float64)
    lengths = [5, 8]
    frames = torch.randn(
        13, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    pool = TemporalPyramidPool(3).double()
    weights = torch.randn(
        2, 7 * 512, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    mask = periodic_frames(lengths, epoch=2, K=3)

    def backbone_grads(features):
        backbone.zero_grad()
        (pool(features, lengths)[:, 0] * weights).sum().backward()
        return [p.grad.clone() for p in backbone.parameters()]

    all_frames = backbone(frames)
    expected = backbone_grads(torch.where(mask[:, None], all_frames, all_frames.detach()))
    got = backbone_grads(frame_features(backbone, frames, mask, chunk_size=3))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-9, atol=1e-12)
    assert any(float(g.abs().max()) > 0 for g in got)


def test_only_selected_frames_are_backpropagated():
    backbone = _trunk()
    with_grad = []
    backbone.register_forward_hook(
        lambda module, inputs, output: with_grad.append((output.requires_grad, len(output)))
    )
    frames = torch.randn(20, 3, 32, 32)
    mask = periodic_frames([12, 8], epoch=0, K=4)
    frame_features(backbone, frames, mask, chunk_size=4)
    assert sum(n for grad, n in with_grad if grad) == int(mask.sum()) == 5
    assert sum(n for grad, n in with_grad if not grad) == 15


def test_finetune_trains_predicts_and_is_reproducible():
    videos, y = _videos([3, 4, 6, 5, 2, 7, 4, 5])
    runs = []
    for _ in range(2):
        backbone = _trunk(seed=0)
        before = [p.detach().clone() for p in backbone.parameters()]
        running_mean = backbone.bn1.running_mean.clone()
        result = finetune(
            backbone,
            videos,
            y,
            levels=2,
            node_dim=16,
            hidden=16,
            K=2,
            epochs=2,
            batch_size=4,
            chunk_size=8,
            device="cpu",
            random_state=0,
        )
        runs.append(result)
        # the backbone learned, its BatchNorm statistics stayed frozen
        assert any(not torch.equal(b, p) for b, p in zip(before, backbone.parameters()))
        assert torch.equal(backbone.bn1.running_mean, running_mean)
    first, second = runs
    assert len(first.loss_curve) == len(first.epoch_seconds) == 2
    assert all(np.isfinite(first.loss_curve))
    assert first.loss_curve == second.loss_curve
    predicted = predict_videos(first, videos, batch_size=3)
    assert predicted.shape == (8,) and set(predicted) <= {"bright", "plain"}
    np.testing.assert_array_equal(predicted, predict_videos(second, videos))


def test_finetune_rejects_bad_input():
    videos, y = _videos([3, 4, 5])
    with pytest.raises(ValueError, match="K must be an integer >= 1"):
        finetune(_trunk(), videos, y, K=0)
    with pytest.raises(ValueError, match="y has 2 labels but X holds 3 videos"):
        finetune(_trunk(), videos, y[:2])
    videos[2] = torch.zeros(0, 3, 32, 32)
    with pytest.raises(ValueError, match="video 2 must be a .* T >= 1"):
        finetune(_trunk(), videos, y, epochs=1, batch_size=3, device="cpu")


def test_the_trunk_of_any_torchvision_model():
    """Not a ResNet: SqueezeNet's classifier is a convolution; its trunk gives the 512-d
    pooled feature that convolution read. An unknown name lists the models."""
    from mkl_tp.extraction.backbone import WeightsError

    net = trunk("squeezenet1_0").eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 512)
    with pytest.raises(WeightsError, match="unknown arch 'resnet9'.*squeezenet1_0"):
        trunk("resnet9")
