"""The real datasets' view datasets: lists of :class:`datamodules.images.ImageRecord` as items of a task view.

- :class:`DomainRecords` — ``two_domain`` (``source`` given: items are that domain's images, references come
  from the other one) and ``multi_domain`` (items are every image; the target is uniform over the other
  domains that have images in the split). Items: ``image``, ``domain``, ``target``, ``ref``, ``ref_domain``;
  with ``pair_key`` (paired data, e.g. BU-3DFE's subjects) also ``gt``, the same subject's target-domain image.
- :class:`FactorRecords` — ``multi_factor``: several categorical labels per record. Items: ``image``,
  ``factors`` (name → int64 index into the factor's value list), ``ref`` (a random other image of the split)
  and ``ref_factors``.
- :class:`AttributeRecords` — ``multi_attribute``: binary labels per record. Items: ``image``, ``attrs`` (float32
  0/1 vector), ``ref`` (a random other image of the split) and ``target_attrs`` (its vector).

The pairings come from :mod:`datamodules.views` (as for the embedded data); horizontal flips of train items from
the same hash of (seed, item, epoch). Images are decoded in ``__getitem__`` (so loader worker processes do the
decoding) by a :class:`datamodules.images.Preprocess` and returned as float32 3×S×S in [-1, 1].

An unreadable file is met in one place, :meth:`RecordDataset._read`: ``on_bad_image="stop"`` raises
:class:`datamodules.images.BadImageError` naming it; ``"skip"`` logs it (:mod:`datamodules.skiplog`), warns with
the running count and lets the next readable image of the same pool stand in.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from datamodules.base import UNSEEN_CLASS, images_to_tensor
from datamodules.images import BAD_IMAGE_CHOICES, BadImageError, ImageRecord, Preprocess
from datamodules.skiplog import SkipLog
from datamodules.views import DomainPairing, EpochKeyed, OtherPairing, Plan, domain_labels, mix
from suite.errors import DatasetError

# hash tags: one stream of randomness per decision
TAG_REF, TAG_TARGET, TAG_FLIP_SRC, TAG_FLIP_REF = 0x2EF, 0x7A6, 0xF11, 0xF12


def _around(pool: Sequence[int], r: int) -> Iterator[int]:
    """The indices of ``pool`` starting at ``r`` and wrapping round (``r`` first)."""
    start = r - pool.start if isinstance(pool, range) else pool.index(r)
    for step in range(len(pool)):
        yield pool[(start + step) % len(pool)]


def _index(r: int) -> torch.Tensor:
    return torch.tensor(r, dtype=torch.int64)


class RecordDataset(EpochKeyed):
    """Items of one split drawn from ``records`` (keys decoded by :class:`datamodules.views.EpochKeyed`).

    Args:
        records: the split's images.
        preprocess: crop/resize/flip settings.
        split: ``train`` flips and redraws targets/references per epoch; other splits are fixed.
        seed: the randomness of pairings and flips.
        on_bad_image: ``stop`` raises BadImageError; ``skip`` substitutes the next readable image of the same
            pool (same domain), warns and logs the file.
        flip_swap: label values a horizontal flip exchanges, e.g. ``{"gaze": {"left": "right", "right": "left"}}``.
        name: the dataset name used in messages.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess: Preprocess,
        *,
        split: str,
        seed: int = 0,
        on_bad_image: str = "stop",
        flip_swap: Mapping[str, Mapping[Any, Any]] | None = None,
        name: str = "data",
    ):
        if on_bad_image not in BAD_IMAGE_CHOICES:
            raise DatasetError(f"on_bad_image must be one of {', '.join(BAD_IMAGE_CHOICES)}, got {on_bad_image!r}.")
        self.records = list(records)
        self.preprocess, self.split, self.seed, self.name = preprocess, split, int(seed), name
        self.on_bad_image = on_bad_image
        self.flip_swap = {k: dict(v) for k, v in (flip_swap or {}).items()}
        self.train = split == "train"
        self.skip_log = SkipLog() if on_bad_image == "skip" else None
        self._bad: set[int] = set()  # record indices found unreadable in this process
        self._items: list[int] = []

    # -- view-specific
    def pool_of(self, r: int) -> Sequence[int]:
        """The record indices that may stand in for record ``r`` when it is unreadable."""
        return range(len(self.records))

    def partner(self, r: int, plan: Plan) -> int | None:
        """The ground truth of record ``r`` as the source of ``plan`` (paired datasets only)."""
        return None

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return plan.labels

    # -- shared
    def __len__(self) -> int:
        return len(self._items)

    def select(self, items: Sequence[int] | None) -> RecordDataset:
        """Keep only the given item indices (e.g. a few evaluation images for validation); returns self."""
        if items is not None:
            self._items = [self._items[i] for i in items]
        return self

    def _flips(self, item: int, epoch: int) -> dict[str, bool]:
        """The ``flip_src``/``flip_ref`` of a plan: random in training when the preprocessing flips."""
        if not (self.train and self.preprocess.flip):
            return {"flip_src": False, "flip_ref": False}
        return {
            "flip_src": bool(mix(self.seed, TAG_FLIP_SRC, item, epoch) & 1),
            "flip_ref": bool(mix(self.seed, TAG_FLIP_REF, item, epoch) & 1),
        }

    def _load(self, r: int, flip: bool) -> torch.Tensor:
        offset = self.preprocess.random_offset() if self.train else None  # CycleGAN's random crop (data.crop.load_size)
        return images_to_tensor(self.preprocess(self.records[r].path, flip, offset)[None])[0]

    def _read(self, r: int, flip: bool) -> torch.Tensor | None:
        """Pixels of record ``r``; None when it is unreadable and skipped. The one place a bad image is met:
        ``stop`` raises BadImageError naming it; ``skip`` logs it and warns with the running count."""
        if r in self._bad:
            return None
        try:
            return self._load(r, flip)
        except BadImageError as err:
            if self.skip_log is None:
                raise BadImageError(
                    f"data={self.name}: {err}; fix or remove the file, or set data.on_bad_image=skip."
                ) from None
            self._bad.add(r)
            count = self.skip_log.add(self.records[r].path)
            warnings.warn(f"data={self.name}: {err}; skipped it ({count} unreadable file(s) so far).", stacklevel=3)
            return None

    def _image(self, r: int, flip: bool) -> tuple[torch.Tensor, int]:
        """Pixels of record ``r`` (or of its stand-in when unreadable and skipping) and the record used."""
        for c in _around(self.pool_of(r), r):
            pixels = self._read(c, flip)
            if pixels is not None:
                return pixels, c
        raise DatasetError(
            f"data={self.name}: every image that could stand in for the unreadable {self.records[r].path} is unreadable too."
        )

    def _paired(self, plan: Plan) -> tuple[torch.Tensor, torch.Tensor]:
        """Source pixels and its ground truth, both flipped as the source. When either file is unreadable
        (``skip``), the next source of the same pool with a readable partner stands in."""
        for step, r in enumerate(_around(self.pool_of(plan.src), plan.src)):
            g = plan.gt if step == 0 else self.partner(r, plan)
            if g is None or g in self._bad:
                continue
            image = self._read(r, plan.flip_src)
            truth = None if image is None else self._read(g, plan.flip_src)
            if truth is not None:
                plan.src, plan.gt = r, g
                return image, truth
        raise DatasetError(
            f"data={self.name}: no readable image with a readable ground-truth partner can stand in for "
            f"{self.records[plan.src].path}."
        )

    def _labels(self, record: ImageRecord, flip: bool) -> dict[str, Any]:
        if not flip:
            return dict(record.labels)
        return {k: self.flip_swap.get(k, {}).get(v, v) for k, v in record.labels.items()}

    def skipped_files(self) -> list[str]:
        """Files skipped as unreadable so far, by any process loading this dataset."""
        return self.skip_log.files() if self.skip_log is not None else []

    def __getitem__(self, key: int) -> dict[str, Any]:
        plan = self.plan(*self.decode(key))
        gt = None
        if plan.gt is not None:
            image, gt = self._paired(plan)
        else:
            image, plan.src = self._image(plan.src, plan.flip_src)
        ref, plan.ref = self._image(plan.ref, plan.flip_ref)
        out = {"image": image, "ref": ref, **self.item_labels(plan)}
        if gt is not None:
            out["gt"] = gt
        return out

    def _check_not_empty(self) -> None:
        if not self.records:
            raise DatasetError(f"the {self.split} split of data={self.name} is empty.")


