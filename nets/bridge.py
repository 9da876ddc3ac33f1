"""Networks of the label/reference bridge (Huang et al., "Bridging the Gap between Label- and Reference-based
Synthesis in Multi-attribute Image-to-Image Translation", ICCV 2021; supplement Sec. B, Figs. 2–5).

Paper ↔ code names (architecture facts from the supplement and ../shared/specs/methods.md §5):
- G (Fig. 2) → :class:`BridgeGenerator`: Conv1×1 → n_downsampling IN residual blocks with average pooling →
  one IN residual block → one SPADE residual block → n_downsampling SPADE residual blocks with upsampling →
  Conv1×1 → 3. ReLU throughout. The spatial attribute code S enters through every SPADE block.
- SPADE (Park et al.) → :class:`SPADE`: ``IN(x)·(1 + γ(S)) + β(S)``, γ and β from 3×3 conv heads on
  ``ReLU(conv3(resize(S)))``; :class:`SPADEResBlock` is SPADE's residual block.
- M (Fig. 4) → :class:`MappingNetwork`: concat(r, att_diff) → FC → 4×4×c0 → up-sampling IN residual blocks →
  Conv1×1 → S (``code_channels`` × ``code_size``², 32 × 64² at 128 px).
- E (Fig. 5) → :class:`StyleEncoder`: concat(X, tiled att_diff) → Conv1×1 → 4 IN residual blocks (the first
  ones pool down to ``code_size``) → Conv1×1 → S. One E serves every path (source, reference, cycle, keeping).
- D and C (Fig. 3) → :class:`BridgeDiscriminator`: a shared trunk (Conv1×1, residual blocks with average pooling
  and LeakyReLU) and two unshared heads (Conv k×k over the whole final map → LReLU → FC) giving the critic score
  (``src``, B) and the n attribute logits (``cls``, B×n).

Choices the supplement leaves open come from the authors' TensorFlow code (``huangqiusheng/BridgeGAN``
``models_712.py``; ``variant="authors"``, the default): pre-activation residual blocks whose width changes at
the first conv, pooling after the second conv, up-sampling after the first norm + act, a learned 1×1 shortcut
(with bias) whenever a block changes width or resolution, plain (unscaled) sums; SPADE up-blocks whose shortcut
is a plain 1×1 conv; S resized to each SPADE layer by nearest neighbour; M's and E's output layers
ReLU → Conv1×1 → IN → ReLU, so codes are non-negative. ``variant="stargan_v2"`` keeps the earlier
[inferred, StarGAN v2] choices (width change at the second conv, pooling between the convs, shortcut only on a
width change, sums / √2, SPADE on the shortcut, area/bilinear resizing, IN → ReLU → Conv1×1 signed codes).
Both: G's output layer ReLU → Conv1×1 → tanh (``out_act``); LeakyReLU slope 0.2 in D.

Resolution: the figures are for 128 px. Elsewhere ``code_size`` defaults to image_size/2, G's bottleneck to
16×16 (``n_downsampling`` = log2(image_size/16)) and the discriminator's final map to 8×8 (its Conv8×8);
each can be set explicitly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nets.aggan import DiscriminatorOutput
from nets.blocks import init_weights, make_activation, make_norm, tile_labels


def _log2_ratio(big: int, small: int, what: str) -> int:
    """log2(big/small) when it is a non-negative integer; otherwise one ValueError sentence."""
    if small < 1 or big % small or (big // small) & (big // small - 1):
        raise ValueError(f"{what}: {big} is not {small} times a power of two")
    return int(math.log2(big // small))


VARIANTS = ("authors", "stargan_v2")


def check_variant(variant: str) -> str:
    """``variant`` when it is one of :data:`VARIANTS`; otherwise one ValueError sentence."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown architecture '{variant}'; expected one of {', '.join(VARIANTS)}")
    return variant


