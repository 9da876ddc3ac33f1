"""Parameter snapshots: did an update change a network's weights (or, with ``snapshot``/``same``, its buffers)?"""

from __future__ import annotations

import torch
from torch import nn


def params_of(net: nn.Module) -> list[torch.Tensor]:
    """Copies of ``net``'s parameters, in order."""
    return [p.detach().clone() for p in net.parameters()]


def changed(before: list[torch.Tensor], net: nn.Module, atol: float = 0.0) -> bool:
    """Whether any parameter of ``net`` differs from ``before`` (by more than ``atol``)."""
    return any(not torch.allclose(a, b, rtol=0, atol=atol) for a, b in zip(before, net.parameters()))


def snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of ``net``'s whole state_dict: weights and buffers (BatchNorm statistics)."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def same(before: dict[str, torch.Tensor], net: nn.Module) -> bool:
    """Whether ``net``'s state_dict equals ``before`` exactly."""
    return all(torch.equal(before[k], v) for k, v in net.state_dict().items())
