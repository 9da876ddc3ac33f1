"""FID and KID through torchmetrics, with a choice of feature network, streamed batch by batch.

Features (``fid.feature``):

- ``classifier``: the suite's own evaluation classifier (:mod:`metrics.eval_classifier`), always available
  since it is trained here. Its penultimate features, globally average-pooled: 4w = 128 numbers for the
  ``small`` arch, 512 for ``resnet18`` (its own penultimate layer). The small arch's head reads a 4×4 map
  (2048 numbers); pooling it keeps the covariance estimable from a few hundred test images and the
  eigendecomposition in ``compute`` cheap. Numbers are comparable only between runs on the same data with
  the same classifier (same cache key), never with published FIDs.
- ``inception``: the standard FID Inception (torch-fidelity's port of the TF 2015-12-05 graph), read from
  the local torch cache only — ``<torch.hub.get_dir()>/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
  Nothing is downloaded; when the file is absent :class:`~suite.errors.WeightsMissingError` says where to put it.

Features are computed once per batch and fed to both torchmetrics objects through an identity "feature
network" (so FID and KID do not each run the extractor). Only features are kept, never images: FID keeps
sums (d and d×d), KID the N×d feature rows it needs for its subsets.

Real statistics are cached on disk (``fidreal-<key>.pt``): the FID real-feature sums and count and the KID
real-feature rows, keyed by the dataset (``info["fingerprint"]`` or name), image size, split, which images
are "real", the feature network (the classifier's cache key or the Inception file) and the subset of images
evaluated. Both metrics are built with ``reset_real_features=False``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from suite.errors import ConfigError, WeightsMissingError

__all__ = [
    "FEATURES",
    "INCEPTION_WEIGHTS",
    "ClassifierFeatures",
    "FidKid",
    "inception_extractor",
    "inception_weights_path",
    "real_stats_key",
]

log = logging.getLogger(__name__)

FEATURES = ("classifier", "inception", "none")
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
CACHE_FORMAT = 1


def inception_weights_path() -> Path:
    """The FID Inception weights in the local torch cache; WeightsMissingError when they are not there."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / INCEPTION_WEIGHTS
    if not path.is_file():
        raise WeightsMissingError(
            f"fid.feature=inception needs torch-fidelity's FID Inception weights {INCEPTION_WEIGHTS} in {folder} "
            f"(nothing is downloaded; copy the file there, or use fid.feature=classifier)."
        )
    return path


class ClassifierFeatures(nn.Module):
    """Penultimate features (N×d, globally pooled) of an evaluation classifier; input N×3×H×W in [-1, 1].

    Always in eval mode, no gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        if hasattr(model, "features") and hasattr(model, "head"):  # SmallClassifier
            self.num_features = int(model.head[-1].in_features // 16)  # 4×4 map → channels
        elif hasattr(model, "fc") and hasattr(model, "layer4"):  # torchvision ResNet
            self.num_features = int(model.fc.in_features)
        else:
            raise ConfigError(f"cannot take features from an evaluation classifier of type {type(model).__name__}.")

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        m = self.model
        if hasattr(m, "features") and hasattr(m, "head"):
            return m.features(x).mean(dim=(2, 3))
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return torch.flatten(m.avgpool(x), 1)


class _InceptionFromSuiteImages(nn.Module):
    """torchmetrics' FID Inception (2048-d pool features) fed the suite's [-1, 1] floats (as uint8, like FID)."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

        if not _TORCH_FIDELITY_AVAILABLE:  # a dependency of the suite; only an outdated environment lacks it
            raise ConfigError(
                "fid.feature=inception needs the torch-fidelity package (pip install -e . installs it), "
                "or use fid.feature=classifier."
            )
        try:  # torch-fidelity reads the file itself (a state dict, loaded strictly)
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
            )
        except Exception as exc:  # truncated download, another network's weights …
            raise WeightsMissingError(
                f"{weights} is not torch-fidelity's FID Inception state dict ({type(exc).__name__}); replace it "
                f"with the original {INCEPTION_WEIGHTS}, or use fid.feature=classifier."
            ) from exc
        self.num_features = 2048

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.net(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))


def inception_extractor() -> nn.Module:
    """The standard FID Inception from the local cache (raises WeightsMissingError when absent)."""
    return _InceptionFromSuiteImages(inception_weights_path())


