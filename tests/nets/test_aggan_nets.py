import pytest
import torch
from omegaconf import OmegaConf

from nets.aggan import AttentionGuidedGenerator, AttentionStarGANGenerator, Discriminator
from nets.blocks import ResidualBlock
from tests.conftest import compose_config


@pytest.mark.parametrize("upsample", ["deconv", "pixelshuffle", "pixelshuffle_authors", "resize"])
def test_attention_generator_shapes_and_ranges(upsample):
    g = AttentionGuidedGenerator(ngf=8, n_blocks=1, upsample=upsample, content_activation="tanh")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = g(x)
    assert out.image.shape == (2, 3, 32, 32)
    assert out.mask.shape == (2, 1, 32, 32) and out.content.shape == (2, 3, 32, 32)
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert out.image.min() >= -1 and out.image.max() <= 1


def test_authors_upsampling_block_is_conv3_norm_relu_conv1x1_pixelshuffle():
    from nets.blocks import UpBlock

    block = UpBlock(16, 8, mode="pixelshuffle_authors", norm="batch")
    kinds = [type(m).__name__ for m in block]
    assert kinds == ["ReflectionPad2d", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "PixelShuffle", "BatchNorm2d", "ReLU"]
    assert block[1].kernel_size == (3, 3) and block[1].out_channels == 8
    assert block[4].kernel_size == (1, 1) and block[4].out_channels == 32
    assert block(torch.zeros(2, 16, 5, 5)).shape == (2, 8, 10, 10)


def test_attention_composition_is_eq1():
    g = AttentionGuidedGenerator(ngf=8, n_blocks=1)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out = g(x)
    assert torch.allclose(out.image, out.content * out.mask + x * (1 - out.mask), atol=1e-6)


def test_zero_mask_returns_input_exactly():
    g = AttentionGuidedGenerator(ngf=8, n_blocks=1)
    last = g.body[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([-1e4, 0.0, 0.0, 0.0]))  # sigmoid(-1e4) == 0
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(g(x).image, x)


def test_plain_generator_has_no_mask():
    g = AttentionGuidedGenerator(ngf=8, n_blocks=1, attention=False)
    out = g(torch.zeros(1, 3, 16, 16))
    assert out.mask is None and out.content is None
    assert g.body[-1].out_channels == 3


def test_conditional_generator_uses_label():
    g = AttentionGuidedGenerator(ngf=8, n_blocks=1, num_domains=3, norm="instance")
    x = torch.rand(2, 3, 16, 16)
    a = g(x, torch.eye(3)[[0, 0]]).image
    b = g(x, torch.eye(3)[[1, 1]]).image
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="target"):
        g(x)


@pytest.mark.parametrize("global_pool,shape", [(True, (2, 1)), (False, (2, 1, 3, 3))])
def test_discriminator_heads(global_pool, shape):
    d = Discriminator(ndf=8, n_layers=3, global_pool=global_pool, num_classes=5, padding=1)
    out = d(torch.zeros(2, 3, 32, 32))
    assert out.src.shape == shape
    assert out.cls.shape == (2, 5)


def test_attention_discriminator_takes_mask_channel():
    d = Discriminator(ndf=8, n_layers=3, extra_in_channels=1, padding=1)
    x, m = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32)
    assert d(x, m).src.shape == (2, 1)
    assert d.trunk[0][0].in_channels == 4
    out_a, out_b = d(x, m).src, d(x, torch.zeros_like(m)).src
    assert not torch.allclose(out_a, out_b)


def test_published_generator_size_is_cyclegan_like():
    g = AttentionGuidedGenerator(ngf=64, n_blocks=9, attention=True, content_activation="tanh")
    n = sum(p.numel() for p in g.parameters())
    assert 7.5e6 < n < 12e6  # ≈ 7.9M with 6 blocks in the released code; 9 blocks adds ≈ 3.5M


