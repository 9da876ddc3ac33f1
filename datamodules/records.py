"""Real datasets as lists of records (an image file plus its labels) turned into the task views.

A dataset file (``rafd.py``, ``celeba.py`` …) parses its layout into :class:`ImageRecord` lists, one per split;
this module turns them into torch Datasets producing the batch format of :mod:`datamodules.base`:

- :class:`DomainRecords` — ``two_domain`` (``source`` given: items are that domain's images, references come
  from the other one) and ``multi_domain`` (items are every image; the target is uniform over the other
  domains that have images in the split). Items: ``image``, ``domain``, ``target``, ``ref``, ``ref_domain``.
- :class:`FactorRecords` — ``multi_factor``: several categorical labels per record. Items: ``image``,
  ``factors`` (name → int64 index into the factor's value list), ``ref`` (a random other image of the split)
  and ``ref_factors``.
- :class:`AttributeRecords` — ``multi_attribute``: binary labels per record. Items: ``image``, ``attrs`` (float32
  0/1 vector), ``ref`` (a random other image of the split) and ``target_attrs`` (its vector).

Paired data (``DomainRecords(pair_key=…)``, e.g. BU-3DFE's subjects) adds ``gt``: the same subject's image in
the target domain. :class:`RecordsDataModule` is the datamodule the real datasets share (root from the config
or an environment variable, views, validation, info, fingerprint); :class:`CachedPreprocess` stores each
preprocessed image once under ``data.cache_dir``; :func:`read_annotation` and :func:`malformed` give the
one-sentence errors for missing annotation files and malformed lines.

Images are decoded with PIL in ``__getitem__`` (so loader worker processes do the decoding), cropped and
resized by a :class:`Preprocess`, and returned as float32 3×S×S in [-1, 1]. Train items are pure functions of
(seed, index, epoch): the keys of :class:`datamodules.base.SeededShuffleSampler` carry the epoch, and the
target, reference and horizontal flips come from a hash of (seed, index, epoch), so any worker in any run
draws the same. Val/test items are fixed and never flipped.

An unreadable, corrupt or truncated file raises :class:`BadImageError` naming it (``on_bad_image="stop"``), or
(``"skip"``) is replaced by the next readable image of the same pool, warned about with the running count,
and logged, so the datamodule can report the total (:func:`report_skipped`): never a silent drop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.base import BaseImageDataModule, check_choice, check_positive_int, images_to_tensor, plain
from datamodules.synthetic import mix
from suite.errors import ConfigError, DatasetError

BAD_IMAGE_CHOICES = ("stop", "skip")
# hash tags: one stream of randomness per decision
_TAG_REF, _TAG_TARGET, _TAG_FLIP_SRC, _TAG_FLIP_REF = 0x2EF, 0x7A6, 0xF11, 0xF12


# ---------------------------------------------------------------------------------------------- errors
class ImageError(DatasetError):
    """A DatasetError raised while loading an image, possibly in a loader worker process.

    A worker's exception comes back to the main process rebuilt from one string holding the worker's
    traceback (``torch._utils.ExceptionWrapper``); this class keeps only its own one-sentence message from
    that string, so the user sees the sentence, not a traceback.
    """

    def __init__(self, message: str = ""):
        if message.startswith("Caught ") and "Traceback" in message:
            found = re.findall(rf"^\S*\b{re.escape(type(self).__name__)}: (.*)$", message, flags=re.MULTILINE)
            if found:
                message = found[-1]
        super().__init__(message)


class BadImageError(ImageError):
    """An image file that cannot be decoded (missing, unreadable, corrupt, truncated)."""


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ImageRecord:
    """One image: its file and its categorical labels (e.g. ``{"identity": 28, "expression": "angry"}``)."""

    path: Path
    labels: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Preprocess:
    """Crop, resize to ``image_size`` × ``image_size``, optionally flip.

    Args:
        image_size: output side in pixels.
        crop: ``"square"`` the largest centred square; ``"full"`` the whole image (aspect not kept); an int
            or ``(w, h)``: a centred crop of that size in source pixels.
        shift: ``(dx, dy)`` source pixels moving the centred crop (negative ``dy`` moves it up).
        box: ``(left, top, right, bottom)`` in source pixels; replaces ``crop`` and ``shift``.
        flip: random horizontal flips of train images (the dataset decides which, per epoch).
        draft: let the JPEG decoder downscale by 1/2, 1/4 or 1/8 while decoding, as long as the crop still
            has at least ``image_size`` pixels a side (far faster on large photographs).
        anchor: ``"center"`` centres a sized crop; ``"top"`` centres it horizontally and puts it at the top
            edge (ImageMagick's ``-gravity North -crop``).
        shave: pixels removed from every border before cropping (ImageMagick's ``-shave``); ``"full"`` then
            keeps the rest. Ignored with ``box``.
    """

    image_size: int
    crop: str | int | tuple[int, int] = "square"
    shift: tuple[int, int] = (0, 0)
    box: tuple[int, int, int, int] | None = None
    flip: bool = True
    draft: bool = True
    anchor: str = "center"
    shave: int = 0

    def __post_init__(self) -> None:
        if self.anchor not in ("center", "top"):
            raise ConfigError(f"a crop anchor must be 'center' or 'top', got {self.anchor!r}.")
        if isinstance(self.shave, bool) or not isinstance(self.shave, int | np.integer) or self.shave < 0:
            raise ConfigError(f"shave must be a number of pixels >= 0, got {self.shave!r}.")
        object.__setattr__(self, "shave", int(self.shave))
        crop = self.crop
        if isinstance(crop, Sequence) and not isinstance(crop, str):
            object.__setattr__(self, "crop", tuple(int(v) for v in crop))
            if len(self.crop) != 2 or min(self.crop) < 1:
                raise ConfigError(f"a crop size must be an int or (width, height) ≥ 1, got {crop!r}.")
        elif isinstance(crop, str):
            if crop not in ("square", "full"):
                raise ConfigError(f"crop must be 'square', 'full', an int or (width, height), got {crop!r}.")
        elif isinstance(crop, bool) or not isinstance(crop, int) or crop < 1:
            raise ConfigError(f"a crop size must be a positive int, got {crop!r}.")
        object.__setattr__(self, "shift", tuple(int(v) for v in self.shift))
        if self.box is not None:
            box = tuple(int(v) for v in self.box)
            if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
                raise ConfigError(f"a crop box must be (left, top, right, bottom) with right > left and bottom > top, got {self.box!r}.")
            object.__setattr__(self, "box", box)

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The crop as (left, top, right, bottom) in the pixels of a ``width`` × ``height`` image."""
        if self.box is not None:
            return self.box
        s = self.shave
        width, height = width - 2 * s, height - 2 * s
        if self.crop == "full":
            return (s, s, s + width, s + height)
        if self.crop == "square":
            cw = ch = min(width, height)
        elif isinstance(self.crop, tuple):
            cw, ch = self.crop
        else:
            cw = ch = int(self.crop)
        left = s + (width - cw) // 2 + self.shift[0]
        top = s + (0 if self.anchor == "top" else (height - ch) // 2) + self.shift[1]
        return (left, top, left + cw, top + ch)

    def describe(self) -> dict[str, Any]:
        """The settings as plain data (for fingerprints)."""
        d = asdict(self)
        d["crop"] = list(d["crop"]) if isinstance(d["crop"], tuple) else d["crop"]
        d["shift"] = list(d["shift"])
        d["box"] = list(d["box"]) if d["box"] is not None else None
        for key, default in (("anchor", "center"), ("shave", 0)):  # absent at their defaults: older fingerprints hold
            if d[key] == default:
                del d[key]
        return d

    def __call__(self, path: Path, flip: bool = False) -> np.ndarray:
        """The image at ``path`` as S×S×3 uint8. Raises BadImageError when the file cannot be decoded and
        ImageError when the crop does not fit in it."""
        try:
            with Image.open(path) as img:
                width, height = img.size
                left, top, right, bottom = self.crop_box(width, height)
                if left < 0 or top < 0 or right > width or bottom > height:
                    raise ImageError(
                        f"the crop box {(left, top, right, bottom)} does not fit in the {width}×{height} image "
                        f"{path}; choose a smaller crop (data.crop) for these images."
                    )
                if self.draft and img.format == "JPEG":
                    s = self.image_size
                    img.draft("RGB", (-(-width * s // (right - left)), -(-height * s // (bottom - top))))
                    sx, sy = width / img.size[0], height / img.size[1]
                    left, top, right, bottom = left / sx, top / sy, right / sx, bottom / sy
                img.load()
                rgb = img.convert("RGB")
        except ImageError:
            raise
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError …
            raise BadImageError(f"cannot read the image {path} ({_reason(exc)})") from exc
        size = (self.image_size, self.image_size)
        out = rgb.resize(size, Image.Resampling.BICUBIC, box=(left, top, right, bottom))
        if flip:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return np.array(out, dtype=np.uint8)  # a writable copy (torch refuses read-only arrays)


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# ---------------------------------------------------------------------------------------------- skip log
class SkipLog:
    """Files skipped as unreadable, shared by the main process and the loader's worker processes through an
    append-only file (each line one path), so the count survives the workers. Removed with the object in
    the process that created it."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="facetrans-skipped-", suffix=".txt")
        os.close(fd)
        self.path = name
        weakref.finalize(self, _remove_if_owner, name, os.getpid())

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]

    def add(self, path: Path) -> int:
        """Log ``path``; the number of distinct files logged so far."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{path}\n")
        return len(self.files())

    def files(self) -> list[str]:
        """The distinct files logged so far, sorted."""
        try:
            with open(self.path, encoding="utf-8") as f:
                return sorted({line.rstrip("\n") for line in f if line.strip()})
        except FileNotFoundError:
            return []


def _remove_if_owner(path: str, pid: int) -> None:
    if os.getpid() == pid:
        try:
            os.remove(path)
        except OSError:
            pass


def report_skipped(name: str, datasets: Sequence[Dataset]) -> list[str]:
    """Warn once with the number of files the ``datasets`` skipped (``on_bad_image=skip``); the files."""
    files = sorted({f for ds in datasets for f in getattr(ds, "skipped_files", list)()})
    if files:
        shown = ", ".join(files[:3]) + (" …" if len(files) > 3 else "")
        warnings.warn(
            f"data={name}: skipped {len(files)} unreadable image file(s) (data.on_bad_image=skip): {shown}",
            stacklevel=2,
        )
    return files


# ---------------------------------------------------------------------------------------------- datasets
@dataclass
class Plan:
    """What one item shows: record indices of the image and its reference, their flips, the labels."""

    src: int
    ref: int
    flip_src: bool = False
    flip_ref: bool = False
    labels: dict[str, Any] = field(default_factory=dict)
    gt: int | None = None  # paired ground truth: the record showing the source translated (flipped as the source)


class RecordDataset(Dataset):
    """Items of one split drawn from ``records``. Keys ``k`` decode as item ``k mod len`` of epoch
    ``k div len`` (train only; val/test are epoch 0 always).

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

    epoch_aware = True

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
    def plan(self, item: int, epoch: int) -> Plan:
        """The item ``item`` of epoch ``epoch`` (epoch ignored outside train)."""
        raise NotImplementedError

    def pool_of(self, r: int) -> Sequence[int]:
        """The record indices that may stand in for record ``r`` when it is unreadable."""
        return range(len(self.records))

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

    def _flips(self, item: int, epoch: int) -> tuple[bool, bool]:
        if not (self.train and self.preprocess.flip):
            return False, False
        return bool(mix(self.seed, _TAG_FLIP_SRC, item, epoch) & 1), bool(mix(self.seed, _TAG_FLIP_REF, item, epoch) & 1)

    def _image(self, r: int, flip: bool) -> tuple[torch.Tensor, int]:
        """Pixels of record ``r`` (or of its stand-in when unreadable and skipping) and the record used."""
        if r not in self._bad:
            try:
                return self._load(r, flip), r
            except BadImageError as err:
                self._fail(r, err)
        pool = self.pool_of(r)
        start = r - pool.start if isinstance(pool, range) else pool.index(r)
        for step in range(1, len(pool)):
            c = pool[(start + step) % len(pool)]
            if c in self._bad:
                continue
            try:
                return self._load(c, flip), c
            except BadImageError as err:
                self._skip(c, err)
        raise DatasetError(
            f"data={self.name}: every image that could stand in for the unreadable {self.records[r].path} is unreadable too."
        )

    def _load(self, r: int, flip: bool) -> torch.Tensor:
        return images_to_tensor(self.preprocess(self.records[r].path, flip)[None])[0]

    def _fail(self, r: int, err: BadImageError) -> None:
        """Record ``r`` is unreadable: raise (``stop``) or log it as skipped (``skip``)."""
        if self.skip_log is None:
            raise BadImageError(
                f"data={self.name}: {err}; fix or remove the file, or set data.on_bad_image=skip."
            ) from None
        self._skip(r, err)

    def _paired(self, plan: Plan) -> tuple[torch.Tensor, torch.Tensor]:
        """Source pixels and its ground truth, both flipped as the source. When either file is unreadable
        (``skip``), the next source of the same pool with a readable partner stands in."""
        pool = self.pool_of(plan.src)
        start = list(pool).index(plan.src)
        for step in range(len(pool)):
            r = pool[(start + step) % len(pool)]
            g = plan.gt if step == 0 else self.partner(r, plan)
            if g is None or r in self._bad or g in self._bad:
                continue
            for rec in (r, g):
                try:
                    loaded = self._load(rec, plan.flip_src)
                except BadImageError as err:
                    self._fail(rec, err)
                    break
                if rec == r:
                    image = loaded
                else:
                    plan.src, plan.gt = r, g
                    return image, loaded
        raise DatasetError(
            f"data={self.name}: no readable image with a readable ground-truth partner can stand in for "
            f"{self.records[plan.src].path}."
        )

    def partner(self, r: int, plan: Plan) -> int | None:
        """The ground truth of record ``r`` as the source of ``plan`` (paired datasets only)."""
        return None

    def _skip(self, r: int, err: BadImageError) -> None:
        self._bad.add(r)
        count = self.skip_log.add(self.records[r].path)
        warnings.warn(f"data={self.name}: {err}; skipped it ({count} unreadable file(s) so far).", stacklevel=3)

    def _labels(self, record: ImageRecord, flip: bool) -> dict[str, Any]:
        if not flip:
            return dict(record.labels)
        return {k: self.flip_swap.get(k, {}).get(v, v) for k, v in record.labels.items()}

    def skipped_files(self) -> list[str]:
        """Files skipped as unreadable so far, by any process loading this dataset."""
        return self.skip_log.files() if self.skip_log is not None else []

    def __getitem__(self, key: int) -> dict[str, Any]:
        key = int(key)
        n = len(self._items)
        item, epoch = key % n, (key // n if self.train else 0)
        plan = self.plan(item, epoch)
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


def _index(r: int) -> torch.Tensor:
    return torch.tensor(r, dtype=torch.int64)


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
        where = f"the {kwargs.get('split', '?')} split of data={self.name}"
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
        h = mix(self.seed, _TAG_TARGET, item, epoch)
        if self.source is not None:
            tgt_dom = 1 - self.source
        else:
            choices = self._targets[src_dom]
            tgt_dom = choices[h % len(choices)]
        pool = self.pools[tgt_dom]
        ref = pool[mix(h, _TAG_REF) % len(pool)]
        plan = Plan(src, ref, *self._flips(item, epoch), labels={"src_dom": src_dom, "tgt_dom": tgt_dom})
        if self.pair_key is not None:
            plan.gt = self.partner(src, plan)
        return plan

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return {
            "domain": _index(plan.labels["src_dom"]),
            "target": _index(plan.labels["tgt_dom"]),
            "ref_domain": _index(self.domains[plan.ref]),
        }


class FactorRecords(RecordDataset):
    """multi_factor: ``factor_values`` maps each factor name to its ordered values; ``factors`` of an item are
    the indices of its labels, the reference is a random other image of the split."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess: Preprocess,
        *,
        factor_values: Mapping[str, Sequence[Any]],
        **kwargs: Any,
    ):
        super().__init__(records, preprocess, **kwargs)
        self.factor_values = {k: list(v) for k, v in factor_values.items()}
        for r in self.records:
            for k, values in self.factor_values.items():
                if r.labels.get(k) not in values:
                    raise DatasetError(
                        f"data={self.name}: {r.path} has {k}={r.labels.get(k)!r}, not one of {values}."
                    )
        if not self.records:
            raise DatasetError(f"the {kwargs.get('split', '?')} split of data={self.name} is empty.")
        self._items = list(range(len(self.records)))

    def plan(self, item: int, epoch: int) -> Plan:
        src = self._items[item]
        n = len(self.records)
        r = mix(self.seed, _TAG_REF, item, epoch) % max(n - 1, 1)
        ref = src if n < 2 else (r + 1 if r >= src else r)
        return Plan(src, ref, *self._flips(item, epoch))

    def _factors(self, r: int, flip: bool) -> dict[str, torch.Tensor]:
        labels = self._labels(self.records[r], flip)
        return {k: _index(values.index(labels[k])) for k, values in self.factor_values.items()}

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return {
            "factors": self._factors(plan.src, plan.flip_src),
            "ref_factors": self._factors(plan.ref, plan.flip_ref),
        }


def spread(n: int, k: int) -> list[int]:
    """``min(k, n)`` indices evenly spread over ``range(n)`` (a deterministic, varied subset)."""
    k = min(int(k), n)
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)}) if k > 0 else []



# ---------------------------------------------------------------------------------------------- multi_attribute
def _random_other(seed: int, item: int, epoch: int, src: int, n: int) -> int:
    """A record index other than ``src`` (``src`` itself when the split holds one image), from a hash."""
    r = mix(seed, _TAG_REF, item, epoch) % max(n - 1, 1)
    return src if n < 2 else (r + 1 if r >= src else r)


class AttributeRecords(RecordDataset):
    """multi_attribute: ``attr_names`` name binary labels (0/1 or False/True) that every record carries. Items:
    ``attrs`` (float32 vector in ``attr_names`` order), ``ref`` (a random other image of the split) and
    ``target_attrs`` (its vector). Flips leave attributes unchanged."""

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
        if not self.records:
            raise DatasetError(f"the {kwargs.get('split', '?')} split of data={self.name} is empty.")
        rows = []
        for r in self.records:
            row = [r.labels.get(n) for n in self.attr_names]
            if any(v is None or v not in (0, 1) for v in row):
                raise DatasetError(
                    f"data={self.name}: {r.path} has attribute values {dict(zip(self.attr_names, row))}, not all 0 or 1."
                )
            rows.append([float(v) for v in row])
        self.attrs = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), len(self.attr_names))
        self._items = list(range(len(self.records)))

    def plan(self, item: int, epoch: int) -> Plan:
        src = self._items[item]
        ref = _random_other(self.seed, item, epoch, src, len(self.records))
        return Plan(src, ref, *self._flips(item, epoch))

    def item_labels(self, plan: Plan) -> dict[str, Any]:
        return {"attrs": self.attrs[plan.src].clone(), "target_attrs": self.attrs[plan.ref].clone()}


