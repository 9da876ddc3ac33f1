"""Face-recognition features for SPM's Table 1 FID (Sec. 4.2.2: "a deep face feature extractor VGGFace2 [2]").

The network is the VGGFace2 ResNet-50 (Cao et al., FG 2018) in the layout of its widely used PyTorch port of the
authors' Caffe model: a Caffe-style ResNet-50 (stride on each bottleneck's first 1×1 convolution, max-pool with
``ceil_mode``), 8,631-way ``fc`` head; its 2,048 average-pooled features are what FID compares. Input: 224×224,
BGR, 0..255 with the mean (91.4953, 103.8827, 131.0912) subtracted.

Weights file (never downloaded): ``$VGGFACE2_WEIGHTS``, else ``<torch hub>/checkpoints/resnet50_ft_weight.pkl``.
Formats read:
- ``.pkl`` — the port's file (``resnet50_ft_weight.pkl`` / ``resnet50_scratch_weight.pkl``): a pickled dict
  parameter name → numpy array with torchvision's names (``conv1.weight``, ``bn1.running_mean``,
  ``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight`` … ``fc.bias``). It is read by an unpickler that
  accepts numpy arrays and plain containers only (no other class can be built from the file).
- ``.pth`` / ``.pt`` — the same names as a torch state dict (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from suite.errors import WeightsMissingError

ENV_VAR = "VGGFACE2_WEIGHTS"
DEFAULT_FILE = "resnet50_ft_weight.pkl"
MEAN_BGR = (91.4953, 103.8827, 131.0912)
NUM_IDENTITIES = 8631
INPUT_SIZE = 224  # the network's input side (tests use less to stay fast)
_ALLOWED = {("collections", "OrderedDict"), ("builtins", "dict"), ("numpy", "ndarray"), ("numpy", "dtype"),
            ("_codecs", "encode"),  # protocol-2 pickles carry array bytes as latin-1 text
            *((mod, name) for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
              for name in ("_reconstruct", "scalar"))}


def weights_path() -> Path:
    """The weights file: ``$VGGFACE2_WEIGHTS`` or the torch cache's ``resnet50_ft_weight.pkl``; WeightsMissingError
    (one sentence naming the file) when it is absent."""
    path = Path(os.environ.get(ENV_VAR) or Path(torch.hub.get_dir()) / "checkpoints" / DEFAULT_FILE)
    if path.is_file():
        return path
    raise WeightsMissingError(
        f"protocol=spm_table1 needs the VGGFace2 ResNet-50 weights {path} (the {DEFAULT_FILE} of the PyTorch port of "
        f"the VGGFace2 Caffe model; nothing is downloaded; put the file there or set {ENV_VAR}=<file>)."
    )


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")
        return super().find_class(module, name)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Parameter name → tensor from a ``.pkl`` (numpy arrays) or ``.pth`` (state dict) file."""
    path = Path(path)
    if path.suffix == ".pkl":
        with open(path, "rb") as f:
            raw = _NumpyOnly(f, encoding="latin1").load()
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in raw.items()}
    return dict(torch.load(path, map_location="cpu", weights_only=True))


class Bottleneck(nn.Module):
    """Caffe-style bottleneck: the stride sits on the first 1×1 convolution."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class VGGFace2ResNet50(nn.Module):
    """The VGGFace2 ResNet-50: ``features(x)`` B×3×224×224 (BGR − mean) → B×2048; ``forward`` → identity logits."""

    def __init__(self, num_classes: int = NUM_IDENTITIES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        self.inplanes = 64
        self.layer1 = self._layer(64, 3)
        self.layer2 = self._layer(128, 4, 2)
        self.layer3 = self._layer(256, 6, 2)
        self.layer4 = self._layer(512, 3, 2)
        self.fc = nn.Linear(2048, num_classes)

    def _layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class FaceFeatures(nn.Module):
    """The FID feature network of Table 1: suite images (B×3×H×W RGB in [−1, 1]) → B×2048 VGGFace2 features
    (bilinear resize to 224, RGB → BGR, 0..255 minus the mean). ``num_features`` as ``metrics.fid.FidKid`` wants."""

    num_features = 2048

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else weights_path()
        self.net = VGGFace2ResNet50()
        state = read_weights(self.path)
        missing = [k for k in self.net.state_dict() if k not in state and not k.endswith("num_batches_tracked")]
        if missing:
            raise WeightsMissingError(f"{self.path} is not a VGGFace2 ResNet-50 weights file: it lacks {missing[0]} "
                                      f"(and {len(missing) - 1} more).")
        self.net.load_state_dict({k: v for k, v in state.items() if k in self.net.state_dict()}, strict=False)
        self.register_buffer("mean", torch.tensor(MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> FaceFeatures:
        return super().train(False)  # batch-norm statistics stay the file's

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((images.float().clamp(-1, 1) + 1) * 127.5, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return self.net.features(x.flip(1) - self.mean)
