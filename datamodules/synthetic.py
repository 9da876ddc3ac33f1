"""The embedded datasets as datamodules: procedural faces (``synthfaces``) and squares/circles (``shapes``).

Every image is a pure function of (dataset seed, split, index), rendered on demand in batches (the dataset
implements ``__getitems__``, so a loader asks for a whole batch at once) and cached as uint8 per split, so
epochs after the first only re-render the ground truth of fresh train pairings. Each batch carries the true
translation ``gt`` and the true change region ``change_mask`` alongside the view's labels (see
:mod:`datamodules.base`).

What the views mean here:

- Domain views: the domain factor (``domain_factor``, default ``expression``; also ``gaze``, ``illumination``
  or a binary attribute such as ``Eyeglasses``) is set on each pool image, balanced over the domains (pool
  image ``r`` belongs to domain ``r mod D``). ``gt`` is the source image with the factor set to the target
  domain. ``two_domain`` (default domains neutral → happy): ``direction=a2b`` takes sources from domain 0,
  ``b2a`` from domain 1; indices stay those of ``domain_names``; the split holds ``size`` images of each
  domain, ``len(dataset) == size``. ``multi_domain``: the target is uniform over the other domains.
- ``multi_attribute``: ``attrs`` are the image's attributes, ``target_attrs`` those of ``ref`` (a random other
  image), ``gt`` the image with its attributes set to ``target_attrs``.
- ``multi_factor``: ``factors`` / ``ref_factors`` of the image and of a random reference; ``gt`` is the image
  with the reference's expression (keeping its own intensity), ``target_factors`` its factors. Val and test
  use ``test_identities`` people never seen in training (the RaFD/MultiPIE protocol).

Train items pick a fresh target and reference every epoch (the sampler passes the epoch in the key); val/test
items are fixed. ``change_mask`` marks the pixels where ``gt`` differs from ``image``: both share one sensor
noise field, so that is every pixel whose clean renders differ by at least one grey level, plus those
that differ by less and that the noise happens to round apart (never a pixel whose clean renders agree).

The view datasets are in :mod:`datamodules.rendered`; ``python -m datamodules.bench --embedded`` prints the
rendering throughput per resolution.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from datamodules import shapes_render as shapes
from datamodules import synthfaces_render as faces
from datamodules.base import BaseImageDataModule, check_choice, check_choices, check_positive_int
from datamodules.rendered import AttributeSplit, DomainSplit, FaceScene, FactorSplit, ShapeScene
from suite.errors import ConfigError

RENDER_VERSION = 1  # bump when a renderer change alters images, so caches keyed on info are not reused


class RenderedDataModule(BaseImageDataModule):
    """What the embedded datamodules share: the image size, split sizes, noise, supersampling, the render cache,
    the loader settings, and the common part of ``info``.

    Args:
        view: the task view.
        image_size: output resolution (square; 8 to 1024).
        seed: the dataset: images, pairings and the train shuffling.
        train_size, val_size, test_size: items per split (``len`` of each dataset).
        noise: add sensor noise (identical in an image and its ground truth).
        supersample: subsamples per pixel side (default by resolution: 4 at 32 px, 3 at 64, 2 from 96).
        cache: keep rendered images in memory (per process).
        batch_size, num_workers, pin_memory: loader settings (see BaseImageDataModule).
        name: the config's dataset name; ignored (the class knows its own).
    """

    def __init__(
        self, view: str, *, image_size: int = 64, seed: int = 0, train_size: int = 4000, val_size: int = 256,
        test_size: int = 500, noise: bool = True, supersample: int | None = None, cache: bool = True,
        batch_size: int = 16, num_workers: int = 0, pin_memory: bool | None = None, name: str | None = None,
    ):
        super().__init__(view, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, seed=seed)
        self.image_size = check_positive_int("data.image_size", image_size, minimum=8)
        if self.image_size > 1024:
            raise ConfigError(f"data.image_size must be at most 1024, got {self.image_size}.")
        self.sizes = {
            s: check_positive_int(f"data.{s}_size", v, minimum=2)
            for s, v in (("train", train_size), ("val", val_size), ("test", test_size))
        }
        self.noise, self.cache = bool(noise), bool(cache)
        self.supersample = None
        if supersample is not None:
            self.supersample = faces.supersample_factor(64, check_positive_int("data.supersample", supersample))

    def common_info(self) -> dict[str, Any]:
        """The keys every embedded dataset's info starts with."""
        return {
            "name": self.name,
            "view": self.view,
            "image_size": self.image_size,
            "channels": 3,
            "split_sizes": dict(self.sizes),
            "has_gt": True,
        }

    def fingerprint(self, info: dict[str, Any], **settings: Any) -> str:
        """A hash of ``info`` (less the view) and the rendering ``settings``: equal exactly for equal images."""
        everything = {k: v for k, v in info.items() if k != "view"}
        everything.update(seed=self.seed, noise=self.noise, **settings, supersample=self.supersample)
        return hashlib.sha1(json.dumps(everything, sort_keys=True).encode()).hexdigest()[:12]