def resize_code(code: torch.Tensor, size: tuple[int, int] | torch.Size, mode: str = "nearest") -> torch.Tensor:
    """Resize the spatial code S (B×C×h×w) to ``size``.

    ``nearest``: the authors' ``tf.image.resize_images(NEAREST_NEIGHBOR)`` (source pixel ⌊i·h/H⌋, as PyTorch's
    ``nearest``). ``area_bilinear`` [StarGAN v2-style choice]: area averaging when shrinking, bilinear when enlarging.
    """
    size = tuple(size)
    if tuple(code.shape[-2:]) == size:
        return code
    if mode == "nearest":
        return F.interpolate(code, size=size, mode="nearest")
    if size[0] <= code.shape[-2] and size[1] <= code.shape[-1]:
        return F.interpolate(code, size=size, mode="area")
    return F.interpolate(code, size=size, mode="bilinear", align_corners=False)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


# ------------------------------------------------------------------------------------------------- blocks
class ResBlock(nn.Module):
    """Pre-activation residual block, in one of two layouts (``variant``).

    ``authors`` (``models_712.py`` ``ResBlk``): norm1 → act → [×2 nearest] → conv3 (in→out) → norm2 → act → conv3
    (out→out) → [avg-pool]; shortcut a 1×1 conv with bias whenever the width changes *or* the block resamples
    (``conv(up(x))``, ``pool(conv(x))``), identity otherwise; the sum is **not** scaled.

    ``stargan_v2`` (StarGAN v2's ``ResBlk``): [×2 nearest of the input] → norm1 → act → conv3 (in→in) →
    [avg-pool] → norm2 → act → conv3 (in→out); a bias-free 1×1 shortcut only when the width changes; sum / √2.
    """

    def __init__(self, in_ch: int, out_ch: int, norm: str = "instance", act: str = "relu", resample: str = "none",
                 slope: float = 0.2, variant: str = "authors") -> None:
        super().__init__()
        if resample not in ("none", "up", "down"):
            raise ValueError(f"unknown resample '{resample}'; expected none, up or down")
        self.resample, self.variant = resample, check_variant(variant)
        mid = out_ch if variant == "authors" else in_ch
        self.norm1, self.norm2 = make_norm(norm, in_ch), make_norm(norm, mid)
        # not in place: with norm "none" the activation's input is x itself, which the shortcut still needs
        self.act = nn.LeakyReLU(slope) if act == "lrelu" else nn.ReLU() if act == "relu" else make_activation(act)
        self.conv1 = nn.Conv2d(in_ch, mid, 3, 1, 1)
        self.conv2 = nn.Conv2d(mid, out_ch, 3, 1, 1)
        if variant == "authors":
            learned = in_ch != out_ch or resample != "none"
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if learned else nn.Identity()
        else:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "authors":
            h = self.act(self.norm1(x))
            h = self.conv1(_up(h) if self.resample == "up" else h)
            h = self.conv2(self.act(self.norm2(h)))
            skip = self.shortcut(_up(x) if self.resample == "up" else x)
            if self.resample == "down":
                skip, h = F.avg_pool2d(skip, 2), F.avg_pool2d(h, 2)
            return skip + h
        if self.resample == "up":
            x = _up(x)
        skip = self.shortcut(x)
        h = self.conv1(self.act(self.norm1(x)))
        if self.resample == "down":
            skip, h = F.avg_pool2d(skip, 2), F.avg_pool2d(h, 2)
        h = self.conv2(self.act(self.norm2(h)))
        return (skip + h) / math.sqrt(2)


