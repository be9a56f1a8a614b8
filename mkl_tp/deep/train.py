"""Mini-batch training of a pyramid network: Adam, early stopping and a divergence guard.

:func:`train_network` minimises the L2-regularised cross-entropy (the paper's Eq. 4) of a
:class:`~mkl_tp.deep.nets.PyramidNet` on cached node descriptors; the helpers (seeding,
batching, the validation split, the NaN check) are shared with :mod:`mkl_tp.deep.finetune`.
"""

import contextlib
import copy
import logging
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

__all__ = ["TrainHistory", "auto_epochs", "train_network"]

logger = logging.getLogger(__name__)

# Fewest Adam steps epochs="auto" trains for, and its epochs on a large set.
MIN_STEPS = 500
DEFAULT_EPOCHS = 100


class TrainHistory(NamedTuple):
    """What :func:`train_network` reports (the estimator's ``*_`` attributes)."""

    loss_curve: list
    validation_loss_curve: list
    best_epoch: int
    n_iter: int


@contextlib.contextmanager
def seeded(seed):
    """Seed torch's CPU generator inside the block; the caller's state is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def shuffled_batches(n, batch_size, generator):
    """Index batches of a random permutation; a last batch of one joins the one before.

    BatchNorm cannot normalise a single video in training mode, hence the merge.
    """
    parts = list(torch.split(torch.randperm(n, generator=generator), batch_size))
    if len(parts) > 1 and parts[-1].numel() == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


def check_finite(loss, epoch, batch=None, lr=None):
    """Raise ``FloatingPointError`` naming the epoch when the loss is NaN or infinite."""
    if math.isfinite(loss):
        return
    where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
    hint = "" if lr is None else f"; try a smaller lr (got {lr})"
    raise FloatingPointError(
        f"training diverged: the loss became {loss} at {where}{hint} or check the inputs' scale"
    )


def auto_epochs(n_train, batch_size):
    """Epochs of ``epochs="auto"``: ``DEFAULT_EPOCHS``, or enough for ``MIN_STEPS`` steps.

    An epoch is ``ceil(n_train / batch_size)`` steps (less one when a last batch of one video
    joins the one before), so a set smaller than a batch gets one step per epoch.
    """
    steps_per_epoch = math.ceil(n_train / batch_size)
    if steps_per_epoch > 1 and n_train % batch_size == 1:
        steps_per_epoch -= 1
    return max(DEFAULT_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))


def validation_size(y, fraction):
    """Videos :func:`validation_split` holds out: ``ceil(fraction * N)``, one per class at least."""
    return max(math.ceil(fraction * y.shape[0]), np.unique(y).shape[0])


def validation_split(y, fraction, seed, class_names=None):
    """Stratified ``(train, validation)`` index tensors; every class in both parts."""
    counts = np.bincount(y, minlength=int(y.max()) + 1)
    if counts.min() < 2:
        name = (
            counts.argmin()
            if class_names is None
            else np.asarray(class_names)[counts.argmin()].tolist()
        )
        raise ValueError(
            f"early stopping holds out a stratified validation set, which needs at least 2 "
            f"videos per class; class {name!r} has {counts.min()}: add videos or set "
            "early_stopping=False"
        )
    n_valid = validation_size(y, fraction)
    if y.shape[0] - n_valid < max(2, counts.shape[0]):
        raise ValueError(
            f"validation_fraction={fraction} leaves too few of the {y.shape[0]} videos to "
            "train on: lower it or set early_stopping=False"
        )
    train, valid = train_test_split(
        np.arange(y.shape[0]), test_size=n_valid, stratify=y, random_state=seed
    )
    return torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(valid))


def mixed_precision(device, precision):
    """``torch.autocast`` context for ``precision="bfloat16"``, a no-op for "float32"."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def mean_loss(net, inputs, y, rows, precision="float32", batch_size=1024):
    """Mean negative log-likelihood of ``rows`` in evaluation mode (no gradients)."""
    device = next(net.parameters()).device
    net.eval()
    total = 0.0
    with torch.no_grad(), mixed_precision(device, precision):
        for part in torch.split(rows, batch_size):
            log_p = net([torch.index_select(x, 0, part).to(device) for x in inputs])
            total += F.nll_loss(log_p, y[part].to(device), reduction="sum").item()
    net.train()
    return total / rows.shape[0]


