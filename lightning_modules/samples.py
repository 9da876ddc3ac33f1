"""Sample grids from ``translate()`` outputs: one row per sample, columns input | output | attention mask |
content | motion field | ground truth — whichever the method and the data provide — labelled in a header line,
each cell enlarged (nearest neighbour, a whole factor) to a viewable size: at 32 px a speckled mouth is
invisible, at 128 px it is not."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

COLUMNS = ("input", "image", "mask", "content", "flow", "gt")
COLUMN_TITLES = {"input": "input", "image": "output", "mask": "mask", "content": "content", "flow": "flow",
                 "gt": "ground truth"}


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


def grid_columns(batch: dict, out: dict) -> dict[str, torch.Tensor]:
    """The labelled columns (each B×3×H×W in [0, 1]) of a sample grid, in :data:`COLUMN_TITLES` order."""
    to01 = lambda t: ((t.float() + 1) / 2).clamp(0, 1)  # noqa: E731
    found = {
        "input": to01(batch["image"]),
        "image": to01(out["image"]),
        "mask": out["mask"].float().clamp(0, 1).expand(-1, 3, -1, -1) if out.get("mask") is not None else None,
        "content": to01(out["content"]) if out.get("content") is not None else None,
        "flow": flow_to_rgb(out["flow"].float()) if out.get("flow") is not None else None,
        "gt": to01(batch["gt"]) if batch.get("gt") is not None else None,
    }
    size = found["input"].shape[-2:]
    return {COLUMN_TITLES[k]: (F.interpolate(c, size=size, mode="nearest") if c.shape[-2:] != size else c)
            for k, c in found.items() if c is not None}


def cell_scale(height: int, cell_size: int) -> int:
    """The integer factor that enlarges an image of ``height`` pixels to at least ``cell_size`` (1 when it is
    already that tall): nearest-neighbour enlargement by a whole factor keeps every pixel a visible square."""
    return max(1, math.ceil(cell_size / max(height, 1)))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def labelled_grid(columns: dict[str, torch.Tensor], cell_size: int = 128, padding: int = 2):
    """A PIL image: one row per sample, each cell enlarged (nearest) to at least ``cell_size`` pixels, and a
    header line naming the columns."""
    from PIL import Image, ImageDraw

    titles, cols = list(columns), [c.detach().float().cpu() for c in columns.values()]
    factor = cell_scale(cols[0].shape[-2], cell_size)
    if factor > 1:
        cols = [F.interpolate(c, scale_factor=factor, mode="nearest") for c in cols]
    rows = torch.stack(cols, dim=1).flatten(0, 1)  # B·K × 3 × H × W, row-major per sample
    body = make_grid(rows, nrow=len(cols), padding=padding, pad_value=1.0)
    body = Image.fromarray(body.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
    cell_w = cols[0].shape[-1] + padding
    font_size = max(10, min(18, cell_w // 7))
    header_h = font_size + 2 * padding + 4
    canvas = Image.new("RGB", (body.width, body.height + header_h), "white")
    canvas.paste(body, (0, header_h))
    draw, font = ImageDraw.Draw(canvas), _font(font_size)
    for i, title in enumerate(titles):
        draw.text((padding + i * cell_w + 2, padding + 1), title, fill="black", font=font)
    return canvas


def save_sample_grid(path: Path, batch: dict, out: dict, cell_size: int = 128) -> Path:
    """The labelled, enlarged grid (:func:`labelled_grid`) of ``translate`` outputs, written to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labelled_grid(grid_columns(batch, out), cell_size).save(path)
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
