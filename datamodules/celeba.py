"""CelebA as a datamodule: one attribute as two domains, exclusive attributes as domains, or attribute vectors.

Layout: CelebA's release (``Img/img_align_celeba/``, ``Anno/list_attr_celeba.txt``, ``Eval/list_eval_partition.txt``)
or torchvision's flat ``celeba/`` folder — see :mod:`datamodules.celeba_layout`. The root comes from
``data.root`` or the ``CELEBA_ROOT`` environment variable.

Views:
- ``two_domain``: ``attribute: Smiling`` gives the domains ``not_Smiling`` (0) and ``Smiling`` (1);
  ``direction: a2b`` translates not_x → x, ``b2a`` x → not_x.
- ``multi_domain`` (StarGAN-style, optional): ``attributes`` names mutually exclusive attributes (default the
  hair colours Black_Hair, Blond_Hair, Brown_Hair, StarGAN's); each is a domain, and an image belongs to the
  one it has when it has exactly one of them (others are left out).
- ``multi_attribute``: ``attrs`` = the ``attributes`` (default the bridge's 14) as a 0/1 vector.

Protocols (``data.protocol``; ``auto`` = ``spm`` for the domain views, ``bridge`` for multi_attribute):

- ``spm`` — SPM's released code (StarGAN's CelebA loader, ``data_loader.py``): the rows of
  ``list_attr_celeba.txt`` shuffled by Python's ``random.seed(1234); random.shuffle(lines)`` (reproduced
  exactly: the permutation depends only on the seed and the row count), the first ``test_size`` = 2000 rows
  are the test split, the rest train. Preprocessing: random horizontal flip (train), ``CenterCrop(178)``,
  ``Resize(128)``. (StarGAN's test condition ``(i+1) < 2000`` keeps 1999 rows; set ``test_size: 1999`` to
  match that file bit for bit.)
- ``aggan`` — AGGAN (Sec. 4, Datasets): "we randomly select 1,000 neutral images and 1,000 smile images as
  training data, and another 1,000 neutral and 1,000 smile images as testing data": rows shuffled with
  ``random.Random(split_seed)`` [the seed is inferred: the paper gives none], the first ``per_domain`` images
  of each domain train, the next ``per_domain`` test. AGGAN gives no crop; the StarGAN ``CenterCrop(178)`` is
  used [inferred], images rescaled to 256 (the experiment's image_size), flipped in training.
- ``bridge`` — the label/reference bridge as its authors split CelebA (``data_noise_in.py`` ``Celeba``, the
  AttGAN/STGAN loader lineage): the rows of ``list_attr_celeba.txt`` in file order, the first 182,000 train,
  the next 637 val, the rest (19,962) test (``data.bridge_rows`` = [182000, 182637]); the 14 attributes Young,
  Mouth_Slightly_Open, Smiling, Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair, Receding_Hairline, Bangs, Male,
  No_Beard, Mustache, Goatee, Sideburns; the crop of STGAN's ``data.py`` (``offset_h, offset_w = 26, 3``;
  170×170) — the box (left 3, top 26, right 173, bottom 196) of the 178×218 image — resized to 128.
  ``bridge_official``: the same crop on the official partition (162,770 train; the suite's earlier choice).
- ``official`` — the official partition with the ``CenterCrop(178)`` crop.

Validation is the official val partition (official), the bridge's rows, or a fixed, evenly spread subset of the test split
(spm/aggan), ``val_size`` items either way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from datamodules import celeba_layout as layout
from datamodules.base import check_choice, check_positive_int
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "CELEBA_ROOT"
BRIDGE_ATTRIBUTES = (
    "Young", "Mouth_Slightly_Open", "Smiling", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
    "Receding_Hairline", "Bangs", "Male", "No_Beard", "Mustache", "Goatee", "Sideburns",
)
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair")
# named crops (Preprocess arguments) for the 178×218 aligned images
VIEWS = ("two_domain", "multi_domain", "multi_attribute")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "center": {"crop": 178},  # StarGAN/SPM: transforms.CenterCrop(178) → the box (0, 20, 178, 198)
    "bridge": {"box": (3, 26, 173, 196)},  # STGAN/AttGAN: 170×170 at offset_h 26, offset_w 3
    "none": {"crop": "full"},  # the whole 178×218 frame, squeezed to a square
}
PROTOCOLS: dict[str, dict[str, str]] = {
    "spm": {"split": "shuffle", "crop": "center"},
    "aggan": {"split": "per_domain", "crop": "center"},
    "bridge": {"split": "rows", "crop": "bridge"},
    "bridge_official": {"split": "official", "crop": "bridge"},
    "official": {"split": "official", "crop": "center"},
}
AUTO_PROTOCOL = {"two_domain": "spm", "multi_domain": "spm", "multi_attribute": "bridge"}


def shuffled_rows(n: int, seed: int) -> list[int]:
    """``range(n)`` in the order Python's ``random.seed(seed); random.shuffle(rows)`` leaves a list of n rows."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