class SynthFacesDataModule(RenderedDataModule):
    """Procedural faces with ground truth, offering every view.

    Args:
        view: two_domain | multi_domain | multi_attribute | multi_factor.
        num_identities: people in the dataset.
        test_identities: people held out of training in the multi_factor view (its val and test splits).
        domain_factor: the factor whose values are the domains (domain views): expression, gaze,
            illumination or a binary attribute (domains ``not_<Attr>``, ``<Attr>``).
        domains: the domain values (default: neutral, happy for two_domain; all values for multi_domain).
        direction: two_domain only; a2b takes sources from domain 0, b2a from domain 1.
        attributes: attribute names of the multi_attribute view (default all).
        factors: factor names of the multi_factor view (default identity, expression, gaze, illumination).
        intensity: range of the expression intensity.
        image_size, seed, train_size, val_size, test_size, noise, supersample, cache, batch_size, num_workers,
        pin_memory: see :class:`RenderedDataModule` (the seed also draws the people).
    """

    name = "synthfaces"
    views = ("two_domain", "multi_domain", "multi_attribute", "multi_factor")

    def __init__(
        self,
        view: str = "two_domain",
        num_identities: int = 40,
        test_identities: int = 8,
        domain_factor: str = "expression",
        domains: Sequence[str] | None = None,
        direction: str = "a2b",
        attributes: Sequence[str] | None = None,
        factors: Sequence[str] | None = None,
        intensity: Sequence[float] = (0.5, 1.0),
        **common: Any,
    ):
        super().__init__(view, **common)
        self.num_identities = check_positive_int("data.num_identities", num_identities, minimum=2)
        self.test_identities = check_positive_int("data.test_identities", test_identities)
        if self.test_identities >= self.num_identities:
            raise ConfigError(
                f"data.test_identities ({self.test_identities}) must be below data.num_identities ({self.num_identities})."
            )
        lo, hi = (float(v) for v in intensity)
        if not 0.0 <= lo <= hi <= 1.5:
            raise ConfigError(f"data.intensity must be a range [lo, hi] within [0, 1.5], got {[lo, hi]}.")
        self.intensity = (lo, hi)
        self.scene = FaceScene(
            self.seed, self.image_size, self.supersample, self.noise, self.num_identities, self.intensity
        )
        check_choice(self.name, "direction", direction, ("a2b", "b2a"))
        self.direction = direction

        if self.view in ("two_domain", "multi_domain"):
            factor_choices = ("expression", "gaze", "illumination", *faces.ATTRIBUTE_NAMES)
            self.domain_factor = check_choice(self.name, "domain factor", domain_factor, factor_choices)
            names, values = self._factor_domains(self.domain_factor)
            if domains is None:
                chosen = names[:2] if self.view == "two_domain" else names
            else:
                chosen = check_choices(self.name, f"{self.domain_factor} domain", list(domains), names)
            if len(chosen) < 2 or (self.view == "two_domain" and len(chosen) != 2):
                need = "exactly 2" if self.view == "two_domain" else "at least 2"
                raise ConfigError(f"data.domains: the {self.view} view needs {need} domains, got {chosen}.")
            self.domain_names = list(chosen)
            self.domain_values = [values[names.index(c)] for c in chosen]
            if self.view == "multi_domain" and min(self.sizes.values()) < len(chosen):
                raise ConfigError(f"data.*_size must be at least the number of domains ({len(chosen)}).")
        if self.view == "multi_attribute":
            names = list(faces.ATTRIBUTE_NAMES) if attributes is None else list(attributes)
            self.attr_names = check_choices(self.name, "attribute", names, faces.ATTRIBUTE_NAMES)
            if not self.attr_names:
                raise ConfigError("data.attributes must name at least one attribute.")
        if self.view == "multi_factor":
            names = list(faces.FACTOR_NAMES) if factors is None else list(factors)
            self.factor_names = check_choices(self.name, "factor", names, faces.FACTOR_NAMES)
            if not self.factor_names:
                raise ConfigError("data.factors must name at least one factor.")
        rng = np.random.default_rng([self.seed, 0x1D])
        held = rng.choice(self.num_identities, self.test_identities, replace=False)
        self.heldout_identities = sorted(int(i) for i in held)
        self.train_identities = [
            i for i in range(self.num_identities) if i not in set(self.heldout_identities)
        ]

    @staticmethod
    def _factor_domains(factor: str) -> tuple[list[str], list[Any]]:
        if factor in faces.ATTRIBUTE_NAMES:
            return [f"not_{factor}", factor], [0, 1]
        values = {"expression": faces.EXPRESSIONS, "gaze": faces.GAZES, "illumination": faces.ILLUMINATIONS}[
            factor
        ]
        return list(values), list(values)

    def factor_values(self) -> dict[str, list[str]]:
        """Class names of each factor; multi_factor's identity classes are the training people only (the held-out
        ones are UNSEEN_CLASS in val/test batches), as Oldfield et al.'s C_id knows only training subjects."""
        people = self.train_identities if self.view == "multi_factor" else range(self.num_identities)
        return {
            "identity": [f"id{i:02d}" for i in people],
            "expression": list(faces.EXPRESSIONS),
            "gaze": list(faces.GAZES),
            "illumination": list(faces.ILLUMINATIONS),
        }

    def build_info(self) -> dict[str, Any]:
        values = self.factor_values()
        names = self.factor_names if self.view == "multi_factor" else list(faces.FACTOR_NAMES)
        info: dict[str, Any] = {
            **self.common_info(),
            "factor_names": list(names),
            "factor_sizes": {n: len(values[n]) for n in names},
            "factor_values": {n: values[n] for n in names},
            "version": RENDER_VERSION,
        }
        if self.view in ("two_domain", "multi_domain"):
            info.update(
                domain_factor=self.domain_factor,
                domain_names=self.domain_names,
                num_domains=len(self.domain_names),
            )
            if self.view == "two_domain":
                info["direction"] = self.direction
        if self.view == "multi_attribute":
            info.update(attr_names=self.attr_names, num_attrs=len(self.attr_names))
        if self.view == "multi_factor":
            info.update(
                heldout_identities=self.heldout_identities,
                gt_factor="expression" if "expression" in names else None,
            )
        info["fingerprint"] = self.fingerprint(
            info, num_identities=self.num_identities, intensity=list(self.intensity),
            test_identities=self.test_identities,
        )
        return info

    def build_dataset(self, split: str):
        size, scene = self.sizes[split], self.scene
        if self.view == "two_domain":
            source = 0 if self.direction == "a2b" else 1
            return DomainSplit(
                scene, split, size, self.domain_factor, self.domain_values, source, self.cache, self.seed
            )
        if self.view == "multi_domain":
            return DomainSplit(scene, split, size, self.domain_factor, self.domain_values, None, self.cache, self.seed)
        if self.view == "multi_attribute":
            return AttributeSplit(scene, split, size, self.attr_names, self.cache, self.seed)
        ids = self.train_identities if split == "train" else self.heldout_identities
        return FactorSplit(scene, split, size, self.factor_names, ids, self.cache, self.seed, self.train_identities)


