import math

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from metrics.image_quality import mse, mse_255, psnr, ssim


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 3, 32, 32, generator=g) * 1.8 - 0.9  # leaves room for a +0.1 offset inside [-1, 1]


def test_psnr_identical_is_inf(images):
    out = psnr(images, images.clone())
    assert out.shape == (4,)
    assert torch.isinf(out).all() and (out > 0).all()


def test_psnr_constant_offset_matches_closed_form(images):
    out = psnr(images + 0.1, images, data_range=2.0)
    expected = 10 * math.log10(4 / 0.01)
    assert torch.allclose(out, torch.full((4,), expected), atol=1e-3)


def test_psnr_is_per_image(images):
    pred = images.clone()
    pred[1] += 0.1
    out = psnr(pred, images)
    assert torch.isinf(out[[0, 2, 3]]).all()
    assert math.isfinite(out[1].item())


def test_mse_known_values():
    target = torch.zeros(2, 3, 4, 4)
    pred = target.clone()
    pred[0] += 0.5  # every pixel off by 0.5 → 0.25
    pred[1, :, :2] = 1.0  # half the pixels off by 1 → 0.5
    assert torch.allclose(mse(pred, target), torch.tensor([0.25, 0.5]))


def test_mse_255_rescales_to_pixel_units():
    target = torch.zeros(1, 3, 4, 4)
    pred = target + 2 * (2.0 / 255.0)  # two grey levels (one level is 2/255 on a [-1, 1] scale) → 2² = 4
    assert torch.allclose(mse_255(pred, target), torch.tensor([4.0]), atol=1e-4)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_ssim_identical_is_one(images):
    assert torch.allclose(ssim(images, images.clone()), torch.ones(4), atol=1e-6)


def test_ssim_drops_with_noise(images):
    g = torch.Generator().manual_seed(1)
    mild = (images + 0.05 * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    strong = (images + 0.5 * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    s_mild, s_strong = ssim(mild, images), ssim(strong, images)
    assert (s_mild < 1).all()
    assert (s_strong < s_mild).all()


def test_ssim_matches_torchmetrics(images):
    g = torch.Generator().manual_seed(2)
    pred = (images + 0.2 * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    # torchmetrics pads by reflection and averages the whole map; the reference (Wang et al.) averages only
    # windows inside the image, which is torchmetrics' map without its 5-pixel border
    _, full = tm_ssim(pred, images, data_range=2.0, reduction="none", return_full_image=True)
    ref = full[..., 5:-5, 5:-5].flatten(1).mean(1)
    assert torch.allclose(ssim(pred, images), ref, atol=1e-5)


def test_ssim_small_images_do_not_crash():
    x = torch.rand(2, 3, 6, 6) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)
