"""Frozen CNN feature extractors for the appearance (RGB) and motion (flow) streams.

Any torchvision classification model (:func:`available_archs`) works. Its classifier, the
last ``Linear`` (or, for SqueezeNet, the last ``Conv2d``) in module order, is replaced by
the identity, so a network maps a batch of frames to the representation that layer read:
the global-pooled feature for ResNets (2048-d for ResNet-50/101/152, 512-d for
ResNet-18/34), DenseNets, EfficientNets, ...; for AlexNet and VGG the output of the last
hidden fully connected layer (4096-d, after its ReLU; dropout is off in eval mode). The
dimension is read from the removed layer (:func:`feature_dim`), never from a table.

The motion network takes 20 channels (10 stacked x/y flows); its first convolution (the
first ``Conv2d`` in module order, which must read the input) is initialised by
cross-modality transfer: the RGB filters averaged over their 3 input channels and
replicated over the 20 (Wang et al., "Temporal Segment Networks", 2016, Sec. 3.2).

Weights come from torchvision's ImageNet release (through torchvision's own cache,
``$TORCH_HOME/hub/checkpoints``), from a local checkpoint, or from a seeded random
initialisation for tests. Every network is identified by a SHA-256 digest of its
final weights, stored with the features.
"""

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from .._utils.devices import resolve_device

logger = logging.getLogger(__name__)

#: ImageNet statistics (torchvision's), for RGB inputs scaled to [0, 1].
RGB_MEAN, RGB_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Flow inputs in [0, 1] have zero motion at 0.5; the scale is the mean ImageNet std,
#: so the cross-modality filters see inputs of the magnitude they were trained on.
FLOW_MEAN, FLOW_STD = 0.5, 0.226

__all__ = [
    "Backbone",
    "WeightsError",
    "available_archs",
    "build_backbone",
    "check_arch",
    "check_input_size",
    "remove_classifier",
    "check_weights",
    "cross_modality_weight",
    "feature_dim",
    "imagenet_weights_file",
    "resolve_device",
    "state_dict_digest",
]


class WeightsError(ValueError):
    """Weights that cannot be found, loaded or matched to the network."""


def available_archs():
    """Names of the torchvision classification models :func:`build_backbone` accepts.

    Returns
    -------
    list of str
        ``torchvision.models.list_models(module=torchvision.models)``, sorted.
    """
    return sorted(torchvision.models.list_models(module=torchvision.models))


def check_arch(arch):
    """Raise :class:`WeightsError` listing the models when ``arch`` is not one of
    :func:`available_archs`."""
    if arch not in available_archs():
        raise WeightsError(
            f"unknown arch {arch!r}: not a torchvision classification model; choose one of "
            + ", ".join(available_archs())
        )


def _parent_and_leaf(model, name):
    parent, _, leaf = name.rpartition(".")
    return (model.get_submodule(parent) if parent else model), leaf


def _head_name(model):
    """The classifier: the last Linear (or Conv2d, for SqueezeNet) in module order."""
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linear[-1] if linear else layers[-1]


def _first_conv_name(model):
    return next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def remove_classifier(model):
    """Replace a torchvision classifier's last layer (the last ``Linear``, or ``Conv2d`` for
    SqueezeNet) by the identity, in place: the model then gives the feature that layer read.

    Returns
    -------
    name : str
        The replaced layer's name (``"fc"`` for a ResNet, ``"classifier.6"`` for VGG).
    dim : int
        Its input width: the feature dimension.
    """
    head = _head_name(model)
    parent, leaf = _parent_and_leaf(model, head)
    layer = getattr(parent, leaf)
    dim = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    setattr(parent, leaf, nn.Identity())
    return head, dim


