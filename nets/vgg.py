"""VGG-19 feature extractor (Simonyan & Zisserman) with offline ImageNet weights.

Used as a frozen perceptual feature net F (SAT Eq. 4, perceptual losses in general) and as a trainable,
ImageNet-initialised encoder (SAT's attention branch: VGG-19 up to conv3_3).

Only the layers up to the deepest one asked for are built, with torchvision's layer indices (``features.<i>``),
so torchvision's weight file loads key for key and a net up to conv3_3 costs 16 modules, not VGG-19's 143M
parameters.

Weights: torchvision's ``vgg19-dcbb9e9d.pth`` read from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``, ``TORCH_HOME`` defaulting to ``~/.cache/torch``; ``torch.hub.get_dir()``).
Nothing is ever downloaded: a missing file stops with ``WeightsMissingError`` naming the file and the folder;
``pretrained=False`` builds random features instead (callers must ask for that explicitly and say so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from suite.errors import WeightsMissingError

VGG19_WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
VGG19_WEIGHTS_URL = f"https://download.pytorch.org/models/{VGG19_WEIGHTS_FILE}"

# torchvision's configuration "E" (VGG-19): channel counts, "M" = 2×2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                                     512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names(cfg: Sequence[int | str]) -> list[str]:
    """``conv1_1, relu1_1, conv1_2, …, pool1, conv2_1, …`` in torchvision's ``features`` order."""
    names, block, conv = [], 1, 1
    for item in cfg:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


VGG19_LAYERS: tuple[str, ...] = tuple(_layer_names(_VGG19_CFG))


def layer_index(name: str) -> int:
    """Index of a named VGG-19 layer (``relu3_1`` → 11) in torchvision's ``vgg19().features``."""
    try:
        return VGG19_LAYERS.index(name)
    except ValueError:
        raise ValueError(f"unknown VGG-19 layer '{name}'; expected one of {', '.join(VGG19_LAYERS)}") from None


def vgg19_weights_path() -> Path:
    """Where torchvision (and therefore this suite) keeps the ImageNet VGG-19 weights: the torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_WEIGHTS_FILE


def _missing_sentence(path: Path) -> str:
    return (
        f"the ImageNet VGG-19 weights are not in the local torch cache: put torchvision's {VGG19_WEIGHTS_FILE} "
        f"({VGG19_WEIGHTS_URL}) at {path} (the folder is $TORCH_HOME/hub/checkpoints, TORCH_HOME defaulting to "
        f"~/.cache/torch), or set method.pretrained=false to train with randomly initialised VGG features."
    )


def load_vgg19_feature_weights(num_layers: int, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The ``features.<i>.*`` tensors of torchvision's VGG-19 file for the first ``num_layers`` layers.

    Reads ``path`` (default: ``vgg19_weights_path()``) with ``weights_only=True``, memory-mapped where the file
    format allows, so the 400 MB classifier is never copied into memory. Never downloads."""
    path = Path(path) if path is not None else vgg19_weights_path()
    if not path.is_file():
        raise WeightsMissingError(_missing_sentence(path))
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsMissingError(
            f"{path} cannot be read as torchvision's VGG-19 weights ({type(exc).__name__}); replace it with "
            f"{VGG19_WEIGHTS_FILE} from {VGG19_WEIGHTS_URL}."
        ) from None
    wanted = {}
    for i in range(num_layers):
        if not VGG19_LAYERS[i].startswith("conv"):
            continue
        for kind in ("weight", "bias"):
            key = f"features.{i}.{kind}"
            if not isinstance(state, dict) or key not in state:
                raise WeightsMissingError(
                    f"{path} is not torchvision's VGG-19 state_dict (no '{key}'); replace it with {VGG19_WEIGHTS_FILE} "
                    f"from {VGG19_WEIGHTS_URL}."
                )
            wanted[key] = state[key].clone()  # detach from the memory map
    return wanted


class VGG19Features(nn.Module):
    """x (B×3×H×W in [−1, 1]) → list of feature maps at ``layers`` (in the order given).

    Args:
        layers: layer names (``relu1_1``, ``conv3_3`` …, see ``VGG19_LAYERS``); the net is built up to the deepest.
        pretrained: load the ImageNet weights from the torch cache (``WeightsMissingError`` when absent);
            False = torchvision's random initialisation.
        frozen: no gradients to the weights (``requires_grad=False``) — a fixed feature net kept out of every
            optimizer. Gradients still flow to the input.
        weights_path: an explicit weight file instead of the torch cache.

    The input is mapped from [−1, 1] to ImageNet-normalised RGB inside (non-persistent buffers). ReLUs are not
    in-place, so a returned conv output is never overwritten by the next activation.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1"),
        pretrained: bool = True,
        frozen: bool = True,
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        if not layers:
            raise ValueError("VGG19Features needs at least one layer name")
        self.layer_names = list(layers)
        self.indices = [layer_index(n) for n in self.layer_names]
        depth = max(self.indices) + 1
        modules: list[nn.Module] = []
        in_ch = 3
        for item in _VGG19_CFG:
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(item)
            if len(modules) >= depth:
                break
        modules = modules[:depth]
        self.features = nn.Sequential(*modules)
        self.out_channels = [_channels_at(self.features, i) for i in self.indices]
        self.pretrained = bool(pretrained)
        if self.pretrained:
            self.features.load_state_dict(
                {k.removeprefix("features."): v for k, v in load_vgg19_feature_weights(depth, weights_path).items()}
            )
        else:
            self._torchvision_init()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)

    def _torchvision_init(self) -> None:
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[−1, 1] images → ImageNet-normalised input."""
        return ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.normalize(x)
        wanted, taken = set(self.indices), {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in wanted:
                taken[i] = h
        return [taken[i] for i in self.indices]


def _channels_at(features: nn.Sequential, index: int) -> int:
    for m in reversed(list(features)[: index + 1]):
        if isinstance(m, nn.Conv2d):
            return m.out_channels
    return 3


__all__ = ["VGG19Features", "VGG19_LAYERS", "VGG19_WEIGHTS_FILE", "layer_index", "load_vgg19_feature_weights",
           "vgg19_weights_path"]
