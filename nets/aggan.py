"""AGGAN networks (Tang et al., "Attention-Guided GAN", Sec. III-D) and the CycleGAN/StarGAN baselines'.

``AttentionGuidedGenerator`` is the CycleGAN ResNet generator [c7s1-64, d128, d256, R256×n, u128, u64, c7s1-k]
whose last layer emits k = 4 channels with ``attention=True`` (1 attention mask M + 3 content channels R, Eq. 1:
``G(x) = R·M + x·(1−M)``) and k = 3 (a plain tanh image, CycleGAN) with ``attention=False``. With
``num_domains > 0`` the target label is tiled and concatenated to the input (the multi-domain form the paper
uses for RaFD, StarGAN-style).

``Discriminator`` is [C64, C128, C256, C512, C512(stride 1)] then global average pooling and a 1×1 conv (AGGAN's
D) or a PatchGAN map (``global_pool=False``, CycleGAN's D); ``extra_in_channels=1`` turns it into the
attention-guided discriminator D_A that sees the pair [M, image] (Eq. 3). ``num_classes > 0`` adds StarGAN's
domain-classification head on the shared trunk (the ``hybrid`` multi-domain form).

``AttentionStarGANGenerator`` is the authors' multi-domain generator (``Ha0Tang/AttentionGAN``
``stargan_attention/model.py``): StarGAN's G with a 4-channel head (mask + content, Eq. 1); its discriminator is
StarGAN's (``nets.spm.StarGANDiscriminator``).

AGGAN's published values (conf/method/aggan.yaml; the generator's are also its class defaults) follow the paper
(Sec. III-D), and where it is silent the authors' code (``models.py``): 5 residual blocks (paper; the code has 6),
raw content R (both), BatchNorm on D's first C64 (both), D's 4×4 convs unpadded with LeakyReLU(0.01) (code; the
paper gives neither). docs/fidelity/aggan.md lists every row.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from nets.blocks import ConvNormAct, ResidualBlock, UpBlock, deconv_up, init_weights, make_norm, tile_labels


class GeneratorOutput(NamedTuple):
    image: torch.Tensor  # B×3×H×W; in [-1, 1] with a tanh head or tanh content (raw content R can leave it)
    mask: torch.Tensor | None  # B×1×H×W in [0, 1] (attention M); None without attention
    content: torch.Tensor | None  # B×3×H×W (content R); None without attention


class AttentionGuidedGenerator(nn.Module):
    """G: x (B×3×H×W) [, target one-hot B×N] → GeneratorOutput.

    ``n_blocks``: 5 residual blocks (the paper's list, Sec. III-D; the released code has 6).
    ``content_activation``: ``none`` (default): R unbounded, as the paper (R ∈ ℝ^{H×W×3}) and the released code;
    ``tanh`` keeps R, and so G(x), in [−1, 1].
    """

    def __init__(
        self,
        ngf: int = 64,
        n_downsampling: int = 2,
        n_blocks: int = 5,
        norm: str = "batch",
        upsample: str = "deconv",
        attention: bool = True,
        content_activation: str = "none",
        num_domains: int = 0,
        in_channels: int = 3,
        init: str = "normal",
    ) -> None:
        super().__init__()
        self.attention = attention
        self.num_domains = num_domains
        if content_activation not in CONTENT_ACTIVATIONS:
            raise ValueError(f"content_activation must be one of {', '.join(CONTENT_ACTIVATIONS)}, got {content_activation!r}")
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
        return compose(self.body(inp), x, self.attention, self.content_activation)


CONTENT_ACTIVATIONS = ("none", "tanh")


def compose(out: torch.Tensor, x: torch.Tensor, attention: bool, content_activation: str) -> GeneratorOutput:
    """A generator's last layer → its output: with attention, mask M = sigmoid(channel 0), content R = channels
    1–3 (raw or tanh) and G(x) = R·M + x·(1−M) (Eq. 1); without, a tanh image."""
    if not attention:
        return GeneratorOutput(torch.tanh(out), None, None)
    mask = torch.sigmoid(out[:, :1])
    content = torch.tanh(out[:, 1:]) if content_activation == "tanh" else out[:, 1:]
    return GeneratorOutput(content * mask + x * (1 - mask), mask, content)


class AttentionStarGANGenerator(nn.Module):
    """The authors' multi-domain G: x (B×3×H×W), target one-hot (B×N) → GeneratorOutput.

    StarGAN's generator on [x, tiled label]: Conv7 (zero pad) → ``n_downsampling`` × Conv4 s2 → ``n_blocks``
    residual blocks (zero pad) → ``n_downsampling`` × ConvT4 s2, each with instance norm and ReLU, then Conv7 → 4
    channels (no bias): mask + raw content, Eq. 1 (``stargan_attention/model.py``: 6 blocks, ngf 64).
    ``attention=False``: a 3-channel tanh head, i.e. StarGAN's own generator (the −AG form).
    """

    def __init__(self, num_domains: int, ngf: int = 64, n_downsampling: int = 2, n_blocks: int = 6,
                 norm: str = "instance", attention: bool = True, content_activation: str = "none",
                 init: str = "default") -> None:
        from nets.spm import SPMEncoder  # StarGAN's encoder; nets.spm imports this module, so not at the top

        super().__init__()
        if content_activation not in CONTENT_ACTIVATIONS:
            raise ValueError(f"content_activation must be one of {', '.join(CONTENT_ACTIVATIONS)}, got {content_activation!r}")
        self.num_domains, self.attention, self.content_activation = num_domains, attention, content_activation
        encoder = SPMEncoder(3 + num_domains, ngf, n_downsampling, n_blocks, norm, pad_mode="zeros")
        ch = encoder.out_channels
        ups = []
        for _ in range(n_downsampling):
            ups.append(deconv_up(ch, ch // 2, norm))
            ch //= 2
        head = nn.Conv2d(ch, 4 if attention else 3, 7, 1, 3, bias=False)
        self.body = nn.Sequential(encoder, *ups, head)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> GeneratorOutput:
        if target is None:
            raise ValueError("this generator is conditioned on a target label; pass target (B×N one-hot)")
        labels = tile_labels(target.to(x.dtype), x.shape[2], x.shape[3])
        return compose(self.body(torch.cat([x, labels], dim=1)), x, self.attention, self.content_activation)


class DiscriminatorOutput(NamedTuple):
    src: torch.Tensor  # B×1 (global) or B×1×h×w (patch): real/fake scores
    cls: torch.Tensor | None  # B×num_classes domain logits, or None


class Discriminator(nn.Module):
    """[C64, C128, …, C(ndf·2^(n_layers−1)) stride 2] + C stride 1 (no norm) → src head [+ cls head].

    The class serves AGGAN, CycleGAN and SAT (``nets.sat``); its defaults are pix2pix/CycleGAN's D, and
    ``conf/method/aggan.yaml`` sets AGGAN's published values:
    ``norm_first``: BatchNorm on the first C64 — AGGAN: true, as the paper ("the BatchNorm is used for the first
    C64", unlike [11], [47]) and the released ``Discriminator``; false (default) gives pix2pix/CycleGAN's layer.
    ``padding``, ``slope``: the 4×4 convs' zero padding and the LeakyReLU slope. The paper gives neither; AGGAN's
    released code uses 0 and 0.01 (PyTorch's default); pix2pix/CycleGAN (default) use 1 and 0.2.
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
        padding: int = 1,
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch_in, ch = in_channels + extra_in_channels, ndf
        conv = dict(padding=padding, act="lrelu", slope=slope)
        for i in range(n_layers):
            layers.append(ConvNormAct(ch_in, ch, 4, stride=2, norm=norm if (i > 0 or norm_first) else "none", **conv))
            ch_in, ch = ch, min(ch * 2, ndf * 8)
        if patchgan:
            layers.append(ConvNormAct(ch_in, ch, 4, stride=1, norm=norm, **conv))
            ch_in = ch
        else:
            layers.append(ConvNormAct(ch_in, ch_in, 4, stride=1, norm="none", **conv))
        self.n_layers, self.padding = n_layers, padding
        self.trunk = nn.Sequential(*layers)
        self.global_pool = global_pool
        head = 1 if global_pool else (4 if patchgan else 3)
        self.src_head = nn.Conv2d(ch_in, 1, head, padding=0 if global_pool else 1)
        self.cls_head = nn.Conv2d(ch_in, num_classes, 1) if num_classes else None
        init_weights(self, init)

    def trunk_size(self, image_size: int) -> int:
        """The side of the trunk's output map for ``image_size`` inputs (< 1: the image is too small)."""
        size = image_size
        for _ in range(self.n_layers):
            size = (size + 2 * self.padding - 4) // 2 + 1
        return size + 2 * self.padding - 3

    def check_image_size(self, image_size: int) -> None:
        """Raise ValueError when ``image_size`` inputs leave no map after the 4×4 convs."""
        if self.trunk_size(image_size) < 1:
            raise ValueError(
                f"{image_size} px images are too small for {self.n_layers} stride-2 4×4 convs with padding "
                f"{self.padding}; lower discriminator.n_layers or set discriminator.padding=1"
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiscriminatorOutput:
        if mask is not None:
            x = torch.cat([mask, x], dim=1)
        f = self.trunk(x)
        pooled = f.mean(dim=(2, 3), keepdim=True)
        src = self.src_head(pooled if self.global_pool else f)
        src = src.flatten(1) if self.global_pool else src
        cls = self.cls_head(pooled).flatten(1) if self.cls_head is not None else None
        return DiscriminatorOutput(src, cls)


__all__ = ["AttentionGuidedGenerator", "AttentionStarGANGenerator", "Discriminator", "GeneratorOutput", "DiscriminatorOutput", "make_norm"]
