"""SPM networks (Wu et al., "Attribute-Driven Spontaneous Motion in Unpaired Image Translation"), and the
StarGAN generator/discriminator built from the same parts.

Paper ↔ code names (architecture facts from ../shared/specs/methods.md §1):
- SPM encoder E (input ``[I_s, tiled c_t]`` → features f): Conv7 s1 ngf-IN-ReLU, ``n_downsampling`` Conv4 s2
  -IN-ReLU (paper: 3, released code: 2 — default 2), ``n_blocks`` = 6 residual blocks → ``SPMEncoder``.
- motion head (f → w): per downsampling ConvT4 s2-IN-ReLU, Conv7 → 2, **tanh**, times λw → ``flow_head``.
- attention mask head M (f → m): same upsampling, Conv3 → 1, sigmoid → ``mask_head``.
- backward warp of Eq. 1 → :func:`warp`; samples outside the image are 0.
- refinement R (I_d → r): Conv7 ngf-IN-ReLU, n = 12 residual blocks at full resolution, Conv7 → 3, tanh →
  ``RefinementNet``; output ``I_t = clamp(I_d + r·m, −1, 1)`` (Eq. 5).
- motion classifier Dw (Eq. 4): ``[w, I_s]`` → 3× Conv4 s2 (64, 128, 256) + LeakyReLU(0.01) → a conv over the
  whole map → N logits → ``MotionClassifier``.
- D_d with the image domain classifier Dc on top (Eqs. 2–3, 7) — StarGAN's discriminator: ``n_layers`` Conv4
  s2 + LeakyReLU(0.01), no norm; src head Conv3 → 1 (patch), cls head with kernel = final map size →
  ``StarGANDiscriminator``.
- HR stage (Sec. 3.3): the light enhancement nets T_w, T_r, T_m (Conv3 32-IN-ReLU, 1 residual block, Conv3
  back, tanh) → ``EnhancementNet``; their composition with the up-sampled LR fields → ``HighResolutionSPM``;
  D_h is ``StarGANDiscriminator`` with :func:`resolution_adaptive_layers` more layers than D_l.

Motion field units: ``flow`` (w) is B×2×H×W, channels (dx, dy), measured in fractions of the image's extent
(``W−1`` resp. ``H−1`` pixel spacings, the ``align_corners=True`` convention), so ``|w| ≤ λw`` per component
and a field keeps its meaning when resized (the HR stage up-samples it without rescaling).
:func:`flow_to_pixels` converts to the pixel displacements of Eq. 1.

``SPMGenerator`` with neither the motion module nor the refinement module decodes the image straight from f
with a third head of the same upsampling design and a tanh (Conv7 → 3): that network *is* StarGAN's generator
(Conv7 64, two Conv4 s2 down, 6 residual blocks, two ConvT4 s2 up, Conv7 → 3, tanh, label tiled on the input).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nets.aggan import DiscriminatorOutput
from nets.blocks import ConvNormAct, ResidualBlock, deconv_up, init_weights, tile_labels

INITS = ("normal", "default", "pytorch", "xavier", "kaiming")


def initialise(module: nn.Module, kind: str) -> None:
    """Weight initialisation by name: ``pytorch`` leaves PyTorch's own (uniform conv weights *and* biases, IN
    weights 1) exactly as the authors' code (``mikirui/ADSPM`` ``models.py``, ``yunjey/stargan`` ``model.py``) has
    it; ``normal`` is N(0, 0.02) conv weights, N(1, 0.02) IN weights, zero biases; ``default`` keeps PyTorch's conv
    weights but sets IN weights N(1, 0.02) and zeroes biases (``nets.blocks.init_weights``)."""
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}; expected one of {', '.join(INITS)}")
    if kind != "pytorch":
        init_weights(module, kind)


# ------------------------------------------------------------------------------------------------- warping
def identity_grid(height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """1×H×W×2 sampling grid (x, y) of the pixel centres, normalised to [−1, 1] with ``align_corners=True``."""
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp, SPM Eq. 1: ``I_d(i) = Ĩ_s(i + w(i))`` (bilinear), 0 where ``i + w(i)`` leaves the image.

    image: B×C×H×W; flow: B×2×H×W (dx, dy) in fractions of the image extent (see the module docstring); the
    normalised grid moves by ``2·flow`` because [−1, 1] spans the extent twice over.
    """
    if flow.shape[0] != image.shape[0] or flow.shape[1] != 2 or flow.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"flow must be B×2×H×W matching the image {tuple(image.shape)}, got {tuple(flow.shape)}")
    grid = identity_grid(image.shape[2], image.shape[3], image.device, flow.dtype) + 2.0 * flow.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def flow_to_pixels(flow: torch.Tensor) -> torch.Tensor:
    """B×2×H×W flow in extent fractions → pixel displacements (u, v) of Eq. 1."""
    h, w = flow.shape[-2:]
    scale = torch.tensor([w - 1, h - 1], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)
    return flow * scale


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square resize: area averaging when shrinking (anti-aliased), bilinear (U of Sec. 3.3) when enlarging."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------------------ generator
class SPMOutput(NamedTuple):
    image: torch.Tensor  # I_t, B×3×H×W in [−1, 1]
    deformed: torch.Tensor | None  # I_d = warp(I_s, w); None without the motion module
    flow: torch.Tensor | None  # w, B×2×H×W; None without the motion module
    mask: torch.Tensor | None  # m, B×1×H×W in [0, 1]; None without refinement
    residual: torch.Tensor | None  # r = R(I_d), B×3×H×W in [−1, 1] (before ·m); None without refinement
    low: SPMOutput | None = None  # HR stage: the LR generator's output it was built from


