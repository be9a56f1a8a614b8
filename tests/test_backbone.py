"""Tests for mkl_tp.extraction.backbone: frozen torchvision feature networks and their weights."""

import urllib.error

import numpy as np
import pytest
import torch
import torchvision

from mkl_tp.extraction import backbone
from mkl_tp.extraction.backbone import (
    WeightsError,
    build_backbone,
    cross_modality_weight,
    resolve_device,
    state_dict_digest,
)


def _uint8_batch(n, channels, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def test_cross_modality_weight_is_the_rgb_mean_replicated():
    weight = torch.randn(64, 3, 7, 7)
    out = cross_modality_weight(weight, 20)
    assert out.shape == (64, 20, 7, 7)
    for channel in range(20):
        torch.testing.assert_close(out[:, channel], weight.mean(dim=1), rtol=0, atol=0)


def test_motion_network_first_layer_comes_from_the_rgb_one():
    rgb = build_backbone("resnet18", "random", seed=3)
    flow = build_backbone("resnet18", "random", in_channels=20, seed=3)
    w3, w20 = rgb.model.conv1.weight.detach(), flow.model.conv1.weight.detach()
    assert w20.shape == (64, 20, 7, 7)
    torch.testing.assert_close(
        w20, w3.mean(dim=1, keepdim=True).expand(-1, 20, -1, -1), rtol=0, atol=0
    )
    rest3 = {k: v for k, v in rgb.model.state_dict().items() if k != "conv1.weight"}
    for key, value in rest3.items():  # every other layer is shared
        torch.testing.assert_close(flow.model.state_dict()[key], value, rtol=0, atol=0)
    assert rgb.digest != flow.digest


@pytest.mark.parametrize("arch, dim", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)])
def test_feature_dimension(arch, dim):
    net = build_backbone(arch, "random")
    out = net(_uint8_batch(2, 3))
    assert out.shape == (2, dim) and out.dtype == np.float32 and np.isfinite(out).all()
    assert net.feature_dim == backbone.feature_dim(arch) == dim


# Small members of other families (VGG at random init is 130M parameters: about 3 s to
# build, so its dimension is checked without building it).
@pytest.mark.parametrize(
    "arch, dim, size",
    [("alexnet", 4096, 64), ("squeezenet1_0", 512, 48), ("mobilenet_v3_small", 1024, 32)],
)
def test_other_families_give_their_penultimate_feature(arch, dim, size):
    rgb = build_backbone(arch, "random", seed=5)
    flow = build_backbone(arch, "random", seed=5, in_channels=20)
    assert rgb.feature_dim == flow.feature_dim == backbone.feature_dim(arch) == dim
    assert rgb(_uint8_batch(2, 3, size)).shape == (2, dim)
    assert flow(_uint8_batch(2, 20, size)).shape == (2, dim)
    name = backbone._first_conv_name(rgb.model)
    w3 = rgb.model.get_submodule(name).weight.detach()
    w20 = flow.model.get_submodule(name).weight.detach()
    torch.testing.assert_close(w20, cross_modality_weight(w3, 20), rtol=0, atol=0)


def test_alexnet_and_vgg_features_are_the_last_hidden_layer():
    assert backbone.feature_dim("vgg11") == backbone.feature_dim("vgg19") == 4096
    net = build_backbone("alexnet", "random", seed=1)
    reference = torchvision.models.alexnet(weights=None)
    reference.load_state_dict(net.model.state_dict(), strict=False)  # all but the last Linear
    reference.classifier = reference.classifier[:-1]  # ... Linear(4096, 4096), ReLU
    batch = _uint8_batch(2, 3, size=64)
    normalise = torchvision.transforms.Normalize(backbone.RGB_MEAN, backbone.RGB_STD)
    with torch.no_grad():
        expected = reference.eval()(normalise(batch.float() / 255)).numpy()
    assert (expected >= 0).all()  # after the ReLU
    np.testing.assert_allclose(net(batch), expected, rtol=1e-5, atol=1e-5)


