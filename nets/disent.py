"""Networks of "Adversarial Learning of Disentangled and Generalizable Representations of Visual Attributes"
(Oldfield et al.; Sec. II-E, Tables I–II; ../shared/specs/methods.md §2).

- ``AttributeEncoder`` (E_m, one per modelled attribute m = 1..A, plus E_0 for the rest; unshared): the first
  half of Johnson et al.'s transformation net up to the bottleneck — reflect-pad 3, Conv7 s1 ``ngf``-IN-ReLU, then
  ``n_downsampling`` × (Conv3 s2, channels doubling, IN-ReLU). At 128 px with ngf 32: 32×32×128 (enc-1..enc-3).
- ``AttributeDecoder`` (Dec): the depth-concatenation of the A+1 codes (``num_codes · code_channels`` = 4d
  channels, d = (A+1)·ngf), ``n_blocks`` residual blocks at that width, resize-conv up-sampling (nearest ×2, then
  reflect-pad 1 Conv3-IN-ReLU; Odena et al., no checkerboard) to 2d then d channels, reflect-pad 3 Conv7 → 3, tanh.
- ``AttributeClassifier`` (C_m): ``n_layers`` × (Conv4 s2 pad 1, activation) then Flatten and Dense(K_m). Its
  penultimate input (the last conv block's output) has exactly the encoder's output shape, so an encoding z_m is
  fed straight into ``head`` (Flatten + Dense): ``C_m(z_m)`` of Eqs. 3–4 is ``classifier.head(z)``, ``C_m(X)`` of
  Eqs. 6 and the classifier loss is ``classifier(x)``. The last conv block's width is therefore the encoder's
  output width (``code_channels``) and the number of blocks the encoder's number of down-samplings; at 128 px
  with ngf 32 and ndf 64 that is Table II's 64, 128 exactly.
- The critic D is StarGAN's PatchGAN (``nets.spm.StarGANDiscriminator`` with no class head): six Conv4 s2
  (64 … 2048) + LeakyReLU(0.01), no norm, Conv3 → 1.

Plain ``torch.nn``: nothing here knows about losses or Lightning.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nets.blocks import ConvNormAct, ResidualBlock, deconv_up, init_weights, make_activation


class AttributeEncoder(nn.Module):
    """E_m: B×3×S×S → z_m B×(ngf·2^n_downsampling)×(S/2^n_downsampling)² (non-negative: IN-ReLU output)."""

    def __init__(
        self,
        ngf: int = 32,
        n_downsampling: int = 2,
        norm: str = "instance",
        in_channels: int = 3,
        init: str = "normal",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormAct(in_channels, ngf, 7, norm=norm, act="relu", pad_mode="reflect")]
        ch = ngf
        for _ in range(n_downsampling):
            layers.append(ConvNormAct(ch, ch * 2, 3, stride=2, norm=norm, act="relu"))
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.out_channels = ch
        self.n_downsampling = n_downsampling
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResizeConv(nn.Sequential):
    """Nearest ×2 up-sampling, reflect-pad 1, Conv3, norm, ReLU (Table I dec-1/dec-2, "resize-convolution")."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "instance") -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvNormAct(in_ch, out_ch, 3, norm=norm, act="relu", pad_mode="reflect"),
        )


class AttributeDecoder(nn.Module):
    """Dec: the A+1 codes (each B×code_channels×s×s, attributes first, z_0 last) → B×3×S×S in [−1, 1].

    Args:
        code_channels: channels of one code (the encoders' ``out_channels``; runtime).
        num_codes: A + 1 (runtime).
        n_upsampling: resize-conv stages (the encoders' ``n_downsampling``; runtime); each halves the width.
        n_blocks: residual blocks at the concatenated width (6 in Table I).
        upsample: ``resize`` (the paper) or ``deconv`` (ConvTranspose, for comparison).
    """

    def __init__(
        self,
        code_channels: int,
        num_codes: int,
        n_upsampling: int = 2,
        n_blocks: int = 6,
        norm: str = "instance",
        upsample: str = "resize",
        init: str = "normal",
    ) -> None:
        super().__init__()
        if upsample not in ("resize", "deconv"):
            raise ValueError(f"unknown decoder up-sampling '{upsample}'; expected resize or deconv")
        ch = code_channels * num_codes
        if ch % 2**n_upsampling:
            raise ValueError(f"the concatenated code width {ch} must be divisible by 2^{n_upsampling}")
        layers: list[nn.Module] = [ResidualBlock(ch, norm=norm) for _ in range(n_blocks)]
        for _ in range(n_upsampling):
            if upsample == "resize":
                layers.append(ResizeConv(ch, ch // 2, norm=norm))
            else:
                layers += list(deconv_up(ch, ch // 2, norm))  # flat, as before: same state_dict keys
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.in_channels = code_channels * num_codes
        init_weights(self, init)

    def forward(self, codes: list[torch.Tensor] | tuple[torch.Tensor, ...] | torch.Tensor) -> torch.Tensor:
        z = codes if torch.is_tensor(codes) else torch.cat(list(codes), dim=1)
        return self.body(z)


class AttributeClassifier(nn.Module):
    """C_m: images B×3×S×S → B×K logits (``forward``), or encodings B×C×s×s → B×K logits (``head``).

    Args:
        num_classes: K_m (runtime, from the datamodule).
        image_size: S (runtime).
        code_shape: (C, s, s) of the encoders' output (runtime); the conv blocks are built to end on it.
        ndf: width of the first block (64 in Table II); block i has ndf·2^i channels, the last one C.
        act: ``relu`` (the released code, ReLU after each block) or ``lrelu`` (Table II "LeakyRelu", slope 0.2
            [inferred slope]). ReLU keeps the classifier's penultimate features non-negative like the
            encodings (IN-ReLU), so the dense head sees one range from both.
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int,
        code_shape: tuple[int, int, int] | list[int],
        ndf: int = 64,
        act: str = "relu",
        slope: float = 0.2,
        in_channels: int = 3,
        init: str = "default",
    ) -> None:
        super().__init__()
        channels, height, width = (int(v) for v in code_shape)
        ratio = image_size / height
        n_layers = round(math.log2(ratio)) if ratio >= 1 else -1
        if height != width or n_layers < 1 or image_size != height * 2**n_layers:
            raise ValueError(
                f"the classifier's conv blocks halve the image size; an encoding of {height}×{width} cannot be reached "
                f"from {image_size} px (the encoders need at least one stride-2 layer)"
            )
        layers: list[nn.Module] = []
        ch_in = in_channels
        for i in range(n_layers):
            ch = channels if i == n_layers - 1 else ndf * 2**i
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), make_activation(act, slope)]
            ch_in = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(channels * height * width, num_classes))
        self.code_shape = (channels, height, width)
        self.num_classes = num_classes
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def classify_code(self, z: torch.Tensor) -> torch.Tensor:
        """C_m applied to an encoding (Eqs. 3–4): the dense head only."""
        return self.head(z)


__all__ = ["AttributeEncoder", "AttributeDecoder", "AttributeClassifier", "ResizeConv"]
