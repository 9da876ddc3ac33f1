"""Diversity of multimodal translations: how different K outputs for the same input are."""

from __future__ import annotations

import torch
from torch import Tensor

from suite.errors import ConfigError

__all__ = ["pairwise_diversity"]


def pairwise_diversity(outputs: Tensor) -> Tensor:
    """Mean pairwise L1 distance between K translations of each input (the LPIPS-free diversity score).

    outputs: K×B×C×H×W, K ≥ 2 samples for each of B inputs. For every unordered pair (i, j), i < j, the mean
    absolute difference over C×H×W is taken; the result averages the K(K−1)/2 pairs. Returns B (float32);
    0 when all K outputs are identical.
    """
    if outputs.dim() != 5:
        raise ValueError(f"expected outputs of shape K×B×C×H×W, got {tuple(outputs.shape)}")
    k = outputs.shape[0]
    if k < 2:
        raise ConfigError(
            f"diversity needs at least 2 samples per input, got {k}; raise the number of samples."
        )
    flat = outputs.detach().to(torch.float64).flatten(2)  # K×B×D
    total = torch.zeros(flat.shape[1], dtype=torch.float64, device=flat.device)
    # A loop over i keeps memory at O(K·B·D) rather than materialising all K² differences at once.
    for i in range(k - 1):
        total += (flat[i + 1 :] - flat[i]).abs().mean(dim=2).sum(dim=0)
    return (total / (k * (k - 1) / 2)).to(torch.float32)
