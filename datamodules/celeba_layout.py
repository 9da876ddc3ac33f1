"""CelebA's files and their text formats (shared with CelebA-HQ, whose attribute file has the same format).

Release layout (``root`` = the folder holding ``Img/``, ``Anno/``, ``Eval/``)::

    Img/img_align_celeba/000001.jpg … 202599.jpg      178×218 JPEG, aligned and cropped
    Anno/list_attr_celeba.txt                          line 1 the count (202599); line 2 the 40 names;
                                                       rows "000001.jpg -1  1  1 -1 …" (±1 padded to width 2)
    Anno/identity_CelebA.txt                           "000001.jpg 2880" (not read)
    Anno/list_bbox_celeba.txt, list_landmarks_*.txt    (not read)
    Eval/list_eval_partition.txt                       "000001.jpg 0" — 0 train, 1 val, 2 test

torchvision's flat form is read too: ``celeba/img_align_celeba/`` with the text files directly in ``celeba/``
(``root`` = that folder or its parent). This module only parses; :mod:`datamodules.celeba` makes the splits.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.base import check_choices
from datamodules.layouts import malformed, read_annotation
from suite.errors import DatasetError

LAYOUT = (
    "CelebA's release layout: Img/img_align_celeba/000001.jpg …, Anno/list_attr_celeba.txt and "
    "Eval/list_eval_partition.txt (or torchvision's celeba/ folder with img_align_celeba/ and the text files)"
)
# (form, image folder, attribute file, partition file), relative to root, in order of preference
FORMS = (
    ("release", "Img/img_align_celeba", "Anno/list_attr_celeba.txt", "Eval/list_eval_partition.txt"),
    ("flat", "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"),
    ("flat", "celeba/img_align_celeba", "celeba/list_attr_celeba.txt", "celeba/list_eval_partition.txt"),
)
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
_VALUES = frozenset({"1", "-1"})


@dataclass(frozen=True)
class CelebAFiles:
    """Where one CelebA copy keeps its images and annotation files."""

    form: str
    images: Path
    attributes: Path
    partition: Path


def locate(root: Path, dataset: str = "celeba") -> CelebAFiles:
    """The files of the CelebA copy under ``root``; a DatasetError naming the folders tried when there is none."""
    for form, images, attributes, partition in FORMS:
        if (root / images).is_dir():
            return CelebAFiles(form, root / images, root / attributes, root / partition)
    tried = ", ".join(str(root / f[1]) for f in FORMS)
    raise DatasetError(f"data={dataset}: no CelebA image folder under {root} (looked for {tried}); expected {LAYOUT}.")


@dataclass(frozen=True)
class AttributeTable:
    """An attribute file: every name (file order), the image file names (file order) and, for the
    ``selected`` names, a len(files) × len(selected) uint8 matrix of 0/1."""

    names: list[str]
    files: list[str]
    selected: list[str]
    values: np.ndarray

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.selected.index(name)]


def read_attributes(dataset: str, path: Path, select: Sequence[str], layout: str = LAYOUT) -> AttributeTable:
    """Parse an attribute file in CelebA's format (line 1 the count, line 2 the names, rows of a file name and
    one ±1 per name, any whitespace between). ``select`` names the columns kept; an unknown name is refused
    with the list of valid ones, a malformed line with its number, a count that disagrees with the rows."""
    lines = read_annotation(dataset, path, layout)
    if not lines or not lines[0].strip().isdigit():
        raise malformed(dataset, path, 1, "the number of images", lines[0] if lines else "")
    count = int(lines[0].strip())
    names = lines[1].split() if len(lines) > 1 else []
    if not names:
        raise malformed(dataset, path, 2, "the attribute names", lines[1] if len(lines) > 1 else "")
    selected = check_choices(dataset, "attribute", list(select), names)
    columns = [names.index(n) + 1 for n in selected]
    n = len(names)
    files: list[str] = []
    rows: list[list[bool]] = []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != n + 1 or not _VALUES.issuperset(parts[1:]):
            raise malformed(dataset, path, lineno, f"an image name and {n} values of 1 or -1", line)
        files.append(parts[0])
        rows.append([parts[c] == "1" for c in columns])
    if len(files) != count:
        raise DatasetError(
            f"data={dataset}: {path} declares {count} images on line 1 but lists {len(files)}; the file is truncated or was edited."
        )
    values = np.array(rows, dtype=np.uint8).reshape(len(files), len(selected))
    return AttributeTable(names, files, selected, values)


def read_partition(dataset: str, path: Path, layout: str = LAYOUT) -> dict[str, str]:
    """``list_eval_partition.txt`` as file name → train | val | test."""
    split: dict[str, str] = {}
    for lineno, line in enumerate(read_annotation(dataset, path, layout), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in PARTITIONS:
            raise malformed(dataset, path, lineno, "an image name and 0, 1 or 2 (train, val, test)", line)
        split[parts[0]] = PARTITIONS[parts[1]]
    return split


def present(dataset: str, folder: Path, files: Sequence[str], listed_in: Path, on_bad_image: str) -> np.ndarray:
    """Which of ``files`` (listed in ``listed_in``) exist in ``folder``, as a boolean mask. Missing files stop
    with one sentence (``on_bad_image=stop``) or are left out with a warning (``skip``)."""
    try:
        on_disk = set(os.listdir(folder))
    except OSError as exc:
        raise DatasetError(f"data={dataset}: cannot list the image folder {folder} ({exc.strerror or exc}).") from exc
    mask = np.fromiter((f in on_disk for f in files), dtype=bool, count=len(files))
    missing = len(files) - int(mask.sum())
    if missing:
        first = files[int(np.argmin(mask))]
        text = f"data={dataset}: {missing} of the {len(files)} images listed in {listed_in} are missing from {folder} (first: {first})"
        if on_bad_image != "skip":
            raise DatasetError(f"{text}; restore them or set data.on_bad_image=skip to leave them out.")
        warnings.warn(f"{text}; left out (data.on_bad_image=skip).", stacklevel=3)
    return mask