def test_other_families_load_their_checkpoints(tmp_path):
    source = build_backbone("squeezenet1_0", "random", seed=2)
    path = tmp_path / "squeeze.pth"
    state = {f"module.{k}": v for k, v in source.model.state_dict().items()}
    state["module.classifier.1.weight"] = torch.zeros(10, 512, 1, 1)  # the classifier: ignored
    torch.save({"model": state}, path)
    assert build_backbone("squeezenet1_0", str(path)).digest == source.digest
    motion = build_backbone("squeezenet1_0", str(path), in_channels=20)
    assert motion.digest == build_backbone("squeezenet1_0", "random", seed=2, in_channels=20).digest
    with pytest.raises(
        WeightsError, match=r"squeeze\.pth does not fit squeezenet1_1: .*shape mismatch"
    ):
        build_backbone("squeezenet1_1", str(path))
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"other\.pth has no features\.0\.weight"):
        build_backbone("squeezenet1_0", str(tmp_path / "other.pth"))


def test_available_archs_are_torchvisions_classification_models():
    archs = backbone.available_archs()
    assert {"alexnet", "vgg11", "vgg19", "resnet18", "resnet152", "vit_b_16"} <= set(archs)
    assert "fasterrcnn_resnet50_fpn" not in archs and "r3d_18" not in archs


@pytest.mark.parametrize(
    "arch, size, message",
    [
        ("vit_b_16", 256, r"vit_b_16 cannot take 256x256 inputs \(Wrong image height"),
        ("alexnet", 32, r"alexnet needs inputs of at least 63x63 pixels; a crop of 32x32"),
        ("nosuchnet", 224, r"unknown arch 'nosuchnet': not a torchvision classification model"),
    ],
)
def test_inputs_that_do_not_fit_the_network_are_named(arch, size, message):
    with pytest.raises(WeightsError, match=message):
        backbone.check_input_size(arch, size, in_channels=20)


def test_exact_size_networks_take_their_size():
    backbone.check_input_size("vit_b_16", 224, in_channels=20)  # the patch embedding is a conv
    backbone.check_input_size("resnet18", 32)


def test_a_first_layer_that_does_not_read_the_input_is_refused(monkeypatch):
    monkeypatch.setattr(backbone, "_reads_input", lambda model, conv: False)
    with pytest.raises(WeightsError, match="resnet18 cannot be a 20-channel motion network"):
        build_backbone("resnet18", "random", in_channels=20)


def test_features_equal_a_direct_torchvision_forward():
    net = build_backbone("resnet18", "random", seed=1)
    reference = torchvision.models.resnet18(weights=None)
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(net.model.state_dict())
    reference.eval()
    batch = _uint8_batch(5, 3, size=56)
    normalise = torchvision.transforms.Normalize(backbone.RGB_MEAN, backbone.RGB_STD)
    with torch.no_grad():
        expected = reference(normalise(batch.float() / 255)).numpy()
    np.testing.assert_allclose(net(batch), expected, rtol=1e-5, atol=1e-5)


def test_flow_inputs_are_centred_on_zero_motion():
    net = build_backbone("resnet18", "random", in_channels=20)
    zero_motion = torch.full((1, 20, 40, 40), 128, dtype=torch.uint8)
    reference = torchvision.models.resnet18(weights=None)
    reference.conv1 = torch.nn.Conv2d(20, 64, 7, 2, 3, bias=False)
    reference.fc = torch.nn.Identity()
    reference.load_state_dict(net.model.state_dict())
    with torch.no_grad():
        expected = reference.eval()((zero_motion.float() / 255 - 0.5) / 0.226).numpy()
    np.testing.assert_allclose(net(zero_motion), expected, rtol=1e-5, atol=1e-5)


def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_backbone("resnet18", "random", seed=0)
    assert torch.rand(1) == before
    assert a.weights == "random(seed=0)"
    assert build_backbone("resnet18", "random", seed=0).digest == a.digest
    assert build_backbone("resnet18", "random", seed=1).digest != a.digest


def test_digest_covers_names_and_values():
    state = {"a": torch.zeros(3), "b": torch.ones(2, dtype=torch.int64), "n": torch.tensor(5)}
    digest = state_dict_digest(state)
    assert digest == state_dict_digest(dict(reversed(list(state.items()))))
    assert digest != state_dict_digest({**state, "a": torch.tensor([0.0, 0.0, 1e-7])})
    assert digest != state_dict_digest({"c": state["a"], "b": state["b"], "n": state["n"]})


