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

``python -m datamodules.synthetic`` prints the rendering throughput per resolution.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules import shapes_render as shapes
from datamodules import synthfaces_render as faces
from datamodules.base import (
    BaseImageDataModule,
    check_choice,
    check_choices,
    check_positive_int,
    images_to_tensor,
)
from suite.errors import ConfigError

RENDER_VERSION = 1  # bump when a renderer change alters images, so caches keyed on info are not reused
_MASK64 = (1 << 64) - 1


def mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): the deterministic randomness of item pairings."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) & _MASK64
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 31
    return h


# ---------------------------------------------------------------------------------------------- scenes
class _FaceScene:
    """Sampling, rendering and factor changes of the faces, with the dataset's settings bound."""

    name = "synthfaces"

    def __init__(self, seed, image_size, supersample, noise, num_identities, intensity):
        self.seed, self.image_size, self.supersample = seed, image_size, supersample
        self.noise, self.num_identities, self.intensity = noise, num_identities, intensity

    def record(self, split: str, index: int, identities: Sequence[int] | None = None) -> faces.FaceRecord:
        return faces.sample_record(
            self.seed,
            index,
            split,
            identities=identities,
            num_identities=self.num_identities,
            intensity_range=self.intensity,
            noise=self.noise,
        )

    def render(self, records: Sequence[faces.FaceRecord]) -> np.ndarray:
        return faces.render_batch(records, self.image_size, self.supersample, self.noise)

    @staticmethod
    def with_value(record: faces.FaceRecord, factor: str, value: Any) -> faces.FaceRecord:
        if factor in faces.ATTRIBUTE_NAMES:
            return faces.counterfactual(record, attributes={factor: value})
        return faces.counterfactual(record, **{factor: value})

    @staticmethod
    def labels(record: faces.FaceRecord) -> dict[str, Any]:
        f = faces.factors(record)
        return {
            "factors": {k: torch.tensor(v, dtype=torch.int64) for k, v in f.items()},
            "intensity": torch.tensor(record.intensity, dtype=torch.float32),
        }


class _ShapeScene:
    name = "shapes"

    def __init__(self, seed, image_size, supersample, noise):
        self.seed, self.image_size, self.supersample, self.noise = seed, image_size, supersample, noise

    def record(self, split: str, index: int, identities: Sequence[int] | None = None) -> shapes.ShapeRecord:
        return shapes.sample_shape(self.seed, index, split, noise=self.noise)

    def render(self, records: Sequence[shapes.ShapeRecord]) -> np.ndarray:
        return shapes.render_shapes(records, self.image_size, self.supersample, self.noise)

    @staticmethod
    def with_value(record: shapes.ShapeRecord, factor: str, value: Any) -> shapes.ShapeRecord:
        return shapes.as_shape(record, value)

    @staticmethod
    def labels(record: shapes.ShapeRecord) -> dict[str, Any]:
        return {"factors": {"shape": torch.tensor(shapes.SHAPES.index(record.shape), dtype=torch.int64)}}


# ---------------------------------------------------------------------------------------------- datasets
@dataclass
class _Plan:
    """One item: pool indices of the image and its reference, the ground-truth record, the labels."""

    src: int
    ref: int
    gt: Any = None
    labels: dict[str, Any] = field(default_factory=dict)


