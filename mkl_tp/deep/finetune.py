"""End-to-end fine-tuning: backbone, temporal pyramid and head trained together (Eqs. 6-7).

Every frame of a video goes through the backbone (in chunks, so memory stays bounded), the
pyramid pools the frame features of whole videos (no sampling, no padding) and the head
classifies them. The gradient reaching the backbone follows the membership form of Eq. 6;
to make it affordable, Eq. 7's periodic selection lets only the frames ``t = r (mod K)`` of
every video carry backbone gradients at epoch ``r`` -- the others are forwarded under
``no_grad`` -- so all frames are used evenly across ``K`` epochs.

The backbone is any ``torch.nn.Module`` mapping ``(n, C, H, W)`` images to ``(n, d)``
features; :func:`trunk` builds one from any torchvision classification model.
"""

import logging
import time
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from torch import nn

from .._utils.devices import resolve_device
from ..pyramid.inputs import validate_labels
from .nets import StreamHead
from .train import check_finite, seeded, shuffled_batches

__all__ = [
    "trunk",
    "periodic_frames",
    "frame_features",
    "VideoPyramidNet",
    "FinetuneResult",
    "finetune",
    "predict_videos",
]

logger = logging.getLogger(__name__)


def trunk(arch="resnet18", weights=None):
    """A torchvision classification model without its classifier: ``(n, 3, H, W)`` images
    to ``(n, d)`` features.

    Parameters
    ----------
    arch : str, default="resnet18"
        Any ``torchvision.models`` classification model (``"resnet101"`` in the paper;
        :func:`mkl_tp.extraction.backbone.available_archs`).
    weights : torchvision weights enum, str or None, default=None
        ``None`` gives random initialisation (no download). ImageNet weights come from
        torchvision's cache, downloaded when missing; offline and not cached, a
        :class:`~mkl_tp.extraction.backbone.WeightsError` names the file to put there.

    Returns
    -------
    torch.nn.Module
        The network with its last layer the identity
        (:func:`~mkl_tp.extraction.backbone.remove_classifier`): ``d`` is 512 for
        resnet18/34, 2048 for resnet50-152, 4096 for AlexNet and VGG.
    """
    import torchvision  # the 'extract' extra; fine-tuning itself only needs torch

    from ..extraction.backbone import check_arch, imagenet_weights_file, remove_classifier

    check_arch(arch)
    if weights is not None:
        # Found in (or fetched to) torchvision's cache first: offline, one line naming the
        # file to put there (WeightsError), not urllib's traceback from inside torchvision.
        name = getattr(weights, "name", weights)
        imagenet_weights_file(arch, "imagenet" if name == "DEFAULT" else name)
    model = torchvision.models.get_model(arch, weights=weights)
    remove_classifier(model)
    return model


