"""RaFD (Radboud Faces Database) as a datamodule: expressions as domains, or identity/expression/gaze factors.

Layouts (see :mod:`datamodules.rafd_layout`): the official flat folder of
``Rafd{angle}_{model}_{ethnicity}_{gender}_{expression}_{gaze}.jpg``, split by identity — the ``test_models``
are the test split, every other model trains (default: models 01 02 03 04 05 07 08 64, the disentanglement
paper's test identities); or StarGAN's ``{train,test}/<expression>/*.jpg``, whose own split is used.
Validation is a fixed, evenly spread subset of ``val_size`` test items (a few images to watch, not a
separate split), so the test protocol keeps all of its images.

Protocols:
- SPM: ``angles: ["090"]`` (frontal, the default), expressions as domains.
- AGGAN: ``angles: null`` (all five cameras, "all images"), ``view=multi_domain``.
- Disentanglement: ``view=multi_factor`` (identity, expression, gaze), ``crop: disent`` (centre crop 640
  shifted up 128 px, then resize), flips swap the gaze labels left/right.

Views: ``two_domain`` (default domains neutral → happy; ``direction`` as in synthfaces), ``multi_domain``
(default all 8 expressions), ``multi_factor``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from datamodules import rafd_layout as layout
from datamodules.base import SPLITS, BaseImageDataModule, check_choice, check_choices, check_positive_int
from datamodules.records import (
    BAD_IMAGE_CHOICES,
    DomainRecords,
    FactorRecords,
    ImageRecord,
    Preprocess,
    RecordDataset,
    report_skipped,
    spread,
)
from suite.errors import ConfigError, DatasetError

ENV_VAR = "RAFD_ROOT"
DEFAULT_TEST_MODELS = (1, 2, 3, 4, 5, 7, 8, 64)
FACTORS = ("identity", "expression", "gaze", "angle", "gender", "ethnicity")
DEFAULT_FACTORS = ("identity", "expression", "gaze")
TWO_DOMAIN_DEFAULT = ("neutral", "happy")
# named crops: (crop, shift) of datamodules.records.Preprocess
NAMED_CROPS: dict[str, tuple[Any, tuple[int, int]]] = {
    "center": ("square", (0, 0)),  # the largest centred square
    "disent": (640, (0, -128)),  # disentanglement protocol: centre crop 640 shifted up 128 px
    "none": ("full", (0, 0)),  # the whole frame, squeezed to a square
}
FLIP_SWAP = {"gaze": {"left": "right", "right": "left"}}


def _plain_arg(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _angle(value: Any) -> str:
    try:
        return f"{int(value):03d}"
    except (TypeError, ValueError):
        return str(value)


def make_preprocess(crop: Any, image_size: int, flip: bool = True, draft: bool = True) -> Preprocess:
    """``data.crop`` as a :class:`Preprocess`: a name (center | disent | none), a side, ``[w, h]``, a box
    ``[left, top, right, bottom]``, or ``{size: …, shift: [dx, dy]}`` / ``{box: […]}``."""
    crop = _plain_arg(crop)
    if crop is None:
        crop = "none"
    if isinstance(crop, str):
        size, shift = NAMED_CROPS[check_choice("rafd", "crop", crop, tuple(NAMED_CROPS))]
        return Preprocess(image_size, crop=size, shift=shift, flip=flip, draft=draft)
    if isinstance(crop, dict):
        unknown = set(crop) - {"size", "shift", "box"}
        if unknown:
            raise ConfigError(f"data.crop takes the keys size, shift, box; got {sorted(unknown)}.")
        if crop.get("box") is not None:
            return Preprocess(image_size, box=tuple(crop["box"]), flip=flip, draft=draft)
        size, shift = crop.get("size", "square"), tuple(crop.get("shift", (0, 0)))
        return Preprocess(image_size, crop=size, shift=shift, flip=flip, draft=draft)
    if isinstance(crop, list | tuple) and len(crop) == 4:
        return Preprocess(image_size, box=tuple(crop), flip=flip, draft=draft)
    return Preprocess(image_size, crop=crop, flip=flip, draft=draft)


class RaFDDataModule(BaseImageDataModule):
    """RaFD in the official flat layout or StarGAN's pre-split one.

    Args:
        view: two_domain | multi_domain | multi_factor.
        root: the folder holding the images (default: the ``RAFD_ROOT`` environment variable).
        image_size: output side (square).
        angles: camera angles to keep (``["090"]`` frontal; ``null`` all five).
        domains: expressions to use (two_domain default neutral, happy; otherwise default all 8); unknown
            names are refused with the list of valid ones.
        direction: two_domain only; a2b takes sources from ``domains[0]``, b2a from ``domains[1]``.
        factors: multi_factor labels (default identity, expression, gaze; also angle, gender, ethnicity).
        test_models: model numbers forming the test split (official layout only).
        val_size: validation items, a fixed spread of the test items.
        crop: center | disent | none, a side, [w, h], [left, top, right, bottom] or {size, shift} / {box}.
        flip: random horizontal flips of train images (gaze labels follow).
        draft: JPEG decoding at 1/2, 1/4 or 1/8 scale when the crop keeps ≥ image_size pixels a side (about 3×
            faster on RaFD's 681×1024 photographs; pixels within a few grey levels of a full decode).
        on_bad_image: stop (raise, naming the file) | skip (use another image of the same domain, warn, count).
        batch_size, num_workers, pin_memory, seed: loader settings (see BaseImageDataModule).
        name, scale: suite meta keys of the config; accepted and ignored.
    """

    name = "rafd"
    views = ("two_domain", "multi_domain", "multi_factor")

    def __init__(
        self,
        view: str = "two_domain",
        root: str | None = None,
        image_size: int = 128,
        angles: Sequence[str] | None = ("090",),
        domains: Sequence[str] | None = None,
        direction: str = "a2b",
        factors: Sequence[str] | None = None,
        test_models: Sequence[int] | None = DEFAULT_TEST_MODELS,
        val_size: int = 16,
        crop: Any = "center",
        flip: bool = True,
        draft: bool = True,
        on_bad_image: str = "stop",
        batch_size: int = 16,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        seed: int = 0,
        name: str | None = None,
        scale: str | None = None,
    ):
        super().__init__(view, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, seed=seed)
        self.image_size = check_positive_int("data.image_size", image_size, minimum=8)
        self.val_size = check_positive_int("data.val_size", val_size)
        self.direction = check_choice(self.name, "direction", direction, ("a2b", "b2a"))
        self.on_bad_image = check_choice(self.name, "on_bad_image setting", on_bad_image, BAD_IMAGE_CHOICES)
        self.preprocess = make_preprocess(crop, self.image_size, bool(flip), bool(draft))
        angles = _plain_arg(angles)
        if angles is not None:
            angles = [angles] if isinstance(angles, str | int) else angles
            angles = check_choices(self.name, "angle", [_angle(a) for a in angles], layout.ANGLES)
        self.angles = angles
        self.test_models = sorted(int(m) for m in (_plain_arg(test_models) or []))

        # expressions: the domains of the domain views, the expression values of multi_factor
        if domains is None:
            chosen = list(TWO_DOMAIN_DEFAULT if self.view == "two_domain" else layout.EXPRESSIONS)
        else:
            chosen = check_choices(self.name, "expression", list(_plain_arg(domains)), layout.EXPRESSIONS)
        need = {"two_domain": "exactly 2", "multi_domain": "at least 2", "multi_factor": "at least 1"}[self.view]
        if len(chosen) < int(need[-1]) or (self.view == "two_domain" and len(chosen) != 2):
            raise ConfigError(f"data.domains: the {self.view} view needs {need} expressions, got {chosen}.")
        self.expressions = chosen
        self.factor_names = check_choices(self.name, "factor", list(_plain_arg(factors) or DEFAULT_FACTORS), FACTORS)

        # the files: a missing root or layout fails here, before any training
        root = root or os.environ.get(ENV_VAR) or None
        self.root = Path(root).expanduser() if root else None
        found = layout.scan(self.root, ENV_VAR)
        self.layout = "stargan" if found[0].split is not None else "official"
        kept = [r for r in found if (self.angles is None or r.angle in self.angles) and r.expression in chosen]
        if not kept:
            raise DatasetError(
                f"RaFD at {self.root} has no images with angles {self.angles or 'any'} and expressions "
                f"{', '.join(chosen)}; found angles {', '.join(sorted({r.angle for r in found}))}."
            )
        if self.view == "multi_factor" and any(r.model < 0 for r in kept):
            example = next(r.path for r in kept if r.model < 0)
            raise DatasetError(
                f"the multi_factor view needs the identity from RaFD file names (e.g. Rafd090_01_…); {example} has none."
            )
        self.records = {split: [] for split in SPLITS}
        for r in kept:
            in_test = r.split == "test" if self.layout == "stargan" else r.model in self.test_models
            self.records["test" if in_test else "train"].append(_record(r))
        self._check_splits()
        self.records["val"] = list(self.records["test"])
        self.factor_values = self._factor_values(kept)
        self._datasets = {split: self._make_dataset(split) for split in SPLITS}

    # -- construction
    def _check_splits(self) -> None:
        where = f"RaFD at {self.root} (angles {self.angles or 'any'}, expressions {', '.join(self.expressions)})"
        if not self.records["test"]:
            if self.layout == "stargan":
                raise DatasetError(f"data=rafd: the test split is empty: {where} has no test/<expression>/ images.")
            raise DatasetError(
                f"data=rafd: the test split is empty: none of the test_models {self.test_models} has images in {where}."
            )
        if not self.records["train"]:
            if self.layout == "stargan":
                raise DatasetError(f"data=rafd: the train split is empty: {where} has no train/<expression>/ images.")
            raise DatasetError(
                f"data=rafd: the train split is empty: every model with images in {where} is one of the test_models "
                f"{self.test_models}."
            )

    def _factor_values(self, kept: Sequence[layout.RaFDRecord]) -> dict[str, list]:
        return {
            "identity": sorted({r.model for r in kept}),
            "expression": list(self.expressions),
            "gaze": list(layout.GAZES),
            "angle": list(self.angles or layout.ANGLES),
            "gender": ["female", "male"],
            "ethnicity": sorted({r.ethnicity for r in kept}),
        }

    def _make_dataset(self, split: str) -> RecordDataset:
        kwargs: dict[str, Any] = dict(
            split=split, seed=self.seed, on_bad_image=self.on_bad_image, name=self.name, flip_swap=FLIP_SWAP
        )
        records = self.records[split]
        if self.view == "multi_factor":
            values = {n: self.factor_values[n] for n in self.factor_names}
            ds: RecordDataset = FactorRecords(records, self.preprocess, factor_values=values, **kwargs)
        else:
            source = (0 if self.direction == "a2b" else 1) if self.view == "two_domain" else None
            ds = DomainRecords(
                records, self.preprocess, domain_key="expression", domain_values=self.expressions, source=source, **kwargs
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
            "layout": self.layout,
            "angles": self.angles,
            "split_sizes": {s: len(self.dataset(s)) for s in SPLITS},
            "has_gt": False,
            "heldout_identities": sorted({r.labels["identity"] for r in self.records["test"]} - {-1}),
        }
        if self.view in ("two_domain", "multi_domain"):
            info.update(domain_factor="expression", domain_names=self.expressions, num_domains=len(self.expressions))
            if self.view == "two_domain":
                info["direction"] = self.direction
        else:
            info.update(
                factor_names=self.factor_names,
                factor_sizes={n: len(self.factor_values[n]) for n in self.factor_names},
                factor_values={n: self.factor_values[n] for n in self.factor_names},
            )
        settings = {k: v for k, v in info.items() if k != "view"}
        settings.update(
            root=str(self.root.resolve()),
            test_models=self.test_models,
            val_size=self.val_size,
            preprocess=self.preprocess.describe(),
            seed=self.seed,
        )
        info["fingerprint"] = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return info

    # -- reporting
    def skipped_images(self) -> list[str]:
        """Files skipped as unreadable so far (``on_bad_image=skip``), by any loader process."""
        return sorted({f for ds in self._datasets.values() for f in ds.skipped_files()})

    def teardown(self, stage: str | None = None) -> None:
        report_skipped(self.name, list(self._datasets.values()))


def _record(r: layout.RaFDRecord) -> ImageRecord:
    return ImageRecord(
        r.path,
        {
            "identity": r.model,
            "expression": r.expression,
            "gaze": r.gaze,
            "angle": r.angle,
            "gender": r.gender,
            "ethnicity": r.ethnicity,
        },
    )