class SPADE(nn.Module):
    """Spatially-adaptive normalization: ``IN(x)·(1 + γ(S)) + β(S)`` with a parameter-free instance norm.

    x: B×C×H×W; code S: B×C_s×h×w, resized to H×W (:func:`resize_code` with ``resize``). γ, β: 3×3 convs on
    ``ReLU(conv3(S))`` (``hidden`` channels, 128 in the authors' code). With γ = β = 0 this is plain IN.
    """

    def __init__(self, channels: int, code_channels: int, hidden: int = 128, kernel: int = 3,
                 resize: str = "nearest") -> None:
        super().__init__()
        pad = kernel // 2
        self.resize = resize
        self.norm = nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
        self.shared = nn.Sequential(nn.Conv2d(code_channels, hidden, kernel, padding=pad), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, channels, kernel, padding=pad)
        self.beta = nn.Conv2d(hidden, channels, kernel, padding=pad)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = self.shared(resize_code(code, x.shape[-2:], self.resize))
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """A residual block whose two norms are SPADE on the code S, in one of two layouts (``variant``).

    ``authors`` (``ResBlk(norm='spade')``): SPADE → ReLU → [×2 nearest] → conv3 (in→out) → SPADE → ReLU → conv3
    (out→out); shortcut a plain 1×1 conv with bias on the up-sampled input (no SPADE) when the width changes or
    the block up-samples; S resized by nearest neighbour; sum not scaled.
    ``stargan_v2`` (SPADE paper's block): the input doubled first; [SPADE → ReLU → conv3] ×2 (the width changes
    at the second conv); shortcut SPADE → bias-free conv1×1 when the width changes; S resized by area/bilinear;
    sum / √2.
    """

    def __init__(self, in_ch: int, out_ch: int, code_channels: int, hidden: int = 128, upsample: bool = False,
                 variant: str = "authors") -> None:
        super().__init__()
        self.upsample, self.variant = upsample, check_variant(variant)
        authors = variant == "authors"
        mid, resize = (out_ch, "nearest") if authors else (in_ch, "area_bilinear")
        self.spade1 = SPADE(in_ch, code_channels, hidden, resize=resize)
        self.conv1 = nn.Conv2d(in_ch, mid, 3, 1, 1)
        self.spade2 = SPADE(mid, code_channels, hidden, resize=resize)
        self.conv2 = nn.Conv2d(mid, out_ch, 3, 1, 1)
        self.learned_shortcut = in_ch != out_ch or (authors and upsample)
        if self.learned_shortcut:
            self.spade_s = None if authors else SPADE(in_ch, code_channels, hidden, resize=resize)
            self.conv_s = nn.Conv2d(in_ch, out_ch, 1, bias=authors)
        self.act = nn.ReLU()

    def _shortcut(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if not self.learned_shortcut:
            return x
        return self.conv_s(x if self.spade_s is None else self.spade_s(x, code))

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if self.variant == "authors":
            h = self.act(self.spade1(x, code))
            h = self.conv1(_up(h) if self.upsample else h)
            h = self.conv2(self.act(self.spade2(h, code)))
            return self._shortcut(_up(x) if self.upsample else x, code) + h
        if self.upsample:
            x = _up(x)
        h = self.conv1(self.act(self.spade1(x, code)))
        h = self.conv2(self.act(self.spade2(h, code)))
        return (self._shortcut(x, code) + h) / math.sqrt(2)


def _code_head(in_ch: int, out_ch: int, norm: str = "instance", variant: str = "authors") -> nn.Sequential:
    """The "Conv1×1, ReLU, IN" output layer of M and E (Figs. 4, 5).

    ``authors``: ReLU → Conv1×1 → IN → ReLU, so codes are non-negative (``relu(instance_norm(conv(relu(z))))``).
    ``stargan_v2`` [inferred, StarGAN v2-style]: IN → ReLU → Conv1×1, so codes are signed.
    """
    if check_variant(variant) == "authors":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(in_ch, out_ch, 1), make_norm(norm, out_ch), nn.ReLU())
    return nn.Sequential(make_norm(norm, in_ch), nn.ReLU(), nn.Conv2d(in_ch, out_ch, 1))