class SPMEncoder(nn.Module):
    """E: B×in×H×W → f, B×(ngf·2^n)×H/2^n×W/2^n (Sec. 3.1)."""

    def __init__(self, in_channels: int, ngf: int, n_downsampling: int, n_blocks: int, norm: str, pad_mode: str) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormAct(in_channels, ngf, 7, norm=norm, act="relu")]
        ch = ngf
        for _ in range(n_downsampling):
            layers.append(ConvNormAct(ch, ch * 2, 4, stride=2, padding=1, norm=norm, act="relu"))
            ch *= 2
        layers += [ResidualBlock(ch, norm=norm, pad_mode=pad_mode) for _ in range(n_blocks)]
        self.body = nn.Sequential(*layers)
        self.out_channels = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpsamplingHead(nn.Sequential):
    """f → B×out×H×W: ``n_upsampling`` ConvT4 s2-norm-ReLU, then Conv(kernel) → out channels, activation.
    The motion head (2, k7, tanh), the mask head (1, k3, sigmoid) and StarGAN's decoder (3, k7, tanh)."""

    def __init__(self, in_ch: int, out_ch: int, n_upsampling: int, kernel: int, activation: str, norm: str) -> None:
        layers: list[nn.Module] = []
        ch = in_ch
        for _ in range(n_upsampling):
            layers.append(deconv_up(ch, ch // 2, norm))
            ch //= 2
        layers.append(nn.Conv2d(ch, out_ch, kernel, 1, kernel // 2, bias=False))
        layers.append(nn.Tanh() if activation == "tanh" else nn.Sigmoid())
        super().__init__(*layers)


class RefinementNet(nn.Module):
    """R (Sec. 3.2): B×in×H×W → residual r in [−1, 1]; ``n_blocks`` residual blocks, no down-sampling."""

    def __init__(self, in_channels: int, ngf: int, n_blocks: int, norm: str, pad_mode: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(in_channels, ngf, 7, norm=norm, act="relu"),
            *[ResidualBlock(ngf, norm=norm, pad_mode=pad_mode) for _ in range(n_blocks)],
            nn.Conv2d(ngf, 3, 7, 1, 3, bias=False),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SPMGenerator(nn.Module):
    """G = SPM + R: ``(I_s B×3×H×W, c_t B×N) → SPMOutput``.

    Args:
        num_domains: N, the length of the target label tiled onto the input.
        ngf, n_downsampling, n_blocks: the encoder (64, 2, 6).
        n_refine_blocks: n of R (12).
        lambda_w: λw, the bound of the motion field (0.1; paper 0.1–0.2 per dataset).
        motion: the spontaneous motion module (flow head + warp); off = Table 1's "No M" (I_d = I_s).
        refinement: R and the attention mask; off = "No R" (I_t = I_d).
        refine_condition: R also sees the tiled target label. The released code feeds R the warped image only;
            with the motion module off nothing would then carry the target into R, so ``None`` (auto) turns it
            on exactly when ``motion`` is off **[inferred]**.
        norm, pad_mode: instance norm; zero padding in residual blocks (StarGAN).
        init: weight initialisation (:func:`initialise`): ``normal`` N(0, 0.02) is this suite's choice for SPM
            **[inferred]** — the authors' ``models.py`` initialises nothing (PyTorch's defaults, ``init=pytorch``)
            and their training code, where an init could live, is not released; StarGAN uses ``pytorch``.

    With ``motion`` and ``refinement`` both off the generator is StarGAN's (see the module docstring).
    """

    def __init__(
        self,
        num_domains: int,
        ngf: int = 64,
        n_downsampling: int = 2,
        n_blocks: int = 6,
        n_refine_blocks: int = 12,
        lambda_w: float = 0.1,
        motion: bool = True,
        refinement: bool = True,
        refine_condition: bool | None = None,
        norm: str = "instance",
        pad_mode: str = "zeros",
        in_channels: int = 3,
        init: str = "normal",
    ) -> None:
        super().__init__()
        if lambda_w <= 0:
            raise ValueError(f"lambda_w must be positive, got {lambda_w}")
        self.num_domains = num_domains
        self.lambda_w = float(lambda_w)
        self.motion = motion
        self.refinement = refinement
        self.refine_condition = (not motion) if refine_condition is None else bool(refine_condition)
        self.encoder = SPMEncoder(in_channels + num_domains, ngf, n_downsampling, n_blocks, norm, pad_mode)
        ch = self.encoder.out_channels
        self.flow_head = UpsamplingHead(ch, 2, n_downsampling, 7, "tanh", norm) if motion else None
        self.mask_head = UpsamplingHead(ch, 1, n_downsampling, 3, "sigmoid", norm) if refinement else None
        self.refiner = (
            RefinementNet(3 + (num_domains if self.refine_condition else 0), ngf, n_refine_blocks, norm, pad_mode)
            if refinement
            else None
        )
        self.image_head = UpsamplingHead(ch, 3, n_downsampling, 7, "tanh", norm) if not (motion or refinement) else None
        initialise(self, init)

    @property
    def is_stargan(self) -> bool:
        return self.image_head is not None

    def _conditioned(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target is None or target.shape != (x.shape[0], self.num_domains):
            got = None if target is None else tuple(target.shape)
            raise ValueError(f"the generator is conditioned on a target label; pass target as B×{self.num_domains}, got {got}")
        return torch.cat([x, tile_labels(target.to(x.dtype), x.shape[2], x.shape[3])], dim=1)

    def encode(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """f = E([I_s, c_t])."""
        return self.encoder(self._conditioned(x, target))

    def motion_field(self, features: torch.Tensor) -> torch.Tensor:
        """w = λw·tanh(·) — each component bounded by λw."""
        return self.lambda_w * self.flow_head(features)

    def refine(self, deformed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """r = R(I_d) (or R([I_d, c_t]) with ``refine_condition``)."""
        return self.refiner(self._conditioned(deformed, target) if self.refine_condition else deformed)

    def compose(
        self, x: torch.Tensor, flow: torch.Tensor | None, mask: torch.Tensor | None, target: torch.Tensor
    ) -> SPMOutput:
        """Eqs. 1 and 5 from given fields: warp I_s by w, refine, blend by m."""
        deformed = warp(x, flow) if flow is not None else x
        if self.refiner is None:
            return SPMOutput(deformed, deformed if flow is not None else None, flow, None, None)
        residual = self.refine(deformed, target)
        image = (deformed + residual * mask).clamp(-1, 1)
        return SPMOutput(image, deformed if flow is not None else None, flow, mask, residual)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> SPMOutput:
        f = self.encode(x, target)
        if self.image_head is not None:
            return SPMOutput(self.image_head(f), None, None, None, None)
        flow = self.motion_field(f) if self.flow_head is not None else None
        mask = self.mask_head(f) if self.mask_head is not None else None
        return self.compose(x, flow, mask, target)


# ------------------------------------------------------------------------------------------------ HR stage
class EnhancementNet(nn.Module):
    """T (Sec. 3.3): Conv(k) ngf-IN-ReLU, ``n_blocks`` residual block(s) (3×3), Conv(k) back to ``channels``,
    tanh; k = 3 for the 256 stage, 7 for the 512 stage (``*_refine512`` in the authors' ``WarpGenerator512``)."""

    def __init__(self, channels: int, ngf: int = 32, n_blocks: int = 1, norm: str = "instance", pad_mode: str = "zeros",
                 kernel: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(channels, ngf, kernel, norm=norm, act="relu"),
            *[ResidualBlock(ngf, norm=norm, pad_mode=pad_mode) for _ in range(n_blocks)],
            nn.Conv2d(ngf, channels, kernel, 1, kernel // 2),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class HighResolutionSPM(nn.Module):
    """T_w, T_r, T_m and their composition with the up-sampled LR fields (Sec. 3.3):

    ``w_h = U(w_l) + λw·T_w(U(w_l))``, ``m_h = clamp(U(m_l) + T_m(U(m_l)), 0, 1)``,
    ``r_h = (U(r_l·m_l) + T_r(U(r_l·m_l)))·m_h``, ``I_t^h = clamp(warp(I_h, w_h) + r_h, −1, 1)``.

    As the authors' ``WarpGenerator256/512.forward``: the λw on T_w's correction (``flow_refine(·)·coff``) and the
    up-sampling of the *masked* LR residual (``low_refine_x = refine(warp_x)·mask``); ``mask_residual=false``
    up-samples the unmasked r_l (this suite before issue #21). The same module is the 512 stage of the cascade,
    fed the 256 stage's output (``kernel=7``). The flow's extent-fraction units need no rescaling when up-sampled.
    Only the nets for the modules the LR generator has are built.
    """

    def __init__(self, motion: bool = True, refinement: bool = True, lambda_w: float = 0.1, ngf: int = 32, n_blocks: int = 1,
                 norm: str = "instance", pad_mode: str = "zeros", init: str = "normal", kernel: int = 3,
                 mask_residual: bool = True) -> None:
        super().__init__()
        if not (motion or refinement):
            raise ValueError("the HR stage enhances the motion field and/or the refinement; both are off")
        self.lambda_w = float(lambda_w)
        self.mask_residual = bool(mask_residual)
        self.T_w = EnhancementNet(2, ngf, n_blocks, norm, pad_mode, kernel) if motion else None
        self.T_r = EnhancementNet(3, ngf, n_blocks, norm, pad_mode, kernel) if refinement else None
        self.T_m = EnhancementNet(1, ngf, n_blocks, norm, pad_mode, kernel) if refinement else None
        initialise(self, init)

    def forward(self, x_high: torch.Tensor, low: SPMOutput) -> SPMOutput:
        size = x_high.shape[-1]
        flow = None
        if self.T_w is not None:
            up = resize(low.flow, size)
            flow = up + self.lambda_w * self.T_w(up)
        deformed = warp(x_high, flow) if flow is not None else x_high
        if self.T_r is None:
            return SPMOutput(deformed, deformed if flow is not None else None, flow, None, None, low)
        low_r = low.residual * low.mask if self.mask_residual else low.residual
        up_m, up_r = resize(low.mask, size), resize(low_r, size)
        mask = (up_m + self.T_m(up_m)).clamp(0, 1)
        residual = up_r + self.T_r(up_r)
        image = (deformed + residual * mask).clamp(-1, 1)
        return SPMOutput(image, deformed if flow is not None else None, flow, mask, residual, low)


def resolution_adaptive_layers(n_layers_low: int, low_size: int, high_size: int) -> int:
    """D_h's depth: D_l's plus one stride-2 layer per doubling from the LR to the HR size, so both end on maps
    of the same size ("D_h shares D_l's structure with more convolution layers", Sec. 3.3)."""
    ratio = high_size / low_size
    doublings = round(math.log2(ratio)) if ratio > 0 else -1
    if doublings < 1 or 2**doublings * low_size != high_size:
        raise ValueError(f"the HR size ({high_size}) must be the LR size ({low_size}) times a power of two")
    return n_layers_low + doublings


# --------------------------------------------------------------------------------------- discriminators
def _final_map(image_size: int, n_layers: int, what: str) -> int:
    size = image_size // 2**n_layers
    if size < 1 or image_size % 2**n_layers:
        raise ValueError(
            f"{what} with {n_layers} stride-2 layers needs an image size divisible by {2**n_layers}, got {image_size}; "
            "lower its n_layers"
        )
    return size


class StarGANDiscriminator(nn.Module):
    """D_d + Dc (StarGAN's discriminator, SPM Eqs. 2–3 and 7): B×3×S×S → DiscriminatorOutput(src B×1×s×s,
    cls B×N), s = S/2^n_layers. Channels double per layer (64 … 2048 for 6 layers) up to ``max_channels``."""

    def __init__(
        self,
        image_size: int,
        num_classes: int,
        ndf: int = 64,
        n_layers: int = 6,
        max_channels: int = 2048,
        slope: float = 0.01,
        in_channels: int = 3,
        init: str = "default",
    ) -> None:
        super().__init__()
        final = _final_map(image_size, n_layers, "the discriminator")
        layers: list[nn.Module] = []
        ch_in, ch = in_channels, ndf
        for _ in range(n_layers):
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(slope, inplace=True)]
            ch_in, ch = ch, min(ch * 2, max_channels)
        self.trunk = nn.Sequential(*layers)
        self.src_head = nn.Conv2d(ch_in, 1, 3, 1, 1, bias=False)
        self.cls_head = nn.Conv2d(ch_in, num_classes, final, bias=False) if num_classes else None
        self.n_layers = n_layers
        initialise(self, init)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        f = self.trunk(x)
        cls = self.cls_head(f).flatten(1) if self.cls_head is not None else None
        return DiscriminatorOutput(self.src_head(f), cls)


class MotionClassifier(nn.Module):
    """Dw (Eq. 4): ``(w B×2×S×S, I_s B×3×S×S [, c B×label_channels]) → B×N logits`` of the target domain.

    The input is ``[w, I_s]`` with w = λw·tanh(·) as the generator emits it. ``label_channels`` tiles a label
    in too (the released code tiles c; which one is not stated — the module passes the *source* label, since
    the target would give the answer away) **[inferred]**.
    """

    def __init__(
        self,
        image_size: int,
        num_classes: int,
        ndf: int = 64,
        n_layers: int = 3,
        label_channels: int = 0,
        slope: float = 0.01,
        init: str = "default",
    ) -> None:
        super().__init__()
        final = _final_map(image_size, n_layers, "the motion classifier")
        self.label_channels = label_channels
        layers: list[nn.Module] = []
        ch_in, ch = 5 + label_channels, ndf
        for _ in range(n_layers):
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(slope, inplace=True)]
            ch_in, ch = ch, ch * 2
        self.trunk = nn.Sequential(*layers)
        self.cls_head = nn.Conv2d(ch_in, num_classes, final, bias=False)
        initialise(self, init)

    def forward(self, flow: torch.Tensor, image: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        inp = [flow, image]
        if self.label_channels:
            if label is None:
                raise ValueError("this motion classifier also reads a label; pass label (B×label_channels)")
            inp.append(tile_labels(label.to(image.dtype), image.shape[2], image.shape[3]))
        return self.cls_head(self.trunk(torch.cat(inp, 1))).flatten(1)


__all__ = [
    "SPMGenerator",
    "SPMOutput",
    "SPMEncoder",
    "UpsamplingHead",
    "RefinementNet",
    "EnhancementNet",
    "HighResolutionSPM",
    "StarGANDiscriminator",
    "MotionClassifier",
    "initialise",
    "warp",
    "flow_to_pixels",
    "identity_grid",
    "resize",
    "resolution_adaptive_layers",
]
