"""SAT networks (Yang et al., "Show, Attend and Translate", Sec. 2 "The model architectures").

Paper ↔ code names: vanilla generator G0 = ``VanillaGenerator``; attention branch G_attn (A) = ``AttentionBranch``;
the final image ``G(x) = A(x)⊙G0(x) + (1−A(x))⊙x`` = ``compose(G0(x), A(x), x)``. The discriminator is the
five-layer PatchGAN of ``nets.aggan.Discriminator`` with ``n_layers=3, global_pool=False`` (three stride-2 convs,
one stride-1 conv, the stride-1 patch head), configured in ``conf/method/sat.yaml``.

- G0: [stem] → 2 stride-2 conv blocks → 9 residual blocks with dilation 2 → 2 stride-2 deconv blocks → conv to
  RGB (tanh); every conv but the last followed by BatchNorm + ReLU. The stem (c7s1-ngf, as in the
  pix2pix/CycleGAN generators the paper says G0 follows) is not in the paper's list of blocks: **[inferred]**,
  a switch (``stem``). tanh on the last layer puts G0(x) in the image range [−1, 1] **[inferred]**.
- A: VGG-19 up to conv3_3 (ImageNet-initialised, fine-tuned: "warm-started"), two deconv blocks back to the input
  resolution, a conv to one channel and a sigmoid → a probability map B×1×H×W.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from nets.blocks import ConvNormAct, ResidualBlock, UpBlock, init_weights
from nets.vgg import VGG19Features


class SATOutput(NamedTuple):
    image: torch.Tensor  # G(x), B×3×H×W in [−1, 1]
    mask: torch.Tensor  # A(x), B×1×H×W in [0, 1]
    content: torch.Tensor  # G0(x), B×3×H×W in [−1, 1]


def compose(content: torch.Tensor, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``G(x) = A(x)⊙G0(x) + (1−A(x))⊙x`` (SAT Sec. 2). A = 0 returns x exactly, A = 1 returns G0(x)."""
    return mask * content + (1 - mask) * x


class VanillaGenerator(nn.Module):
    """G0: x (B×3×H×W in [−1, 1]) → translated image (B×3×H×W in [−1, 1]).

    Args:
        ngf: width of the stem; the i-th stride-2 block has ``ngf·2^i`` channels, the deconv blocks halve back.
        n_downsampling: stride-2 conv blocks (2) and as many deconv blocks.
        n_blocks: residual blocks (9), each with ``dilation`` (2).
        norm: ``batch`` (paper), ``instance`` or ``none``.
        stem: a c7s1-ngf conv before the stride-2 blocks (pix2pix/CycleGAN design; not listed in the paper).
        upsample: ``deconv`` (paper) | ``resize`` | ``pixelshuffle``.
        output: ``image`` (paper: the last conv + tanh is the translated image) or ``residual`` (the last conv is a
            change added to the input, ``clamp(x + Δ, −1, 1)``, its weights zero-initialised so that G0 starts as
            the identity) **[inferred]**, for runs too short for G0 to learn to reproduce its input.
    """

    def __init__(
        self,
        ngf: int = 64,
        n_downsampling: int = 2,
        n_blocks: int = 9,
        dilation: int = 2,
        norm: str = "batch",
        stem: bool = True,
        upsample: str = "deconv",
        in_channels: int = 3,
        init: str = "normal",
        output: str = "image",
    ) -> None:
        super().__init__()
        if output not in ("image", "residual"):
            raise ValueError(f"G0's output (method.generator.output) must be 'image' or 'residual', got {output!r}")
        if output == "residual" and in_channels != 3:
            raise ValueError(f"a residual G0 adds its change to an RGB input; got in_channels={in_channels}")
        self.residual = output == "residual"
        layers: list[nn.Module] = []
        ch = in_channels
        if stem:
            layers.append(ConvNormAct(in_channels, ngf, 7, norm=norm, act="relu", pad_mode="reflect"))
            ch = ngf
        for i in range(n_downsampling):
            out = ngf * 2 ** (i + 1)
            layers.append(ConvNormAct(ch, out, 3, stride=2, norm=norm, act="relu"))
            ch = out
        layers += [ResidualBlock(ch, norm=norm, pad_mode="reflect", dilation=dilation) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers.append(UpBlock(ch, ch // 2, mode=upsample, norm=norm))
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7)]
        if not self.residual:
            layers.append(nn.Tanh())
        self.body = nn.Sequential(*layers)
        init_weights(self, init)
        if self.residual:
            last = self.body[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return (x + self.body(x)).clamp(-1.0, 1.0)
        return self.body(x)


class AttentionBranch(nn.Module):
    """A (G_attn): x (B×3×H×W in [−1, 1]) → attention map B×1×H×W in [0, 1].

    Args:
        decoder_channels: widths of the deconv blocks, one per pooling in the encoder (2 up to conv3_3).
        encoder_layer: the last VGG-19 layer of the encoder (``relu3_3``: conv3_3 and its ReLU).
        pretrained: ImageNet VGG-19 weights from the torch cache (``WeightsMissingError`` when absent) or random.
        train_encoder: fine-tune the VGG layers (paper: warm-started, i.e. trained on); False keeps them fixed and
            out of the optimizer.
        out_kernel: kernel of the last conv (before the sigmoid) **[inferred]**, reflect-padded like G0's.
        out_bias: the initial bias of that conv, the mask's prior (None: ``init``'s, 0 for ``normal``): 0 starts
            A(x) ≈ 0.5 everywhere, a negative
            value starts it near 0 (sigmoid(out_bias)), so the adversarial loss must open it where the change is
            **[inferred]** (the paper gives no initialisation).
    """

    def __init__(
        self,
        decoder_channels: Sequence[int] = (128, 64),
        encoder_layer: str = "relu3_3",
        pretrained: bool = True,
        train_encoder: bool = True,
        norm: str = "batch",
        upsample: str = "deconv",
        out_kernel: int = 7,
        weights_path: str | None = None,
        init: str = "normal",
        out_bias: float | None = None,
    ) -> None:
        super().__init__()
        self.encoder = VGG19Features([encoder_layer], pretrained=pretrained, frozen=not train_encoder,
                                     weights_path=weights_path)
        pools = sum(isinstance(m, nn.MaxPool2d) for m in self.encoder.features)
        if len(decoder_channels) != pools:
            raise ValueError(
                f"the attention decoder needs one deconv block per pooling of the VGG encoder up to {encoder_layer} "
                f"({pools}), got decoder_channels={list(decoder_channels)}"
            )
        ch = self.encoder.out_channels[0]
        ups: list[nn.Module] = []
        for out in decoder_channels:
            ups.append(UpBlock(ch, int(out), mode=upsample, norm=norm))
            ch = int(out)
        pad = out_kernel // 2
        self.decoder = nn.Sequential(*ups, nn.ReflectionPad2d(pad), nn.Conv2d(ch, 1, out_kernel))
        init_weights(self.decoder, init)
        if out_bias is not None:
            nn.init.constant_(self.out_conv.bias, float(out_bias))

    @property
    def out_conv(self) -> nn.Conv2d:
        """The conv whose output the sigmoid turns into A(x)."""
        return self.decoder[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (features,) = self.encoder(x)
        return torch.sigmoid(self.decoder(features))


__all__ = ["AttentionBranch", "SATOutput", "VanillaGenerator", "compose"]
