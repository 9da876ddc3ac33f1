"""The datamodule every real dataset shares: its files as :class:`datamodules.images.ImageRecord` lists per
split, turned into the task views by :mod:`datamodules.record_datasets`.

A dataset module (``rafd.py``, ``celeba.py`` …) holds only its layout and protocols: it parses the files into
records, names its domains/attributes/factors and crops, and forwards the loader and cache settings
(``**common``) to :class:`RecordsDataModule`, which checks them, adds the disk cache
(:mod:`datamodules.cache`), builds the views, validation, ``info`` and its fingerprint, and reports skipped
images (:mod:`datamodules.skiplog`). Train items are pure functions of (seed, index, epoch); val/test items are
fixed and never flipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from datamodules.base import BaseImageDataModule, check_choice, check_positive_int, plain
from datamodules.cache import CachedPreprocess
from datamodules.images import BAD_IMAGE_CHOICES, ImageRecord, Preprocess, make_preprocess
from datamodules.layouts import resolve_root
from datamodules.record_datasets import AttributeRecords, DomainRecords, FactorRecords, RecordDataset
from datamodules.skiplog import report_skipped
from datamodules.views import spread
from suite.errors import DatasetError

__all__ = ["ImageRecord", "Preprocess", "RecordsDataModule"]


class RecordsDataModule(BaseImageDataModule):
    """What the real-dataset datamodules share: the root, preprocessing and cache, the view datasets over
    ``self.records``, validation, info and its fingerprint, skipped-image reports.

    A subclass parses its layout in ``__init__`` after calling this one's, then sets
    ``self.root``, ``self.records`` (split → records; an empty ``val`` means validation is a fixed, evenly
    spread subset of ``val_size`` test items), ``self.preprocess``, the labels of the views it offers —
    ``domain_factor``/``domain_names`` (records carry ``labels[domain_key]`` = a domain name; ``domain_key``
    is ``"domain"`` unless set);
    ``attr_names`` (``labels[name]`` ∈ {0, 1}); ``factor_values`` (name → ordered values) and ``factor_names``;
    optionally ``pair_key``/``pair_rank``/``pair_splits`` (paired ground truth), ``flip_swap``, ``heldout`` (test identities),
    ``details`` (layout, protocol … for info), ``fingerprint_extra`` (settings that change the data without
    showing in info) and ``split_rule`` (for the empty-split message) — and calls :meth:`finish`.

    A subclass declares only its layout's and protocols' arguments and forwards the rest (``**common``, the
    arguments below) to this class, so ``data.batch_size=8`` and the like work on every real dataset.

    Args:
        view: the task view (the method's; default the first the dataset offers).
        root: the dataset's folder (default: the ``env_var`` environment variable); a DatasetError naming the
            path tried and the layout expected when it is not a folder.
        image_size: output side in pixels.
        direction: two_domain only: a2b takes sources from the first domain, b2a from the second.
        val_size: validation items (a fixed, evenly spread subset of the test items when there is no val split).
        flip: random horizontal flips of train images.
        draft: JPEG decoding at 1/2, 1/4 or 1/8 scale when the crop keeps ≥ image_size pixels a side.
        on_bad_image: stop (raise, naming the file) | skip (another image of the same pool stands in; warned and
            counted).
        cache_dir: a folder: each image decoded, cropped and resized once and stored there
            (:class:`datamodules.cache.CachedPreprocess`).
        cache_format: npy (fastest to read) | png (smaller on disk).
        batch_size, num_workers, pin_memory, seed: loader settings (see BaseImageDataModule).
        name: the config's dataset name; ignored (the class knows its own).
    """

    env_var: ClassVar[str | None] = None
    layout: ClassVar[str] = ""
    named_crops: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init_subclass__(
        cls, *, dataset: str, views: tuple[str, ...], env_var: str | None, layout: str,
        crops: dict[str, dict[str, Any]], **kwargs: Any,
    ):
        """A dataset declares itself in its class line: ``class X(RecordsDataModule, dataset="x", views=…,
        env_var="X_ROOT" or None, layout="<the files expected, for messages>", crops={name: Preprocess args})``."""
        super().__init_subclass__(**kwargs)
        cls.name, cls.views, cls.env_var, cls.layout, cls.named_crops = dataset, views, env_var, layout, crops

    def __init__(
        self,
        view: str | None = None,
        *,
        root: str | os.PathLike | None = None,
        image_size: int,
        direction: str = "a2b",
        val_size: int = 16,
        flip: bool = True,
        draft: bool = True,
        on_bad_image: str = "stop",
        cache_dir: str | None = None,
        cache_format: str = "npy",
        batch_size: int = 16,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        seed: int = 0,
        name: str | None = None,
    ):
        super().__init__(
            view or self.views[0], batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, seed=seed
        )
        self.image_size = check_positive_int("data.image_size", image_size, minimum=8)
        self.val_size = check_positive_int("data.val_size", val_size)
        self.on_bad_image = check_choice(self.name, "on_bad_image setting", on_bad_image, BAD_IMAGE_CHOICES)
        self.flip, self.draft = bool(flip), bool(draft)
        self.cache_dir = str(Path(cache_dir).expanduser()) if cache_dir else None
        self.cache_format = check_choice(self.name, "cache_format", cache_format, CachedPreprocess.FORMATS)
        self.direction = check_choice(self.name, "direction", direction, ("a2b", "b2a"))
        self.root: Path | None = self.resolve_root(root)
        self.records: dict[str, list[ImageRecord]] = {"train": [], "val": [], "test": []}
        self.preprocess: Preprocess | CachedPreprocess | None = None
        self.domain_factor: str | None = None
        self.domain_names: list[str] = []
        self.domain_key = "domain"
        self.attr_names: list[str] = []
        self.factor_names: list[str] = []
        self.factor_values: dict[str, list] = {}
        self.pair_key: str | None = None
        self.pair_rank: str | None = None
        self.pair_splits: tuple[str, ...] = ("train", "val", "test")  # the splits whose items carry ``gt``
        self.flip_swap: dict[str, dict] = {}
        self.heldout: list | None = None
        self.subject_factors: tuple[str, ...] = ()  # classes = train-split values; unseen elsewhere (UNSEEN_CLASS)
        self.details: dict[str, Any] = {}
        self.fingerprint_extra: dict[str, Any] = {}
        self.split_rule = ""

    # -- construction
    def train_classes(self, *names: str) -> None:
        """Make ``names`` per-subject factors: their classes are the values of the train split's records (sorted),
        and a test image's value outside them is UNSEEN_CLASS (Oldfield et al. fit C_id on the train identities)."""
        for name in names:
            self.factor_values[name] = sorted({r.labels[name] for r in self.records["train"]})
        self.subject_factors = tuple(dict.fromkeys((*self.subject_factors, *names)))

    def resolve_root(self, root: str | os.PathLike | None) -> Path:
        return resolve_root(self.name, root, self.env_var, self.layout)

    def make_preprocess(self, crop: Any) -> Preprocess:
        """``data.crop`` (a name of ``named_crops``, a side, ``[w, h]``, a box or a dict) with this dataset's
        image size, flips and draft decoding."""
        return make_preprocess(
            self.name, crop, self.image_size, named=self.named_crops, flip=self.flip, draft=self.draft
        )

    def finish(self) -> None:
        """Check the splits, add the cache, build every split's dataset (so label errors show now)."""
        for split in ("train", "test"):
            if not self.records[split]:
                rule = f" ({self.split_rule})" if self.split_rule else ""
                raise DatasetError(f"data={self.name}: the {split} split is empty{rule}; dataset at {self.root}.")
        if self.cache_dir and not isinstance(self.preprocess, CachedPreprocess):
            self.preprocess = CachedPreprocess(self.preprocess, self.cache_dir, self.root, self.name, self.cache_format)
        self._datasets = {split: self._make_dataset(split) for split in ("train", "val", "test")}

    def _make_dataset(self, split: str) -> RecordDataset:
        records = self.records[split] or (self.records["test"] if split == "val" else [])
        kwargs: dict[str, Any] = dict(
            split=split, seed=self.seed, on_bad_image=self.on_bad_image, name=self.name, flip_swap=self.flip_swap
        )
        if self.view == "multi_factor":
            values = {n: self.factor_values[n] for n in self.factor_names}
            ds: RecordDataset = FactorRecords(records, self.preprocess, factor_values=values,
                                              subject_factors=self.subject_factors, **kwargs)
        elif self.view == "multi_attribute":
            ds = AttributeRecords(records, self.preprocess, attr_names=self.attr_names, **kwargs)
        else:
            source = (0 if self.direction == "a2b" else 1) if self.view == "two_domain" else None
            ds = DomainRecords(
                records, self.preprocess, domain_key=self.domain_key, domain_values=self.domain_names, source=source,
                pair_key=self.pair_key if split in self.pair_splits else None, pair_rank=self.pair_rank, **kwargs,
            )
        return ds.select(spread(len(ds), self.val_size)) if split == "val" else ds

    def build_dataset(self, split: str) -> RecordDataset:
        return self._make_dataset(split)

    # -- info
    def build_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": self.name,
            "view": self.view,
            "image_size": self.image_size,
            "channels": 3,
            "root": str(self.root),
            **self.details,
            "split_sizes": {s: len(self.dataset(s)) for s in ("train", "val", "test")},
            "has_gt": self.pair_key is not None and self.view in ("two_domain", "multi_domain"),
        }
        if self.heldout is not None:
            info["heldout_identities"] = list(self.heldout)
        if self.view in ("two_domain", "multi_domain"):
            info.update(domain_factor=self.domain_factor, domain_names=self.domain_names, num_domains=len(self.domain_names))
            if self.view == "two_domain":
                info["direction"] = self.direction
        elif self.view == "multi_attribute":
            info.update(attr_names=self.attr_names, num_attrs=len(self.attr_names))
        else:
            info.update(
                factor_names=self.factor_names,
                factor_sizes={n: len(self.factor_values[n]) for n in self.factor_names},
                factor_values={n: self.factor_values[n] for n in self.factor_names},
            )
        settings = {k: v for k, v in info.items() if k != "view"}
        settings.update(
            root=str(Path(self.root).resolve()),
            val_size=self.val_size,
            preprocess=self.preprocess.describe(),
            seed=self.seed,
            **self.fingerprint_extra,
        )
        info["fingerprint"] = hashlib.sha1(json.dumps(plain(settings), sort_keys=True).encode()).hexdigest()[:12]
        return info

    # -- reporting
    def skipped_images(self) -> list[str]:
        """Files skipped as unreadable so far (``on_bad_image=skip``), by any loader process."""
        return sorted({f for ds in self._datasets.values() for f in ds.skipped_files()})

    def teardown(self, stage: str | None = None) -> None:
        report_skipped(self.name, list(self._datasets.values()))
