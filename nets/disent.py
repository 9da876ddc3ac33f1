"""Networks of "Adversarial Learning of Disentangled and Generalizable Representations of Visual Attributes"
(Oldfield et al.; Sec. II-E, Tables I–II; ../shared/specs/methods.md §2).

- ``AttributeEncoder`` (E_m, one per modelled attribute m = 1..A, plus E_0 for the rest; unshared): the first
  half of Johnson et al.'s transformation net up to the bottleneck — reflect-pad 3, Conv7 s1 ``ngf``-IN-ReLU, then
  ``n_downsampling`` × (Conv3 s2, channels doubling, IN-ReLU). At 128 px with ngf 32: 32×32×128 (enc-1..enc-3).
- ``AttributeDecoder`` (Dec): the depth-concatenation of the A+1 codes (``num_codes · code_channels`` = 4d
  channels, d = (A+1)·ngf), ``n_blocks`` residual blocks at that width, resize-conv up-sampling (Odena et al., no
  checkerboard; ``upsample``: Table I's nearest ×4 then reflect-pad 1 Conv3 stride 2, or nearest ×2 then Conv3
  stride 1) to 2d then d channels, reflect-pad 3 Conv7 → 3, tanh.
- Ablation I (Sec. IV-B1, Eq. 10): ``ShallowFCEncoder`` / ``ShallowFCClassifier``, fully connected, codes C×1×1.
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
        image_size: int | None = None,  # unused (any size works); accepted so every encoder kind is built alike
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
    """Resize-convolution (Odena et al.; Table I dec-1/dec-2): nearest up-sampling by ``scale``, reflect-pad 1,
    Conv3 with ``stride``, norm, ReLU — ×2 and stride 1 (``resize``), or Table I / the authors' ``Model.py``
    form, ×4 and stride 2 (``resize_stride2``: 32 → 128 → Conv s2 → 64); both double the size."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "instance", scale: int = 2, stride: int = 1) -> None:
        super().__init__(
            nn.Upsample(scale_factor=scale, mode="nearest"),
            ConvNormAct(in_ch, out_ch, 3, stride=stride, norm=norm, act="relu", pad_mode="reflect"),
        )


UPSAMPLING = ("resize_stride2", "resize", "deconv")


class AttributeDecoder(nn.Module):
    """Dec: the A+1 codes (each B×code_channels×s×s, attributes first, z_0 last) → B×3×S×S in [−1, 1].

    Args:
        code_channels: channels of one code (the encoders' ``out_channels``; runtime).
        num_codes: A + 1 (runtime).
        n_upsampling: resize-conv stages (the encoders' ``n_downsampling``; runtime); each halves the width.
        n_blocks: residual blocks at the concatenated width (6 in Table I).
        upsample: ``resize_stride2`` (Table I and the authors' code: nearest ×4, reflect-pad 1, Conv3 stride 2),
            ``resize`` (nearest ×2, Conv3 stride 1: same shapes and cost, no repeated rows in a tap) or ``deconv``
            (ConvTranspose4 s2, neither source).
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
        if upsample not in UPSAMPLING:
            raise ValueError(f"unknown decoder up-sampling '{upsample}'; expected one of {', '.join(UPSAMPLING)}")
        ch = code_channels * num_codes
        if ch % 2**n_upsampling:
            raise ValueError(f"the concatenated code width {ch} must be divisible by 2^{n_upsampling}")
        layers: list[nn.Module] = [ResidualBlock(ch, norm=norm) for _ in range(n_blocks)]
        for _ in range(n_upsampling):
            if upsample in ("resize", "resize_stride2"):
                wide = upsample == "resize_stride2"
                layers.append(ResizeConv(ch, ch // 2, norm=norm, scale=4 if wide else 2, stride=2 if wide else 1))
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


def _shallow_mlp(in_features: int, hidden: int, code_dim: int) -> nn.Sequential:
    """Flatten, Dense(hidden)-ReLU, Dense(code_dim)-ReLU (non-negative like the convolutional codes)."""
    return nn.Sequential(nn.Flatten(1), nn.Linear(in_features, hidden), nn.ReLU(True), nn.Linear(hidden, code_dim),
                         nn.ReLU(True))


class ShallowFCEncoder(nn.Module):
    """Ablation I's E_m (Sec. IV-B1, Eq. 10: "shallow, fully-connected attribute encoders"): the image flattened,
    one hidden Dense-ReLU layer, a Dense-ReLU code [inferred: the paper gives no sizes; the authors'
    ``Disentangle.py`` is not released]. Returns B×code_dim×1×1, so the code is a 1×1 "feature map" like the
    convolutional ones and enters the classifier's head the same way."""

    def __init__(self, image_size: int, hidden: int = 512, code_dim: int = 128, in_channels: int = 3,
                 init: str = "default") -> None:
        super().__init__()
        self.body = _shallow_mlp(in_channels * image_size * image_size, hidden, code_dim)
        self.out_channels = code_dim
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).unflatten(1, (-1, 1, 1))


