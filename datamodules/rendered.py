"""The embedded data's view datasets: scenes sampled and rendered on demand, in batches.

A *scene* binds a renderer (:mod:`datamodules.synthfaces_render`, :mod:`datamodules.shapes_render`) to the
dataset's settings: it samples the record of pool image ``r`` of a split, renders records in batches, changes one
factor of a record (the ground truth of a translation) and gives a record's labels. :class:`RenderedSplit` turns a
view's :class:`datamodules.views.Plan` of each item into pixels — the pool images cached as uint8 per split, the
ground truth of val/test items too — and adds ``gt`` and ``change_mask``. The pairings (target, reference) come
from :mod:`datamodules.views`, as for the real datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from datamodules import shapes_render as shapes
from datamodules import synthfaces_render as faces
from datamodules.base import UNSEEN_CLASS, images_to_tensor
from datamodules.views import DomainPairing, EpochKeyed, OtherPairing, Plan, domain_labels

# hash tags of the embedded views' decisions (one stream of randomness each)
TAG_DOMAIN, TAG_ATTRIBUTE_REF, TAG_FACTOR_REF = 0xD0, 0xA7, 0xFA


# ---------------------------------------------------------------------------------------------- scenes
class FaceScene:
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


class ShapeScene:
    """Sampling, rendering and the shape change of the squares and circles."""

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
class RenderedSplit(EpochKeyed):
    """Items of one split, rendered in batches on demand. Keys ``k`` decode as item ``k mod len`` of epoch
    ``k div len`` (see :class:`datamodules.base.SeededShuffleSampler`); the pool of images the items draw from
    is cached as uint8 when ``cache`` is set, and so is the ground truth of val/test items."""

    def __init__(self, scene, split: str, size: int, pool_size: int, cache: bool = True):
        self.scene, self.split, self.size, self.pool_size, self.cache = scene, split, size, pool_size, cache
        self.train = split == "train"
        self._records: dict[int, Any] = {}
        self._images: dict[int, np.ndarray] = {}
        self._truth: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.size

    # -- view-specific
    def make_record(self, r: int):
        return self.scene.record(self.split, r)

    # -- shared
    def record(self, r: int):
        """The record of pool image ``r``."""
        rec = self._records.get(r)
        if rec is None:
            rec = self._records[r] = self.make_record(r)
        return rec

    def _pool_images(self, ids: Sequence[int]) -> np.ndarray:
        have = self._images if self.cache else {}
        missing = [r for r in dict.fromkeys(ids) if r not in have]
        if missing:
            have.update(zip(missing, self.scene.render([self.record(r) for r in missing])))
        return np.stack([have[r] for r in ids])

    def _ground_truth(self, items: Sequence[int], plans: Sequence[Plan], src: np.ndarray):
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
        decoded = [self.decode(k) for k in keys]
        items = [item for item, _ in decoded]
        plans = [self.plan(item, epoch) for item, epoch in decoded]
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


class DomainSplit(RenderedSplit):
    """Domain views: pool image ``r`` has the domain factor set to ``values[r mod D]``.

    ``source`` given (two_domain): items are the ``size`` pool images of that domain; references come from
    the other domain's ``size``. Otherwise (multi_domain) items are the whole pool of ``size`` images.
    """

    def __init__(self, scene, split, size, factor, values, source=None, cache=True, seed=0):
        d = len(values)
        super().__init__(scene, split, size, size * d if source is not None else size, cache)
        self.factor, self.values, self.source, self.seed = factor, list(values), source, seed
        # pool image r is of domain r mod d; two_domain targets the other domain, multi_domain the next ones in turn
        self.pairing = DomainPairing(
            [range(t, self.pool_size, d) for t in range(d)],
            [[(s + 1 + j) % d for j in range(d - 1)] for s in range(d)],
            seed=seed, tag=TAG_DOMAIN, ref_tag=None if source is not None else 1,
        )

    def make_record(self, r: int):
        base = self.scene.record(self.split, r)
        return self.scene.with_value(base, self.factor, self.values[r % len(self.values)])

    def plan(self, item: int, epoch: int) -> Plan:
        d = len(self.values)
        src = item if self.source is None else self.source + d * item
        src_dom = src % d
        tgt_dom, ref = self.pairing.pick(src_dom, item, epoch)
        rec = self.record(src)
        labels = {**domain_labels(src_dom, tgt_dom, tgt_dom), **self.scene.labels(rec)}
        gt = self.scene.with_value(rec, self.factor, self.values[tgt_dom])
        return Plan(src, ref, gt, labels=labels)


class AttributeSplit(RenderedSplit):
    """multi_attribute: ``attrs`` of the image, ``target_attrs`` of a random reference, gt between them."""

    def __init__(self, scene, split, size, names, cache=True, seed=0):
        super().__init__(scene, split, size, size, cache)
        self.names, self.seed = list(names), seed
        self.pairing = OtherPairing(seed=seed, tag=TAG_ATTRIBUTE_REF)

    def _vector(self, rec) -> torch.Tensor:
        a = faces.attributes(rec)
        return torch.tensor([a[n] for n in self.names], dtype=torch.float32)

    def plan(self, item: int, epoch: int) -> Plan:
        ref = self.pairing.pick(item, self.size, item, epoch)
        rec, ref_rec = self.record(item), self.record(ref)
        target = faces.attributes(ref_rec)
        gt = faces.counterfactual(rec, attributes={n: target[n] for n in self.names})
        labels = {"attrs": self._vector(rec), "target_attrs": self._vector(ref_rec), **self.scene.labels(rec),
                  "index": torch.tensor(item), "ref_index": torch.tensor(ref)}  # rows in the split (the bridge's r_M)
        return Plan(item, ref, gt, labels=labels)


class FactorSplit(RenderedSplit):
    """multi_factor: images of the given identities only; gt takes the reference's expression. ``id_classes``:
    the identity classes (the training people); identity label = position there, UNSEEN_CLASS for anyone else."""

    def __init__(self, scene, split, size, names, identities, cache=True, seed=0, id_classes=None):
        super().__init__(scene, split, size, size, cache)
        self.names, self.identities, self.seed = list(names), list(identities), seed
        self.id_class = {int(p): k for k, p in enumerate(self.identities if id_classes is None else id_classes)}
        self.pairing = OtherPairing(seed=seed, tag=TAG_FACTOR_REF)

    def make_record(self, r: int):
        return self.scene.record(self.split, r, identities=self.identities)

    def _factors(self, rec) -> dict[str, torch.Tensor]:
        f = faces.factors(rec)
        f["identity"] = self.id_class.get(int(f["identity"]), UNSEEN_CLASS)
        return {n: torch.tensor(f[n], dtype=torch.int64) for n in self.names}

    def plan(self, item: int, epoch: int) -> Plan:
        ref = self.pairing.pick(item, self.size, item, epoch)
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
        return Plan(item, ref, gt, labels=labels)