def periodic_frames(lengths, epoch, K):
    """Frames selected for backbone gradients at ``epoch``: ``t = epoch (mod K)`` (Eq. 7).

    Parameters
    ----------
    lengths : array-like of int, shape (N,)
        Frames per video; frames are packed video after video.
    epoch : int
        Epoch index ``r`` (0-based).
    K : int
        Period; ``1/K`` of every video's frames is selected, each frame once per ``K`` epochs.

    Returns
    -------
    BoolTensor of shape (sum_i T_i,)
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    starts = torch.cumsum(lengths, 0) - lengths
    t = torch.arange(int(lengths.sum())) - torch.repeat_interleave(starts, lengths)
    return t % K == epoch % K


def frame_features(backbone, frames, grad_mask=None, chunk_size=64):
    """Backbone features of packed frames, computed in chunks.

    Parameters
    ----------
    backbone : torch.nn.Module
        ``(n, C, H, W) -> (n, d)``.
    frames : Tensor of shape (S, C, H, W)
        Any device; chunks are moved to the backbone's.
    grad_mask : BoolTensor of shape (S,), optional
        Frames whose features keep an autograd graph (Eq. 7's ``P_r``); the others run
        under ``no_grad``. ``None``: all frames (subject to ``torch.is_grad_enabled()``).
    chunk_size : int, default=64
        Frames per backbone call.

    Returns
    -------
    Tensor of shape (S, d), in frame order
    """
    device = next(backbone.parameters()).device
    everything = torch.arange(frames.shape[0])
    if grad_mask is None:
        grad_mask = torch.ones(frames.shape[0], dtype=torch.bool)
    grad_mask = torch.as_tensor(grad_mask, dtype=torch.bool).cpu()
    parts, order = [], []
    for with_grad, rows in ((False, everything[~grad_mask]), (True, everything[grad_mask])):
        with torch.set_grad_enabled(with_grad and torch.is_grad_enabled()):
            for chunk in torch.split(rows, chunk_size):
                parts.append(backbone(frames[chunk].to(device)))
                order.append(chunk)
    return torch.cat(parts)[torch.argsort(torch.cat(order)).to(device)]


def _freeze_batchnorm(module):
    """BatchNorm layers to eval mode: a frame's feature must not depend on its chunk."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


class VideoPyramidNet(nn.Module):
    """Backbone, temporal pyramid and head on raw frames.

    Parameters
    ----------
    backbone : torch.nn.Module
        ``(n, C, H, W) -> (n, d)`` frame features.
    head : torch.nn.Module
        The pyramid head of :class:`~mkl_tp.deep.DeepPyramidClassifier` (a per-node
        reduction, :class:`~mkl_tp.deep.TemporalPyramidPool`, FC+ReLU+BatchNorm, linear).
    """

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, frames, lengths, grad_mask=None, chunk_size=64):
        """Class logits ``(N, n_classes)`` of a packed batch of videos.

        ``grad_mask`` selects the frames whose backbone gradients are kept (Eq. 7); the
        pyramid's own gradient is the membership form of Eq. 6.
        """
        features = frame_features(self.backbone, frames, grad_mask, chunk_size)
        return self.head(self.head.pool.node_descriptors(features, lengths))


class FinetuneResult(NamedTuple):
    """What :func:`finetune` returns."""

    net: VideoPyramidNet
    """The trained network, in eval mode, on the training device."""
    classes: np.ndarray
    """Labels in the order of the network's outputs."""
    loss_curve: list
    """Mean training loss of every epoch."""
    epoch_seconds: list
    """Wall time of every epoch."""


def _load_video(videos, index):
    """Video ``index`` as a float32 ``(T, C, H, W)`` tensor; ``ValueError`` naming it."""
    clip = torch.as_tensor(videos[index], dtype=torch.float32)
    if clip.ndim != 4 or clip.shape[0] < 1:
        raise ValueError(
            f"video {index} must be a (T, C, H, W) array with T >= 1 frames, got shape "
            f"{tuple(clip.shape)}"
        )
    if not bool(torch.isfinite(clip).all()):
        raise ValueError(f"video {index} contains NaN or inf")
    return clip


def _packed_batch(videos, rows):
    clips = [_load_video(videos, int(i)) for i in rows]
    return torch.cat(clips), [clip.shape[0] for clip in clips]