class _Given(nn.Module):
    """The identity as a torchmetrics "feature network": the features are computed before ``update``."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def real_stats_key(info: Mapping[str, Any], *, split: str, feature: str, extractor_id: str, real_source: str,
                   subset: Any = None) -> str:
    """16-hex-digit key of a real-statistics cache file (see the module docstring)."""
    payload = {
        "format": CACHE_FORMAT,
        "data": str(info.get("fingerprint") or info.get("name")),
        "name": str(info.get("name")),
        "image_size": str(info.get("image_size")),
        "split": split,
        "feature": feature,
        "extractor": extractor_id,
        "real": real_source,
        "subset": subset,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class FidKid:
    """Streaming FID (and KID) of translated images against real images.

    ``extractor``: an nn.Module mapping N×3×H×W in [-1, 1] to N×d (with ``num_features``); ``cache_path``: the
    real-statistics file (loaded when present; written by :meth:`save_real` otherwise). Call
    :meth:`update_real` / :meth:`update_fake` per batch; :attr:`needs_real` is False when the real statistics
    came from the cache. :meth:`compute` returns ``{"fid_<name>": …, "kid_<name>": …}``.
    """

    def __init__(self, extractor: nn.Module, name: str, *, kid: bool = True, cache_path: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu", kid_subsets: int = 100, kid_subset_size: int = 1000) -> None:
        self.name, self.device = name, torch.device(device)
        self.extractor = extractor.to(self.device).eval()
        d = int(extractor.num_features)
        self.fid = FrechetInceptionDistance(feature=_Given(d), reset_real_features=False).to(self.device)
        self.kid = (
            KernelInceptionDistance(feature=_Given(d), reset_real_features=False, subsets=kid_subsets,
                                    subset_size=kid_subset_size).to(self.device)
            if kid else None
        )
        self.kid_subset_size = kid_subset_size
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.needs_real = True
        if self.cache_path is not None and self.cache_path.is_file():
            self._load_real(self.cache_path)

    def features(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return self.extractor(images.to(self.device).float()).double()

    def update_real(self, images: Tensor) -> None:
        if self.needs_real:
            self._update(images, real=True)

    def update_fake(self, images: Tensor) -> None:
        self._update(images, real=False)

    def _update(self, images: Tensor, real: bool) -> None:
        f = self.features(images)
        self.fid.update(f, real=real)
        if self.kid is not None:
            self.kid.update(f, real=real)

    # -------------------------------------------------------------------------------------- real cache
    def _load_real(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.fid.real_features_sum = state["fid"]["real_features_sum"].to(self.device)
            self.fid.real_features_cov_sum = state["fid"]["real_features_cov_sum"].to(self.device)
            self.fid.real_features_num_samples = state["fid"]["real_features_num_samples"].to(self.device)
            if self.kid is not None:
                if state.get("kid") is None:
                    raise KeyError("kid")
                self.kid.real_features = [state["kid"].to(self.device)]
        except Exception as exc:  # unreadable or older file: recompute
            log.warning("real FID statistics %s unusable (%s); recomputing them", path, type(exc).__name__)
            self.fid.reset_real_features = True
            self.fid.reset()
            self.fid.reset_real_features = False
            if self.kid is not None:
                self.kid.real_features = []
            return
        self.needs_real = False
        log.info("loaded real FID statistics %s", path)

    def save_real(self) -> None:
        """Write the real statistics to the cache file (when they were computed here)."""
        if self.cache_path is None or not self.needs_real or int(self.fid.real_features_num_samples) < 2:
            return
        state = {
            "fid": {
                "real_features_sum": self.fid.real_features_sum.cpu(),
                "real_features_cov_sum": self.fid.real_features_cov_sum.cpu(),
                "real_features_num_samples": self.fid.real_features_num_samples.cpu(),
            },
            "kid": torch.cat(self.kid.real_features).cpu() if self.kid is not None and self.kid.real_features else None,
        }
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(state, tmp)
            os.replace(tmp, self.cache_path)
        except OSError as exc:
            log.warning("could not cache real FID statistics in %s (%s)", self.cache_path, exc)

    # -------------------------------------------------------------------------------------- results
    @property
    def num_real(self) -> int:
        return int(self.fid.real_features_num_samples)

    @property
    def num_fake(self) -> int:
        return int(self.fid.fake_features_num_samples)

    def compute(self) -> dict[str, float]:
        """``fid_<name>`` (and ``kid_<name>``, ``kid_<name>/std``); NaN with fewer than 2 images on a side."""
        out: dict[str, float] = {}
        enough = self.num_real >= 2 and self.num_fake >= 2
        out[f"fid_{self.name}"] = float(self.fid.compute()) if enough else math.nan
        if self.kid is not None:
            if enough:
                self.kid.subset_size = min(self.kid_subset_size, self.num_real, self.num_fake)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)  # KID's subsets come from the global RNG; fix them
                    mean, std = self.kid.compute()
                out[f"kid_{self.name}"], out[f"kid_{self.name}/std"] = float(mean), float(std)
            else:
                out[f"kid_{self.name}"], out[f"kid_{self.name}/std"] = math.nan, math.nan
        return out
