import math

import pytest
import torch

from metrics.diversity import pairwise_diversity
from metrics.masks import background_preservation, background_psnr, mask_iou
from suite.errors import ConfigError


def _square(top: int, left: int, size: int, hw: int = 8) -> torch.Tensor:
    m = torch.zeros(1, 1, hw, hw)
    m[..., top : top + size, left : left + size] = 1.0
    return m


def test_iou_identical_is_one():
    m = _square(1, 1, 4)
    assert mask_iou(m, m).item() == 1.0


def test_iou_disjoint_is_zero():
    assert mask_iou(_square(0, 0, 2), _square(5, 5, 2)).item() == 0.0


def test_iou_hand_case_one_third():
    # two 1×2 strips sharing one pixel: intersection 1, union 3
    pred = torch.zeros(1, 1, 4, 4)
    true = torch.zeros(1, 1, 4, 4)
    pred[0, 0, 0, 0:2] = 1
    true[0, 0, 0, 1:3] = 1
    assert mask_iou(pred, true).item() == pytest.approx(1 / 3)


def test_iou_both_empty_is_one():
    z = torch.zeros(2, 1, 4, 4)
    assert torch.equal(mask_iou(z, z), torch.ones(2))


def test_iou_thresholds_soft_masks():
    true = _square(0, 0, 4)
    soft = true * 0.6 + 0.1  # 0.7 inside, 0.1 outside
    assert mask_iou(soft, true, threshold=0.5).item() == 1.0
    assert mask_iou(soft, true, threshold=0.8).item() == 0.0


def test_iou_resizes_coarse_predictions():
    true = torch.zeros(1, 1, 8, 8)
    true[..., :4, :] = 1
    coarse = torch.zeros(1, 1, 2, 2)
    coarse[..., 0, :] = 1
    assert mask_iou(coarse, true).item() == 1.0


def test_background_preservation_zero_when_background_untouched():
    g = torch.Generator().manual_seed(0)
    inp = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    mask = _square(2, 2, 4).expand(2, 1, 8, 8)
    out = torch.where(mask.bool(), -inp, inp)  # changes only inside the mask
    assert torch.equal(background_preservation(out, inp, mask), torch.zeros(2))
    assert torch.isinf(background_psnr(out, inp, mask)).all()


def test_background_preservation_known_value():
    inp = torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # top half is the change region
    out = inp.clone()
    out[..., 2:, :] = 0.5  # whole background off by 0.5
    out[..., :2, :] = 1.0  # changes inside the mask do not count
    assert background_preservation(out, inp, mask).item() == pytest.approx(0.5)
    assert background_psnr(out, inp, mask).item() == pytest.approx(10 * math.log10(4 / 0.25), abs=1e-4)


def test_background_preservation_nan_without_background():
    x = torch.zeros(1, 3, 4, 4)
    assert torch.isnan(background_preservation(x + 1, x, torch.ones(1, 1, 4, 4))).all()


def test_diversity_zero_for_identical_outputs():
    x = torch.rand(1, 2, 3, 8, 8).expand(4, 2, 3, 8, 8)
    assert torch.equal(pairwise_diversity(x), torch.zeros(2))


def test_diversity_known_value():
    # K=3 constant images 0, 0.5, 1 → pair distances 0.5, 1, 0.5 → mean 2/3
    outs = torch.stack([torch.full((1, 3, 4, 4), v) for v in (0.0, 0.5, 1.0)])
    assert pairwise_diversity(outs).item() == pytest.approx(2 / 3)


def test_diversity_needs_two_samples():
    with pytest.raises(ConfigError):
        pairwise_diversity(torch.zeros(1, 2, 3, 4, 4))