def test_patchgan_is_cyclegans_70x70_discriminator():
    """C64-C128-C256 (stride 2), C512 (stride 1, normalised), 4×4 head: 30×30 patches at 256 px."""
    d = Discriminator(ndf=8, n_layers=3, norm="instance", global_pool=False, patchgan=True, padding=1)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 1]
    assert convs[-1].kernel_size == (4, 4)
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in d.modules()) == 3
    with torch.no_grad():
        assert d(torch.zeros(1, 3, 256, 256)).src.shape == (1, 1, 30, 30)


def test_generator_defaults_are_the_papers():
    """Five residual blocks (Sec. III-D), BatchNorm, raw content R (paper and code): a content bias of 5 gives R = 5."""
    g = AttentionGuidedGenerator(ngf=8)
    assert sum(isinstance(m, ResidualBlock) for m in g.modules()) == 5
    last = g.body[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.0, 5.0, 5.0, 5.0]))
    out = g(torch.zeros(1, 3, 16, 16))
    assert torch.allclose(out.content, torch.full_like(out.content, 5.0)) and out.image.max() > 1
    with pytest.raises(ValueError, match="content_activation"):
        AttentionGuidedGenerator(ngf=8, content_activation="sigmoid")


def aggan_discriminator(**overrides):
    """The discriminator as conf/method/aggan.yaml builds it at paper scale."""
    cfg = OmegaConf.to_container(compose_config(["run_dir=/tmp/unused", "method=aggan"]).method.discriminator, resolve=True)
    cfg.pop("_target_")
    return Discriminator(**{**cfg, **overrides})


@pytest.mark.parametrize("norm_first,expected", [(True, 4), (False, 3)])
def test_first_c64_batchnorm_switch_adds_or_removes_the_layer(norm_first, expected):
    d = aggan_discriminator(ndf=8, norm_first=norm_first)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) == expected
    assert isinstance(d.trunk[0][1], torch.nn.BatchNorm2d if norm_first else torch.nn.Identity)
    if norm_first:
        assert d.trunk[0][1].num_features == 8


def test_aggan_discriminator_has_the_authors_padding_and_slope():
    """BN on the first C64, unpadded 4×4 convs and LeakyReLU(0.01): at 256 px 256 → 127 → 62 → 30 → 14 (stride 2)
    → 11 (stride 1)."""
    d = aggan_discriminator(ndf=4)
    assert isinstance(d.trunk[0][1], torch.nn.BatchNorm2d)
    convs = [m for m in d.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.padding == (0, 0) for c in convs) and len(convs) == 5
    assert all(m.negative_slope == 0.01 for m in d.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert d.trunk_size(256) == 11 and d.trunk(torch.zeros(1, 3, 256, 256)).shape[-1] == 11
    with pytest.raises(ValueError, match="too small"):
        aggan_discriminator(ndf=4, n_layers=3).check_image_size(32)  # 32 → 15 → 6 → 2 → −1
    Discriminator(ndf=4, n_layers=3).check_image_size(32)  # the class default pads 1 (pix2pix): 32 → 16 → 8 → 4 → 3


def test_cyclegan_instance_norm_has_no_learned_parameters():
    g = AttentionGuidedGenerator(ngf=8, n_blocks=1, norm="instance_noaffine", attention=False)
    norms = [m for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)
    assert sum(p.numel() for m in norms for p in m.parameters()) == 0


def test_authors_multi_domain_generator_is_stargans_with_an_attention_head():
    g = AttentionStarGANGenerator(num_domains=3, ngf=8, n_blocks=2)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 3 + 3 and convs[0].kernel_size == (7, 7) and convs[0].padding == (3, 3)
    assert [c.kernel_size for c in convs[1:3]] == [(4, 4), (4, 4)] and convs[-1].out_channels == 4
    assert convs[-1].bias is None and sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules()) == 2
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    a, b = g(x, torch.eye(3)[[0, 0]]), g(x, torch.eye(3)[[1, 1]])
    assert torch.allclose(a.image, a.content * a.mask + x * (1 - a.mask), atol=1e-6)
    assert a.mask.shape == (2, 1, 16, 16) and not torch.allclose(a.image, b.image)
    plain = AttentionStarGANGenerator(num_domains=3, ngf=8, n_blocks=1, attention=False)
    assert plain(x, torch.eye(3)[[0, 2]]).mask is None
