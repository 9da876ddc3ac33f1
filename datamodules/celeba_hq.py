"""CelebA-HQ (1024² faces) as a datamodule, in the CelebAMask-HQ form or StarGAN v2's folder form.

Layouts (``root`` = the folder named here, or its parent):

- CelebAMask-HQ: ``CelebAMask-HQ/CelebA-HQ-img/0.jpg … 29999.jpg``, ``CelebAMask-HQ-attribute-anno.txt``
  (line 1 ``30000``, line 2 the 40 CelebA names, rows ``0.jpg  -1 1 …``) and ``CelebA-HQ-to-CelebA-mapping.txt``
  (header ``idx orig_idx orig_file``, rows ``0 119613 119614.jpg``; orig_idx is 0-based). All 40 attributes.
- StarGAN v2: ``celeba_hq/{train,val}/{female,male}/<id>.jpg``. Gender only: the attribute ``Male``, domains
  ``female`` and ``male``.

Protocols (``data.protocol``; ``auto`` = ``spm`` for CelebAMask-HQ, ``stargan_v2`` for the folder form):

- ``spm`` — SPM's HR stage (Sec. 3.3) trains on CelebA-HQ at 256 or 512 px and gives no split; this uses the
  split of SPM's CelebA code [inferred]: the attribute rows shuffled by ``random.Random(1234)`` (as
  ``random.seed(1234); random.shuffle``), the first ``test_size`` = 2000 test, the rest train.
- ``official`` — CelebA's own partition of each image's original (through the mapping file): 0 train, 1 val,
  2 test. Needs CelebA's ``list_eval_partition.txt``: ``data.partition_file``, else
  ``<root>/list_eval_partition.txt``, ``<root>/Eval/list_eval_partition.txt``, else the CelebA copy at
  ``CELEBA_ROOT``.
- ``stargan_v2`` — the folders' own split (StarGAN v2 evaluates on val/): train/ trains, val/ is the test split.

Preprocessing: the images are square, so no crop (``crop: none``): resized to ``image_size`` (SPM: 256 or
512) with JPEG draft decoding, flipped in training. Decoding 1024² JPEGs dominates loading, so this is the
dataset for ``cache_dir``: with it, each image is decoded and resized once and read back as a small PNG/npy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamodules import celeba_layout
from datamodules.base import check_choice, check_positive_int
from datamodules.celeba import BRIDGE_ATTRIBUTES, HAIR_COLOURS, shuffled_rows
from datamodules.images import ImageRecord, plain_arg
from datamodules.layouts import malformed, read_annotation
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "CELEBA_HQ_ROOT"
IMAGES, ATTRIBUTES, MAPPING = "CelebA-HQ-img", "CelebAMask-HQ-attribute-anno.txt", "CelebA-HQ-to-CelebA-mapping.txt"
LAYOUT = (
    "CelebAMask-HQ's CelebA-HQ-img/0.jpg …, CelebAMask-HQ-attribute-anno.txt and CelebA-HQ-to-CelebA-mapping.txt, "
    "or StarGAN v2's celeba_hq/{train,val}/{female,male}/*.jpg"
)
VIEWS = ("two_domain", "multi_domain", "multi_attribute")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "none": {"crop": "full"},  # the 1024² image as it is
    "square": {"crop": "square"},
}
PROTOCOLS = ("spm", "official", "stargan_v2")
GENDERS = ("female", "male")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def find_form(root: Path) -> tuple[str, Path]:
    """("mask" | "stargan_v2", the folder holding that form) under ``root``."""
    for base in (root, root / "CelebAMask-HQ"):
        if (base / IMAGES).is_dir():
            return "mask", base
    for base in (root, root / "celeba_hq"):
        if (base / "train").is_dir() and any((base / "train" / g).is_dir() for g in GENDERS):
            return "stargan_v2", base
    raise DatasetError(
        f"data=celeba_hq: no CelebA-HQ under {root} (looked for {root / IMAGES}, {root / 'CelebAMask-HQ' / IMAGES}, "
        f"{root / 'train' / 'female'} and {root / 'celeba_hq' / 'train' / 'female'}); expected {LAYOUT}."
    )


def read_mapping(path: Path) -> dict[str, str]:
    """CelebA-HQ-to-CelebA-mapping.txt as HQ file name (``0.jpg``) → original CelebA file name."""
    lines = read_annotation("celeba_hq", path, LAYOUT)
    if not lines or lines[0].split() != ["idx", "orig_idx", "orig_file"]:
        raise malformed("celeba_hq", path, 1, "the header 'idx orig_idx orig_file'", lines[0] if lines else "")
    mapping = {}
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise malformed("celeba_hq", path, lineno, "an HQ index, a 0-based CelebA index and a CelebA file name", line)
        mapping[f"{parts[0]}.jpg"] = parts[2]
    return mapping


class CelebAHQDataModule(
    RecordsDataModule, dataset="celeba_hq", views=VIEWS, env_var=ENV_VAR, layout=LAYOUT, crops=NAMED_CROPS
):
    """CelebA-HQ.

    Args:
        view: two_domain | multi_domain | multi_attribute.
        root: the CelebAMask-HQ or celeba_hq folder, or its parent (default: ``CELEBA_HQ_ROOT``).
        protocol: auto | spm | official | stargan_v2 (see the module docstring).
        attribute: two_domain's attribute (domains not_<attribute>, <attribute>; the folder form: Male only,
            domains female, male).
        attributes: multi_attribute's names (default the bridge's 14, as for CelebA; the folder form: [Male])
            or multi_domain's mutually exclusive ones (default the hair colours).
        image_size, crop (null | none | square | side | box …), test_size, split_seed, partition_file, val_size,
        flip, draft, on_bad_image, cache_dir, cache_format, batch_size, num_workers, pin_memory, seed: as in
        :class:`datamodules.celeba.CelebADataModule`.
    """

    def __init__(
        self, protocol: str = "auto", attribute: str = "Smiling", attributes: Sequence[str] | None = None,
        image_size: int = 256, crop: Any = None, test_size: int = 2000, split_seed: int = 1234,
        partition_file: str | None = None, batch_size: int = 8, **common: Any
    ):
        super().__init__(image_size=image_size, batch_size=batch_size, **common)
        protocol = check_choice(self.name, "protocol", protocol, ("auto", *PROTOCOLS))
        self.test_size = check_positive_int("data.test_size", test_size)
        self.split_seed = int(split_seed)
        self.attribute = str(attribute)
        attributes = plain_arg(attributes)
        form, base = find_form(self.root)
        self.protocol = ("spm" if form == "mask" else "stargan_v2") if protocol == "auto" else protocol
        if (form == "stargan_v2") != (self.protocol == "stargan_v2"):
            raise DatasetError(
                f"data=celeba_hq: the protocol {self.protocol} needs the "
                f"{'StarGAN v2 folder form' if self.protocol == 'stargan_v2' else 'CelebAMask-HQ form'}, but {base} is in the "
                f"{'StarGAN v2 folder form' if form == 'stargan_v2' else 'CelebAMask-HQ form'}; set data.protocol=auto."
            )
        if form == "mask":
            self._read_mask_form(base, attributes, partition_file)
        else:
            self._read_folder_form(base, attributes)
        self.preprocess = self.make_preprocess("none" if crop is None else crop)
        self.details = {"layout": form, "protocol": self.protocol}
        self.finish()

    # -- CelebAMask-HQ
    def _read_mask_form(self, base: Path, attributes: list[str] | None, partition_file: str | None) -> None:
        if self.view == "multi_domain":
            self.attr_names = list(attributes or HAIR_COLOURS)
        elif self.view == "multi_attribute":
            self.attr_names = list(attributes or BRIDGE_ATTRIBUTES)
        needed = [self.attribute] if self.view == "two_domain" else self.attr_names
        table = celeba_layout.read_attributes(self.name, base / ATTRIBUTES, needed, LAYOUT)
        on_disk = celeba_layout.present(self.name, base / IMAGES, table.files, base / ATTRIBUTES, self.on_bad_image)
        if self.view == "two_domain":
            self.domain_factor, self.domain_names = self.attribute, [f"not_{self.attribute}", self.attribute]
            domains = [self.domain_names[v] for v in table.column(self.attribute).tolist()]
        elif self.view == "multi_domain":
            if len(self.attr_names) < 2:
                raise ConfigError(f"data.attributes: the multi_domain view needs at least 2 attributes, got {self.attr_names}.")
            self.domain_factor, self.domain_names = "attributes", list(self.attr_names)
            cols = [table.column(a) for a in self.attr_names]
            domains = []
            for row in range(len(table.files)):
                on = [a for a, c in zip(self.attr_names, cols) if c[row]]
                domains.append(on[0] if len(on) == 1 else None)
        else:
            domains = [""] * len(table.files)
        columns = [table.selected.index(a) for a in self.attr_names]

        def record(row: int) -> ImageRecord:
            labels: dict[str, Any] = {"domain": domains[row]}
            if self.view == "multi_attribute":
                labels.update(zip(self.attr_names, table.values[row, columns].tolist()))
            return ImageRecord(base / IMAGES / table.files[row], labels)

        assign: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        if self.protocol == "spm":
            order = shuffled_rows(len(table.files), self.split_seed)
            assign["test"], assign["train"] = order[: self.test_size], order[self.test_size :]
            self.split_rule = (
                f"the first {self.test_size} of the {len(table.files)} rows shuffled with seed {self.split_seed} are the "
                "test split (data.test_size)"
            )
        else:
            mapping = read_mapping(base / MAPPING)
            partition_path = self._partition_path(base, partition_file)
            partition = celeba_layout.read_partition(self.name, partition_path)
            for row, f in enumerate(table.files):
                original = mapping.get(f)
                if original is None:
                    raise DatasetError(f"data=celeba_hq: {base / MAPPING} does not map {f}, which {base / ATTRIBUTES} lists.")
                if original not in partition:
                    raise DatasetError(f"data=celeba_hq: {partition_path} gives no split for {original} (the original of {f}).")
                assign[partition[original]].append(row)
            self.split_rule = f"CelebA's partition ({partition_path}) of each image's original"
        self.records = {
            s: [record(r) for r in rows if on_disk[r] and domains[r] is not None] for s, rows in assign.items()
        }

    def _partition_path(self, base: Path, partition_file: str | None) -> Path:
        if partition_file:
            return Path(partition_file).expanduser()
        tried = [base / "list_eval_partition.txt", base / "Eval" / "list_eval_partition.txt"]
        if os.environ.get("CELEBA_ROOT"):
            celeba = Path(os.environ["CELEBA_ROOT"]).expanduser()
            tried += [celeba / form[3] for form in celeba_layout.FORMS]
        for path in tried:
            if path.is_file():
                return path
        raise DatasetError(
            f"data=celeba_hq: the official protocol needs CelebA's list_eval_partition.txt, which is not at "
            f"{', '.join(map(str, tried))}; set data.partition_file=<file> or CELEBA_ROOT."
        )

    # -- StarGAN v2 folders
    def _read_folder_form(self, base: Path, attributes: list[str] | None) -> None:
        where = "in the StarGAN v2 form (female/male folders)"
        if self.view == "two_domain" and self.attribute != "Male":
            raise DatasetError(f"data=celeba_hq {where} has no attribute {self.attribute!r}; valid choices are Male.")
        names = list(attributes or ["Male"])
        unknown = [a for a in names if a != "Male"]
        if self.view != "two_domain" and unknown:
            raise DatasetError(f"data=celeba_hq {where} has no attribute {unknown[0]!r}; valid choices are Male.")
        self.attr_names = ["Male"] if self.view == "multi_attribute" else []
        self.domain_factor, self.domain_names = "Male", list(GENDERS)
        self.records = {"train": [], "val": [], "test": []}
        for folder, split in (("train", "train"), ("val", "test")):
            for gender in GENDERS:
                d = base / folder / gender
                files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if d.is_dir() else []
                self.records[split] += [ImageRecord(p, {"domain": gender, "Male": int(gender == "male")}) for p in files]
        self.split_rule = f"StarGAN v2's folders: {base / 'train'} trains, {base / 'val'} is the test split"
