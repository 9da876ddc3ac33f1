"""Any two or more folders of images as domains (``data=folder``; the root must be given as ``data.root``).

Layouts, recognised in this order:

- split folders: ``train/<domain>/`` and ``test/<domain>/`` (or ``val/<domain>/``) — e.g. StarGAN's
  ``RaFD/{train,test}/<expression>/`` or AFHQ; the folders' own split.
- CycleGAN's unpaired layout: ``trainA/ trainB/ testA/ testB/`` (any suffix: ``trainX``/``testX`` is the domain
  ``X``); the folders' own split. ``domains`` may name them ``A`` or ``trainA``.
- one folder per domain (``<domain>/*.jpg``, subfolders included), no split: within each domain the images are
  shuffled with ``split_seed`` and the first ``test_fraction`` of them (at least one) are the test split.

Images: .jpg .jpeg .png .bmp .webp .tif .tiff, found recursively, hidden files skipped. Views: ``two_domain``
(``domains`` in order, ``direction`` a2b takes sources from the first), ``multi_domain``, ``multi_attribute``
(the domain as a one-hot vector named by the domains). Preprocessing: the whole image resized to a square
(SAT: "all images are resized to 256x256"; ``crop: square`` takes the largest centred square instead), flipped
in training. Validation is a fixed, evenly spread subset of ``val_size`` test items.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamodules.base import check_choice
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
LAYOUT = (
    "two or more folders of images as domains: train/<domain>/ with test/<domain>/ (or val/<domain>/), CycleGAN's "
    "trainA/ trainB/ testA/ testB/, or one folder per domain (<domain>/*.jpg)"
)
CYCLEGAN = re.compile(r"^(train|test|val)(.+)$")
VIEWS = ("two_domain", "multi_domain", "multi_attribute")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "none": {"crop": "full"},  # the whole image resized to a square (SAT, CycleGAN's test-time resize)
    "square": {"crop": "square"},  # the largest centred square
}


def images_in(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively; hidden entries skipped), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return sorted(found)


def subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def scan(root: Path) -> tuple[str, dict[str, dict[str, Path]]]:
    """(layout, split → domain → folder) for ``root``: ``split`` (train/, test/ or val/), ``cyclegan`` or
    ``classes`` (split → {"all": …})."""
    names = subfolders(root)
    if "train" in names:
        held_out = "test" if "test" in names else "val" if "val" in names else None
        splits = {"train": root / "train", **({"test": root / held_out} if held_out else {})}
        return "split", {s: {d: folder / d for d in subfolders(folder)} for s, folder in splits.items()}
    pairs = [(m[1], m[2], n) for n in names if (m := CYCLEGAN.match(n))]
    if any(kind == "train" for kind, _, _ in pairs):
        out: dict[str, dict[str, Path]] = {"train": {}, "test": {}}
        for kind, domain, name in pairs:
            if kind == "train":
                out["train"][domain] = root / name
            elif kind == "test" or domain not in out["test"]:
                out["test"][domain] = root / name
        return "cyclegan", out
    return "classes", {"all": {d: root / d for d in names}}


class FolderDataModule(
    RecordsDataModule, dataset="folder", views=VIEWS, env_var=None, layout=LAYOUT, crops=NAMED_CROPS
):
    """Folders of images as domains.

    Args:
        view: two_domain | multi_domain | multi_attribute.
        root: the folder holding the domain folders (required: there is no environment variable).
        domains: the domains in order (default: every folder with images; two_domain needs exactly 2).
        test_fraction: one-folder-per-domain layout: the share of each domain held out for testing.
        split_seed: the seed of that split.
        image_size, crop (null = none | square | side | box …), val_size, flip, draft, on_bad_image, cache_dir,
        cache_format, batch_size, num_workers, pin_memory, seed, view, root, direction: see :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(
        self, domains: Sequence[str] | None = None, test_fraction: float = 0.1, split_seed: int = 1234,
        image_size: int = 256, crop: Any = None, batch_size: int = 1, **common: Any
    ):
        super().__init__(image_size=image_size, batch_size=batch_size, **common)
        if not 0 < float(test_fraction) < 1:
            raise ConfigError(f"data.test_fraction must be between 0 and 1, got {test_fraction!r}.")
        self.test_fraction, self.split_seed = float(test_fraction), int(split_seed)
        kind, folders = scan(self.root)
        files = {s: {d: images_in(f) for d, f in by_domain.items()} for s, by_domain in folders.items()}
        first = "all" if kind == "classes" else "train"
        found = [d for d, paths in files[first].items() if paths]
        if len(found) < 2:
            raise DatasetError(
                f"data=folder: {self.root} holds images in {len(found)} domain folder(s) ({', '.join(found) or 'none'}); "
                f"expected {LAYOUT}."
            )
        self.domain_names = self._choose(plain_arg(domains), found, kind)
        self.records = {"train": [], "val": [], "test": []}
        if kind == "classes":
            for d in self.domain_names:
                paths = list(files["all"][d])
                random.Random(f"{self.split_seed}/{d}").shuffle(paths)
                k = max(1, round(self.test_fraction * len(paths))) if len(paths) > 1 else 0
                self.records["test"] += [self._record(p, d) for p in sorted(paths[:k])]
                self.records["train"] += [self._record(p, d) for p in sorted(paths[k:])]
            self.split_rule = f"{self.test_fraction:.0%} of each domain's images, drawn with seed {self.split_seed} (data.test_fraction)"
        else:
            for split in ("train", "test"):
                for d in self.domain_names:
                    self.records[split] += [self._record(p, d) for p in files.get(split, {}).get(d, [])]
            self.split_rule = f"the folders' own split ({'train/, test/ or val/' if kind == 'split' else 'trainX/, testX/'})"
        self.domain_factor = "folder"
        self.attr_names = list(self.domain_names) if self.view == "multi_attribute" else []
        self.preprocess = self.make_preprocess("none" if crop is None else crop)
        self.details = {"layout": kind}
        self.finish()

    def _choose(self, domains: list[str] | None, found: list[str], kind: str) -> list[str]:
        if domains is None:
            if self.view == "two_domain" and len(found) != 2:
                raise ConfigError(
                    f"data=folder: {self.root} has {len(found)} domains ({', '.join(found)}); the two_domain view needs "
                    "data.domains=[<source>, <target>]."
                )
            return found
        chosen = []
        for d in domains:
            d = str(d)
            m = CYCLEGAN.match(d) if kind == "cyclegan" else None
            name = m[2] if m and m[2] in found else d
            chosen.append(check_choice(self.name, "domain", name, found))
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"data.domains {domains} names a domain twice.")
        if self.view == "two_domain" and len(chosen) != 2:
            raise ConfigError(f"data.domains: the two_domain view needs exactly 2 domains, got {chosen}.")
        if len(chosen) < 2:
            raise ConfigError(f"data.domains: the {self.view} view needs at least 2 domains, got {chosen}.")
        return chosen

    def _record(self, path: Path, domain: str) -> ImageRecord:
        if self.view == "multi_attribute":  # the one-hot vector (no "domain" key: a folder may be called that)
            return ImageRecord(path, {d: int(d == domain) for d in self.domain_names})
        return ImageRecord(path, {"domain": domain})