def finetune(
    backbone,
    videos,
    y,
    *,
    levels=4,
    mode="concat",
    n_pyramids=1,
    node_dim=128,
    hidden=128,
    K=8,
    epochs=10,
    lr=1e-3,
    backbone_lr=1e-4,
    weight_decay=1e-4,
    batch_size=8,
    chunk_size=64,
    device="auto",
    random_state=None,
    verbose=0,
):
    """Train a backbone and a temporal pyramid head end to end on videos (Eqs. 4-7).

    Parameters
    ----------
    backbone : torch.nn.Module
        ``(n, C, H, W) -> (n, d)``, e.g. :func:`trunk` or ``mkl_tp.extraction.backbone``'s
        networks. Trained in place; its BatchNorm layers stay in eval mode (frozen
        statistics), so chunking does not change any feature.
    videos : sequence of array-like of shape (T_i, C, H, W)
        Preprocessed frames; indexed lazily (a ``torch.utils.data.Dataset`` works), so a
        dataset need not fit in memory.
    y : array-like of shape (n_videos,)
    levels, mode, n_pyramids, node_dim, hidden
        The pyramid head, as in :class:`~mkl_tp.deep.DeepPyramidClassifier`.
    K : int, default=8
        Eq. 7 period: at epoch ``r`` only frames ``t = r (mod K)`` get backbone gradients.
        ``K=1`` is the full gradient of Eq. 6.
    epochs : int, default=10
    lr : float, default=1e-3
        Adam step of the head (pyramid weights included).
    backbone_lr : float, default=1e-4
        Adam step of the backbone; smaller, as it starts from pretrained weights.
    weight_decay : float, default=1e-4
        L2 penalty (footnote 5 of the paper).
    batch_size : int, default=8
        Videos per step (>= 2, for the head's BatchNorm).
    chunk_size : int, default=64
        Frames per backbone call.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
        Seeds the head's initialisation and the batch order.
    verbose : int, default=0
        Log every epoch at INFO level.

    Returns
    -------
    FinetuneResult

    Notes
    -----
    The backbone's share of the cost falls with ``K``: every frame is still forwarded each
    epoch (the pyramid needs all of them), but only ``1/K`` are back-propagated through and
    keep activations in memory. A NaN loss raises ``FloatingPointError`` naming the epoch.
    """
    for name, value in (
        ("K", K),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("chunk_size", chunk_size),
    ):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if batch_size < 2:
        raise ValueError("batch_size must be >= 2 (BatchNorm needs two videos per step)")
    classes, y_index = validate_labels(y, len(videos))
    device = resolve_device(device)
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    backbone.to(device).eval()
    with torch.no_grad():
        n_features = backbone(_load_video(videos, 0)[:1].to(device)).shape[1]
    with seeded(seed):
        head = StreamHead(n_features, classes.shape[0], levels, mode, n_pyramids, node_dim, hidden)
    net = VideoPyramidNet(backbone, head).to(device)
    optimizer = torch.optim.Adam(
        [
            {"params": head.parameters(), "lr": lr},
            {"params": backbone.parameters(), "lr": backbone_lr},
        ],
        weight_decay=weight_decay,
    )
    generator = torch.Generator().manual_seed(int(seed))
    targets = torch.from_numpy(y_index)
    level = logging.INFO if verbose else logging.DEBUG
    loss_curve, epoch_seconds = [], []
    for epoch in range(epochs):
        net.train()
        _freeze_batchnorm(net.backbone)
        started, total = time.perf_counter(), 0.0
        for batch, rows in enumerate(shuffled_batches(len(videos), batch_size, generator), 1):
            frames, lengths = _packed_batch(videos, rows)
            logits = net(frames, lengths, periodic_frames(lengths, epoch, K), chunk_size)
            loss = F.cross_entropy(logits, targets[rows].to(device))
            value = loss.item()
            check_finite(value, epoch + 1, batch, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value * rows.shape[0]
        epoch_seconds.append(time.perf_counter() - started)
        loss_curve.append(total / len(videos))
        logger.log(
            level,
            "epoch %d: loss %.4f, %.1f s (K=%d)",
            epoch + 1,
            loss_curve[-1],
            epoch_seconds[-1],
            K,
        )
    return FinetuneResult(net.eval(), classes, loss_curve, epoch_seconds)


def predict_videos(result, videos, batch_size=8, chunk_size=64):
    """Labels of videos under a fine-tuned network.

    Parameters
    ----------
    result : FinetuneResult
    videos : sequence of array-like of shape (T_i, C, H, W)
    batch_size, chunk_size : int
        Videos per forward pass, frames per backbone call.

    Returns
    -------
    ndarray of shape (n_videos,)
    """
    net = result.net.eval()
    predicted = []
    with torch.no_grad():
        for start in range(0, len(videos), batch_size):
            frames, lengths = _packed_batch(
                videos, range(start, min(start + batch_size, len(videos)))
            )
            predicted.append(net(frames, lengths, chunk_size=chunk_size).argmax(1).cpu())
    return result.classes[torch.cat(predicted).numpy()]
