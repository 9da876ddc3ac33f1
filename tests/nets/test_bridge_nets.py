"""Bridge networks: SPADE, the supplement's architectures (Figs. 2–5) and their shapes at other resolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nets.bridge import (
    SPADE,
    BridgeDiscriminator,
    BridgeGenerator,
    MappingNetwork,
    ResBlock,
    SPADEResBlock,
    StyleEncoder,
    resize_code,
)


def zero_modulation(spade: SPADE) -> None:
    for conv in (spade.gamma, spade.beta):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)


def test_spade_with_zero_gamma_and_beta_is_instance_norm():
    spade = SPADE(channels=6, code_channels=5, hidden=4)
    zero_modulation(spade)
    x, code = torch.randn(2, 6, 8, 8) * 3 + 1, torch.randn(2, 5, 4, 4)
    assert torch.allclose(spade(x, code), F.instance_norm(x), atol=1e-5)


def test_spade_modulation_follows_the_code_per_location():
    spade = SPADE(channels=3, code_channels=2, hidden=4)
    x = torch.randn(1, 3, 8, 8)
    a, b = torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)
    b[..., :2, :2] = 5.0  # a change in one corner of S
    diff = (spade(x, a) - spade(x, b)).abs().sum(1)[0]
    assert diff[:2, :2].sum() > 0 and diff[5:, 5:].sum() == 0  # 3×3 convs: only the corner's neighbourhood


@pytest.mark.parametrize("variant", ["authors", "stargan_v2"])
def test_spade_resblock_upsamples_and_reads_the_code(variant):
    block = SPADEResBlock(8, 4, code_channels=3, hidden=4, upsample=True, variant=variant)
    x = torch.randn(2, 8, 4, 4)
    out = block(x, torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 4, 8, 8)
    assert not torch.allclose(out, block(x, torch.randn(2, 3, 16, 16)))


def test_resize_code_shrinks_by_area_and_grows_bilinearly():
    code = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.allclose(resize_code(code, (2, 2), "area_bilinear"), F.avg_pool2d(code, 2))
    assert resize_code(code, (8, 8), "area_bilinear").shape == (1, 1, 8, 8)
    assert resize_code(code, (4, 4)) is code


def test_resize_code_by_nearest_neighbour_as_the_authors():
    code = torch.arange(16.0).view(1, 1, 4, 4)
    # TF NEAREST_NEIGHBOR (align_corners False): output pixel i reads source ⌊i·4/2⌋ = 0, 2
    assert resize_code(code, (2, 2)).view(-1).tolist() == [0.0, 2.0, 8.0, 10.0]
    assert resize_code(code, (8, 8))[0, 0, :2, :4].tolist() == [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]


def _zero_residual(block) -> None:
    torch.nn.init.zeros_(block.conv2.weight)
    torch.nn.init.zeros_(block.conv2.bias)


@pytest.mark.parametrize("variant,factor", [("authors", 1.0), ("stargan_v2", 2 ** -0.5)])
def test_residual_sums_are_plain_for_the_authors_and_scaled_for_stargan_v2(variant, factor):
    block = ResBlock(6, 6, variant=variant)
    _zero_residual(block)
    x = torch.randn(2, 6, 8, 8)
    assert isinstance(block.shortcut, torch.nn.Identity)
    assert torch.allclose(block(x), x * factor, atol=1e-6)


def test_authors_blocks_learn_a_biased_shortcut_whenever_they_resample():
    down = ResBlock(6, 6, resample="down")
    assert isinstance(down.shortcut, torch.nn.Conv2d) and down.shortcut.bias is not None
    assert down.conv1.out_channels == 6 and ResBlock(4, 6).conv1.out_channels == 6  # width changes at conv1
    _zero_residual(down)
    x = torch.randn(1, 6, 8, 8)
    assert torch.allclose(down(x), F.avg_pool2d(down.shortcut(x), 2), atol=1e-6)  # pool(conv1×1(x))
    up = ResBlock(6, 4, resample="up")
    _zero_residual(up)
    assert torch.allclose(up(x), up.shortcut(F.interpolate(x, scale_factor=2)), atol=1e-6)  # conv1×1(up(x))
    assert isinstance(ResBlock(6, 6, resample="down", variant="stargan_v2").shortcut, torch.nn.Identity)
    assert ResBlock(4, 6, variant="stargan_v2").conv1.out_channels == 4
    with pytest.raises(ValueError, match="architecture"):
        ResBlock(4, 4, variant="other")


def test_authors_spade_up_block_has_a_plain_shortcut():
    block = SPADEResBlock(8, 4, code_channels=3, hidden=4, upsample=True)
    assert block.spade_s is None and block.conv_s.bias is not None
    _zero_residual(block)
    x = torch.randn(2, 8, 4, 4)
    out = block(x, torch.randn(2, 3, 16, 16))
    assert torch.allclose(out, block.conv_s(F.interpolate(x, scale_factor=2)), atol=1e-6)  # no SPADE, no √2
    assert SPADEResBlock(8, 4, 3, 4, upsample=True, variant="stargan_v2").spade_s is not None


@pytest.mark.parametrize("variant", ["authors", "stargan_v2"])
def test_code_heads_are_non_negative_only_for_the_authors(variant):
    torch.manual_seed(0)
    M = MappingNetwork(3, code_size=16, code_channels=4, start_channels=8, channels=8, variant=variant)
    E = StyleEncoder(3, 32, code_size=16, code_channels=4, nef=4, variant=variant)
    s = M(torch.randn(4, 16), torch.randint(-1, 2, (4, 3)).float())
    e = E(torch.rand(4, 3, 32, 32) * 2 - 1, torch.zeros(4, 3))
    if variant == "authors":  # relu(IN(conv1×1(relu(z)))) ≥ 0
        assert s.min() >= 0 and e.min() >= 0 and isinstance(M.head[-1], torch.nn.ReLU)
    else:  # IN → ReLU → conv1×1: signed
        assert s.min() < 0 and e.min() < 0 and isinstance(M.head[-1], torch.nn.Conv2d)


def test_paper_architecture_at_128_px():
    n = 14
    G = BridgeGenerator(128, code_channels=32)
    M, E = MappingNetwork(n, code_size=64), StyleEncoder(n, 128, code_size=64)
    D = BridgeDiscriminator(128, n)
    # Fig. 2: 32 → 64 → 128 → 256 (16×16), one IN + one SPADE intermediate block, three SPADE up-blocks
    assert G.n_downsampling == 3 and G.from_rgb.out_channels == 32 and len(G.down) == 4 and len(G.up) == 4
    assert [b.conv2.out_channels for b in G.up] == [256, 128, 64, 32]
    # Fig. 4: d + n → FC 1024 = 4×4×64 → four up-blocks → 64×64×32;  Fig. 5: 3 + n → 16 → 32 …, S 64×64×32
    assert M.fc.in_features == 16 + n and M.fc.out_features == 1024 and len(M.blocks) == 4
    assert E.from_input.in_channels == 3 + n and len(E.blocks) == 4
    # Fig. 3: 16 → 32 → 64 → 128 → 256 at 8×8, heads Conv8×8 → 256 → FC → 1 / n
    assert D.final_size == 8 and D.trunk[-1].conv2.out_channels == 256
    assert D.src_head[1].kernel_size == (8, 8) and D.cls_head[-1].out_features == n and D.src_head[-1].out_features == 1
    x, d = torch.rand(1, 3, 128, 128) * 2 - 1, torch.tensor([[1.0, -1.0] + [0.0] * (n - 2)])
    s = M(torch.randn(1, 16), d) + E(x, -d)
    assert s.shape == (1, 32, 64, 64)
    assert G(x, s).shape == (1, 3, 128, 128)


@pytest.mark.parametrize("variant", ["authors", "stargan_v2"])
@pytest.mark.parametrize("size,code", [(32, 16), (64, 32), (32, 8)])
def test_other_resolutions(size, code, variant):
    n, v = 4, {"variant": variant}
    G = BridgeGenerator(size, code_channels=8, ngf=8, spade_hidden=8, **v)
    M = MappingNetwork(n, code_size=code, code_channels=8, start_channels=8, channels=8, **v)
    E = StyleEncoder(n, size, code_size=code, code_channels=8, nef=4, **v)
    D = BridgeDiscriminator(size, n, ndf=8, **v)
    x, d = torch.rand(3, 3, size, size) * 2 - 1, torch.randint(-1, 2, (3, n)).float()
    s = M(torch.randn(3, 16), d) + E(x, -d)
    assert s.shape == (3, 8, code, code)
    y = G(x, s)
    assert y.shape == x.shape and y.abs().max() <= 1
    out = D(y)
    assert out.src.shape == (3,) and out.cls.shape == (3, n)
    assert torch.allclose(D.critic(y), out.src)


def test_encoder_reads_att_diff():
    E = StyleEncoder(3, 32, code_size=16, code_channels=4, nef=4)
    x = torch.rand(2, 3, 32, 32)
    assert not torch.allclose(E(x, torch.zeros(2, 3)), E(x, torch.tensor([[1.0, 0, -1], [0, 1, 0]])))


def test_encoder_without_norm_keeps_absolute_colour():
    """IN with the StarGAN v2-style head (IN first) makes E blind to a uniform colour shift of the image (the
    authors' head, ReLU → Conv → IN, is not exactly blind); ``norm=none`` removes every IN."""
    with_in = StyleEncoder(2, 32, code_size=16, code_channels=4, nef=4, variant="stargan_v2")
    without = StyleEncoder(2, 32, code_size=16, code_channels=4, nef=4, norm="none", variant="stargan_v2")
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in StyleEncoder(2, 32, 16, 4, 4, norm="none").modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in with_in.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in without.modules())
    x, d = torch.rand(2, 3, 32, 32) - 0.5, torch.zeros(2, 2)
    brighter = x + 0.3  # a shift the first 1×1 conv maps to a per-channel constant, which IN then removes
    assert torch.allclose(with_in(x, d), with_in(brighter, d), atol=1e-4)
    assert not torch.allclose(without(x, d), without(brighter, d), atol=1e-3)


def test_bad_sizes_are_one_value_error():
    with pytest.raises(ValueError, match="power of two"):
        MappingNetwork(4, code_size=24)
    with pytest.raises(ValueError, match="discriminator.n_blocks"):
        BridgeDiscriminator(32, 4, n_blocks=6)
