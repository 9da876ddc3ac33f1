"""Squares and circles: the ground truth is the same record as the other shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datamodules import shapes_render as S
from datamodules.synthetic import ShapesDataModule
from suite.errors import DatasetError


def test_render_is_deterministic_and_indices_differ():
    a = S.render_shapes([S.sample_shape(0, 4)], 32)
    assert np.array_equal(a, S.render_shapes([S.sample_shape(0, 4)], 32))
    assert not np.array_equal(a, S.render_shapes([S.sample_shape(0, 5)], 32))


def test_other_shape_keeps_every_other_parameter():
    rec = S.sample_shape(0, 1)
    other = S.other_shape(rec)
    assert other.shape != rec.shape
    assert (other.center, other.radius, other.colour, other.background) == (
        rec.center,
        rec.radius,
        rec.colour,
        rec.background,
    )
    assert S.other_shape(other) == rec


def test_change_region_is_the_symmetric_difference():
    """Square → circle changes the square's corners only: the centre stays, the area is (4 − π) r² plus the
    anti-aliased pixels along the arc."""
    size = 64
    for i in range(10):
        square = S.as_shape(S.sample_shape(0, i), "square")
        a, b = S.render_shapes_clean([square, S.other_shape(square)], size)
        changed = np.abs(a - b).max(-1) > 1e-3
        r_px = square.radius * size / 2
        expected = (4 - math.pi) * r_px * r_px
        assert 0.9 * expected <= changed.sum() <= expected + 2 * math.pi * r_px + 8
        cy, cx = ((np.array(square.center[::-1]) + 1) / 2 * size).astype(int)
        assert not changed[cy, cx]
        rows, cols = np.nonzero(changed)
        assert rows.min() >= cy - r_px - 2 and rows.max() <= cy + r_px + 2
        assert cols.min() >= cx - r_px - 2 and cols.max() <= cx + r_px + 2


@pytest.mark.parametrize("direction, source", [("a2b", 0), ("b2a", 1)])
def test_datamodule_gt_is_the_other_shape(direction, source):
    dm = ShapesDataModule(
        view="two_domain",
        image_size=32,
        train_size=8,
        val_size=8,
        test_size=8,
        batch_size=4,
        direction=direction,
    )
    batch = next(iter(dm.test_dataloader()))
    assert (batch["domain"] == source).all() and (batch["target"] == 1 - source).all()
    ds = dm.dataset("test")
    for j in range(4):
        p = ds.plan(j, 0)
        src, gt = ds.record(p.src), p.gt
        assert src.shape == S.SHAPES[source] and gt == S.other_shape(src)
        expected = S.render_shapes([gt], 32)[0]
        got = ((batch["gt"][j].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
        assert np.array_equal(got, expected)
        assert ds.record(p.ref).shape == S.SHAPES[1 - source]
    mask = batch["change_mask"].bool()
    assert mask.any()
    assert torch.equal(
        batch["gt"].masked_select(~mask.expand_as(batch["gt"])),
        batch["image"].masked_select(~mask.expand_as(batch["image"])),
    )


def test_shapes_offer_no_factor_view():
    with pytest.raises(
        DatasetError,
        match="data=shapes offers the views two_domain, multi_domain; the method needs multi_factor",
    ):
        ShapesDataModule(view="multi_factor")
    with pytest.raises(DatasetError, match="square, circle"):
        ShapesDataModule(view="two_domain", domains=["square", "triangle"])
