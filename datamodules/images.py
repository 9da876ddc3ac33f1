"""Image files: records, reading and preprocessing, and the errors of an unreadable image.

- :class:`ImageRecord` — one image file and its labels (what a dataset's layout reader produces).
- :class:`Preprocess` — decode, crop, resize and flip one file into S×S×3 uint8; the one place an unreadable
  file is detected: it raises :class:`BadImageError` naming the file (what the datasets then stop on or skip).
- :func:`make_preprocess` — ``data.crop`` (a named crop of the dataset, a side, ``[w, h]``, a box or a dict) as a
  :class:`Preprocess`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datamodules.base import check_choice
from suite.errors import ConfigError, DatasetError

BAD_IMAGE_CHOICES = ("stop", "skip")  # data.on_bad_image


# ---------------------------------------------------------------------------------------------- errors
class ImageError(DatasetError):
    """A DatasetError raised while loading an image, possibly in a loader worker process.

    A worker's exception comes back to the main process rebuilt from one string holding the worker's
    traceback (``torch._utils.ExceptionWrapper``); this class keeps only its own one-sentence message from
    that string, so the user sees the sentence, not a traceback.
    """

    def __init__(self, message: str = ""):
        if message.startswith("Caught ") and "Traceback" in message:
            found = re.findall(rf"^\S*\b{re.escape(type(self).__name__)}: (.*)$", message, flags=re.MULTILINE)
            if found:
                message = found[-1]
        super().__init__(message)


class BadImageError(ImageError):
    """An image file that cannot be decoded (missing, unreadable, corrupt, truncated)."""


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ImageRecord:
    """One image: its file and its categorical labels (e.g. ``{"identity": 28, "expression": "angry"}``)."""

    path: Path
    labels: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Preprocess:
    """Crop, resize to ``image_size`` × ``image_size``, optionally flip.

    Args:
        image_size: output side in pixels.
        crop: ``"square"`` the largest centred square; ``"full"`` the whole image (aspect not kept); an int
            or ``(w, h)``: a centred crop of that size in source pixels.
        shift: ``(dx, dy)`` source pixels moving the centred crop (negative ``dy`` moves it up).
        box: ``(left, top, right, bottom)`` in source pixels; replaces ``crop`` and ``shift``.
        flip: random horizontal flips of train images (the dataset decides which, per epoch).
        draft: let the JPEG decoder downscale by 1/2, 1/4 or 1/8 while decoding, as long as the crop still
            has at least ``image_size`` pixels a side (far faster on large photographs).
        anchor: ``"center"`` centres a sized crop; ``"top"`` centres it horizontally and puts it at the top
            edge (ImageMagick's ``-gravity North -crop``).
        shave: pixels removed from every border before cropping (ImageMagick's ``-shave``); ``"full"`` then
            keeps the rest. Ignored with ``box``.
        load_size: CycleGAN's ``resize_and_crop`` jitter (``data/base_dataset.py``: Resize 286 bicubic →
            RandomCrop 256): the crop is resized to ``load_size`` × ``load_size`` and an ``image_size`` square is
            cut from it at ``offset`` (train items: random); items without an offset (test) are resized straight to
            ``image_size``, as the reference tests with load size = crop size. None: always resize to ``image_size``.
    """

    image_size: int
    crop: str | int | tuple[int, int] = "square"
    shift: tuple[int, int] = (0, 0)
    box: tuple[int, int, int, int] | None = None
    flip: bool = True
    draft: bool = True
    anchor: str = "center"
    shave: int = 0
    load_size: int | None = None

    def __post_init__(self) -> None:
        if self.load_size is not None:
            if isinstance(self.load_size, bool) or not isinstance(self.load_size, int | np.integer) or self.load_size < self.image_size:
                raise ConfigError(f"load_size must be a number of pixels >= image_size ({self.image_size}), got {self.load_size!r}.")
            object.__setattr__(self, "load_size", int(self.load_size))
        if self.anchor not in ("center", "top"):
            raise ConfigError(f"a crop anchor must be 'center' or 'top', got {self.anchor!r}.")
        if isinstance(self.shave, bool) or not isinstance(self.shave, int | np.integer) or self.shave < 0:
            raise ConfigError(f"shave must be a number of pixels >= 0, got {self.shave!r}.")
        object.__setattr__(self, "shave", int(self.shave))
        crop = self.crop
        if isinstance(crop, Sequence) and not isinstance(crop, str):
            object.__setattr__(self, "crop", tuple(int(v) for v in crop))
            if len(self.crop) != 2 or min(self.crop) < 1:
                raise ConfigError(f"a crop size must be an int or (width, height) ≥ 1, got {crop!r}.")
        elif isinstance(crop, str):
            if crop not in ("square", "full"):
                raise ConfigError(f"crop must be 'square', 'full', an int or (width, height), got {crop!r}.")
        elif isinstance(crop, bool) or not isinstance(crop, int) or crop < 1:
            raise ConfigError(f"a crop size must be a positive int, got {crop!r}.")
        object.__setattr__(self, "shift", tuple(int(v) for v in self.shift))
        if self.box is not None:
            box = tuple(int(v) for v in self.box)
            if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
                raise ConfigError(f"a crop box must be (left, top, right, bottom) with right > left and bottom > top, got {self.box!r}.")
            object.__setattr__(self, "box", box)

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The crop as (left, top, right, bottom) in the pixels of a ``width`` × ``height`` image."""
        if self.box is not None:
            return self.box
        s = self.shave
        width, height = width - 2 * s, height - 2 * s
        if self.crop == "full":
            return (s, s, s + width, s + height)
        if self.crop == "square":
            cw = ch = min(width, height)
        elif isinstance(self.crop, tuple):
            cw, ch = self.crop
        else:
            cw = ch = int(self.crop)
        left = s + (width - cw) // 2 + self.shift[0]
        top = s + (0 if self.anchor == "top" else (height - ch) // 2) + self.shift[1]
        return (left, top, left + cw, top + ch)

    def describe(self) -> dict[str, Any]:
        """The settings as plain data (for fingerprints)."""
        d = asdict(self)
        d["crop"] = list(d["crop"]) if isinstance(d["crop"], tuple) else d["crop"]
        d["shift"] = list(d["shift"])
        d["box"] = list(d["box"]) if d["box"] is not None else None
        for key, default in (("anchor", "center"), ("shave", 0), ("load_size", None)):  # absent at their defaults: older fingerprints hold
            if d[key] == default:
                del d[key]
        return d

    def open(self, path: Path) -> Image.Image:
        """The file at ``path`` as a PIL image (a dataset with a headerless format of its own overrides this)."""
        return Image.open(path)

    @property
    def decoded_size(self) -> int:
        """The side of :meth:`decode`'s output: ``load_size`` when jittering, else ``image_size``."""
        return self.load_size or self.image_size

    def random_offset(self) -> tuple[float, float] | None:
        """A random crop position for :meth:`finish` (torch's RNG: seeded per loader worker); None without jitter."""
        if self.load_size is None or self.load_size == self.image_size:
            return None
        import torch

        return tuple(torch.rand(2).tolist())

    def finish(self, pixels: np.ndarray, flip: bool = False, offset: tuple[float, float] | None = None) -> np.ndarray:
        """Decoded pixels → the S×S×3 output: the ``image_size`` square at ``offset`` (fractions of the free
        margin, left and top; None: centred) when they are larger, then the flip."""
        spare = pixels.shape[0] - self.image_size
        if spare > 0:
            fx, fy = (0.5, 0.5) if offset is None else offset
            left, top = round(fx * spare), round(fy * spare)
            pixels = pixels[top : top + self.image_size, left : left + self.image_size]
        return np.ascontiguousarray(pixels[:, ::-1]) if flip else np.ascontiguousarray(pixels)

    def __call__(self, path: Path, flip: bool = False, offset: tuple[float, float] | None = None) -> np.ndarray:
        """The image at ``path`` as S×S×3 uint8 (:meth:`decode`, then :meth:`finish`). Without an offset the image
        is resized straight to ``image_size`` (CycleGAN's test-time load size = crop size)."""
        if offset is None:
            return self.finish(self.decode(path, self.image_size), flip)
        return self.finish(self.decode(path), flip, offset)

    def decode(self, path: Path, size: int | None = None) -> np.ndarray:
        """The image at ``path`` cropped and resized to a ``size`` square (default ``decoded_size``), uint8. Raises
        BadImageError when the file cannot be decoded and ImageError when the crop does not fit in it."""
        size = size or self.decoded_size
        try:
            with self.open(path) as img:
                width, height = img.size
                left, top, right, bottom = self.crop_box(width, height)
                if left < 0 or top < 0 or right > width or bottom > height:
                    raise ImageError(
                        f"the crop box {(left, top, right, bottom)} does not fit in the {width}×{height} image "
                        f"{path}; choose a smaller crop (data.crop) for these images."
                    )
                if self.draft and img.format == "JPEG":
                    s = size
                    img.draft("RGB", (-(-width * s // (right - left)), -(-height * s // (bottom - top))))
                    sx, sy = width / img.size[0], height / img.size[1]
                    left, top, right, bottom = left / sx, top / sy, right / sx, bottom / sy
                img.load()
                rgb = img.convert("RGB")
        except ImageError:
            raise
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError …
            raise BadImageError(f"cannot read the image {path} ({reason(exc)})") from exc
        out = rgb.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, right, bottom))
        return np.array(out, dtype=np.uint8)  # a writable copy (torch refuses read-only arrays)


def reason(exc: Exception) -> str:
    """An exception's message on one line, at most 200 characters (its type's name when it has none)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def plain_arg(value: Any) -> Any:
    """A Hydra ListConfig/DictConfig argument as plain Python (lists, dicts); anything else unchanged."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def make_preprocess(
    dataset: str,
    crop: Any,
    image_size: int,
    *,
    named: Mapping[str, Mapping[str, Any]],
    flip: bool = True,
    draft: bool = True,
) -> Preprocess:
    """``data.crop`` as a :class:`Preprocess`: a name of ``named`` (each a dict of Preprocess arguments), a
    centred side, ``[w, h]``, a box ``[left, top, right, bottom]``, or a dict with the keys ``size``,
    ``shift``, ``box``, ``anchor``, ``shave``, ``load_size`` (CycleGAN's 286 → 256 jitter: ``{size: full,
    load_size: 286}``)."""
    crop = plain_arg(crop)
    if isinstance(crop, str):
        spec = dict(named[check_choice(dataset, "crop", crop, tuple(named))])
    elif isinstance(crop, dict):
        unknown = set(crop) - {"size", "shift", "box", "anchor", "shave", "load_size"}
        if unknown:
            raise ConfigError(f"data.crop takes the keys size, shift, box, anchor, shave, load_size; got {sorted(unknown)}.")
        spec = {"crop" if k == "size" else k: v for k, v in crop.items() if v is not None}
    elif isinstance(crop, list | tuple) and len(crop) == 4:
        spec = {"box": crop}
    else:
        spec = {"crop": crop}
    for key in ("shift", "box"):
        if spec.get(key) is not None:
            spec[key] = tuple(spec[key])
    return Preprocess(image_size, flip=flip, draft=draft, **spec)
