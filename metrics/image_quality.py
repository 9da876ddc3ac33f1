"""Per-image reconstruction metrics: MSE, PSNR, SSIM.

Every function takes two image batches of the same shape B×C×H×W (the suite's images live in [-1, 1], hence
``data_range=2.0`` by default) and returns one value per image, a float32 tensor of shape B on the inputs'
device. Aggregation over a test set is the job of :mod:`metrics.streaming`.

Infinite PSNR, deliberately: two identical images have MSE 0 and PSNR +inf. It is returned as +inf rather than
clamped to an arbitrary ceiling (which would silently bias the mean). :class:`metrics.streaming.MeanAccumulator`
averages the finite values and counts the infinite ones apart, so a reported PSNR mean is finite whenever at
least one image differs from its reference, and +inf only when every image is reproduced exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["mse", "mse_255", "psnr", "ssim", "to_8bit"]


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.dim() != 4:
        raise ValueError(f"expected image batches of shape B×C×H×W, got {tuple(pred.shape)}")


def _mse64(pred: Tensor, target: Tensor) -> Tensor:
    # float64 so that PSNR of small offsets matches its closed form and huge images do not lose precision.
    _check_pair(pred, target)
    diff = pred.detach().to(torch.float64) - target.detach().to(torch.float64)
    return diff.pow(2).flatten(1).mean(dim=1)


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per image, in the images' own units.

    pred, target: B×C×H×W. Returns B (float32).
    """
    return _mse64(pred, target).to(torch.float32)


def mse_255(pred: Tensor, target: Tensor, data_range: float = 2.0) -> Tensor:
    """Mean squared error per image in 0..255 pixel units, as AGGAN (Tang et al.) reports MSE.

    The images are rescaled so that ``data_range`` spans 255 grey levels, i.e. ``mse * (255 / data_range)**2``
    (for the suite's [-1, 1] images: ``mse * 127.5**2``). pred, target: B×C×H×W. Returns B (float32).
    """
    return (_mse64(pred, target) * (255.0 / data_range) ** 2).to(torch.float32)


def psnr(pred: Tensor, target: Tensor, data_range: float = 2.0) -> Tensor:
    """Peak signal-to-noise ratio per image, ``10·log10(data_range² / MSE)`` in dB.

    pred, target: B×C×H×W. Returns B (float32); +inf for an image identical to its reference (see the module
    docstring for how aggregates treat it).
    """
    err = _mse64(pred, target)
    return (10.0 * torch.log10(data_range**2 / err)).to(torch.float32)


def to_8bit(images: Tensor, low: float = -1.0, data_range: float = 2.0) -> Tensor:
    """The 8-bit levels (0..255, as float64) an image batch is saved with, rounded as ``torchvision.utils.save_image``
    rounds: ``floor(clamp(255·x01 + 0.5, 0, 255))`` with ``x01 = (x − low) / data_range`` (the suite's [-1, 1]
    images: ``x·0.5 + 0.5``). Metrics of images as PNG files are the metrics of these levels with
    ``data_range=255``. images: any shape. Returns the same shape (float64)."""
    x01 = (images.detach().to(torch.float64) - low) / data_range
    return (x01 * 255.0 + 0.5).clamp(0.0, 255.0).floor()


def _gaussian_1d(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim(
    pred: Tensor,
    target: Tensor,
    data_range: float = 2.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image with a Gaussian window.

    Local statistics come from an 11×11 Gaussian window (σ = 1.5) applied per channel without padding: only
    windows that fit entirely inside the image count, as in Wang et al.'s reference code and scikit-image
    (torchmetrics ≥ 1.x instead reflect-pads and also averages the border, giving slightly different numbers).
    The SSIM map is averaged over channels and positions. Images smaller than the window use a window as
    large as the image allows. pred, target: B×C×H×W. Returns B (float32); 1 for identical images.
    """
    _check_pair(pred, target)
    b, c, h, w = pred.shape
    size = min(window_size, h, w)
    if size % 2 == 0:
        size -= 1
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x = pred.detach().to(dtype)
    y = target.detach().to(dtype)

    g = _gaussian_1d(size, sigma, x.device, dtype)
    kernel_h = g.view(1, 1, size, 1).expand(c, 1, size, 1)
    kernel_w = g.view(1, 1, 1, size).expand(c, 1, 1, size)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, kernel_h, groups=c), kernel_w, groups=c)

    # One pass over the five moment maps stacked along the batch.
    stats = blur(torch.cat([x, y, x * x, y * y, x * y], dim=0))
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(b, dim=0)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov_xy = e_xy - mu_x * mu_y

    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (numerator / denominator).flatten(1).mean(dim=1).to(torch.float32)
