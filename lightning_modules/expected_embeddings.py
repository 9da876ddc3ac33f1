"""The expected embeddings of the disentangled-attributes method (Oldfield et al., Sec. IV-C): ``E[z_m | y_m = k]``,
the mean code of the training images of class k of attribute m — kept as buffers, computed once when training
ends, and used as label-like targets by ``translate``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


class ExpectedEmbeddings(nn.Module):
    """The expected embedding of every class of each attribute, ``E[z_m | y_m = k]`` (Sec. IV-C), as buffers (so
    checkpoints carry them): ``mean_<attr>`` K_m×C×s×s, ``count_<attr>`` K_m (training images per class), and
    ``iteration`` (the training iteration they were computed at; −1: not computed yet)."""

    def __init__(self, num_classes: Mapping[str, int], code_shape: Sequence[int]) -> None:
        super().__init__()
        self.names = list(num_classes)
        for name, k in num_classes.items():
            self.register_buffer(f"mean_{name}", torch.zeros(int(k), *code_shape))
            self.register_buffer(f"count_{name}", torch.zeros(int(k)))
        self.register_buffer("iteration", torch.tensor(-1, dtype=torch.long))

    def mean(self, name: str) -> torch.Tensor:
        return getattr(self, f"mean_{name}")

    def count(self, name: str) -> torch.Tensor:
        return getattr(self, f"count_{name}")

    @property
    def ready(self) -> bool:
        return int(self.iteration) >= 0

    def reset(self) -> None:
        for name in self.names:
            self.mean(name).zero_()
            self.count(name).zero_()
        self.iteration.fill_(-1)

    def accumulate(self, name: str, codes: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of codes (B×C×s×s) of classes ``labels`` (B) to the running sums."""
        labels = labels.to(codes.device).long()
        self.mean(name).index_add_(0, labels, codes.to(self.mean(name).dtype))
        self.count(name).index_add_(0, labels, torch.ones_like(labels, dtype=self.count(name).dtype))

    def finalize(self, iteration: int) -> None:
        """Sums → means (classes never seen keep a zero code and a zero count)."""
        for name in self.names:
            denom = self.count(name).clamp_min(1).view(-1, *([1] * (self.mean(name).dim() - 1)))
            self.mean(name).div_(denom)
        self.iteration.fill_(int(iteration))


@torch.no_grad()
def compute_expected(module: Any, loader: Any, max_images: int | None = None) -> int:
    """``E[z_m | y_m = k]`` of each class k of each attribute m over the images of ``loader`` (batches with
    ``image`` and ``factors``; the training split), using ``module``'s inference encoders; stored in
    ``module.expected``. Returns the number of images used (``max_images`` caps it; at least one batch)."""
    expected = module.expected
    was_training = module.training
    module.eval()
    expected.reset()
    seen = 0
    try:
        for batch in loader:
            x = batch["image"].to(module.device)
            labels = module.labels_of(batch)
            codes = module.encode(x, inference=True, names=expected.names)
            for a in expected.names:
                expected.accumulate(a, codes[a], labels[a])
            seen += x.shape[0]
            if max_images is not None and seen >= max_images:
                break
    finally:
        module.train(was_training)
    expected.finalize(module.iteration)
    return seen


def label_indices(labels: Any, values: Sequence[Any], attribute: str, device: torch.device | str) -> torch.Tensor:
    """Class indices of ``labels`` (int, class name, or a sequence/tensor of them) of ``attribute``, whose class
    names are ``values``; ValueError naming the valid classes for an unknown name."""
    values = list(values)

    def one(v: Any) -> int:
        if isinstance(v, str):
            if v not in values:
                raise ValueError(f"'{v}' is not a class of '{attribute}'; classes: {', '.join(map(str, values))}")
            return values.index(v)
        return int(v)

    if torch.is_tensor(labels):
        return labels.to(device).long().view(-1)
    if isinstance(labels, str | int):
        labels = [labels]
    return torch.tensor([one(v) for v in labels], device=device, dtype=torch.long)
