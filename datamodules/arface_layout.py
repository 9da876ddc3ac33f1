"""AR Face's files: their names, sessions and expressions, and the headerless ``.raw`` images.

The AR Face database (A. M. Martinez and R. Benavente, CVC Technical Report 24, 1998; AGGAN's reference [24]):
126 people (70 men, 56 women), 26 frontal images each, taken in two sessions two weeks apart. A file is named
``{sex}-{person}-{image}.{ext}``: sex ``M`` (men) or ``W`` (women; ``F`` in some copies), the person number
(``001`` …) and the image index 01–26. Lower case and unpadded numbers (``m-001-1.raw``) are read too. Indices
01–13 are session 1 and 14–26 session 2, the same conditions in the same order:

============  ===============================================
01 / 14       neutral expression
02 / 15       smile
03 / 16       anger
04 / 17       scream (AGGAN Sec. IV-A calls it "fear")
05–07 / 18–20 left, right, both side lights on
08–10 / 21–23 sun glasses (and the left / right light)
11–13 / 24–26 scarf (and the left / right light)
============  ===============================================

Only the four expression images of each session are records; illumination and occlusion images are no
expression domain and are not read.

The release's ``.raw`` files (distributed Unix-compressed as ``.raw.Z``: ``uncompress`` them first) are 768×576
RGB, 8 bits a channel, no header: 768 · 576 · 3 = 1,327,104 bytes. The public readers of the release (L. van der
Maaten's MATLAB ``readraw``, 2009, and a Python ``ar_img_read``) both read them as three 576×768 planes R, G, B
one after the other, so ``planar`` is the default byte order and ``interleaved`` (RGBRGB…) a switch. ``.bmp``,
``.png`` and ``.jpg`` copies are read as they are; where an image has a ``.raw`` and a copy, the ``.raw`` (the
original) is read.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datamodules.images import Preprocess
from suite.errors import ConfigError, DatasetError

EXPRESSIONS = ("neutral", "smile", "anger", "scream")  # images 01–04 of a session
CONDITIONS = EXPRESSIONS + (
    "left light", "right light", "both lights", "sun glasses", "sun glasses, left light", "sun glasses, right light",
    "scarf", "scarf, left light", "scarf, right light",
)  # images 01–13 of a session
IMAGES = 2 * len(CONDITIONS)  # 26: two sessions
RAW_SIZE = (768, 576)  # width, height of the release's .raw files
RAW_ORDERS = ("planar", "interleaved")
EXTENSIONS = (".raw", ".bmp", ".png", ".jpg", ".jpeg")  # also the preference order when an image has several files
NAME = re.compile(r"^(?P<sex>[MWF])-(?P<person>\d{1,3})-(?P<image>\d{1,2})\.(?:raw|bmp|png|jpe?g)$", re.IGNORECASE)
LOOKS_LIKE = re.compile(r"^[MWF]-\d", re.IGNORECASE)  # a name meant to follow the naming
PATTERN = "{sex M or W}-{person 001 …}-{image 01–26}.{raw|bmp|png|jpg}"
LAYOUT = (
    f"AR Face's images named {PATTERN} in the root or its subfolders (M-001-01.raw, W-012-15.bmp …): the release's "
    ".raw (768×576 RGB, no header) or .bmp/.png/.jpg copies"
)


@dataclass(frozen=True)
class ARFaceFile:
    """One AR Face image file and what its name says."""

    path: Path
    sex: str  # M | W (| F)
    person: int
    image: int  # 1–26

    @property
    def identity(self) -> str:
        """The person, as ``M-001``."""
        return f"{self.sex}-{self.person:03d}"

    @property
    def session(self) -> int:
        return 1 if self.image <= len(CONDITIONS) else 2

    @property
    def condition(self) -> str:
        return CONDITIONS[(self.image - 1) % len(CONDITIONS)]

    @property
    def expression(self) -> str | None:
        """neutral | smile | anger | scream; None for an illumination or occlusion image."""
        return self.condition if self.condition in EXPRESSIONS else None


def parse(path: Path) -> ARFaceFile | None:
    """The AR Face file at ``path``; None for a file outside the naming (a README …); a DatasetError for an image
    whose name starts like the naming but breaks it (``M-001-1a.bmp``, ``M-001-27.bmp``)."""
    m = NAME.match(path.name)
    if m is not None and 1 <= int(m["image"]) <= IMAGES and int(m["person"]) >= 1:
        return ARFaceFile(path, m["sex"].upper(), int(m["person"]), int(m["image"]))
    if m is not None or (LOOKS_LIKE.match(path.name) and path.suffix.lower() in EXTENSIONS):
        raise DatasetError(f"data=arface: the file name {path} is malformed: expected {PATTERN} (M-001-01.raw).")
    return None


def scan(root: Path) -> list[ARFaceFile]:
    """Every AR Face image under ``root`` (subfolders included), one file per (person, image) — the ``.raw``
    where there is one, else a copy in the order of :data:`EXTENSIONS` — sorted by sex, person and image.

    DatasetErrors: no file follows the naming (or all are still compressed), a malformed name, two copies of an
    image in the same format. ``.Z`` files of images that have no uncompressed file are warned about."""
    found: dict[tuple[str, int, int], list[ARFaceFile]] = {}
    compressed: dict[tuple[str, int, int], Path] = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            m = NAME.match(name[:-2]) if name.lower().endswith(".z") else None
            if m is not None:
                compressed.setdefault((m["sex"].upper(), int(m["person"]), int(m["image"])), path)
                continue
            f = parse(path)
            if f is not None:
                found.setdefault((f.sex, f.person, f.image), []).append(f)
    if not found:
        if compressed:
            raise DatasetError(
                f"data=arface: the images in {root} are still Unix-compressed ({next(iter(compressed.values())).name} …): run "
                "uncompress on the .Z files first."
            )
        raise DatasetError(f"data=arface: no file in {root} is named like M-001-01.raw; expected {LAYOUT}.")
    files = []
    for group in found.values():
        group.sort(key=lambda f: (EXTENSIONS.index(f.path.suffix.lower()), str(f.path)))
        if len(group) > 1 and group[0].path.suffix.lower() == group[1].path.suffix.lower():
            raise DatasetError(
                f"data=arface: {group[0].path} and {group[1].path} are both image {group[0].path.stem}; keep one of them."
            )
        files.append(group[0])
    left = [p for key, p in compressed.items() if key not in found]
    if left:
        warnings.warn(
            f"data=arface: {len(left)} Unix-compressed file(s) ({left[0]} …) are not read; uncompress them to use them.",
            stacklevel=2,
        )
    return sorted(files, key=lambda f: (f.sex, f.person, f.image))


# ---------------------------------------------------------------------------------------------- .raw images
def raw_size_text(actual: int, size: tuple[int, int]) -> str:
    """``"1,000 bytes where a 768×576 RGB .raw image has 1,327,104"`` (part of the wrong-size sentences)."""
    width, height = size
    return f"{actual:,} bytes where a {width}×{height} RGB .raw image has {width * height * 3:,}"


def decode_raw(path: Path, size: tuple[int, int] = RAW_SIZE, order: str = "planar") -> np.ndarray:
    """The headerless ``.raw`` at ``path`` as H×W×3 uint8: ``size`` = (width, height); ``order`` planar (an R, a G
    and a B plane of H rows × W) or interleaved (RGB per pixel, row by row). A ValueError giving both byte counts
    when the file has another size (the image reader names the file)."""
    width, height = size
    data = np.fromfile(path, dtype=np.uint8)
    if data.size != width * height * 3:
        raise ValueError(raw_size_text(data.size, size))
    if order == "planar":
        return np.ascontiguousarray(data.reshape(3, height, width).transpose(1, 2, 0))
    return data.reshape(height, width, 3)


@dataclass(frozen=True)
class RawPreprocess(Preprocess):
    """A :class:`datamodules.images.Preprocess` that also reads AR Face's headerless ``.raw`` files.

    Args:
        raw_size: (width, height) of the ``.raw`` files (the release's 768×576).
        raw_order: planar | interleaved (see :func:`decode_raw`).
    """

    raw_size: tuple[int, int] = RAW_SIZE
    raw_order: str = "planar"

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            size = tuple(int(v) for v in self.raw_size)
        except (TypeError, ValueError):
            size = ()
        if len(size) != 2 or min(size) < 1:
            raise ConfigError(f"data.raw_size must be [width, height] in pixels, got {self.raw_size!r}.")
        object.__setattr__(self, "raw_size", size)
        if self.raw_order not in RAW_ORDERS:
            raise ConfigError(f"data.raw_order must be one of {', '.join(RAW_ORDERS)}, got {self.raw_order!r}.")

    @classmethod
    def of(cls, base: Preprocess, **raw: Any) -> RawPreprocess:
        """``base``'s crop, size and flip settings with the ``.raw`` settings ``raw``."""
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Preprocess)}, **raw)

    def open(self, path: Path) -> Image.Image:
        if Path(path).suffix.lower() == ".raw":
            return Image.fromarray(decode_raw(path, self.raw_size, self.raw_order))
        return super().open(path)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "raw_size": list(self.raw_size)}
