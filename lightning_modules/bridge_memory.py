"""The bridge's per-image random-code memory r_M, as the authors train it (``huangqiusheng/BridgeGAN``
``train_arch9.py``; the supplement does not describe it).

The authors keep one d-dimensional code per training image (variable ``G_R``: 182,000 × 16, N(0, 1) at start).
Each step reads the **reference's** row r₀ = r_M[ref_index] and moves it along the gradient of the latent
matching loss between the reference's encoding and M's code for r₀:

    g  = ∂ MSE(E(X_r, att_diff^{s→t}), M(r₀, att_diff^{s→t})) / ∂r₀        (mean over every element of S)
    r  = clip(r₀ + (0.9 / rms(g) + 5) · g, −1, 1),   rms(g) = √(mean over the d entries of g²), per image

and uses the stop-gradient r as the label path's random code. As written, the step *adds* g, so it moves r up
the MSE (``direction: ascent``; ``descent`` is offered as a switch, not the authors'). The D steps compute r
the same way but do not store it; the G step writes r back (``tower_assign`` runs with ``g_step``).

:func:`memory_step` is the update as a pure function; :class:`CodeMemory` holds the table as a persistent
buffer (so it is saved in every checkpoint and restored exactly on resume) and writes rows back on every rank
under DDP (:func:`gather_rows`), so all ranks keep the same table.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from suite.errors import ConfigError, DatasetError

DIRECTIONS = ("ascent", "descent")


def memory_step(r0: torch.Tensor, grad: torch.Tensor, scale: float = 0.9, offset: float = 5.0, clip: float = 1.0,
                direction: str = "ascent") -> torch.Tensor:
    """``clip(r₀ ± (scale / rms(g) + offset) · g, −clip, clip)`` per row (B×d), ``+`` for ``ascent`` (the
    authors'). A row whose gradient is exactly zero stays at r₀ (clipped) instead of the authors' 0/0 NaN."""
    rms = grad.pow(2).mean(dim=1, keepdim=True).sqrt()
    gain = torch.where(rms > 0, scale / rms.clamp_min(torch.finfo(rms.dtype).tiny), torch.zeros_like(rms)) + offset
    sign = 1.0 if direction == "ascent" else -1.0
    return (r0 + sign * gain * grad).clamp(-clip, clip)


def matching_gradient(r0: torch.Tensor, target_code: torch.Tensor,
                      mapping: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """g = ∂ MSE(target_code, mapping(r₀)) / ∂r₀ with the networks' parameters untouched (no ``.grad`` written)."""
    with torch.enable_grad():
        r0 = r0.detach().requires_grad_(True)
        loss = F.mse_loss(mapping(r0).float(), target_code.detach().float())
        (grad,) = torch.autograd.grad(loss, r0)
    return grad


def gather_rows(index: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's (index, rows) concatenated in rank order (one rank: unchanged). Ranks may hold different
    numbers of rows (the last batch); they are padded for the all-gather and trimmed after."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return index, rows
    world = dist.get_world_size()
    count = torch.tensor([index.numel()], device=index.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    pad = longest - index.numel()
    padded_index = F.pad(index, (0, pad))
    padded_rows = F.pad(rows, (0, 0, 0, pad))
    all_index = [torch.zeros_like(padded_index) for _ in range(world)]
    all_rows = [torch.zeros_like(padded_rows) for _ in range(world)]
    dist.all_gather(all_index, padded_index)
    dist.all_gather(all_rows, padded_rows)
    n = [int(c.item()) for c in counts]
    return (torch.cat([i[:k] for i, k in zip(all_index, n)]), torch.cat([r[:k] for r, k in zip(all_rows, n)]))


class CodeMemory(nn.Module):
    """r_M: ``size`` × ``latent_dim`` codes, N(0, I) at construction (seeded by the global seed, like the nets).

    ``size``: rows, one per training image (the split's size; 182,000 in the authors' CelebA code).
    ``scale``, ``offset``, ``clip``, ``direction``: the update of :func:`memory_step` (0.9, 5, 1, ascent).
    """

    def __init__(self, size: int, latent_dim: int, scale: float = 0.9, offset: float = 5.0, clip: float = 1.0,
                 direction: str = "ascent") -> None:
        super().__init__()
        if not (isinstance(size, int) and size >= 1):
            raise ConfigError(f"method.code_memory.size must be a positive integer, got {size!r}.")
        if direction not in DIRECTIONS:
            raise ConfigError(f"method.code_memory.direction must be ascent or descent, got {direction!r}.")
        self.scale, self.offset, self.clip, self.direction = float(scale), float(offset), float(clip), direction
        self.register_buffer("codes", torch.randn(size, latent_dim))

    def read(self, index: torch.Tensor, check_range: bool = True) -> torch.Tensor:
        """r₀ = r_M[index] (B×d), a copy. ``check_range``: test the rows on the host first (a sync; training
        does it only where ``GANModule.sync_allowed()``)."""
        index = index.long().to(self.codes.device)
        if check_range and index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.codes.shape[0]):
            raise DatasetError(
                f"the code memory has {self.codes.shape[0]} rows but the batch asks for row {int(index.max())}; "
                "set method.code_memory.size to the training split's size."
            )
        return self.codes[index].clone()

    def step(self, r0: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return memory_step(r0, grad, self.scale, self.offset, self.clip, self.direction).detach()

    @torch.no_grad()
    def write(self, index: torch.Tensor, rows: torch.Tensor) -> None:
        """r_M[index] = rows on every rank (all ranks' rows gathered first; a later rank wins a shared row)."""
        index, rows = gather_rows(index.long().to(self.codes.device), rows.to(self.codes))
        self.codes[index] = rows


__all__ = ["CodeMemory", "DIRECTIONS", "gather_rows", "matching_gradient", "memory_step"]