# ---------------------------------------------------------------------------------------------- reading layouts
def plain_arg(value: Any) -> Any:
    """A Hydra ListConfig/DictConfig argument as plain Python (lists, dicts); anything else unchanged."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def resolve_root(dataset: str, root: str | os.PathLike | None, env_var: str | None, layout: str) -> Path:
    """The dataset's folder: ``root``, else the ``env_var`` environment variable. A DatasetError naming the path
    tried and the layout expected when it is unset or not a folder."""
    where = f"data.root=<dir> or the {env_var} environment variable" if env_var else "data.root=<dir>"
    if not root and env_var:
        root = os.environ.get(env_var) or None
    if not root:
        raise DatasetError(f"data={dataset}: the dataset's location is not set (pass {where}); expected {layout}.")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"data={dataset}: no dataset folder at {path} (set {where}); expected {layout}.")
    return path


def read_annotation(dataset: str, path: Path, layout: str) -> list[str]:
    """The lines of an annotation file; a DatasetError naming it (and the layout) when it is missing or
    unreadable."""
    if not path.is_file():
        raise DatasetError(f"data={dataset}: the annotation file {path} is missing; expected {layout}.")
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetError(f"data={dataset}: cannot read the annotation file {path} ({_reason(exc)}).") from exc


def malformed(dataset: str, path: Path, lineno: int, expected: str, line: str) -> DatasetError:
    """The error for line ``lineno`` (1-based) of ``path`` not matching ``expected``."""
    shown = " ".join(line.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return DatasetError(f"data={dataset}: line {lineno} of {path} is malformed: expected {expected}, got {shown!r}.")


def make_preprocess(
    dataset: str,
    crop: Any,
    image_size: int,
    *,
    named: Mapping[str, Mapping[str, Any]],
    flip: bool = True,
    draft: bool = True,
) -> Preprocess:
    """``data.crop`` as a :class:`Preprocess`: a name of ``named`` (each a dict of Preprocess arguments), a
    centred side, ``[w, h]``, a box ``[left, top, right, bottom]``, or a dict with the keys ``size``,
    ``shift``, ``box``, ``anchor``, ``shave``."""
    crop = plain_arg(crop)
    if isinstance(crop, str):
        spec = dict(named[check_choice(dataset, "crop", crop, tuple(named))])
    elif isinstance(crop, dict):
        unknown = set(crop) - {"size", "shift", "box", "anchor", "shave"}
        if unknown:
            raise ConfigError(f"data.crop takes the keys size, shift, box, anchor, shave; got {sorted(unknown)}.")
        spec = {"crop" if k == "size" else k: v for k, v in crop.items() if v is not None}
    elif isinstance(crop, list | tuple) and len(crop) == 4:
        spec = {"box": crop}
    else:
        spec = {"crop": crop}
    for key in ("shift", "box"):
        if spec.get(key) is not None:
            spec[key] = tuple(spec[key])
    return Preprocess(image_size, flip=flip, draft=draft, **spec)


# ---------------------------------------------------------------------------------------------- cache
class CachedPreprocess:
    """A :class:`Preprocess` whose output (decoded, cropped, resized; before the flip) is written once per image
    under ``cache_dir/<dataset>-<size>px-<key>/<path relative to root>.<format>`` and read back from there.

    ``key`` hashes the dataset root and every preprocessing setting except the flip, so changing the crop or
    size starts a new cache folder and never reads stale pixels. Entries are written atomically (a temporary
    file renamed into place), so loader workers may fill the cache concurrently; an unreadable entry is
    rebuilt from the source. Replacing source images in place is not detected: delete the folder then.
    ``npy`` reads fastest (about ten times PNG's speed at 256 px); ``png`` is smaller on disk.
    """

    FORMATS = ("png", "npy")

    def __init__(self, base: Preprocess, cache_dir: str | os.PathLike, root: Path, dataset: str, fmt: str = "npy"):
        if fmt not in self.FORMATS:
            raise ConfigError(f"data.cache_format must be one of {', '.join(self.FORMATS)}, got {fmt!r}.")
        self.base, self.fmt = base, fmt
        self.root, self.root_resolved = Path(root), Path(root).resolve()
        settings = {
            "dataset": dataset,
            "root": str(self.root_resolved),
            "preprocess": {k: v for k, v in base.describe().items() if k != "flip"},
            "format": fmt,
        }
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        self.dir = Path(cache_dir).expanduser() / f"{dataset}-{base.image_size}px-{key}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "settings.json").write_text(json.dumps(settings, indent=2, sort_keys=True))
        except OSError as exc:
            raise ConfigError(f"data.cache_dir: cannot create the cache folder {self.dir} ({_reason(exc)}).") from exc

    @property
    def flip(self) -> bool:
        return self.base.flip

    @property
    def image_size(self) -> int:
        return self.base.image_size

    def describe(self) -> dict[str, Any]:
        return self.base.describe()

    def entry(self, path: Path) -> Path:
        """The cache file of the source image ``path``."""
        path = Path(path)
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            try:
                rel = path.resolve().relative_to(self.root_resolved)
            except ValueError:
                rel = Path("_outside") / hashlib.sha1(str(path.resolve()).encode()).hexdigest()
        return self.dir / f"{rel}.{self.fmt}"

    def __call__(self, path: Path, flip: bool = False) -> np.ndarray:
        entry = self.entry(path)
        pixels = self._read(entry)
        if pixels is None:
            pixels = self.base(Path(path), flip=False)
            self._write(entry, pixels)
        return np.ascontiguousarray(pixels[:, ::-1]) if flip else pixels

    def _read(self, entry: Path) -> np.ndarray | None:
        try:
            if self.fmt == "npy":
                pixels = np.load(entry)
            else:
                with Image.open(entry) as img:
                    pixels = np.array(img.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError):
            return None
        s = self.base.image_size
        return pixels if pixels.shape == (s, s, 3) and pixels.dtype == np.uint8 else None

    def _write(self, entry: Path, pixels: np.ndarray) -> None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f".{self.fmt}", dir=entry.parent)
            with os.fdopen(fd, "wb") as f:
                if self.fmt == "npy":
                    np.save(f, pixels)
                else:
                    Image.fromarray(pixels).save(f, format="PNG", compress_level=1)
            os.replace(tmp, entry)
        except OSError as exc:
            warnings.warn(f"cannot write the cache entry {entry} ({_reason(exc)}); reading from the source.", stacklevel=3)


# ---------------------------------------------------------------------------------------------- datamodule
class RecordsDataModule(BaseImageDataModule):
    """What the real-dataset datamodules share: the root, preprocessing and cache, the view datasets over
    ``self.records``, validation, info and its fingerprint, skipped-image reports.

    A subclass parses its layout in ``__init__`` after calling this one's, then sets
    ``self.root``, ``self.records`` (split → records; an empty ``val`` means validation is a fixed, evenly
    spread subset of ``val_size`` test items), ``self.preprocess``, the labels of the views it offers —
    ``domain_factor``/``domain_names`` (records carry ``labels["domain"]`` = a domain name) and ``direction``;
    ``attr_names`` (``labels[name]`` ∈ {0, 1}); ``factor_values`` (name → ordered values) and ``factor_names``;
    optionally ``pair_key``/``pair_rank`` (paired ground truth), ``flip_swap``, ``heldout`` (test identities),
    ``details`` (layout, protocol … for info) and ``split_rule`` (for the empty-split message) — and calls
    :meth:`finish`.
    """

    env_var: ClassVar[str | None] = None
    layout: ClassVar[str] = ""

    def __init__(
        self,
        view: str,
        *,
        image_size: int,
        val_size: int,
        flip: bool,
        draft: bool,
        on_bad_image: str,
        cache_dir: str | None,
        cache_format: str,
        batch_size: int,
        num_workers: int,
        pin_memory: bool | None,
        seed: int,
    ):
        super().__init__(view, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory, seed=seed)
        self.image_size = check_positive_int("data.image_size", image_size, minimum=8)
        self.val_size = check_positive_int("data.val_size", val_size)
        self.on_bad_image = check_choice(self.name, "on_bad_image setting", on_bad_image, BAD_IMAGE_CHOICES)
        self.flip, self.draft = bool(flip), bool(draft)
        self.cache_dir = str(Path(cache_dir).expanduser()) if cache_dir else None
        self.cache_format = check_choice(self.name, "cache_format", cache_format, CachedPreprocess.FORMATS)
        self.root: Path | None = None
        self.records: dict[str, list[ImageRecord]] = {"train": [], "val": [], "test": []}
        self.preprocess: Preprocess | CachedPreprocess | None = None
        self.domain_factor: str | None = None
        self.domain_names: list[str] = []
        self.direction = "a2b"
        self.attr_names: list[str] = []
        self.factor_names: list[str] = []
        self.factor_values: dict[str, list] = {}
        self.pair_key: str | None = None
        self.pair_rank: str | None = None
        self.flip_swap: dict[str, dict] = {}
        self.heldout: list | None = None
        self.details: dict[str, Any] = {}
        self.split_rule = ""

    # -- construction
    def resolve_root(self, root: str | os.PathLike | None) -> Path:
        return resolve_root(self.name, root, self.env_var, self.layout)

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
            ds: RecordDataset = FactorRecords(records, self.preprocess, factor_values=values, **kwargs)
        elif self.view == "multi_attribute":
            ds = AttributeRecords(records, self.preprocess, attr_names=self.attr_names, **kwargs)
        else:
            source = (0 if self.direction == "a2b" else 1) if self.view == "two_domain" else None
            ds = DomainRecords(
                records, self.preprocess, domain_key="domain", domain_values=self.domain_names, source=source,
                pair_key=self.pair_key, pair_rank=self.pair_rank, **kwargs,
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
        )
        info["fingerprint"] = hashlib.sha1(json.dumps(plain(settings), sort_keys=True).encode()).hexdigest()[:12]
        return info

    # -- reporting
    def skipped_images(self) -> list[str]:
        """Files skipped as unreadable so far (``on_bad_image=skip``), by any loader process."""
        return sorted({f for ds in self._datasets.values() for f in ds.skipped_files()})

    def teardown(self, stage: str | None = None) -> None:
        report_skipped(self.name, list(self._datasets.values()))
