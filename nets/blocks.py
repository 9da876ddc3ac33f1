"""Building blocks shared by every method's networks: conv-norm-act, residual, up/down sampling.

Plain ``torch.nn``; nothing here knows about losses or Lightning.
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance", "instance_running", "instance_noaffine", "none")
ACTIVATIONS = ("relu", "lrelu", "none", "tanh", "sigmoid")


def make_norm(kind: str, channels: int) -> nn.Module:
    """``batch`` (affine, tracked stats), ``instance`` (affine, no running stats), ``instance_running`` (affine,
    running statistics kept and used in eval mode: StarGAN's and AGGAN's multi-domain code), ``instance_noaffine`` (no
    learned γ/β, no running stats: CycleGAN's reference ``get_norm_layer('instance')``) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "instance_running":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance_noaffine":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; expected one of {NORMS}")


def make_activation(kind: str, slope: float = 0.2) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(slope, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation '{kind}'; expected one of {ACTIVATIONS}")


class ConvNormAct(nn.Sequential):
    """Conv2d → norm → activation. ``pad_mode='reflect'`` pads explicitly (CycleGAN's c7s1 layers)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        norm: str = "instance",
        act: str = "relu",
        pad_mode: str = "zeros",
        padding: int | None = None,
        dilation: int = 1,
        slope: float = 0.2,
    ) -> None:
        padding = dilation * (kernel - 1) // 2 if padding is None else padding
        layers: list[nn.Module] = []
        if pad_mode == "reflect" and padding > 0:
            layers.append(nn.ReflectionPad2d(padding))
            padding = 0
        bias = norm != "batch"
        layers.append(nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, bias=bias))
        layers.append(make_norm(norm, out_ch))
        layers.append(make_activation(act, slope))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + [conv3-norm-ReLU-conv3-norm](x) (CycleGAN's R_k; ``dilation`` for SAT's dilated blocks)."""

    def __init__(self, channels: int, norm: str = "instance", pad_mode: str = "reflect", dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(channels, channels, 3, norm=norm, act="relu", pad_mode=pad_mode, dilation=dilation),
            ConvNormAct(channels, channels, 3, norm=norm, act="none", pad_mode=pad_mode, dilation=dilation),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Sequential):
    """2× upsampling block: ``deconv`` (ConvTranspose 3×3, stride 1/2 — the paper's u_k), ``pixelshuffle`` (one
    conv3 to 4·out then PixelShuffle), ``pixelshuffle_authors`` (AGGAN's released ``models.py``: reflect-pad 1,
    conv3 → out, norm, ReLU, conv1×1 → 4·out, PixelShuffle(2), then the block's norm and ReLU) or ``resize``
    (nearest + conv3, no checkerboard)."""

    def __init__(self, in_ch: int, out_ch: int, mode: str = "deconv", norm: str = "instance", act: str = "relu") -> None:
        bias = norm != "batch"
        if mode == "deconv":
            up: list[nn.Module] = [nn.ConvTranspose2d(in_ch, out_ch, 3, 2, padding=1, output_padding=1, bias=bias)]
        elif mode == "pixelshuffle":
            up = [nn.Conv2d(in_ch, out_ch * 4, 3, 1, 1, bias=bias), nn.PixelShuffle(2)]
        elif mode == "pixelshuffle_authors":
            up = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3, bias=bias), make_norm(norm, out_ch),
                  make_activation(act), nn.Conv2d(out_ch, out_ch * 4, 1, bias=bias), nn.PixelShuffle(2)]
        elif mode == "resize":
            up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias)]
        else:
            raise ValueError(f"unknown upsampling mode '{mode}'; expected deconv, pixelshuffle, pixelshuffle_authors or resize")
        super().__init__(*up, make_norm(norm, out_ch), make_activation(act))


def deconv_up(in_ch: int, out_ch: int, norm: str = "instance") -> nn.Sequential:
    """ConvT4 s2 (StarGAN's up-sampling layer) → norm → ReLU: doubles the resolution."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=norm != "batch"), make_norm(norm, out_ch), nn.ReLU(inplace=True)
    )


def tile_labels(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """B×C label vectors → B×C×H×W maps (StarGAN-style conditioning by concatenation)."""
    return labels[:, :, None, None].expand(-1, -1, height, width)


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> None:
    """CycleGAN/AGGAN initialisation: conv weights N(0, gain), norm weights N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind != "default":
                raise ValueError(f"unknown init '{kind}'; expected normal, xavier, kaiming or default")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