class RenderedSplit(Dataset):
    """Items of one split, rendered in batches on demand. Keys ``k`` decode as item ``k mod len`` of epoch
    ``k div len`` (see :class:`datamodules.base.SeededShuffleSampler`); the pool of images the items draw from
    is cached as uint8 when ``cache`` is set, and so is the ground truth of val/test items."""

    epoch_aware = True

    def __init__(self, scene, split: str, size: int, pool_size: int, cache: bool = True):
        self.scene, self.split, self.size, self.pool_size, self.cache = scene, split, size, pool_size, cache
        self._records: dict[int, Any] = {}
        self._images: dict[int, np.ndarray] = {}
        self._truth: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.size

    # -- view-specific
    def make_record(self, r: int):
        return self.scene.record(self.split, r)

    def plan(self, item: int, epoch: int) -> _Plan:
        raise NotImplementedError

    # -- shared
    def record(self, r: int):
        """The record of pool image ``r``."""
        rec = self._records.get(r)
        if rec is None:
            rec = self._records[r] = self.make_record(r)
        return rec

    def _epoch(self, epoch: int) -> int:
        return epoch if self.split == "train" else 0

    def _pool_images(self, ids: Sequence[int]) -> np.ndarray:
        have = self._images if self.cache else {}
        missing = [r for r in dict.fromkeys(ids) if r not in have]
        if missing:
            have.update(zip(missing, self.scene.render([self.record(r) for r in missing])))
        return np.stack([have[r] for r in ids])

    def _ground_truth(self, items: Sequence[int], plans: Sequence[_Plan], src: np.ndarray):
        """(gt B×S×S×3 uint8, change mask B×S×S bool), or (None, None) when the view gives no ground truth."""
        if any(p.gt is None for p in plans):
            return None, None
        keep = self.cache and self.split != "train"
        todo = [j for j, i in enumerate(items) if not (keep and i in self._truth)]
        fresh = {}
        if todo:
            for j, img in zip(todo, self.scene.render([plans[j].gt for j in todo])):
                fresh[j] = (img, (img != src[j]).any(axis=-1))
                if keep:
                    self._truth[items[j]] = fresh[j]
        pairs = [fresh[j] if j in fresh else self._truth[i] for j, i in enumerate(items)]
        return np.stack([g for g, _ in pairs]), np.stack([m for _, m in pairs])

    def __getitems__(self, keys: Sequence[int]) -> list[dict[str, Any]]:
        keys = [int(k) for k in keys]
        items = [k % self.size for k in keys]
        plans = [self.plan(k % self.size, self._epoch(k // self.size)) for k in keys]
        b = len(plans)
        pool = self._pool_images([p.src for p in plans] + [p.ref for p in plans])
        gt, mask = self._ground_truth(items, plans, pool[:b])
        pixels = images_to_tensor(pool if gt is None else np.concatenate([pool, gt]))
        out = []
        for j, p in enumerate(plans):
            item = {"image": pixels[j], "ref": pixels[b + j]}
            if gt is not None:
                item["gt"] = pixels[2 * b + j]
                item["change_mask"] = torch.from_numpy(mask[j][None].astype(np.float32))
            item.update(p.labels)
            out.append(item)
        return out

    def __getitem__(self, key: int) -> dict[str, Any]:
        return self.__getitems__([key])[0]


def _other(rng_value: int, item: int, n: int) -> int:
    """A pool index ≠ ``item`` from a hash value (``item`` itself when the pool has one image)."""
    if n < 2:
        return item
    r = rng_value % (n - 1)
    return r + 1 if r >= item else r


class DomainSplit(RenderedSplit):
    """Domain views: pool image ``r`` has the domain factor set to ``values[r mod D]``.

    ``source`` given (two_domain): items are the ``size`` pool images of that domain; references come from
    the other domain's ``size``. Otherwise (multi_domain) items are the whole pool of ``size`` images.
    """

    def __init__(self, scene, split, size, factor, values, source=None, cache=True, seed=0):
        d = len(values)
        super().__init__(scene, split, size, size * d if source is not None else size, cache)
        self.factor, self.values, self.source, self.seed = factor, list(values), source, seed

    def make_record(self, r: int):
        base = self.scene.record(self.split, r)
        return self.scene.with_value(base, self.factor, self.values[r % len(self.values)])

    def plan(self, item: int, epoch: int) -> _Plan:
        d = len(self.values)
        h = mix(self.seed, 0xD0, item, epoch)
        if self.source is not None:
            src_dom, tgt_dom = self.source, 1 - self.source
            src = self.source + d * item
            ref = tgt_dom + d * (h % self.size)
        else:
            src = item
            src_dom = item % d
            tgt_dom = (src_dom + 1 + (h % (d - 1))) % d
            count = (self.size - tgt_dom + d - 1) // d
            ref = tgt_dom + d * (mix(h, 1) % count)
        rec = self.record(src)
        labels = {
            "domain": torch.tensor(src_dom, dtype=torch.int64),
            "target": torch.tensor(tgt_dom, dtype=torch.int64),
            "ref_domain": torch.tensor(tgt_dom, dtype=torch.int64),
            **self.scene.labels(rec),
        }
        gt = self.scene.with_value(rec, self.factor, self.values[tgt_dom])
        return _Plan(src, ref, gt, labels)


class AttributeSplit(RenderedSplit):
    """multi_attribute: ``attrs`` of the image, ``target_attrs`` of a random reference, gt between them."""

    def __init__(self, scene, split, size, names, cache=True, seed=0):
        super().__init__(scene, split, size, size, cache)
        self.names, self.seed = list(names), seed

    def _vector(self, rec) -> torch.Tensor:
        a = faces.attributes(rec)
        return torch.tensor([a[n] for n in self.names], dtype=torch.float32)

    def plan(self, item: int, epoch: int) -> _Plan:
        ref = _other(mix(self.seed, 0xA7, item, epoch), item, self.size)
        rec, ref_rec = self.record(item), self.record(ref)
        target = faces.attributes(ref_rec)
        gt = faces.counterfactual(rec, attributes={n: target[n] for n in self.names})
        labels = {"attrs": self._vector(rec), "target_attrs": self._vector(ref_rec), **self.scene.labels(rec)}
        return _Plan(item, ref, gt, labels)


class FactorSplit(RenderedSplit):
    """multi_factor: images of the given identities only; gt takes the reference's expression."""

    def __init__(self, scene, split, size, names, identities, cache=True, seed=0):
        super().__init__(scene, split, size, size, cache)
        self.names, self.identities, self.seed = list(names), list(identities), seed

    def make_record(self, r: int):
        return self.scene.record(self.split, r, identities=self.identities)

    def _factors(self, rec) -> dict[str, torch.Tensor]:
        f = faces.factors(rec)
        return {n: torch.tensor(f[n], dtype=torch.int64) for n in self.names}

    def plan(self, item: int, epoch: int) -> _Plan:
        ref = _other(mix(self.seed, 0xFA, item, epoch), item, self.size)
        rec, ref_rec = self.record(item), self.record(ref)
        labels = {
            "factors": self._factors(rec),
            "ref_factors": self._factors(ref_rec),
            "intensity": torch.tensor(rec.intensity, dtype=torch.float32),
            "ref_intensity": torch.tensor(ref_rec.intensity, dtype=torch.float32),
        }
        gt = None
        if "expression" in self.names:
            gt = faces.counterfactual(rec, expression=ref_rec.expression)
            labels["target_factors"] = self._factors(gt)
        return _Plan(item, ref, gt, labels)


# ---------------------------------------------------------------------------------------------- datamodules
def _size_check(image_size: Any) -> int:
    size = check_positive_int("data.image_size", image_size, minimum=8)
    if size > 1024:
        raise ConfigError(f"data.image_size must be at most 1024, got {size}.")
    return size


def _supersample_check(supersample: Any) -> int | None:
    if supersample is None:
        return None
    return faces.supersample_factor(64, check_positive_int("data.supersample", supersample))


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


class SynthFacesDataModule(BaseImageDataModule):
    """Procedural faces with ground truth, offering every view.

    Args:
        view: two_domain | multi_domain | multi_attribute | multi_factor.
        image_size: output resolution (square).
        seed: the dataset: people, images, pairings and the train shuffling.
        train_size, val_size, test_size: items per split (``len`` of each dataset).
        num_identities: people in the dataset.
        test_identities: people held out of training in the multi_factor view (its val and test splits).
        domain_factor: the factor whose values are the domains (domain views): expression, gaze,
            illumination or a binary attribute (domains ``not_<Attr>``, ``<Attr>``).
        domains: the domain values (default: neutral, happy for two_domain; all values for multi_domain).
        direction: two_domain only; a2b takes sources from domain 0, b2a from domain 1.
        attributes: attribute names of the multi_attribute view (default all).
        factors: factor names of the multi_factor view (default identity, expression, gaze, illumination).
        intensity: range of the expression intensity.
        noise: add sensor noise (identical in an image and its ground truth).
        supersample: subsamples per pixel side (default by resolution: 4 at 32 px, 3 at 64, 2 from 96).
        cache: keep rendered images in memory (per process).
        batch_size, num_workers, pin_memory: loader settings (see BaseImageDataModule).
        name, scale: suite meta keys of the config; accepted and ignored.
    """

    name = "synthfaces"
    views = ("two_domain", "multi_domain", "multi_attribute", "multi_factor")

    def __init__(
        self,
        view: str = "two_domain",
        image_size: int = 64,
        seed: int = 0,
        train_size: int = 4000,
        val_size: int = 256,
        test_size: int = 500,
        num_identities: int = 40,
        test_identities: int = 8,
        domain_factor: str = "expression",
        domains: Sequence[str] | None = None,
        direction: str = "a2b",
        attributes: Sequence[str] | None = None,
        factors: Sequence[str] | None = None,
        intensity: Sequence[float] = (0.5, 1.0),
        noise: bool = True,
        supersample: int | None = None,
        cache: bool = True,
        batch_size: int = 16,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        name: str | None = None,
        scale: str | None = None,
    ):
        super().__init__(
            view, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, seed=seed
        )
        self.image_size = _size_check(image_size)
        self.sizes = {
            s: check_positive_int(f"data.{s}_size", v, minimum=2)
            for s, v in (("train", train_size), ("val", val_size), ("test", test_size))
        }
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
        self.noise, self.cache = bool(noise), bool(cache)
        self.supersample = _supersample_check(supersample)
        self.scene = _FaceScene(
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
        return {
            "identity": [f"id{i:02d}" for i in range(self.num_identities)],
            "expression": list(faces.EXPRESSIONS),
            "gaze": list(faces.GAZES),
            "illumination": list(faces.ILLUMINATIONS),
        }

    def build_info(self) -> dict[str, Any]:
        values = self.factor_values()
        names = self.factor_names if self.view == "multi_factor" else list(faces.FACTOR_NAMES)
        info: dict[str, Any] = {
            "name": self.name,
            "view": self.view,
            "image_size": self.image_size,
            "channels": 3,
            "split_sizes": dict(self.sizes),
            "has_gt": True,
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
        settings = {k: v for k, v in info.items() if k != "view"}
        settings.update(
            seed=self.seed,
            noise=self.noise,
            num_identities=self.num_identities,
            intensity=list(self.intensity),
            supersample=self.supersample,
            test_identities=self.test_identities,
        )
        info["fingerprint"] = _fingerprint(settings)
        return info

    def build_dataset(self, split: str):
        size, scene = self.sizes[split], self.scene
        if self.view == "two_domain":
            source = 0 if self.direction == "a2b" else 1
            return DomainSplit(
                scene, split, size, self.domain_factor, self.domain_values, source, self.cache, self.seed
            )
        if self.view == "multi_domain":
            return DomainSplit(
                scene, split, size, self.domain_factor, self.domain_values, None, self.cache, self.seed
            )
        if self.view == "multi_attribute":
            return AttributeSplit(scene, split, size, self.attr_names, self.cache, self.seed)
        ids = self.train_identities if split == "train" else self.heldout_identities
        return FactorSplit(scene, split, size, self.factor_names, ids, self.cache, self.seed)


class ShapesDataModule(BaseImageDataModule):
    """Squares and circles: the two domains of a pure shape change (views two_domain, multi_domain).

    Args: as :class:`SynthFacesDataModule` where they apply; ``domains`` orders square/circle (default
    square, circle: a2b turns squares into circles).
    """

    name = "shapes"
    views = ("two_domain", "multi_domain")

    def __init__(
        self,
        view: str = "two_domain",
        image_size: int = 64,
        seed: int = 0,
        train_size: int = 4000,
        val_size: int = 256,
        test_size: int = 500,
        domains: Sequence[str] | None = None,
        direction: str = "a2b",
        noise: bool = False,
        supersample: int | None = None,
        cache: bool = True,
        batch_size: int = 16,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        name: str | None = None,
        scale: str | None = None,
    ):
        super().__init__(
            view, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, seed=seed
        )
        self.image_size = _size_check(image_size)
        self.sizes = {
            s: check_positive_int(f"data.{s}_size", v, minimum=2)
            for s, v in (("train", train_size), ("val", val_size), ("test", test_size))
        }
        self.domain_names = check_choices(self.name, "shape", list(domains or shapes.SHAPES), shapes.SHAPES)
        if len(self.domain_names) != 2:
            raise ConfigError(f"data.domains must list both shapes, got {self.domain_names}.")
        self.direction = check_choice(self.name, "direction", direction, ("a2b", "b2a"))
        self.noise, self.cache = bool(noise), bool(cache)
        self.supersample = _supersample_check(supersample)
        self.scene = _ShapeScene(self.seed, self.image_size, self.supersample, self.noise)

    def build_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": self.name,
            "view": self.view,
            "image_size": self.image_size,
            "channels": 3,
            "split_sizes": dict(self.sizes),
            "has_gt": True,
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
        settings = {k: v for k, v in info.items() if k != "view"}
        settings.update(seed=self.seed, noise=self.noise, supersample=self.supersample)
        info["fingerprint"] = _fingerprint(settings)
        return info

    def build_dataset(self, split: str):
        source = (0 if self.direction == "a2b" else 1) if self.view == "two_domain" else None
        return DomainSplit(
            self.scene, split, self.sizes[split], "shape", self.domain_names, source, self.cache, self.seed
        )


# ---------------------------------------------------------------------------------------------- benchmark
def benchmark(
    sizes: Sequence[int] = (32, 64, 128, 256), seconds: float = 2.0, data: str = "synthfaces"
) -> dict[int, tuple[float, float]]:
    """Rendering throughput per resolution in this process, batches of 64: (images per wall-clock second,
    images per CPU second of this process — the figure that holds on a busy machine)."""
    if data == "synthfaces":
        records = [faces.sample_record(0, i) for i in range(256)]

        def render(recs, size):
            return faces.render_batch(recs, size)
    else:
        records = [shapes.sample_shape(0, i) for i in range(256)]

        def render(recs, size):
            return shapes.render_shapes(recs, size)

    out = {}
    for size in sizes:
        render(records[:8], size)  # warm up: grids, noise bank
        done, k = 0, 0
        start, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds or done == 0:
            render([records[(k * 64 + j) % len(records)] for j in range(64)], size)
            done += 64
            k += 1
        out[int(size)] = (done / (time.perf_counter() - start), done / max(time.process_time() - cpu, 1e-9))
    return out


def _loader_throughput(view: str, size: int, batch_size: int = 16, n: int = 1024) -> tuple[float, float]:
    dm = SynthFacesDataModule(view=view, image_size=size, train_size=n, batch_size=batch_size)
    dm.setup("fit")
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        for _batch in dm.train_dataloader():
            pass
        rates.append(n / (time.perf_counter() - start))
    return rates[0], rates[1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Rendering throughput of the embedded datasets (one process)."
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--data", choices=("synthfaces", "shapes", "both"), default="both")
    parser.add_argument(
        "--loader", action="store_true", help="also time the train loader (first and cached epoch)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for data in ("synthfaces", "shapes") if args.data == "both" else (args.data,):
        for size, (wall, cpu) in benchmark(args.sizes, args.seconds, data).items():
            print(f"{data:10s} {size:4d} px  {wall:8.0f} images/s  ({cpu:.0f} per CPU second)")
    if args.loader:
        for view in ("two_domain", "multi_domain", "multi_attribute", "multi_factor"):
            first, cached = _loader_throughput(view, 64)
            print(f"loader {view:15s} 64 px  first epoch {first:7.0f} items/s  cached {cached:7.0f} items/s")


if __name__ == "__main__":
    main()