def test_checkpoints_load_from_common_formats(tmp_path):
    source = build_backbone("resnet18", "random", seed=2)
    state = source.model.state_dict()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    wrapped["state_dict"]["module.fc.weight"] = torch.zeros(10, 512)  # the classifier is ignored
    path = tmp_path / "rgb.pth"
    torch.save(wrapped, path)
    loaded = build_backbone("resnet18", str(path))
    assert loaded.digest == source.digest and loaded.weights == str(path)
    motion = build_backbone(
        "resnet18", str(path), in_channels=20
    )  # RGB checkpoint -> cross-modality
    assert motion.digest == build_backbone("resnet18", "random", seed=2, in_channels=20).digest


def test_a_20_channel_motion_checkpoint_loads_as_it_is(tmp_path):
    trained = build_backbone("resnet18", "random", seed=4, in_channels=20)
    with torch.no_grad():
        trained.model.conv1.weight.add_(torch.randn_like(trained.model.conv1.weight))
    path = tmp_path / "motion.pt"
    torch.save(trained.model.state_dict(), path)
    loaded = build_backbone("resnet18", str(path), in_channels=20)
    torch.testing.assert_close(
        loaded.model.conv1.weight, trained.model.conv1.weight, rtol=0, atol=0
    )
    with pytest.raises(
        WeightsError, match=r"motion\.pt: first layer has 20 input channels; expected 3"
    ):
        build_backbone("resnet18", str(path), in_channels=3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.pth", r"weights file .*missing\.pth does not exist"),
        (
            lambda d: (d / "junk.pth").write_bytes(b"junk") and d / "junk.pth",
            r"cannot load weights from .*junk\.pth",
        ),
        (
            lambda d: torch.save([1, 2], d / "list.pth") or d / "list.pth",
            r"list\.pth does not hold a state dict",
        ),
        (
            lambda d: (
                torch.save(build_backbone("resnet50", "random").model.state_dict(), d / "r50.pth")
                or d / "r50.pth"
            ),
            r"r50\.pth does not fit resnet18: \d+ unexpected keys \(layer1\.0\.bn3\.bias, .*"
            r"\d+ shape mismatches \(layer1\.0\.conv1\.weight \(64, 64, 1, 1\) != \(64, 64, 3, 3\)",
        ),
        (
            lambda d: torch.save({"x": torch.zeros(1)}, d / "other.pth") or d / "other.pth",
            r"other\.pth has no conv1\.weight",
        ),
    ],
)
def test_bad_checkpoints_are_named(tmp_path, make, message):
    with pytest.raises(WeightsError, match=message):
        build_backbone("resnet18", str(make(tmp_path)))


def test_imagenet_weights_offline_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    attempts = []

    def no_network(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError) as info:
        build_backbone("resnet101", "imagenet")
    message = str(info.value)
    assert "ImageNet weights for resnet101 (ResNet101_Weights.IMAGENET1K_V2)" in message
    assert (
        str(tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet101-cd907fc2.pth") in message
    )
    assert "--weights PATH" in message and "name resolution" in message
    assert attempts == ["https://download.pytorch.org/models/resnet101-cd907fc2.pth"]


def test_imagenet_weights_come_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    stand_in = build_backbone("resnet18", "random", seed=7).model.state_dict()
    torch.save(
        {**stand_in, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, cached
    )
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("no download expected")
    )
    net = build_backbone("resnet18", "imagenet")
    assert net.weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert net.digest == state_dict_digest(stand_in)


def test_unknown_names():
    with pytest.raises(
        WeightsError, match="unknown arch 'resnet9': not a torchvision .*; choose one of alexnet,"
    ):
        build_backbone("resnet9", "random")
    with pytest.raises(
        WeightsError,
        match="resnet18 has no torchvision weights 'IMAGENET1K_V9'; available: IMAGENET1K_V1",
    ):
        build_backbone("resnet18", "IMAGENET1K_V9")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' requested but CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu9'"):
        resolve_device("tpu9")
