"""SAT networks: G0's layout, the attention branch, the composition G(x) = A⊙G0(x) + (1−A)⊙x, the PatchGAN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nets.aggan import Discriminator
from nets.blocks import ResidualBlock
from nets.sat import AttentionBranch, VanillaGenerator, compose


def test_g0_has_two_stride2_blocks_nine_dilated_residual_blocks_two_deconvs_and_batchnorm():
    g = VanillaGenerator(ngf=8)
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert sum(c.stride == (2, 2) for c in convs) == 2
    blocks = [m for m in g.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 9
    assert all(c.dilation == (2, 2) for b in blocks for c in b.modules() if isinstance(c, nn.Conv2d))
    deconvs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 2 and all(d.stride == (2, 2) for d in deconvs)
    assert any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in g.modules())


def test_g0_output_is_an_image_of_the_input_size():
    g = VanillaGenerator(ngf=8, n_blocks=1)
    out = g(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert out.shape == (2, 3, 32, 32) and out.min() >= -1 and out.max() <= 1


def test_g0_without_stem_starts_with_a_stride2_block():
    g = VanillaGenerator(ngf=8, n_blocks=1, stem=False)
    first = next(m for m in g.modules() if isinstance(m, nn.Conv2d))
    assert first.stride == (2, 2) and first.in_channels == 3
    assert g(torch.zeros(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_residual_g0_starts_as_the_identity_and_learns_a_change():
    torch.manual_seed(0)
    g = VanillaGenerator(ngf=8, n_blocks=1, output="residual")
    assert not any(isinstance(m, nn.Tanh) for m in g.modules())
    x = torch.rand(2, 3, 16, 16) * 1.8 - 0.9
    assert torch.equal(g(x), x)
    opt = torch.optim.Adam(g.parameters(), 1e-2)
    for _ in range(3):  # the zero-initialised last conv must not block the gradient to the body for good
        loss = (g(x) - (x + 0.5).clamp(-1, 1)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    first = next(m for m in g.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    out = g(x)
    assert not torch.equal(out, x) and out.min() >= -1 and out.max() <= 1


def test_g0_output_must_be_image_or_residual():
    with pytest.raises(ValueError, match="'image' or 'residual'"):
        VanillaGenerator(ngf=8, n_blocks=1, output="delta")


def test_attention_branch_is_vgg_to_conv3_3_two_deconvs_and_a_sigmoid_map():
    a = AttentionBranch(decoder_channels=(16, 8), pretrained=False)
    assert a.encoder.layer_names == ["relu3_3"] and len(a.encoder.features) == 16
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in a.decoder.modules()) == 2
    assert a.out_conv.out_channels == 1
    mask = a(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert mask.shape == (2, 1, 32, 32) and mask.min() >= 0 and mask.max() <= 1


def test_attention_encoder_is_trainable_unless_frozen():
    assert all(p.requires_grad for p in AttentionBranch(decoder_channels=(8, 8), pretrained=False).encoder.parameters())
    frozen = AttentionBranch(decoder_channels=(8, 8), pretrained=False, train_encoder=False)
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    assert all(p.requires_grad for p in frozen.decoder.parameters())


def test_composition_with_zero_attention_returns_the_input_exactly():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    content = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(compose(content, torch.zeros(2, 1, 16, 16), x), x)
    assert torch.equal(compose(content, torch.ones(2, 1, 16, 16), x), content)
    mask = torch.rand(2, 1, 16, 16)
    assert torch.allclose(compose(content, mask, x), mask * content + (1 - mask) * x)


def test_attention_branch_driven_to_zero_leaves_the_input_untouched():
    a = AttentionBranch(decoder_channels=(8, 8), pretrained=False)
    g = VanillaGenerator(ngf=8, n_blocks=1)
    nn.init.zeros_(a.out_conv.weight)
    nn.init.constant_(a.out_conv.bias, -1e4)  # sigmoid(-1e4) == 0 exactly in float32
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(compose(g(x), a(x), x), x)


def test_five_layer_patchgan_discriminator():
    d = Discriminator(ndf=8, n_layers=3, global_pool=False)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert d(torch.zeros(2, 3, 32, 32)).src.shape == (2, 1, 3, 3)  # one score per patch


def test_mask_prior_sets_the_initial_attention():
    """out_bias: the bias before the sigmoid at initialisation (None keeps init's 0); same weights otherwise, so the
    logits of A(x) move by exactly out_bias."""
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    default = AttentionBranch(decoder_channels=[8, 4], pretrained=False).eval()
    torch.manual_seed(0)
    prior = AttentionBranch(decoder_channels=[8, 4], pretrained=False, out_bias=-2.0).eval()
    assert default.out_conv.bias.item() == 0.0 and prior.out_conv.bias.item() == -2.0
    assert torch.allclose(torch.logit(prior(x)) - torch.logit(default(x)), torch.tensor(-2.0), atol=1e-4)


def test_a_shallower_encoder_takes_one_deconv_per_pooling():
    branch = AttentionBranch(decoder_channels=[8], encoder_layer="relu2_2", pretrained=False)
    assert branch(torch.zeros(1, 3, 16, 16)).shape == (1, 1, 16, 16)