def _skeleton(arch, in_channels, transform_input=False):
    """``arch`` without weights, its classifier replaced by the identity.

    Built on the meta device (no memory, no initialisation) where the builder allows it
    (RegNets compute their widths from tensors, so they are built on the CPU). Returns
    the model, the classifier's name, its input width and the first convolution's name.
    With ``in_channels`` other than 3 that convolution is replaced by one reading
    ``in_channels`` channels, after checking it is the layer applied to the input.
    """
    kwargs = {"transform_input": True} if transform_input else {}
    with warnings.catch_warnings():  # GoogLeNet/Inception warn about their future init
        warnings.simplefilter("ignore", FutureWarning)
        try:
            with torch.device("meta"):
                model = torchvision.models.get_model(arch, weights=None, **kwargs)
        except NotImplementedError:
            model = torchvision.models.get_model(arch, weights=None, **kwargs)
    head, dim = remove_classifier(model)
    conv = _first_conv_name(model)
    if in_channels != 3:
        first = model.get_submodule(conv) if conv is not None else None
        if first is None or first.in_channels != 3 or not _reads_input(model, first):
            raise WeightsError(
                f"{arch} cannot be a {in_channels}-channel motion network: its first layer is "
                "not a convolution applied to the 3-channel input, so there is no RGB filter "
                "bank to turn into a cross-modality first layer"
            )
        parent, leaf = _parent_and_leaf(model, conv)
        setattr(
            parent,
            leaf,
            nn.Conv2d(
                in_channels,
                first.out_channels,
                first.kernel_size,
                first.stride,
                first.padding,
                first.dilation,
                first.groups,
                first.bias is not None,
                first.padding_mode,
                device=first.weight.device,
            ),
        )
    return model, head, dim, conv


def _reads_input(model, conv, size=224):
    """Whether ``conv`` receives the network's input itself (a meta-device forward)."""
    x = torch.empty(1, 3, size, size, device="meta")
    seen = []
    hook = conv.register_forward_pre_hook(lambda module, args: seen.append(args[0] is x))
    try:
        with torch.no_grad():
            model.eval().to("meta")(x)
    except Exception:  # noqa: BLE001 (a model that refuses this size says so later)
        pass
    finally:
        hook.remove()
    return bool(seen) and seen[0]


def feature_dim(arch):
    """Dimension of the per-frame feature of ``arch``: the input width of its classifier.

    Parameters
    ----------
    arch : str
        One of :func:`available_archs`.

    Returns
    -------
    int
        2048 for resnet50/101/152, 512 for resnet18/34, 4096 for alexnet and the VGGs, ...
    """
    check_arch(arch)
    return _skeleton(arch, 3)[2]


def check_input_size(arch, size, in_channels=3):
    """Refuse square inputs of ``size`` pixels that ``arch`` cannot take, before any run.

    Checks torchvision's documented minimum (its weights' ``min_size``) and then runs the
    network on a meta-device input (no computation), which catches models that need one
    exact size (the vision transformers: 224 x 224).

    Raises
    ------
    WeightsError
        Unknown arch, or a ``size`` that does not fit it; the message names both.
    """
    check_arch(arch)
    minimum = torchvision.models.get_model_weights(arch).DEFAULT.meta.get("min_size", (1, 1))
    if size < max(minimum):
        raise WeightsError(
            f"{arch} needs inputs of at least {minimum[0]}x{minimum[1]} pixels; "
            f"a crop of {size}x{size} is too small"
        )
    model = _skeleton(arch, in_channels)[0]
    try:
        with torch.no_grad():
            model.eval().to("meta")(torch.empty(1, in_channels, size, size, device="meta"))
    except Exception as exc:  # noqa: BLE001 (any failure: the size does not fit)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise WeightsError(f"{arch} cannot take {size}x{size} inputs ({reason})") from None


def cross_modality_weight(weight, in_channels):
    """Average a first-layer filter bank over its input channels and replicate it.

    Parameters
    ----------
    weight : Tensor, shape (out, 3, kh, kw)
    in_channels : int

    Returns
    -------
    Tensor, shape (out, in_channels, kh, kw)
        Every input channel holds the mean of the RGB filters.
    """
    return weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1).contiguous()


def state_dict_digest(state_dict):
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict, sorted by name.

    Parameters
    ----------
    state_dict : dict of str to Tensor

    Returns
    -------
    str
        Hex digest; equal digests mean bit-identical weights.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _imagenet_entry(arch, weights):
    enum = torchvision.models.get_model_weights(arch)
    try:
        return enum.DEFAULT if weights == "imagenet" else enum[weights.upper()]
    except KeyError:
        names = ", ".join(e.name for e in enum)
        raise WeightsError(
            f"{arch} has no torchvision weights {weights!r}; available: {names}"
        ) from None


def _is_imagenet(weights):
    return weights == "imagenet" or weights.upper().startswith("IMAGENET1K_")