class ShapesDataModule(RenderedDataModule):
    """Squares and circles: the two domains of a pure shape change (views two_domain, multi_domain).

    Args: ``domains`` orders square/circle (default square, circle: a2b turns squares into circles);
    ``direction`` as in :class:`SynthFacesDataModule`; no sensor noise by default; the rest as in
    :class:`RenderedDataModule`.
    """

    name = "shapes"
    views = ("two_domain", "multi_domain")

    def __init__(
        self,
        view: str = "two_domain",
        domains: Sequence[str] | None = None,
        direction: str = "a2b",
        noise: bool = False,
        **common: Any,
    ):
        super().__init__(view, noise=noise, **common)
        self.domain_names = check_choices(self.name, "shape", list(domains or shapes.SHAPES), shapes.SHAPES)
        if len(self.domain_names) != 2:
            raise ConfigError(f"data.domains must list both shapes, got {self.domain_names}.")
        self.direction = check_choice(self.name, "direction", direction, ("a2b", "b2a"))
        self.scene = ShapeScene(self.seed, self.image_size, self.supersample, self.noise)

    def build_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            **self.common_info(),
            "domain_factor": "shape",
            "domain_names": self.domain_names,
            "num_domains": 2,
            "factor_names": ["shape"],
            "factor_sizes": {"shape": 2},
            "factor_values": {"shape": list(shapes.SHAPES)},
            "version": RENDER_VERSION,
        }
        if self.view == "two_domain":
            info["direction"] = self.direction
        info["fingerprint"] = self.fingerprint(info)
        return info

    def build_dataset(self, split: str):
        source = (0 if self.direction == "a2b" else 1) if self.view == "two_domain" else None
        return DomainSplit(
            self.scene, split, self.sizes[split], "shape", self.domain_names, source, self.cache, self.seed
        )
