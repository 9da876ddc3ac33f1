"""VGG-19 features: torchvision's layout, only the layers asked for, offline weights (never downloaded)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from nets.vgg import VGG19_LAYERS, VGG19_WEIGHTS_FILE, VGG19Features, layer_index, vgg19_weights_path
from suite.errors import WeightsMissingError

pytestmark = pytest.mark.usefixtures("no_weight_downloads")


@pytest.fixture(scope="module")
def fake_torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds a randomly initialised torchvision vgg19 state_dict (the full model, as
    torchvision's file is) under the real file name."""
    home = tmp_path_factory.mktemp("torch_home")
    ckpt_dir = home / "hub" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.manual_seed(0)
    state = torchvision.models.vgg19(weights=None).state_dict()
    torch.save(state, ckpt_dir / VGG19_WEIGHTS_FILE)
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    del state
    return home, features


def test_layer_names_follow_torchvision_indices():
    assert layer_index("relu1_1") == 1 and layer_index("relu2_1") == 6 and layer_index("relu3_1") == 11
    assert layer_index("conv3_3") == 14 and layer_index("pool5") == len(VGG19_LAYERS) - 1
    reference = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    assert len(VGG19_LAYERS) == len(reference)
    for name, module in zip(VGG19_LAYERS, reference):
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}[name[:4]]
        assert isinstance(module, kind), name


def test_only_the_layers_up_to_the_deepest_requested_are_built():
    net = VGG19Features(["relu3_1", "relu1_1"], pretrained=False)
    assert len(net.features) == 12 and net.out_channels == [256, 64]
    up_to_conv3_3 = VGG19Features(["relu3_3"], pretrained=False)
    assert len(up_to_conv3_3.features) == 16
    assert sum(p.numel() for p in up_to_conv3_3.parameters()) < 2_000_000  # VGG-19 has 143M


def test_outputs_in_the_requested_order_and_shapes():
    net = VGG19Features(["relu1_1", "relu2_1", "relu3_1"], pretrained=False)
    feats = net(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8)]


def test_frozen_net_has_no_trainable_weights_but_passes_gradients_to_its_input():
    net = VGG19Features(pretrained=False, frozen=True)
    assert not any(p.requires_grad for p in net.parameters())
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_(True)
    sum(f.sum() for f in net(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_weights_path_is_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert vgg19_weights_path() == tmp_path / "hub" / "checkpoints" / VGG19_WEIGHTS_FILE


def test_missing_weights_stop_with_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError) as err:
        VGG19Features(pretrained=True)
    message = str(err.value)
    assert VGG19_WEIGHTS_FILE in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "pretrained=false" in message


def test_pretrained_loads_the_torchvision_file(fake_torch_home, monkeypatch):
    home, features = fake_torch_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    net = VGG19Features(["relu1_1", "relu3_3"], pretrained=True)
    loaded = net.features.state_dict()
    assert set(loaded) == {k.removeprefix("features.") for k in features if int(k.split(".")[1]) < 16}
    for key, value in loaded.items():
        assert torch.equal(value, features[f"features.{key}"])
    # same features as torchvision's network on ImageNet-normalised input
    reference = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])[:16]
    reference.load_state_dict({k.removeprefix("features."): v for k, v in features.items() if int(k.split(".")[1]) < 16})
    x = torch.rand(1, 3, 16, 16)
    normalised = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(net(x * 2 - 1)[1], reference(normalised), atol=1e-5)


def test_a_file_that_is_not_vgg19_weights_is_refused(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "hub" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.save({"something.else": torch.zeros(1)}, ckpt_dir / VGG19_WEIGHTS_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="not torchvision's VGG-19"):
        VGG19Features(pretrained=True)
    (ckpt_dir / VGG19_WEIGHTS_FILE).write_bytes(b"truncated")
    with pytest.raises(WeightsMissingError, match="cannot be read"):
        VGG19Features(pretrained=True)
