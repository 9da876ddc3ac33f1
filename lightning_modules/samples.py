"""Sample grids from ``translate()`` outputs: one row per sample, columns input | output | attention mask |
content | motion field | ground truth — whichever the method and the data provide."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import save_image

COLUMNS = ("input", "image", "mask", "content", "flow", "gt")


def flow_to_rgb(flow: torch.Tensor) -> torch.Tensor:
    """B×2×H×W displacement field → B×3×H×W colour-coded image in [0, 1] (hue = direction, saturation =
    magnitude normalised by the batch maximum; the usual optical-flow colour wheel)."""
    dx, dy = flow[:, 0], flow[:, 1]
    mag = torch.sqrt(dx**2 + dy**2)
    hue = (torch.atan2(dy, dx) / (2 * math.pi)) % 1.0
    sat = (mag / mag.amax().clamp_min(1e-8)).clamp(0, 1)
    h6 = hue * 6
    c = sat
    x = c * (1 - (h6 % 2 - 1).abs())
    zeros = torch.zeros_like(c)
    sector = h6.floor().long() % 6
    r = torch.stack([c, x, zeros, zeros, x, c])
    g = torch.stack([x, c, c, x, zeros, zeros])
    b = torch.stack([zeros, zeros, x, c, c, x])
    pick = lambda t: t.gather(0, sector.unsqueeze(0)).squeeze(0)  # noqa: E731
    m = 1 - c
    return torch.stack([pick(r) + m, pick(g) + m, pick(b) + m], dim=1).clamp(0, 1)


def grid_columns(batch: dict, out: dict) -> list[torch.Tensor]:
    """The columns (each B×3×H×W in [0, 1]) of a sample grid."""
    to01 = lambda t: ((t.float() + 1) / 2).clamp(0, 1)  # noqa: E731
    cols = [to01(batch["image"]), to01(out["image"])]
    if out.get("mask") is not None:
        cols.append(out["mask"].float().clamp(0, 1).expand(-1, 3, -1, -1))
    if out.get("content") is not None:
        cols.append(to01(out["content"]))
    if out.get("flow") is not None:
        cols.append(flow_to_rgb(out["flow"].float()))
    if batch.get("gt") is not None:
        cols.append(to01(batch["gt"]))
    size = cols[0].shape[-2:]
    return [torch.nn.functional.interpolate(c, size=size, mode="nearest") if c.shape[-2:] != size else c for c in cols]


def save_sample_grid(path: Path, batch: dict, out: dict) -> Path:
    cols = [c.detach().cpu() for c in grid_columns(batch, out)]
    rows = torch.stack(cols, dim=1).flatten(0, 1)  # B·K × 3 × H × W, row-major per sample
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(rows, str(path), nrow=len(cols), padding=2, pad_value=1.0)
    return path


def save_motion_combination_grid(path: str | Path, module, images: torch.Tensor, targets: tuple[int, int],
                                 names: list[str]) -> Path:
    """SPM's motion-basis combination (Fig. 7) as a grid, one row per image: input | translation to
    ``targets[0]`` | to ``targets[1]`` | both fields added and warped once | the three flows (colour-coded).
    Column titles go to ``<path>.txt`` (torchvision grids carry no text)."""
    a, b = targets
    with torch.no_grad():
        one = module.translate(images, torch.tensor([a]))
        two = module.translate(images, torch.tensor([b]))
        both = module.translate(images, torch.tensor([[a, b]]))
    cols = [images, one["image"], two["image"], both["image"],
            flow_to_rgb(one["flow"].float()) * 2 - 1, flow_to_rgb(two["flow"].float()) * 2 - 1,
            flow_to_rgb(both["flow"].float()) * 2 - 1]
    rows = torch.stack([c.float().cpu().clamp(-1, 1) for c in cols], 1).flatten(0, 1)
    path = Path(path)
    save_image((rows + 1) / 2, path, nrow=len(cols), padding=1)
    path.with_suffix(".txt").write_text(
        f"columns: input | {names[a]} | {names[b]} | {names[a]}+{names[b]} (fields added, warped once) | "
        f"flow {names[a]} | flow {names[b]} | flow {names[a]}+{names[b]}\n")
    return path
