"""Issue #21 item 7 (SPM Fig. 3): can a bounded backward warp turn the test squares into their circles at all?

An oracle radial field (the disk of radius r sampled from the square of half-side r, the background pulled in over a
0.5·r band) is built from each record's geometry and applied with ``nets.spm.warp``; prints psnr against the true
circles beside doing nothing.  Run: ``OMP_NUM_THREADS=1 python scripts/spm_shapes_oracle.py`` (seconds).
"""

from __future__ import annotations

import torch

from datamodules.shapes_render import ShapeRecord, as_shape, render_shapes, sample_shape
from metrics.image_quality import psnr
from nets.spm import flow_to_pixels, warp


def images(records: list[ShapeRecord], size: int) -> torch.Tensor:
    return torch.from_numpy(render_shapes(records, size, noise=False)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_grid(v: torch.Tensor, size: int) -> torch.Tensor:
    """Render coordinates (pixel centres at (2i+1)/S − 1) → the warp's align_corners=True grid."""
    return -1 + 2 * ((v + 1) * size / 2 - 0.5) / (size - 1)


def oracle_flow(record: ShapeRecord, size: int) -> torch.Tensor:
    """2×S×S flow (extent fractions) that samples the square so that the output shows the circle."""
    u = (2 * torch.arange(size) + 1) / size - 1
    uy, ux = torch.meshgrid(u, u, indexing="ij")
    (cx, cy), rad = record.center, record.radius
    dx, dy = ux - cx, uy - cy
    rho = (dx**2 + dy**2).sqrt().clamp_min(1e-6)
    r_square = rad * rho / torch.maximum(dx.abs(), dy.abs()).clamp_min(1e-6)  # the square's edge along the ray
    inner = rho * r_square / rad
    outer = rho + (r_square - rad) * (1 - (rho - rad) / (0.5 * rad)).clamp(0, 1)
    scale = torch.where(rho <= rad, inner, outer) / rho
    qx, qy = cx + dx * scale, cy + dy * scale
    return torch.stack([(to_grid(qx, size) - to_grid(ux, size)) / 2, (to_grid(qy, size) - to_grid(uy, size)) / 2])


def main(n: int = 300) -> None:
    for size in (32, 64, 128):
        squares = [as_shape(sample_shape(0, i, "test"), "square") for i in range(n)]
        sq, ci = images(squares, size), images([as_shape(r, "circle") for r in squares], size)
        flow = torch.stack([oracle_flow(r, size) for r in squares])
        px = flow_to_pixels(flow)
        tv = ((px[..., 1:, :] - px[..., :-1, :]).abs().mean() + (px[..., :, 1:] - px[..., :, :-1]).abs().mean()).item()
        print(f"{size} px: do-nothing psnr {psnr(sq, ci).mean():.2f}, oracle warp {psnr(warp(sq, flow), ci).mean():.2f} "
              f"(clamped to λw 0.1: {psnr(warp(sq, flow.clamp(-0.1, 0.1)), ci).mean():.2f}); max |w| "
              f"{flow.abs().max():.3f} of the extent = {px.abs().max():.2f} px; mean L1 TV {tv:.4f} px")


if __name__ == "__main__":
    main()