class CelebADataModule(
    RecordsDataModule, dataset="celeba", views=VIEWS, env_var=ENV_VAR, layout=layout.LAYOUT, crops=NAMED_CROPS
):
    """CelebA (aligned 178×218 images, 40 binary attributes).

    Args:
        view: two_domain | multi_domain | multi_attribute.
        root: the CelebA folder (default: the ``CELEBA_ROOT`` environment variable).
        protocol: auto | spm | aggan | bridge | bridge_official | official (see the module docstring).
        attribute: two_domain's attribute (domains ``not_<attribute>``, ``<attribute>``); also the domains of
            the aggan protocol's per-domain selection in every view.
        attributes: multi_attribute's names (default the bridge's 14) or multi_domain's mutually exclusive
            ones (default Black_Hair, Blond_Hair, Brown_Hair); unknown names are refused with the valid ones.
        image_size: output side.
        crop: null (the protocol's) | center | bridge | none | a side | [w, h] | [left, top, right, bottom] |
            {size, shift, box, anchor, shave}.
        test_size: spm: the first ``test_size`` shuffled rows are the test split.
        per_domain: aggan: images of each domain in train, and as many again in test.
        split_seed: the seed of the spm/aggan shuffles (1234).
        bridge_rows: bridge: [first val row, first test row] of the file-order split (182000, 182637).
        val_size: validation items.
        flip, draft, on_bad_image, cache_dir, cache_format, view, root, direction: see :class:`datamodules.records.RecordsDataModule`.
        batch_size, num_workers, pin_memory, seed: loader settings.
    """

    def __init__(
        self, protocol: str = "auto", attribute: str = "Smiling", attributes: Sequence[str] | None = None,
        image_size: int = 128, crop: Any = None, test_size: int = 2000, per_domain: int = 1000,
        split_seed: int = 1234, bridge_rows: Sequence[int] = (182000, 182637), **common: Any
    ):
        super().__init__(image_size=image_size, **common)
        protocol = check_choice(self.name, "protocol", protocol, ("auto", *PROTOCOLS))
        self.protocol = AUTO_PROTOCOL[self.view] if protocol == "auto" else protocol
        self.test_size = check_positive_int("data.test_size", test_size)
        self.per_domain = check_positive_int("data.per_domain", per_domain)
        self.split_seed = int(split_seed)
        self.bridge_rows = [int(r) for r in plain_arg(bridge_rows)]
        if len(self.bridge_rows) != 2 or not 0 < self.bridge_rows[0] <= self.bridge_rows[1]:
            raise ConfigError(f"data.bridge_rows must be [first val row, first test row], increasing, got {self.bridge_rows}.")
        self.attribute = str(attribute)
        attributes = plain_arg(attributes)
        if self.view == "multi_domain":
            self.attr_names = list(attributes or HAIR_COLOURS)
            if len(self.attr_names) < 2:
                raise ConfigError(f"data.attributes: the multi_domain view needs at least 2 attributes, got {self.attr_names}.")
        elif self.view == "multi_attribute":
            self.attr_names = list(attributes or BRIDGE_ATTRIBUTES)
        if len(set(self.attr_names)) != len(self.attr_names):
            raise ConfigError(f"data={self.name}: the attribute list {self.attr_names} repeats a name.")
        split = PROTOCOLS[self.protocol]["split"]
        needed = list(self.attr_names)
        if self.view == "two_domain" or split == "per_domain":
            needed = list(dict.fromkeys([*needed, self.attribute]))

        files = layout.locate(self.root, self.name)
        table = layout.read_attributes(self.name, files.attributes, needed)
        self._columns = [table.selected.index(a) for a in self.attr_names]
        on_disk = layout.present(self.name, files.images, table.files, files.attributes, self.on_bad_image)
        domains = self._domains(table)
        self.records = self._split(table, files, domains, on_disk, split)
        self.preprocess = self.make_preprocess(PROTOCOLS[self.protocol]["crop"] if crop is None else crop)
        self.details = {"layout": files.form, "protocol": self.protocol}
        if self.view == "two_domain":
            self.domain_factor, self.domain_names = self.attribute, [f"not_{self.attribute}", self.attribute]
        elif self.view == "multi_domain":
            self.domain_factor, self.domain_names = "attributes", list(self.attr_names)
        self.finish()

    # -- labels
    def _domains(self, table: layout.AttributeTable) -> list[str | None]:
        """The domain name of every row (None: in no domain of the view)."""
        if self.view == "multi_domain":
            values = np.stack([table.column(n) for n in self.attr_names], axis=1)
            only = values.sum(axis=1) == 1
            which = values.argmax(axis=1)
            return [self.attr_names[w] if o else None for o, w in zip(only.tolist(), which.tolist())]
        if self.attribute not in table.selected:  # multi_attribute outside the aggan protocol: no domains
            return [""] * len(table.files)
        names = (f"not_{self.attribute}", self.attribute)
        return [names[v] for v in table.column(self.attribute).tolist()]

    def _record(self, table: layout.AttributeTable, files: layout.CelebAFiles, row: int, domain: str | None) -> ImageRecord:
        labels: dict[str, Any] = {"domain": domain}
        if self.view == "multi_attribute":
            labels.update(zip(self.attr_names, table.values[row, self._columns].tolist()))
        return ImageRecord(files.images / table.files[row], labels)

    # -- splits
    def _split(
        self,
        table: layout.AttributeTable,
        files: layout.CelebAFiles,
        domains: list[str | None],
        on_disk: np.ndarray,
        split: str,
    ) -> dict[str, list[ImageRecord]]:
        n = len(table.files)
        assign: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        if split == "shuffle":
            order = shuffled_rows(n, self.split_seed)
            assign["test"], assign["train"] = order[: self.test_size], order[self.test_size :]
            self.split_rule = (
                f"the first {self.test_size} of the {n} rows shuffled with seed {self.split_seed} are the test split, "
                "the rest train (data.test_size)"
            )
        elif split == "official":
            partition = layout.read_partition(self.name, files.partition)
            for row, f in enumerate(table.files):
                if f not in partition:
                    raise DatasetError(
                        f"data={self.name}: {files.partition} gives no split for {f}, which {files.attributes} lists."
                    )
                assign[partition[f]].append(row)
            self.split_rule = f"the official partition of {files.partition}"
        elif split == "rows":
            val, test = self.bridge_rows
            assign["train"], assign["val"], assign["test"] = list(range(min(val, n))), list(range(val, min(test, n))), list(range(test, n))
            self.split_rule = f"rows [0, {val}) train, [{val}, {test}) val, the rest test, in file order (data.bridge_rows)"
        else:
            assign["train"], assign["test"] = self._per_domain(n, domains, on_disk)
            self.split_rule = f"{self.per_domain} images per domain for train and for test (data.per_domain)"
        return {
            s: [self._record(table, files, r, domains[r]) for r in rows if on_disk[r] and domains[r] is not None]
            for s, rows in assign.items()
        }

    def _per_domain(self, n: int, domains: list[str | None], on_disk: np.ndarray) -> tuple[list[int], list[int]]:
        """AGGAN: in a seeded shuffle, the first ``per_domain`` images of each domain train, the next test."""
        names = (f"not_{self.attribute}", self.attribute) if self.view != "multi_domain" else tuple(self.attr_names)
        taken: dict[str, list[int]] = {d: [] for d in names}
        for row in shuffled_rows(n, self.split_seed):
            d = domains[row]
            if on_disk[row] and d is not None and len(taken[d]) < 2 * self.per_domain:
                taken[d].append(row)
        short = {d: len(rows) for d, rows in taken.items() if len(rows) < 2 * self.per_domain}
        if short:
            d, have = next(iter(short.items()))
            raise DatasetError(
                f"data={self.name}: the aggan protocol needs 2 × {self.per_domain} {d} images (train and test), "
                f"but CelebA at {self.root} has {have}; lower data.per_domain."
            )
        train = sorted(r for rows in taken.values() for r in rows[: self.per_domain])
        test = sorted(r for rows in taken.values() for r in rows[self.per_domain :])
        return train, test