def imagenet_weights_file(arch, weights="imagenet", *, progress=False):
    """Return the path of torchvision's cached ImageNet weights, downloading them if missing.

    The cache is torchvision's own, ``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``);
    a file already there is used without touching the network.

    Parameters
    ----------
    arch : str
    weights : str, default "imagenet"
        ``"imagenet"`` (torchvision's default for ``arch``) or a name such as
        ``"IMAGENET1K_V2"``.
    progress : bool
        Show the download bar.

    Returns
    -------
    str

    Raises
    ------
    WeightsError
        Unknown weights, or the file is not cached and cannot be downloaded (offline): one
        line naming the file to put there, its address, and ``--weights PATH``.
    """
    entry = _imagenet_entry(arch, weights)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(entry.url))
    if os.path.isfile(cached):
        return cached
    logger.info("%s is not in torchvision's cache: downloading %s to %s", entry, entry.url, cached)
    hash_prefix = torch.hub.HASH_REGEX.search(os.path.basename(entry.url))
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(
            entry.url, cached, hash_prefix.group(1) if hash_prefix else None, progress=progress
        )
    except Exception as exc:  # URLError, timeouts, HTTP and SSL errors, a bad hash, a full disk
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise WeightsError(
            f"ImageNet weights for {arch} ({entry}) are not in torchvision's cache ({cached}) and "
            f"could not be downloaded ({reason}); download {entry.url} to that file, "
            "or pass --weights PATH to a local checkpoint"
        ) from None
    return cached


def check_weights(arch, weights, *, progress=False):
    """Make sure ``weights`` can be loaded before any network is built.

    ImageNet weights are looked up in (or downloaded to) torchvision's cache
    (:func:`imagenet_weights_file`); a checkpoint path must be a file; ``"random"`` needs
    nothing. The network itself (:func:`build_backbone`) may still refuse the file.

    Raises
    ------
    WeightsError
        One line saying what is missing and how to provide it.
    """
    check_arch(arch)
    if weights == "random":
        return
    if _is_imagenet(weights):
        imagenet_weights_file(arch, weights, progress=progress)
    elif not os.path.isfile(weights):
        raise WeightsError(f"weights file {weights} does not exist")


def _imagenet_state_dict(arch, weights, progress):
    entry = _imagenet_entry(arch, weights)
    cached = imagenet_weights_file(arch, weights, progress=progress)
    try:
        return torch.load(cached, map_location="cpu", weights_only=True), str(entry)
    except Exception as exc:
        raise WeightsError(
            f"cannot load ImageNet weights for {arch} from {cached} ({_load_reason(exc)}); "
            f"remove it and download {entry.url} again, or pass --weights PATH"
        ) from None


def _load_reason(exc):
    """The gist of torch.load's error in one line.

    With ``weights_only=True`` torch explains its safe unpickler over several lines and
    suggests ``weights_only=False``, which would run the file's code; only the unpickler's
    own reason is kept.
    """
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _checkpoint_state_dict(path):
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"cannot load weights from {path}: not a PyTorch checkpoint of "
            f"tensors ({_load_reason(exc)}); expected a state dict saved with "
            "torch.save"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(torch.is_tensor(v) for v in loaded.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in loaded.items()}


