"""AFHQ (Animal Faces-HQ, 512² cats, dogs and wild animals) as a datamodule.

Layouts (``root`` = the folder holding ``train/``, or its parent holding ``afhq/``; default ``AFHQ_ROOT``):

- v1: ``train/{cat,dog,wild}/{flickr|pixabay}_{cat|dog|wild}_NNNNNN.jpg`` and ``val/{cat,dog,wild}/…``
  (500 images per domain in val);
- v2: ``train/{cat,dog,wild}/*.png`` and ``test/{cat,dog,wild}/*.png``.

Protocol ``stargan_v2`` (StarGAN v2, used by the label/reference bridge at 256 px): the domains cat, dog, wild
as labels; the release's own split, its val/ (v1) or test/ (v2) folder being the test split; the whole 512²
image resized to ``image_size`` (StarGAN v2's ``transforms.Resize``), flipped in training. StarGAN v2 also
applies a random resized crop (scale 0.8–1.0) to half of its training images; that augmentation is not
implemented here.

Views: ``two_domain`` (default cat → dog; ``domains`` and ``direction`` choose), ``multi_domain`` (cat, dog,
wild) and ``multi_attribute`` (the domain as a one-hot vector ``attrs`` named cat, dog, wild). Validation is a
fixed, evenly spread subset of ``val_size`` test items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamodules.base import check_choice, check_choices
from datamodules.folder import images_in
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "AFHQ_ROOT"
DOMAINS = ("cat", "dog", "wild")
LAYOUT = (
    "AFHQ v1's train/{cat,dog,wild}/*.jpg and val/{cat,dog,wild}/*.jpg, or v2's train/{cat,dog,wild}/*.png and "
    "test/{cat,dog,wild}/*.png"
)
VIEWS = ("two_domain", "multi_domain", "multi_attribute")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "none": {"crop": "full"},  # StarGAN v2: Resize of the whole (square) image
    "square": {"crop": "square"},
}
PROTOCOLS = ("stargan_v2",)


def find(root: Path) -> tuple[str, Path, str]:
    """(version "v1" | "v2", the folder holding train/, the name of its held-out folder)."""
    for base in (root, root / "afhq"):
        if (base / "train").is_dir():
            for held_out, version in (("val", "v1"), ("test", "v2")):
                if (base / held_out).is_dir():
                    return version, base, held_out
            raise DatasetError(f"data=afhq: {base} has train/ but neither val/ (v1) nor test/ (v2); expected {LAYOUT}.")
    raise DatasetError(f"data=afhq: no AFHQ at {root} (looked for {root / 'train'} and {root / 'afhq' / 'train'}); expected {LAYOUT}.")


class AFHQDataModule(
    RecordsDataModule, dataset="afhq", views=VIEWS, env_var=ENV_VAR, layout=LAYOUT, crops=NAMED_CROPS
):
    """AFHQ v1 or v2.

    Args:
        view: two_domain | multi_domain | multi_attribute.
        root: the AFHQ folder or its parent (default: ``AFHQ_ROOT``).
        protocol: stargan_v2.
        domains: the domains in order (two_domain default cat, dog; otherwise cat, dog, wild).
        image_size, crop (null = none | square | side | box …), val_size, flip, draft, on_bad_image, cache_dir,
        cache_format, batch_size, num_workers, pin_memory, seed, view, root, direction: see :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(
        self, protocol: str = "stargan_v2", domains: Sequence[str] | None = None, image_size: int = 256,
        crop: Any = None, batch_size: int = 8, **common: Any
    ):
        super().__init__(image_size=image_size, batch_size=batch_size, **common)
        self.protocol = check_choice(self.name, "protocol", protocol, PROTOCOLS)
        default = DOMAINS[:2] if self.view == "two_domain" else DOMAINS
        chosen = check_choices(self.name, "domain", list(plain_arg(domains) or default), DOMAINS)
        need = 2 if self.view == "two_domain" else None
        if (need and len(chosen) != need) or len(chosen) < 2:
            raise ConfigError(f"data.domains: the {self.view} view needs {'exactly' if need else 'at least'} 2 domains, got {chosen}.")
        self.domain_names = chosen
        version, base, held_out = find(self.root)
        self.records = {"train": [], "val": [], "test": []}
        for folder, split in (("train", "train"), (held_out, "test")):
            for d in chosen:
                for path in images_in(base / folder / d) if (base / folder / d).is_dir() else []:
                    labels = {d2: int(d2 == d) for d2 in chosen} if self.view == "multi_attribute" else {"domain": d}
                    self.records[split].append(ImageRecord(path, labels))
        self.split_rule = f"AFHQ {version}'s own split: {base / 'train'} trains, {base / held_out} is the test split"
        self.domain_factor = "species"
        self.attr_names = list(chosen) if self.view == "multi_attribute" else []
        self.preprocess = self.make_preprocess("none" if crop is None else crop)
        self.details = {"layout": version, "protocol": self.protocol}
        self.finish()
