"""The evaluation classifier's architectures: a compact CNN for the embedded data and a ResNet-18 for real data."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from suite.errors import ConfigError

ARCHS = ("small", "resnet18")
SMALL_WIDTH = 32  # SmallClassifier's base width w (part of the architecture: a change needs a new CACHE_FORMAT)


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(True),
    ]


class SmallClassifier(nn.Module):
    """A compact CNN for 32–128 px: six conv-BN-ReLU layers, a 4×4 pooled map, a linear head.

    Widths w/2, w, w, 2w, 2w, 4w; layers 2, 4 and 6 halve the resolution, and so does the stem from 64 px up
    (``first_stride=2``) — below it keeps full resolution, since a 32 px face's mouth and brows are only a
    few pixels. The 4×4 map (rather than global pooling) keeps the coarse layout, which matters for faces
    (where the mouth is) and for position-defined classes. x: B×3×H×W in [-1, 1] → logits B×num_outputs.
    """

    def __init__(self, num_outputs: int, width: int = SMALL_WIDTH, first_stride: int = 2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv_bn_relu(3, w // 2, first_stride),
            *_conv_bn_relu(w // 2, w, 2),
            *_conv_bn_relu(w, w, 1),
            *_conv_bn_relu(w, 2 * w, 2),
            *_conv_bn_relu(2 * w, 2 * w, 1),
            *_conv_bn_relu(2 * w, 4 * w, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, num_outputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x)))


def build_classifier(arch: str, num_outputs: int, image_size: int | Sequence[int]) -> nn.Module:
    """Build an untrained evaluation classifier.

    arch: ``"small"`` (:class:`SmallClassifier`, fast on a CPU, for the embedded data) or ``"resnet18"``
    (torchvision's, ``weights=None``, with a 3×3 stride-1 stem and no max-pool at ≤ 64 px, for real data).
    num_outputs: number of domains (softmax) or attributes (independent sigmoids). image_size: side (or H, W).
    """
    if num_outputs < 1:
        raise ConfigError(
            f"the evaluation classifier needs at least one output, got num_outputs={num_outputs}."
        )
    size = max(image_size) if isinstance(image_size, Sequence) else int(image_size)
    if arch == "small":
        return SmallClassifier(num_outputs, first_stride=1 if size < 64 else 2)
    if arch == "resnet18":
        from torchvision.models import resnet18

        model = resnet18(weights=None, num_classes=num_outputs)
        if size <= 64:
            # The ImageNet stem divides a 32 px face down to 1×1 before the last stage; use the CIFAR stem.
            model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        return model
    raise ConfigError(f"unknown evaluation classifier arch {arch!r}; choose one of {', '.join(ARCHS)}.")


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a parameter-free model)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
