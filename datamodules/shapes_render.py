"""Squares and circles (the embedded ``shapes`` data; the SPM paper's synthetic experiment, Fig. 3).

One shape per image on a gradient background, of random position, size and colour. A square of half-side
``r`` and a circle of radius ``r`` at the same place are the two domains of a pure geometric translation: the
ground truth of a square is the same record drawn as a circle, and the change region is the symmetric
difference of the two (the square's corners). Drawn on a supersampled grid and box-filtered like the faces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from datamodules.synthfaces_render import (
    BG_LABEL,
    PALETTE_SIZE,
    gradient_labels,
    gradient_palette,
    pixel_centres,
    quantise,
    render_labels,
    split_stream,
    stamp,
    supersample_factor,
)
from suite.errors import DatasetError

SHAPES: tuple[str, ...] = ("square", "circle")


@dataclass(frozen=True)
class ShapeRecord:
    """One image: the shape and its geometry (image coordinates in [-1, 1], y down), colours, noise."""

    shape: str
    center: tuple[float, float]
    radius: float  # the square's half-side, the circle's radius
    colour: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float], float]
    noise_std: float = 0.0  # grey levels of 255
    noise_seed: int = 0


def sample_shape(seed: int, index: int, split: str = "train", *, noise: bool = False) -> ShapeRecord:
    """The record of image ``index`` of ``split``, a pure function of the arguments; the whole shape (in
    either form) lies inside the image and its colour stands out from the background."""
    rng = np.random.default_rng([int(seed), split_stream(split), int(index), 0x5A])
    radius = float(rng.uniform(0.18, 0.45))
    lim = 1.0 - radius - 0.04
    center = (float(rng.uniform(-lim, lim)), float(rng.uniform(-lim, lim)))
    bg_a = rng.uniform(0.1, 0.9, 3)
    bg_b = np.clip(bg_a + rng.uniform(-0.2, 0.2, 3), 0.0, 1.0)
    colour = rng.uniform(0.0, 1.0, 3)
    while np.abs(colour - (bg_a + bg_b) / 2).max() < 0.35:
        colour = rng.uniform(0.0, 1.0, 3)
    return ShapeRecord(
        shape=SHAPES[int(rng.integers(2))],
        center=center,
        radius=radius,
        colour=tuple(float(c) for c in colour),
        background=(
            tuple(float(c) for c in bg_a),
            tuple(float(c) for c in bg_b),
            float(rng.uniform(0, 2 * math.pi)),
        ),
        noise_std=float(rng.uniform(1.0, 4.0)) if noise else 0.0,
        noise_seed=int(rng.integers(2**62)),
    )


def as_shape(record: ShapeRecord, shape: str) -> ShapeRecord:
    """The same record drawn as ``shape`` (the ground-truth translation)."""
    if shape not in SHAPES:
        raise DatasetError(f"data=shapes has no shape {shape!r}; valid choices are {', '.join(SHAPES)}.")
    return replace(record, shape=shape)


def other_shape(record: ShapeRecord) -> ShapeRecord:
    """Square ↔ circle with every other parameter kept."""
    return as_shape(record, SHAPES[1 - SHAPES.index(record.shape)])


def _render(
    records: Sequence[ShapeRecord], image_size: int, supersample: int | None, noise: bool | None
) -> np.ndarray:
    records = list(records)
    f = supersample_factor(image_size, supersample)
    g = image_size * f
    x = pixel_centres(g)
    chunk = max(1, (1 << 18) // (g * g))
    out = np.empty((len(records), image_size, image_size, 3), np.float32 if noise is None else np.uint8)
    for i in range(0, len(records), chunk):
        part = records[i : i + chunk]
        n = len(part)
        L = gradient_labels(x, [r.background[2] for r in part])
        for j, r in enumerate(part):
            stamp(L[j], x, 1, r.center[0], r.center[1], r.radius, r.radius, r.shape == "square")
        pal = np.zeros((n, PALETTE_SIZE, 3), np.float32)
        for j, r in enumerate(part):
            pal[j, 1] = r.colour
            pal[j, BG_LABEL:] = gradient_palette(r.background[0], r.background[1])
        clean = render_labels(L, pal, f)
        if noise is None:
            out[i : i + n] = clean * np.float32(1.0 / 255.0)
        else:
            stds = [r.noise_std if noise else 0.0 for r in part]
            out[i : i + n] = quantise(clean, stds, [r.noise_seed for r in part])
    return out


def render_shapes(
    records: Sequence[ShapeRecord], image_size: int = 64, supersample: int | None = None, noise: bool = True
) -> np.ndarray:
    """Renders, N×S×S×3 uint8; each image depends only on its record (and the size)."""
    return _render(records, image_size, supersample, bool(noise))


def render_shapes_clean(
    records: Sequence[ShapeRecord], image_size: int = 64, supersample: int | None = None
) -> np.ndarray:
    """Noise-free renders before quantisation, N×S×S×3 float32 in [0, 1]."""
    return _render(records, image_size, supersample, None)