class DomainRecords(RecordDataset):
    """Domain views. ``domain_key`` names the label whose value is the domain; ``domain_values`` orders the
    domains (records of other values are left out).

    ``source`` given (two_domain): items are the records of domain ``source``, targets the other one of the
    two domains. ``source=None`` (multi_domain): items are every record; the target is uniform over the other
    domains with images in the split. The reference is a random image of the target domain.

    ``pair_key`` given (paired data, e.g. BU-3DFE's subjects): items carry ``gt``, the record of the target
    domain with the same ``pair_key`` label (flipped as the source) — of those, the one whose ``pair_rank``
    label equals the source's, else the one with the highest rank. Sources without a partner in every
    target domain are left out (with a warning); references stay unpaired.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess: Preprocess,
        *,
        domain_key: str,
        domain_values: Sequence[Any],
        source: int | None = None,
        pair_key: str | None = None,
        pair_rank: str | None = None,
        **kwargs: Any,
    ):
        values = list(domain_values)
        index = {v: i for i, v in enumerate(values)}
        kept = [r for r in records if r.labels.get(domain_key) in index]
        super().__init__(kept, preprocess, **kwargs)
        self.domain_key, self.domain_values, self.source = domain_key, values, source
        self.domains = [index[r.labels[domain_key]] for r in self.records]
        self.pools: list[list[int]] = [[] for _ in values]
        for i, d in enumerate(self.domains):
            self.pools[d].append(i)
        where = f"the {self.split} split of data={self.name}"
        if source is not None:
            if len(values) != 2 or source not in (0, 1):
                raise DatasetError(f"the two_domain view needs 2 domains and source 0 or 1, got {values} and {source}.")
            for d in (source, 1 - source):
                if not self.pools[d]:
                    raise DatasetError(f"{where} has no {values[d]!r} images ({domain_key}).")
            self._items = list(self.pools[source])
        else:
            present = [d for d, p in enumerate(self.pools) if p]
            if len(present) < 2:
                raise DatasetError(
                    f"{where} has images of {len(present)} of the domains {values}; the multi_domain view needs at least 2."
                )
            self._items = list(range(len(self.records)))
        self._targets = [[t for t, p in enumerate(self.pools) if p and t != d] for d in range(len(values))]
        self.pairing = DomainPairing(self.pools, self._targets, seed=self.seed, tag=TAG_TARGET, ref_tag=TAG_REF)
        self.pair_key, self.pair_rank = pair_key, pair_rank
        self._partners: dict[tuple[Any, int], list[int]] = {}
        if pair_key is not None:
            self._pair_up(where)

    def _pair_up(self, where: str) -> None:
        for i, rec in enumerate(self.records):
            self._partners.setdefault((rec.labels[self.pair_key], self.domains[i]), []).append(i)
        if self.pair_rank is not None:
            for group in self._partners.values():
                group.sort(key=lambda i: self.records[i].labels[self.pair_rank])
        paired = [
            i for i in self._items
            if all((self.records[i].labels[self.pair_key], t) in self._partners for t in self._targets[self.domains[i]])
        ]
        if not paired:
            raise DatasetError(
                f"{where} has no source image with a {self.pair_key}-matched image in the target domain (paired ground truth)."
            )
        if len(paired) < len(self._items):
            warnings.warn(
                f"{where}: {len(self._items) - len(paired)} source image(s) have no {self.pair_key}-matched image in "
                "every target domain and are left out (paired ground truth).",
                stacklevel=3,
            )
        self._items = paired

    def pool_of(self, r: int) -> Sequence[int]:
        return self.pools[self.domains[r]]

    def partner(self, r: int, plan: Plan) -> int | None:
        group = self._partners.get((self.records[r].labels[self.pair_key], plan.labels["tgt_dom"]))
        if not group:
            return None
        if self.pair_rank is not None:
            rank = self.records[r].labels[self.pair_rank]
            for c in group:
                if self.records[c].labels[self.pair_rank] == rank:
                    return c
        return group[-1]

    def plan(self, item: int, epoch: int) -> Plan:
        src = self._items[item]
        src_dom = self.domains[src]
        tgt_dom, ref = self.pairing.pick(src_dom, item, epoch)
        plan = Plan(src, ref, **self._flips(item, epoch), labels={"src_dom": src_dom, "tgt_dom": tgt_dom})
        if self.pair_key is not None:
            plan.gt = self.partner(src, plan)
        return plan

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return domain_labels(plan.labels["src_dom"], plan.labels["tgt_dom"], self.domains[plan.ref])


class _OtherRecords(RecordDataset):
    """The views whose reference is a random other image of the split (every record is an item)."""

    def __init__(self, records: Sequence[ImageRecord], preprocess: Preprocess, **kwargs: Any):
        super().__init__(records, preprocess, **kwargs)
        self.pairing = OtherPairing(seed=self.seed, tag=TAG_REF)
        self._items = list(range(len(self.records)))

    def plan(self, item: int, epoch: int) -> Plan:
        src = self._items[item]
        ref = self.pairing.pick(src, len(self.records), item, epoch)
        return Plan(src, ref, **self._flips(item, epoch))


class FactorRecords(_OtherRecords):
    """multi_factor: ``factor_values`` maps each factor name to its ordered values; ``factors`` of an item are
    the indices of its labels, the reference is a random other image of the split."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess: Preprocess,
        *,
        factor_values: Mapping[str, Sequence[Any]],
        subject_factors: Sequence[str] = (),
        **kwargs: Any,
    ):
        super().__init__(records, preprocess, **kwargs)
        self.factor_values = {k: list(v) for k, v in factor_values.items()}
        # classes of the train split only: outside it, an unseen value is UNSEEN_CLASS (no class of the models)
        self.open_factors = set() if self.train else set(subject_factors)
        for r in self.records:
            for k, values in self.factor_values.items():
                if r.labels.get(k) not in values and k not in self.open_factors:
                    raise DatasetError(
                        f"data={self.name}: {r.path} has {k}={r.labels.get(k)!r}, not one of {values}."
                    )
        self._check_not_empty()

    def _factors(self, r: int, flip: bool) -> dict[str, torch.Tensor]:
        labels = self._labels(self.records[r], flip)
        return {k: _index(values.index(labels[k]) if labels[k] in values else UNSEEN_CLASS)
                for k, values in self.factor_values.items()}

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return {
            "factors": self._factors(plan.src, plan.flip_src),
            "ref_factors": self._factors(plan.ref, plan.flip_ref),
        }


class AttributeRecords(_OtherRecords):
    """multi_attribute: ``attr_names`` name binary labels (0/1 or False/True) that every record carries. Items:
    ``attrs`` (float32 vector in ``attr_names`` order), ``ref`` (a random other image of the split) and
    ``target_attrs`` (its vector), ``index``/``ref_index`` (both images' rows in the split). Flips leave
    attributes unchanged."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess: Preprocess,
        *,
        attr_names: Sequence[str],
        **kwargs: Any,
    ):
        super().__init__(records, preprocess, **kwargs)
        self.attr_names = list(attr_names)
        self._check_not_empty()
        rows = []
        for r in self.records:
            row = [r.labels.get(n) for n in self.attr_names]
            if any(v is None or v not in (0, 1) for v in row):
                raise DatasetError(
                    f"data={self.name}: {r.path} has attribute values {dict(zip(self.attr_names, row))}, not all 0 or 1."
                )
            rows.append([float(v) for v in row])
        self.attrs = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), len(self.attr_names))

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return {"attrs": self.attrs[plan.src].clone(), "target_attrs": self.attrs[plan.ref].clone(),
                "index": _index(plan.src), "ref_index": _index(plan.ref)}  # rows in the split (the bridge's r_M)
