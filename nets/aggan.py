"""AGGAN networks (Tang et al., "Attention-Guided GAN", Sec. III-D) and the CycleGAN/StarGAN baselines'.

``AttentionGuidedGenerator`` is the CycleGAN ResNet generator [c7s1-64, d128, d256, R256×n, u128, u64, c7s1-k]
whose last layer emits k = 4 channels with ``attention=True`` (1 attention mask M + 3 content channels R, Eq. 1:
``G(x) = R·M + x·(1−M)``) and k = 3 (a plain tanh image, CycleGAN) with ``attention=False``. With
``num_domains > 0`` the target label is tiled and concatenated to the input (the multi-domain form the paper
uses for RaFD, StarGAN-style).

``Discriminator`` is [C64, C128, C256, C512, C512(stride 1)] then global average pooling and a 1×1 conv (AGGAN's
D) or a PatchGAN map (``global_pool=False``, CycleGAN's D); ``extra_in_channels=1`` turns it into the
attention-guided discriminator D_A that sees the pair [M, image] (Eq. 3). ``num_classes > 0`` adds StarGAN's
domain-classification head on the shared trunk.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from nets.blocks import ConvNormAct, ResidualBlock, UpBlock, init_weights, make_norm, tile_labels


class GeneratorOutput(NamedTuple):
    image: torch.Tensor  # B×3×H×W in [-1, 1]
    mask: torch.Tensor | None  # B×1×H×W in [0, 1] (attention M); None without attention
    content: torch.Tensor | None  # B×3×H×W (content R); None without attention


class AttentionGuidedGenerator(nn.Module):
    """G: x (B×3×H×W) [, target one-hot B×N] → GeneratorOutput.

    ``content_activation``: the released code leaves R unbounded; ``tanh`` (default, our choice) keeps R in the
    image range so G(x) stays in [−1, 1].
    """

    def __init__(
        self,
        ngf: int = 64,
        n_downsampling: int = 2,
        n_blocks: int = 9,
        norm: str = "batch",
        upsample: str = "deconv",
        attention: bool = True,
        content_activation: str = "tanh",
        num_domains: int = 0,
        in_channels: int = 3,
        init: str = "normal",
    ) -> None:
        super().__init__()
        self.attention = attention
        self.num_domains = num_domains
        self.content_activation = content_activation
        layers: list[nn.Module] = [
            ConvNormAct(in_channels + num_domains, ngf, 7, norm=norm, act="relu", pad_mode="reflect")
        ]
        ch = ngf
        for _ in range(n_downsampling):
            layers.append(ConvNormAct(ch, ch * 2, 3, stride=2, norm=norm, act="relu"))
            ch *= 2
        layers += [ResidualBlock(ch, norm=norm) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers.append(UpBlock(ch, ch // 2, mode=upsample, norm=norm))
            ch //= 2
        out_ch = 4 if attention else 3
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7)]
        self.body = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> GeneratorOutput:
        inp = x
        if self.num_domains:
            if target is None:
                raise ValueError("this generator is conditioned on a target label; pass target (B×N one-hot)")
            inp = torch.cat([x, tile_labels(target.to(x.dtype), x.shape[2], x.shape[3])], dim=1)
        out = self.body(inp)
        if not self.attention:
            return GeneratorOutput(torch.tanh(out), None, None)
        mask = torch.sigmoid(out[:, :1])
        content = out[:, 1:]
        if self.content_activation == "tanh":
            content = torch.tanh(content)
        image = content * mask + x * (1 - mask)  # Eq. 1
        return GeneratorOutput(image, mask, content)


class DiscriminatorOutput(NamedTuple):
    src: torch.Tensor  # B×1 (global) or B×1×h×w (patch): real/fake scores
    cls: torch.Tensor | None  # B×num_classes domain logits, or None


class Discriminator(nn.Module):
    """[C64, C128, …, C(ndf·2^(n_layers−1)) stride 2] + C stride 1 (no norm) → src head [+ cls head].

    ``norm_first``: the paper says BatchNorm is used on the first C64 (unlike pix2pix/CycleGAN); ambiguous
    wording, so a switch — default False as in the standard PatchGAN.
    ``patchgan``: CycleGAN/pix2pix's 70×70 PatchGAN instead (for ``method=cyclegan``): the stride-1 layer doubles
    the width (up to ndf·8) and is normalised, and the patch head is a 4×4 convolution.
    """

    def __init__(
        self,
        ndf: int = 64,
        n_layers: int = 4,
        norm: str = "batch",
        global_pool: bool = True,
        extra_in_channels: int = 0,
        num_classes: int = 0,
        norm_first: bool = False,
        in_channels: int = 3,
        init: str = "normal",
        patchgan: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch_in, ch = in_channels + extra_in_channels, ndf
        for i in range(n_layers):
            layers.append(
                ConvNormAct(ch_in, ch, 4, stride=2, padding=1, norm=norm if (i > 0 or norm_first) else "none", act="lrelu")
            )
            ch_in, ch = ch, min(ch * 2, ndf * 8)
        if patchgan:
            layers.append(ConvNormAct(ch_in, ch, 4, stride=1, padding=1, norm=norm, act="lrelu"))
            ch_in = ch
        else:
            layers.append(ConvNormAct(ch_in, ch_in, 4, stride=1, padding=1, norm="none", act="lrelu"))
        self.trunk = nn.Sequential(*layers)
        self.global_pool = global_pool
        head = 1 if global_pool else (4 if patchgan else 3)
        self.src_head = nn.Conv2d(ch_in, 1, head, padding=0 if global_pool else 1)
        self.cls_head = nn.Conv2d(ch_in, num_classes, 1) if num_classes else None
        init_weights(self, init)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiscriminatorOutput:
        if mask is not None:
            x = torch.cat([mask, x], dim=1)
        f = self.trunk(x)
        pooled = f.mean(dim=(2, 3), keepdim=True)
        src = self.src_head(pooled if self.global_pool else f)
        src = src.flatten(1) if self.global_pool else src
        cls = self.cls_head(pooled).flatten(1) if self.cls_head is not None else None
        return DiscriminatorOutput(src, cls)


__all__ = ["AttentionGuidedGenerator", "Discriminator", "GeneratorOutput", "DiscriminatorOutput", "make_norm"]
