"""Records that are a part of a file: ``<file>#<part>``.

Some datasets keep several images in one file: pix2pix's maps put the photo and the map side by side in one
JPEG (the part is ``left`` or ``right``), MNIST and USPS keep every digit of a split in one array file (the part
is the digit's index). A record's path is then ``<file>#<part>`` (:func:`part_path`) and a
:class:`PartPreprocess` subclass opens the part as a PIL image; everything after the opening (crop, resize,
flip, the disk cache, the bad-image errors, which name the path with its part) is the ordinary
:class:`datamodules.images.Preprocess`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from datamodules.images import Preprocess

SEP = "#"


def part_path(file: Path, part: object) -> Path:
    """The record path of ``part`` of ``file``."""
    return Path(f"{file}{SEP}{part}")


def split_part(path: Path) -> tuple[Path, str | None]:
    """(the file, the part) of a record path; the part is None for a whole file."""
    text = str(path)
    if SEP not in Path(text).name:
        return Path(text), None
    file, _, part = text.rpartition(SEP)
    return Path(file), part


@dataclass(frozen=True)
class PartPreprocess(Preprocess):
    """A :class:`Preprocess` whose records may name a part of a file (``<file>#<part>``): a subclass says how to
    open a part (:meth:`open_part`); whole files open as usual."""

    def open(self, path: Path) -> Image.Image:
        file, part = split_part(path)
        return super().open(path) if part is None else self.open_part(file, part)

    def open_part(self, file: Path, part: str) -> Image.Image:
        raise NotImplementedError

    @classmethod
    def of(cls, base: Preprocess) -> PartPreprocess:
        """This class with ``base``'s crop, size and flip settings."""
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Preprocess)})
