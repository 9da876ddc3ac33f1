"""Metrics that use the true change region of the embedded data (``batch["change_mask"]``).

``mask_iou`` scores a method's attention/change mask against the true one. ``background_preservation`` scores
how well a translation leaves everything outside the true change region untouched: the mean absolute
difference |output − input| over the background pixels, in the images' units (0 is perfect; for [-1, 1]
images the worst is 2). L1 was chosen over a masked PSNR because it stays finite when the background is
reproduced exactly and is comparable across images with different background areas; ``background_psnr`` is
offered as well for tables that prefer dB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["background_preservation", "background_psnr", "mask_iou"]


def _as_mask(mask: Tensor) -> Tensor:
    """B×1×H×W (or B×H×W) → B×1×H×W float."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"expected a mask of shape B×1×H×W, got {tuple(mask.shape)}")
    return mask.detach().to(torch.float32)


def _match_size(mask: Tensor, size: torch.Size) -> Tensor:
    # Some methods predict masks at a coarser resolution than the image; compare at the true mask's size.
    if mask.shape[-2:] != size:
        mask = F.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False)
    return mask


def mask_iou(pred_mask: Tensor, true_mask: Tensor, threshold: float = 0.5) -> Tensor:
    """Intersection over union of the binarised predicted and true masks, per image.

    pred_mask: B×1×h×w in [0, 1] (resized bilinearly to the true mask's size when it differs), binarised as
    ``> threshold``; true_mask: B×1×H×W in {0, 1} (binarised as ``> 0.5``). Returns B (float32); 1 where
    both masks are empty (nothing to find, nothing found).
    """
    true_b = _as_mask(true_mask) > 0.5
    pred_b = _match_size(_as_mask(pred_mask).to(true_b.device), true_b.shape[-2:]) > threshold
    if pred_b.shape[0] != true_b.shape[0]:
        raise ValueError(
            f"batch sizes differ: {pred_b.shape[0]} predicted masks, {true_b.shape[0]} true masks"
        )
    inter = (pred_b & true_b).flatten(1).sum(dim=1).to(torch.float32)
    union = (pred_b | true_b).flatten(1).sum(dim=1).to(torch.float32)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def _background(output: Tensor, input: Tensor, true_mask: Tensor) -> tuple[Tensor, Tensor]:
    """output − input (B×C×H×W, float64) and the background indicator (B×1×H×W, 1 outside the mask)."""
    if output.shape != input.shape or output.dim() != 4:
        raise ValueError(
            f"output and input must both be B×C×H×W, got {tuple(output.shape)} and {tuple(input.shape)}"
        )
    bg = (_as_mask(true_mask) <= 0.5).to(torch.float64)
    if bg.shape[0] != output.shape[0] or bg.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"true_mask {tuple(bg.shape)} does not match images {tuple(output.shape)}")
    diff = output.detach().to(torch.float64) - input.detach().to(torch.float64)
    return diff, bg.to(diff.device)


def background_preservation(output: Tensor, input: Tensor, true_mask: Tensor) -> Tensor:
    """Mean |output − input| outside the true change region, per image (lower is better, 0 is perfect).

    output, input: B×C×H×W; true_mask: B×1×H×W with 1 where the translation is meant to change the image.
    The mean runs over channels and background pixels. Returns B (float32); NaN for an image whose mask
    covers everything (no background to judge) — the streaming aggregates count and skip NaN.
    """
    diff, bg = _background(output, input, true_mask)
    channels = diff.shape[1]
    total = (diff.abs() * bg).flatten(1).sum(dim=1)
    count = bg.flatten(1).sum(dim=1) * channels
    return (total / count).to(torch.float32)  # 0/0 → NaN for an all-foreground mask


def background_psnr(output: Tensor, input: Tensor, true_mask: Tensor, data_range: float = 2.0) -> Tensor:
    """PSNR (dB) between output and input over the background pixels only, per image.

    Same shapes as :func:`background_preservation`. +inf when the background is reproduced exactly; NaN when
    there is no background.
    """
    diff, bg = _background(output, input, true_mask)
    channels = diff.shape[1]
    err = (diff.pow(2) * bg).flatten(1).sum(dim=1) / (bg.flatten(1).sum(dim=1) * channels)
    return (10.0 * torch.log10(data_range**2 / err)).to(torch.float32)