# ------------------------------------------------------------------------------------------------- networks
class BridgeGenerator(nn.Module):
    """G (Fig. 2): images B×3×H×W in [−1, 1] and a spatial code S (B×code_channels×h×w) → B×3×H×W.

    Widths ``min(ngf·2^i, max_channels)`` (128 px: 32 → 64 → 128 → 256 at the 16×16 bottleneck).
    ``n_downsampling`` None: log2(image_size/16).
    """

    def __init__(self, image_size: int, code_channels: int, ngf: int = 32, max_channels: int = 256,
                 n_downsampling: int | None = None, spade_hidden: int = 128, out_act: str = "tanh",
                 init: str = "default", variant: str = "authors") -> None:
        super().__init__()
        if n_downsampling is None:
            n_downsampling = max(_log2_ratio(image_size, min(16, image_size), "the generator's image_size"), 1)
        if image_size % (2**n_downsampling):
            raise ValueError(f"image_size {image_size} is not divisible by 2^{n_downsampling} (generator.n_downsampling)")
        self.n_downsampling = n_downsampling
        widths = [min(ngf * 2**i, max_channels) for i in range(n_downsampling + 1)]
        self.from_rgb = nn.Conv2d(3, widths[0], 1)
        self.down = nn.Sequential(
            *[ResBlock(widths[i], widths[i + 1], "instance", "relu", "down", variant=variant)
              for i in range(n_downsampling)],
            ResBlock(widths[-1], widths[-1], "instance", "relu", variant=variant),  # the IN intermediate block
        )
        self.up = nn.ModuleList([SPADEResBlock(widths[-1], widths[-1], code_channels, spade_hidden,
                                               variant=variant)])  # the SPADE intermediate block
        for i in reversed(range(n_downsampling)):
            self.up.append(SPADEResBlock(widths[i + 1], widths[i], code_channels, spade_hidden, upsample=True,
                                         variant=variant))
        self.to_rgb = nn.Sequential(nn.ReLU(), nn.Conv2d(widths[0], 3, 1), make_activation(out_act))
        init_weights(self, init)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = self.down(self.from_rgb(x))
        for block in self.up:
            h = block(h, code)
        return self.to_rgb(h)


class MappingNetwork(nn.Module):
    """M (Fig. 4): noise r (B×latent_dim) and att_diff (B×n) → S (B×code_channels×code_size×code_size).

    FC → start_channels×4×4 → log2(code_size/4) up-sampling IN residual blocks (``channels`` wide) → code head.
    128 px: d = 16, 1024 = 4·4·64, four blocks of 32 to 64×64, S 64×64×32.
    """

    def __init__(self, num_attrs: int, code_size: int, code_channels: int = 32, latent_dim: int = 16,
                 start_channels: int = 64, channels: int = 32, init: str = "default",
                 variant: str = "authors") -> None:
        super().__init__()
        n_up = _log2_ratio(code_size, 4, "the mapping network's code_size")
        self.latent_dim, self.start_channels = latent_dim, start_channels
        self.fc = nn.Linear(latent_dim + num_attrs, start_channels * 16)
        blocks, ch = [], start_channels
        for _ in range(n_up):
            blocks.append(ResBlock(ch, channels, "instance", "relu", "up", variant=variant))
            ch = channels
        self.blocks = nn.Sequential(*blocks)
        self.head = _code_head(ch, code_channels, variant=variant)
        init_weights(self, init)

    def forward(self, r: torch.Tensor, att_diff: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([r, att_diff.to(r.dtype)], dim=1)).view(r.shape[0], self.start_channels, 4, 4)
        return self.head(self.blocks(h))