def train_network(
    net,
    inputs,
    y,
    *,
    epochs,
    lr,
    weight_decay,
    batch_size,
    validation_fraction,
    n_iter_no_change,
    tol,
    seed,
    precision="float32",
    verbose=0,
    class_names=None,
):
    """Minimise the L2-regularised cross-entropy of ``net`` with Adam (Eq. 4).

    Parameters
    ----------
    net : torch.nn.Module
        Maps a list of per-stream input batches to log-probabilities ``(B, n_classes)``.
    inputs : list of Tensor, each of shape (N, ...)
        Per-stream inputs (node descriptors), indexed along the first axis; moved to the
        network's device one batch at a time.
    y : LongTensor of shape (N,)
        Class indices.
    epochs, lr, weight_decay, batch_size, n_iter_no_change, tol, seed, precision, verbose
        As in :class:`~mkl_tp.deep.DeepPyramidClassifier`.
    validation_fraction : float or None
        Share held out for early stopping; ``None`` trains on everything for ``epochs``.
    class_names : sequence, optional
        Used to name a class in error messages.

    Returns
    -------
    TrainHistory
        The network is left holding the best epoch's weights (the last without early
        stopping).

    Notes
    -----
    ``beta`` lives in ``net`` as free parameters behind a softmax (Eq. 5), so plain Adam
    steps keep every pyramid on its simplex. A NaN or infinite loss stops training with a
    ``FloatingPointError`` naming the epoch.
    """
    device = next(net.parameters()).device
    level = logging.INFO if verbose else logging.DEBUG
    y_np = y.numpy()
    if validation_fraction is None:
        train, valid = torch.arange(y.shape[0]), None
    else:
        train, valid = validation_split(y_np, validation_fraction, seed, class_names)
    generator = torch.Generator().manual_seed(int(seed))
    # Batches are gathered into reused buffers: a fresh (B, P, d) tensor per step pays page
    # faults on every step (epoch times: benchmarks/bench_deep.py, table 2 in docs/deep.rst).
    # One row more than batch_size: a merged last batch.
    buffers = [torch.empty((batch_size + 1, *x.shape[1:]), dtype=x.dtype) for x in inputs]
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_curve, validation_curve = [], []
    best, best_state, best_epoch, stale = math.inf, None, 0, 0
    net.train()
    for epoch in range(1, epochs + 1):
        total = 0.0
        for batch, part in enumerate(shuffled_batches(train.shape[0], batch_size, generator), 1):
            rows = train[part]
            with mixed_precision(device, precision):
                log_p = net(
                    [
                        torch.index_select(x, 0, rows, out=buffer[: rows.shape[0]]).to(device)
                        for x, buffer in zip(inputs, buffers)
                    ]
                )
                loss = F.nll_loss(log_p, y[rows].to(device))
            value = loss.item()
            check_finite(value, epoch, batch, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value * rows.shape[0]
        loss_curve.append(total / train.shape[0])
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            check_finite(math.nan, epoch, lr=lr)
        if valid is None:
            logger.log(level, "epoch %d: training loss %.4f", epoch, loss_curve[-1])
            continue
        validation_curve.append(mean_loss(net, inputs, y, valid, precision))
        check_finite(validation_curve[-1], epoch, lr=lr)
        if validation_curve[-1] < best - tol:
            best, best_epoch, stale = validation_curve[-1], epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
        logger.log(
            level,
            "epoch %d: training loss %.4f, validation loss %.4f%s",
            epoch,
            loss_curve[-1],
            validation_curve[-1],
            " (best)" if stale == 0 else "",
        )
        if stale >= n_iter_no_change:
            logger.log(
                level,
                "no improvement for %d epochs: keeping epoch %d",
                n_iter_no_change,
                best_epoch,
            )
            break
    if valid is None:
        best_epoch = len(loss_curve)
    else:
        net.load_state_dict(best_state)
    return TrainHistory(loss_curve, validation_curve, best_epoch, len(loss_curve))
