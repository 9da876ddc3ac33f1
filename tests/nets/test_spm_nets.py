"""SPM networks: the warp of Eq. 1, the motion bound λw, ablation switches, StarGAN's parts, the HR stage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nets.spm import (
    HighResolutionSPM,
    MotionClassifier,
    SPMGenerator,
    StarGANDiscriminator,
    flow_to_pixels,
    resize,
    resolution_adaptive_layers,
    warp,
)

torch.manual_seed(0)


def tiny_generator(**kw) -> SPMGenerator:
    args = {"num_domains": 3, "ngf": 8, "n_blocks": 1, "n_refine_blocks": 1, **kw}
    return SPMGenerator(**args).eval()


def one_hot(idx, n=3):
    return torch.nn.functional.one_hot(torch.as_tensor(idx), n).float()


# ---------------------------------------------------------------------------------------------- warp
def test_warp_with_zero_flow_is_identity():
    x = torch.rand(2, 3, 17, 23) * 2 - 1
    assert torch.allclose(warp(x, torch.zeros(2, 2, 17, 23)), x, atol=1e-5)


@pytest.mark.parametrize("dx,dy", [(3, 0), (0, 2), (-2, 1)])
def test_constant_flow_shifts_by_the_expected_pixels(dx, dy):
    h = w = 16
    x = torch.rand(1, 3, h, w)
    flow = torch.empty(1, 2, h, w)
    flow[:, 0], flow[:, 1] = dx / (w - 1), dy / (h - 1)  # extent fractions → (dx, dy) pixels
    assert torch.allclose(flow_to_pixels(flow)[:, 0], torch.full((1, h, w), float(dx)), atol=1e-5)
    out = warp(x, flow)
    # Eq. 1: I_d(i) = I_s(i + w(i)) → output pixel (r, c) reads input (r + dy, c + dx)
    for r in range(h):
        for c in range(w):
            rs, cs = r + dy, c + dx
            expected = x[0, :, rs, cs] if (0 <= rs < h and 0 <= cs < w) else torch.zeros(3)
            assert torch.allclose(out[0, :, r, c], expected, atol=1e-4), (r, c)


def test_samples_outside_the_image_are_zero():
    x = torch.ones(1, 3, 8, 8)
    out = warp(x, torch.full((1, 2, 8, 8), 2.0))  # two extents away: everything leaves the image
    assert torch.count_nonzero(out) == 0


def test_warp_rejects_mismatched_flow():
    with pytest.raises(ValueError, match="B×2×H×W"):
        warp(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 4, 4))


# ---------------------------------------------------------------------------------------------- generator
@pytest.mark.parametrize("lambda_w", [0.1, 0.2])
def test_flow_magnitude_is_bounded_by_lambda_w(lambda_w):
    g = tiny_generator(lambda_w=lambda_w)
    with torch.no_grad():  # saturate the tanh: the bound must still hold and be reached
        g.flow_head[-2].weight.mul_(1e4)
    out = g(torch.rand(2, 3, 16, 16) * 2 - 1, one_hot([0, 2]))
    assert out.flow.abs().max() <= lambda_w + 1e-6
    assert out.flow.abs().max() > 0.99 * lambda_w


def test_full_generator_outputs_and_eq5():
    g = tiny_generator()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = g(x, one_hot([1, 2]))
    assert out.image.shape == x.shape and out.flow.shape == (2, 2, 16, 16) and out.mask.shape == (2, 1, 16, 16)
    assert torch.allclose(out.deformed, warp(x, out.flow))
    assert torch.allclose(out.image, (out.deformed + out.residual * out.mask).clamp(-1, 1))
    assert 0 <= out.mask.min() and out.mask.max() <= 1
    assert len(g.refiner.body) == 1 + 1 + 2  # conv7, n=1 residual block, conv7, tanh


def test_no_motion_removes_the_motion_module():
    g = tiny_generator(motion=False)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out = g(x, one_hot([1]))
    assert g.flow_head is None and out.flow is None and out.deformed is None
    assert g.refine_condition  # auto: R needs the target once nothing else carries it
    assert torch.allclose(out.image, (x + out.residual * out.mask).clamp(-1, 1))


def test_no_refinement_removes_r_and_the_mask():
    g = tiny_generator(refinement=False)
    out = g(torch.rand(1, 3, 16, 16) * 2 - 1, one_hot([1]))
    assert g.refiner is None and g.mask_head is None and out.mask is None and out.residual is None
    assert torch.equal(out.image, out.deformed)


def test_both_off_is_stargans_generator():
    g = tiny_generator(motion=False, refinement=False, ngf=64, n_blocks=6)
    assert g.is_stargan and g.flow_head is None and g.refiner is None
    out = g(torch.rand(1, 3, 16, 16) * 2 - 1, one_hot([2]))
    assert out.image.shape == (1, 3, 16, 16) and out.flow is None and out.mask is None
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert convs[0].in_channels == 3 + 3 and convs[0].kernel_size == (7, 7) and convs[0].out_channels == 64
    downs = [m for m in convs if m.stride == (2, 2) and isinstance(m, nn.Conv2d)]
    ups = [m for m in convs if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in downs] == [128, 256] and [m.out_channels for m in ups] == [128, 64]
    assert sum(1 for _ in g.encoder.body if type(_).__name__ == "ResidualBlock") == 6


def test_generator_requires_the_label():
    with pytest.raises(ValueError, match="target"):
        tiny_generator()(torch.zeros(1, 3, 16, 16), None)


# ---------------------------------------------------------------------------------------------- classifiers
def test_stargan_discriminator_heads():
    d = StarGANDiscriminator(image_size=32, num_classes=5, ndf=8, n_layers=4)
    out = d(torch.zeros(3, 3, 32, 32))
    assert out.src.shape == (3, 1, 2, 2) and out.cls.shape == (3, 5)
    assert d.cls_head.kernel_size == (2, 2)
    assert all(m.negative_slope == 0.01 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in d.modules())


def test_discriminator_too_deep_for_the_image_is_rejected():
    with pytest.raises(ValueError, match="n_layers"):
        StarGANDiscriminator(image_size=32, num_classes=2, n_layers=6)


def test_motion_classifier_logits_and_label_option():
    dw = MotionClassifier(image_size=32, num_classes=4, ndf=8)
    assert dw(torch.zeros(2, 2, 32, 32), torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    dw_l = MotionClassifier(image_size=32, num_classes=4, ndf=8, label_channels=4)
    assert dw_l(torch.zeros(2, 2, 32, 32), torch.zeros(2, 3, 32, 32), one_hot([0, 1], 4)).shape == (2, 4)
    with pytest.raises(ValueError, match="label"):
        dw_l(torch.zeros(2, 2, 32, 32), torch.zeros(2, 3, 32, 32))


# ---------------------------------------------------------------------------------------------- HR stage
def test_hr_stage_lifts_lr_fields_and_doubles_the_size():
    g = tiny_generator()
    hr = HighResolutionSPM(ngf=4).eval()
    for t in (hr.T_w, hr.T_r, hr.T_m):  # zero corrections: the HR output is built from U(w_l), U(r_l), U(m_l)
        nn.init.zeros_(t.body[-2].weight)
        nn.init.zeros_(t.body[-2].bias)
    x_h = torch.rand(2, 3, 32, 32) * 2 - 1
    low = g(resize(x_h, 16), one_hot([0, 1]))
    out = hr(x_h, low)
    assert out.image.shape == (2, 3, 32, 32) and low.image.shape == (2, 3, 16, 16) and out.low is low
    assert torch.allclose(out.flow, resize(low.flow, 32), atol=1e-6)
    assert torch.allclose(out.image, (warp(x_h, out.flow) + out.residual * out.mask).clamp(-1, 1))


def test_hr_stage_builds_only_what_the_lr_generator_has():
    hr = HighResolutionSPM(motion=False, ngf=4)
    assert hr.T_w is None and hr.T_r is not None
    hr = HighResolutionSPM(refinement=False, ngf=4)
    assert hr.T_r is None and hr.T_m is None


def test_resolution_adaptive_layers():
    assert resolution_adaptive_layers(6, 128, 256) == 7
    assert resolution_adaptive_layers(6, 128, 512) == 8
    assert resolution_adaptive_layers(4, 32, 64) == 5
    with pytest.raises(ValueError, match="power of two"):
        resolution_adaptive_layers(4, 32, 96)