class StyleEncoder(nn.Module):
    """E (Fig. 5): image X (B×3×H×W) and att_diff (B×n, tiled) → S (B×code_channels×code_size×code_size).

    Conv1×1 (3+n → nef) → ``n_blocks`` IN residual blocks of 2·nef channels, the first log2(H/code_size) of them
    pooling → code head. 128 px: 16 → 32 (pool to 64×64) → 32 → 32 → 32 → S 64×64×32.

    ``norm``: the blocks' and code head's normalization, ``instance`` as published; ``none`` keeps the absolute
    colours that per-image normalization removes, which the embedded data's CPU recipe needs (a G + E
    autoencoder there reaches L1 0.10 after 300 steps without IN, 0.19 with it).
    """

    def __init__(self, num_attrs: int, image_size: int, code_size: int, code_channels: int = 32, nef: int = 16,
                 n_blocks: int = 4, norm: str = "instance", init: str = "default", variant: str = "authors") -> None:
        super().__init__()
        n_down = _log2_ratio(image_size, code_size, "the encoder's image_size / code_size")
        self.from_input = nn.Conv2d(3 + num_attrs, nef, 1)
        blocks, ch = [], nef
        for i in range(max(n_blocks, n_down)):
            blocks.append(ResBlock(ch, 2 * nef, norm, "relu", "down" if i < n_down else "none", variant=variant))
            ch = 2 * nef
        self.blocks = nn.Sequential(*blocks)
        self.head = _code_head(ch, code_channels, norm, variant)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, att_diff: torch.Tensor) -> torch.Tensor:
        labels = tile_labels(att_diff.to(x.dtype), x.shape[2], x.shape[3])
        return self.head(self.blocks(self.from_input(torch.cat([x, labels], dim=1))))


class BridgeDiscriminator(nn.Module):
    """D and C (Fig. 3): a shared trunk and two unshared heads.

    Trunk: Conv1×1 (3 → ndf) → ``n_blocks`` residual blocks (no norm, LeakyReLU, average pooling), widths
    ``min(ndf·2^(i+1), max_channels)`` (128 px: 16 → 32 → 64 → 128 → 256 at 8×8). ``n_blocks`` None: down to an
    8×8 map. Heads: LReLU → Conv (kernel = final map size) → LReLU → FC, to 1 (critic) and n (attribute logits).
    Output: ``DiscriminatorOutput(src B, cls B×n)``.
    """

    def __init__(self, image_size: int, num_attrs: int, ndf: int = 16, n_blocks: int | None = None,
                 max_channels: int = 512, head_channels: int | None = None, slope: float = 0.2,
                 init: str = "default", variant: str = "authors") -> None:
        super().__init__()
        if n_blocks is None:
            n_blocks = _log2_ratio(image_size, min(8, image_size), "the discriminator's image_size")
        if n_blocks < 1 or image_size % (2**n_blocks):
            raise ValueError(f"{n_blocks} pooling blocks (discriminator.n_blocks) do not fit {image_size} px")
        widths = [ndf] + [min(ndf * 2 ** (i + 1), max_channels) for i in range(n_blocks)]
        self.trunk = nn.Sequential(
            nn.Conv2d(3, ndf, 1),
            *[ResBlock(widths[i], widths[i + 1], "none", "lrelu", "down", slope, variant) for i in range(n_blocks)],
        )
        final, ch = image_size // 2**n_blocks, widths[-1]
        head_ch = head_channels or ch
        self.final_size = final

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(nn.LeakyReLU(slope), nn.Conv2d(ch, head_ch, final), nn.LeakyReLU(slope),
                                 nn.Flatten(), nn.Linear(head_ch, out))

        self.src_head, self.cls_head = head(1), head(num_attrs)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        f = self.trunk(x)
        return DiscriminatorOutput(self.src_head(f).view(-1), self.cls_head(f))

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D's score only (B), for the gradient penalty."""
        return self.src_head(self.trunk(x)).view(-1)


__all__ = ["BridgeDiscriminator", "BridgeGenerator", "MappingNetwork", "ResBlock", "SPADE", "SPADEResBlock",
           "StyleEncoder", "resize_code"]