def _random_state_dict(arch, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torchvision.models.get_model(arch, weights=None).state_dict()


def _mismatch(state, expected):
    """Describe how a state dict differs from a network's (empty when it fits)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    parts = [
        f"{len(items)} {what} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
        for what, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if items
    ]
    return "; ".join(parts)


@dataclass
class Backbone:
    """A frozen feature network and the facts stored with its features.

    Attributes
    ----------
    model : torch.nn.Module
        Classifier removed, in eval mode, on ``device``.
    arch : str
    weights : str
        ``ResNet101_Weights.IMAGENET1K_V2``, ``random(seed=0)`` or the checkpoint path.
    digest : str
        :func:`state_dict_digest` of the network's weights.
    in_channels, feature_dim : int
    device : torch.device
    """

    model: torch.nn.Module
    arch: str
    weights: str
    digest: str
    in_channels: int
    feature_dim: int
    device: torch.device

    def __call__(self, batch):
        """Features of a batch of uint8 inputs.

        Parameters
        ----------
        batch : Tensor of uint8, shape (n, C, H, W)
            RGB frames or flow stacks in 0..255.

        Returns
        -------
        ndarray of float32, shape (n, feature_dim)
        """
        if self.in_channels == 3:
            mean, std = RGB_MEAN, RGB_STD
        else:
            mean, std = (FLOW_MEAN,) * self.in_channels, (FLOW_STD,) * self.in_channels
        cuda = self.device.type == "cuda"
        with torch.inference_mode():
            x = batch.to(self.device, non_blocking=cuda).float().div_(255.0)
            x = torchvision.transforms.functional.normalize(x, mean, std, inplace=True)
            x = x.contiguous(memory_format=torch.channels_last)
            if cuda:
                amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
                with torch.autocast("cuda", dtype=amp):
                    out = self.model(x)
            else:
                out = self.model(x)
            return out.float().cpu().numpy()


# torchvision builds these with transform_input=True when given its ImageNet weights: they
# were trained on inputs normalised to [-1, 1], which the model converts from ImageNet's.
_TRANSFORM_INPUT = frozenset({"googlenet", "inception_v3"})


def build_backbone(
    arch="resnet101", weights="imagenet", *, in_channels=3, seed=0, device="cpu", progress=False
):
    """Build a frozen feature extractor from a torchvision classification model.

    Parameters
    ----------
    arch : str, default "resnet101"
        One of :func:`available_archs` (alexnet, vgg11..19, resnet18..152, densenet121,
        mobilenet_v3_large, efficientnet_b0, convnext_tiny, regnet_*, vit_b_16, ...). The
        classifier is replaced by the identity (see the module's docstring for what the
        feature is); ``Backbone.feature_dim`` is :func:`feature_dim`.
    weights : str
        ``"imagenet"`` (torchvision's default ImageNet weights for ``arch``), a
        torchvision weights name such as ``"IMAGENET1K_V1"``, ``"random"``, or the
        path of a checkpoint (a state dict, possibly under ``"state_dict"`` or
        ``"model"``; ``module.`` prefixes and the classifier's keys are ignored).
    in_channels : int, default 3
        20 for the motion network. A 3-channel source (ImageNet, random, an RGB
        checkpoint) gets the cross-modality first layer; a checkpoint whose first
        layer already has ``in_channels`` is loaded as it is.
    seed : int, default 0
        For ``weights="random"``.
    device : str or torch.device
    progress : bool
        Show torchvision's download bar.

    Returns
    -------
    Backbone

    Raises
    ------
    WeightsError
        Unknown arch, an arch whose first layer cannot take the motion stream's
        channels, weights not available offline (one message saying how to provide
        them), or a checkpoint that does not fit the network.
    """
    check_arch(arch)
    transform_input = arch in _TRANSFORM_INPUT and in_channels == 3 and _is_imagenet(weights)
    model, head, dim, conv = _skeleton(arch, in_channels, transform_input)
    if weights == "random":
        state, source = _random_state_dict(arch, seed), f"random(seed={seed})"
    elif _is_imagenet(weights):
        state, source = _imagenet_state_dict(arch, weights, progress)
    else:
        state, source = _checkpoint_state_dict(weights), os.path.abspath(weights)
    state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
    key = f"{conv}.weight"
    first = state.get(key)
    if first is None:
        raise WeightsError(f"{source} has no {key}: not a torchvision {arch} state dict")
    if first.shape[1] != in_channels:
        if first.shape[1] != 3:
            raise WeightsError(
                f"{source}: first layer has {first.shape[1]} input channels; "
                f"expected {in_channels} (or 3, for cross-modality initialisation)"
            )
        state[key] = cross_modality_weight(first, in_channels)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    mismatch = _mismatch(state, model.state_dict())
    if mismatch:
        raise WeightsError(f"{source} does not fit {arch}: {mismatch}")
    model.load_state_dict(state, strict=True, assign=True)
    model.eval().requires_grad_(False)
    digest = state_dict_digest(model.state_dict())
    model = model.to(
        device=resolve_device(device) if isinstance(device, str) else device,
        memory_format=torch.channels_last,
    )
    dev = next(model.parameters()).device
    logger.info(
        "%s %s-channel weights %s digest %s on %s", arch, in_channels, source, digest[:12], dev
    )
    return Backbone(model, arch, source, digest, in_channels, dim, dev)
