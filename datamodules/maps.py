"""pix2pix's maps (Isola et al. 2017; aerial photos ↔ Google maps) in its release layout, as SAT uses it.

Layout (``root`` = the ``maps`` folder; default ``MAPS_ROOT``): ``train/1.jpg … train/1096.jpg`` and
``val/1.jpg … val/1098.jpg`` — each a 1200×600 JPEG holding the photo on its left half and the map of the same
place on its right half. ``val/`` is the test set (pix2pix's ``--phase val``).

Protocols (domains ``photo`` and ``map``; two_domain, direction a2b = photo → map):

- ``sat`` (SAT Sec. 3.2, Table 2): "we take the 1096 photos from the training set and the 1098 maps from the
  test set, using them as the training data" — the train split is the left halves of ``train/`` and the right
  halves of ``val/``, unpaired; the test split is the photos of ``val/`` with the map of the same file as the
  ground truth (``gt``), which ``protocol=sat_table2`` scores.
- ``paired_split``: both halves of ``train/`` for training (still sampled unpaired), ``val/`` as the test split
  with ``gt`` (CycleGAN's maps setting).

Each half is resized to ``image_size`` (SAT Sec. 3: "all images are resized to 256x256"); training images are
flipped at random (``flip``). Validation is a fixed, evenly spread subset of ``val_size`` test items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from datamodules.base import check_choice
from datamodules.images import ImageRecord
from datamodules.parts import PartPreprocess, part_path
from datamodules.record_datasets import RecordDataset
from datamodules.records import RecordsDataModule
from suite.errors import DatasetError

ENV_VAR = "MAPS_ROOT"
LAYOUT = "pix2pix's maps: train/<n>.jpg and val/<n>.jpg, each a photo (left half) and its map (right half) side by side"
DOMAINS = ("photo", "map")
HALVES = {"photo": "left", "map": "right"}
PROTOCOLS = ("sat", "paired_split")
NAMED_CROPS: dict[str, dict[str, Any]] = {"none": {"crop": "full"}}  # the whole half resized to a square
NUMBERED = re.compile(r"^(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class HalfPreprocess(PartPreprocess):
    """Opens the ``left`` or ``right`` half of a side-by-side pair."""

    def open_part(self, file: Path, part: str) -> Image.Image:
        with Image.open(file) as img:
            img.load()
            width, height = img.size
            half = width // 2
            return img.crop((0, 0, half, height) if part == "left" else (half, 0, 2 * half, height))


def numbered_files(folder: Path) -> list[Path]:
    """``folder``'s ``<n>.jpg`` files in numeric order."""
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := NUMBERED.match(p.name))]
    return [p for _, p in sorted(found)]


class MapsDataModule(
    RecordsDataModule, dataset="maps", views=("two_domain",), env_var=ENV_VAR, layout=LAYOUT, crops=NAMED_CROPS
):
    """pix2pix's maps, photo → map.

    Args:
        protocol: sat (Table 2's unpaired training data) | paired_split.
        image_size, crop (null = none), val_size, flip, draft, on_bad_image, cache_dir, cache_format, batch_size,
        num_workers, pin_memory, seed, view, root, direction: see :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(self, protocol: str = "sat", image_size: int = 256, crop: Any = None, batch_size: int = 1,
                 **common: Any):
        super().__init__(image_size=image_size, batch_size=batch_size, **common)
        self.protocol = check_choice(self.name, "protocol", protocol, PROTOCOLS)
        files = {}
        for folder in ("train", "val"):
            found = numbered_files(self.root / folder) if (self.root / folder).is_dir() else []
            if not found:
                raise DatasetError(f"data=maps: no numbered images in {self.root / folder} (e.g. {folder}/1.jpg); expected {LAYOUT}.")
            files[folder] = found
        train_maps = "val" if self.protocol == "sat" else "train"
        self.records = {
            "train": [self._record(p, "photo") for p in files["train"]] + [self._record(p, "map") for p in files[train_maps]],
            "val": [],
            "test": [self._record(p, d) for d in DOMAINS for p in files["val"]],
        }
        self.domain_names, self.domain_factor, self.pair_key = list(DOMAINS), "modality", "file"
        self.preprocess = HalfPreprocess.of(self.make_preprocess("none" if crop is None else crop))
        self.split_rule = (f"photos of {self.root / 'train'} with the maps of {self.root / train_maps}; test: {self.root / 'val'}")
        self.details = {"protocol": self.protocol, "layout": "pix2pix side by side"}
        self.fingerprint_extra = {"halves": HALVES}
        self.finish()

    def _record(self, path: Path, domain: str) -> ImageRecord:
        return ImageRecord(part_path(path, HALVES[domain]), {"domain": domain, "file": f"{path.parent.name}/{path.stem}"})

    def _make_dataset(self, split: str) -> RecordDataset:
        """The test (and val) split pairs each photo with its own map (``gt``); training stays unpaired."""
        if split != "train":
            return super()._make_dataset(split)
        key, self.pair_key = self.pair_key, None
        try:
            return super()._make_dataset(split)
        finally:
            self.pair_key = key
