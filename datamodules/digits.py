"""MNIST → USPS and MNIST → MNIST-M (SAT Sec. 3.2, Table 3) from local files in torchvision's layouts
(:mod:`datamodules.digits_layout`; nothing is downloaded).

``domains`` names the source and the target dataset (``[mnist, usps]`` or ``[mnist, mnistm]``; any two of mnist,
usps, mnistm); each dataset's own train/test split is used. Every record carries its ``digit`` label (0–9), which
the translate-then-classify protocol (``protocol=sat_table3``) reads; the batches are the ordinary two_domain
items (``image`` from the source, ``ref`` an unpaired target-domain digit).

Preprocessing: grey digits become RGB (three equal channels); each digit is resized (bicubic) to
``image_size`` (SAT Sec. 3: "all images are resized to 256x256"; the presets follow it). No flips by default:
a flipped digit is another glyph. Validation is a fixed, evenly spread subset of ``val_size`` test items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from datamodules.base import check_choices
from datamodules.digits_layout import (
    DATASETS,
    LAYOUT,
    SPLITS,
    mnist_files,
    mnistm_files,
    read_idx,
    read_mnistm_labels,
    read_usps,
    usps_file,
)
from datamodules.images import ImageRecord, plain_arg
from datamodules.parts import PartPreprocess, part_path
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "DIGITS_ROOT"
NAMED_CROPS: dict[str, dict[str, Any]] = {"none": {"crop": "full"}}


@dataclass(frozen=True)
class DigitPreprocess(PartPreprocess):
    """Opens digit ``<index>`` of an MNIST IDX file or a USPS libsvm file."""

    def open_part(self, file: Path, part: str) -> Image.Image:
        pixels = read_usps(file)[0] if file.suffix == ".bz2" else read_idx(file)
        return Image.fromarray(pixels[int(part)])  # 2-D uint8: mode L


def digit_records(root: Path, dataset: str, split: str) -> list[ImageRecord]:
    """The records of one dataset's split: ``domain`` = the dataset, ``digit`` = the label."""
    if dataset == "mnist":
        images, labels = mnist_files(root, split)
        digits = read_idx(labels).tolist()
        count = len(read_idx(images))
        if count != len(digits):
            raise DatasetError(f"data=digits: {images} holds {count} digits but {labels} {len(digits)} labels.")
        return [ImageRecord(part_path(images, i), {"domain": dataset, "digit": d}) for i, d in enumerate(digits)]
    if dataset == "usps":
        path = usps_file(root, split)
        return [ImageRecord(part_path(path, i), {"domain": dataset, "digit": int(d)})
                for i, d in enumerate(read_usps(path)[1])]
    folder, labels = mnistm_files(root, split)
    return [ImageRecord(folder / name, {"domain": dataset, "digit": d}) for name, d in read_mnistm_labels(labels)]


class DigitsDataModule(
    RecordsDataModule, dataset="digits", views=("two_domain",), env_var=ENV_VAR,
    layout="; ".join(f"{d}: {text}" for d, text in LAYOUT.items()), crops=NAMED_CROPS,
):
    """Two digit datasets as the two domains.

    Args:
        domains: [source, target] of mnist | usps | mnistm (default [mnist, usps]).
        image_size, crop (null = none: the whole digit), val_size, flip (default false), draft, on_bad_image,
        cache_dir, cache_format, batch_size, num_workers, pin_memory, seed, view, root, direction: see
        :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(self, domains: Sequence[str] | None = None, image_size: int = 256, crop: Any = None,
                 batch_size: int = 1, flip: bool = False, **common: Any):
        super().__init__(image_size=image_size, batch_size=batch_size, flip=flip, **common)
        chosen = check_choices(self.name, "domain", list(plain_arg(domains) or ["mnist", "usps"]), DATASETS)
        if len(chosen) != 2:
            raise ConfigError(f"data.domains: the digits need exactly 2 datasets [source, target], got {chosen}.")
        self.domain_names, self.domain_factor = chosen, "dataset"
        self.records = {"train": [], "val": [], "test": []}
        for split in SPLITS:
            for dataset in chosen:
                self.records[split] += digit_records(self.root, dataset, split)
        self.preprocess = DigitPreprocess.of(self.make_preprocess("none" if crop is None else crop))
        self.split_rule = "each dataset's own train/test split"
        self.details = {"layout": "torchvision", "datasets": chosen}
        self.finish()

    def digits_of(self, split: str, domain: str) -> list[ImageRecord]:
        """The records of ``domain`` in ``split`` (with their ``digit`` labels), in file order."""
        return [r for r in self.records[split] if r.labels["domain"] == domain]

