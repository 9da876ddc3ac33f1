"""Real datasets as lists of records (an image file plus its labels) turned into the task views.

A dataset file (``rafd.py``, ``celeba.py`` …) parses its layout into :class:`ImageRecord` lists, one per split;
this module turns them into torch Datasets producing the batch format of :mod:`datamodules.base`:

- :class:`DomainRecords` — ``two_domain`` (``source`` given: items are that domain's images, references come
  from the other one) and ``multi_domain`` (items are every image; the target is uniform over the other
  domains that have images in the split). Items: ``image``, ``domain``, ``target``, ``ref``, ``ref_domain``.
- :class:`FactorRecords` — ``multi_factor``: several categorical labels per record. Items: ``image``,
  ``factors`` (name → int64 index into the factor's value list), ``ref`` (a random other image of the split)
  and ``ref_factors``.

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

import os
import re
import tempfile
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.base import images_to_tensor
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
    """

    image_size: int
    crop: str | int | tuple[int, int] = "square"
    shift: tuple[int, int] = (0, 0)
    box: tuple[int, int, int, int] | None = None
    flip: bool = True
    draft: bool = True

    def __post_init__(self) -> None:
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
        if self.crop == "full":
            return (0, 0, width, height)
        if self.crop == "square":
            cw = ch = min(width, height)
        elif isinstance(self.crop, tuple):
            cw, ch = self.crop
        else:
            cw = ch = int(self.crop)
        left = (width - cw) // 2 + self.shift[0]
        top = (height - ch) // 2 + self.shift[1]
        return (left, top, left + cw, top + ch)

    def describe(self) -> dict[str, Any]:
        """The settings as plain data (for fingerprints)."""
        d = asdict(self)
        d["crop"] = list(d["crop"]) if isinstance(d["crop"], tuple) else d["crop"]
        d["shift"] = list(d["shift"])
        d["box"] = list(d["box"]) if d["box"] is not None else None
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
                if self.skip_log is None:
                    raise BadImageError(
                        f"data={self.name}: {err}; fix or remove the file, or set data.on_bad_image=skip."
                    ) from None
                self._skip(r, err)
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
        image, plan.src = self._image(plan.src, plan.flip_src)
        ref, plan.ref = self._image(plan.ref, plan.flip_ref)
        return {"image": image, "ref": ref, **self.item_labels(plan)}


def _index(r: int) -> torch.Tensor:
    return torch.tensor(r, dtype=torch.int64)


class DomainRecords(RecordDataset):
    """Domain views. ``domain_key`` names the label whose value is the domain; ``domain_values`` orders the
    domains (records of other values are left out).

    ``source`` given (two_domain): items are the records of domain ``source``, targets the other one of the
    two domains. ``source=None`` (multi_domain): items are every record; the target is uniform over the other
    domains with images in the split. The reference is a random image of the target domain.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess: Preprocess,
        *,
        domain_key: str,
        domain_values: Sequence[Any],
        source: int | None = None,
        **kwargs: Any,
    ):
        values = list(domain_values)
        kept = [r for r in records if r.labels.get(domain_key) in values]
        super().__init__(kept, preprocess, **kwargs)
        self.domain_key, self.domain_values, self.source = domain_key, values, source
        self.domains = [values.index(r.labels[domain_key]) for r in self.records]
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

    def pool_of(self, r: int) -> Sequence[int]:
        return self.pools[self.domains[r]]

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
        return Plan(src, ref, *self._flips(item, epoch), labels={"src_dom": src_dom, "tgt_dom": tgt_dom})

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