class ShallowFCClassifier(nn.Module):
    """Ablation I's complementary C_m: the same shallow stack on the image ending on the code's shape
    (``features``), then ``head`` = Flatten + Dense(K_m) — so, as in the full model (Sec. II-E), ``C_m(z)`` is the
    head on a code and ``C_m(X)`` the whole classifier on an image [inferred]."""

    def __init__(self, num_classes: int, image_size: int, code_shape: tuple[int, int, int] | list[int],
                 hidden: int = 512, in_channels: int = 3, init: str = "default") -> None:
        super().__init__()
        channels, height, width = (int(v) for v in code_shape)
        if (height, width) != (1, 1):
            raise ValueError(f"ShallowFCClassifier pairs with ShallowFCEncoder (codes C×1×1), got codes {tuple(code_shape)}")
        self.stack = _shallow_mlp(in_channels * image_size * image_size, hidden, channels)
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(channels, num_classes))
        self.code_shape, self.num_classes = (channels, 1, 1), num_classes
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stack(x))

    def classify_code(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)


KINDS = ("conv", "fc_shallow")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got '{kind}'")


def attribute_encoder(image_size: int, kind: str = "conv", ngf: int = 32, n_downsampling: int = 2,
                      norm: str = "instance", hidden: int = 512, code_dim: int = 128, in_channels: int = 3,
                      init: str = "normal") -> nn.Module:
    """E_m by ``kind`` (``method.encoder.kind``): ``conv`` — Table I's :class:`AttributeEncoder` (ngf,
    n_downsampling, norm); ``fc_shallow`` — Ablation I's :class:`ShallowFCEncoder` (hidden, code_dim)."""
    _check_kind(kind)
    if kind == "conv":
        return AttributeEncoder(ngf, n_downsampling, norm, in_channels, init)
    return ShallowFCEncoder(image_size, hidden, code_dim, in_channels, init)


def attribute_classifier(num_classes: int, image_size: int, code_shape: tuple[int, int, int] | list[int],
                         kind: str = "conv", ndf: int = 64, act: str = "relu", slope: float = 0.2, hidden: int = 512,
                         in_channels: int = 3, init: str = "default") -> nn.Module:
    """C_m by ``kind`` (``method.classifier.kind``): ``conv`` — Table II's :class:`AttributeClassifier` (ndf, act,
    slope); ``fc_shallow`` — Ablation I's :class:`ShallowFCClassifier` (hidden)."""
    _check_kind(kind)
    if kind == "conv":
        return AttributeClassifier(num_classes, image_size, code_shape, ndf, act, slope, in_channels, init)
    return ShallowFCClassifier(num_classes, image_size, code_shape, hidden, in_channels, init)


__all__ = ["KINDS", "AttributeEncoder", "AttributeDecoder", "AttributeClassifier", "ResizeConv", "ShallowFCClassifier",
           "ShallowFCEncoder", "attribute_classifier", "attribute_encoder"]
