"""BU-3DFE's 2D textures as a datamodule: neutral ↔ expression pairs with ground truth, or identity/expression/
intensity factors.

Layout (``root`` = the folder of subject folders; default ``BU3DFE_ROOT``)::

    F0001/F0001_AN01WH_F2D.bmp      subject F0001–F0056 / M0001–M0044, expression code AN DI FE HA SA SU with
    F0001/F0001_NE00WH_F2D.bmp      intensity 01–04 or neutral NE00, race code (WH, BL, AE, AM, IN, LA …: any
    F0001/F0001_AN01WH_F3D.wrl …    two capitals); _F3D.wrl/_F3D.bnd beside are ignored

Every subject shows every expression, so the domain views are paired: each item carries ``gt``, the same
subject's image in the target domain (at the source's intensity when the target has it, else the strongest),
flipped as the source — PSNR/MSE against it in evaluation compare with the person's real expression.

Protocols (``data.protocol``; ``auto`` = ``aggan`` for the domain views, ``disent`` for multi_factor):

- ``aggan`` — AGGAN (Sec. 4): "the images with smile and neutral expressions": neutral (NE00) ↔ happy, paired by
  subject, rescaled to 256 (the experiment's image_size) with left-right flips. The paper names neither the
  happy intensity nor a split; this uses the strongest smile, HA04 [inferred], and the disent protocol's 10
  test subjects [inferred].
- ``disent`` — the disentanglement paper (Sec. IV-A) and its ``scripts/prepare_BU.py``: all 7 expressions with
  every intensity; the test split is 10 subjects drawn by ``np.random.RandomState(1234).permutation`` over the
  sorted subject folders (reproduced exactly); ``-shave 2x2 … -resize 128x128``: 2 px cut from every border
  (the yellow frame), the rest resized to 128 (``shave: 2``); factors identity, expression, intensity. The script
  keeps neutral (NE00) too, 25 textures a subject, 2250 train images; the paper's count, 2160 = 90 × 24, leaves
  it out — ``expressions`` without neutral gives that.

Validation is a fixed, evenly spread subset of ``val_size`` test items.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.base import check_choice, check_choices, check_positive_int
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "BU3DFE_ROOT"
# prepare_BU.py's order of the codes (its expression index)
EXPRESSION_CODES = {
    "AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprise",
}
EXPRESSIONS = tuple(EXPRESSION_CODES.values())
CODE_OF = {v: k for k, v in EXPRESSION_CODES.items()}
SUBJECT = re.compile(r"^[FM]\d{4}$")
NAME = re.compile(r"^(?P<subject>[FM]\d{4})_(?P<code>[A-Z]{2})(?P<intensity>\d{2})(?P<race>[A-Z]{2})_F2D\.bmp$", re.IGNORECASE)
LAYOUT = (
    "BU-3DFE's subject folders F0001 … F0056, M0001 … M0044 holding <subject>_<expression code><intensity><race>_F2D.bmp "
    "(e.g. F0001/F0001_AN01WH_F2D.bmp, F0001/F0001_NE00WH_F2D.bmp)"
)
FACTORS = ("identity", "expression", "intensity", "gender", "race")
VIEWS = ("two_domain", "multi_domain", "multi_factor")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "none": {"crop": "full"},  # the whole (square, 512²) texture
    "center": {"crop": "square"},
}
PROTOCOLS: dict[str, dict[str, Any]] = {
    "aggan": {"expressions": ["neutral", "happy"], "intensities": [4], "crop": "none", "shave": 0,
              "factors": ["identity", "expression", "intensity"]},
    # prepare_BU.py: -shave 2x2 (the yellow border), then -resize 128x128
    "disent": {"expressions": list(EXPRESSIONS), "intensities": [1, 2, 3, 4], "crop": "none", "shave": 2,
               "factors": ["identity", "expression", "intensity"]},
}
AUTO_PROTOCOL = {"two_domain": "aggan", "multi_domain": "aggan", "multi_factor": "disent"}


def random_subjects(subjects: Sequence[str], count: int, seed: int) -> list[str]:
    """prepare_BU.py's test subjects: ``np.random.RandomState(seed).permutation(len(subjects))[:count]`` of the
    sorted subject folders."""
    ordered = sorted(subjects)
    return sorted(ordered[i] for i in np.random.RandomState(seed).permutation(len(ordered))[:count])


def scan(root: Path) -> tuple[list[str], list[ImageRecord]]:
    """Every subject folder and the 2D textures inside as records (labels identity, expression, intensity,
    gender, race); a DatasetError for an unknown expression code or when there is nothing to read."""
    with os.scandir(root) as it:
        subjects = sorted(e.name for e in it if e.is_dir() and SUBJECT.match(e.name))
    if not subjects:
        raise DatasetError(f"data=bu3dfe: no subject folders (F0001 …, M0001 …) in {root}; expected {LAYOUT}.")
    records = []
    for subject in subjects:
        for name in sorted(os.listdir(root / subject)):
            m = NAME.match(name)
            if not m:
                continue
            code = m["code"].upper()
            if code not in EXPRESSION_CODES:
                raise DatasetError(
                    f"data=bu3dfe: {root / subject / name} has the expression code {code}; valid codes are "
                    f"{', '.join(f'{c} ({n})' for c, n in EXPRESSION_CODES.items())}."
                )
            labels = {
                "identity": subject,
                "expression": EXPRESSION_CODES[code],
                "intensity": int(m["intensity"]),
                "gender": "female" if subject[0] == "F" else "male",
                "race": m["race"].upper(),
            }
            records.append(ImageRecord(root / subject / name, labels))
    if not records:
        raise DatasetError(f"data=bu3dfe: the subject folders in {root} hold no *_F2D.bmp textures; expected {LAYOUT}.")
    return subjects, records


class BU3DFEDataModule(
    RecordsDataModule, dataset="bu3dfe", views=VIEWS, env_var=ENV_VAR, layout=LAYOUT, crops=NAMED_CROPS
):
    """BU-3DFE.

    Args:
        view: two_domain | multi_domain | multi_factor.
        root: the folder of subject folders (default: ``BU3DFE_ROOT``).
        protocol: auto | aggan | disent (see the module docstring; settings left null take its values).
        expressions: the expressions kept — angry, disgust, fear, happy, neutral, sad, surprise (the domains
            of the domain views in this order, the values of the expression factor).
        intensities: the intensities 1–4 kept for the non-neutral expressions (neutral is intensity 0).
        factors: multi_factor's factors (identity, expression, intensity; also gender, race).
        test_subjects: the number of subjects drawn for the test split with ``split_seed``, or their names.
        split_seed: the seed of that draw (1234).
        shave: pixels cut from every border before resizing (null: the protocol's; disent 2, aggan 0).
        image_size, crop (null = none | center | side | box …), val_size, flip, draft, on_bad_image,
        cache_dir, cache_format, batch_size, num_workers, pin_memory, seed, view, root,
        direction: see :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(
        self, protocol: str = "auto", expressions: Sequence[str] | None = None,
        intensities: Sequence[int] | None = None, factors: Sequence[str] | None = None,
        test_subjects: int | Sequence[str] = 10, split_seed: int = 1234, image_size: int = 128,
        crop: Any = None, shave: int | None = None, **common: Any
    ):
        super().__init__(image_size=image_size, **common)
        protocol = check_choice(self.name, "protocol", protocol, ("auto", *PROTOCOLS))
        self.protocol = AUTO_PROTOCOL[self.view] if protocol == "auto" else protocol
        p = PROTOCOLS[self.protocol]
        chosen = check_choices(self.name, "expression", list(plain_arg(expressions) or p["expressions"]), EXPRESSIONS)
        if self.view == "two_domain" and len(chosen) != 2:
            raise ConfigError(f"data.expressions: the two_domain view needs exactly 2 expressions, got {chosen}.")
        if self.view == "multi_domain" and len(chosen) < 2:
            raise ConfigError(f"data.expressions: the multi_domain view needs at least 2 expressions, got {chosen}.")
        self.expressions = chosen
        self.intensities = check_choices(
            self.name, "intensity", [int(i) for i in plain_arg(intensities) or p["intensities"]], (1, 2, 3, 4)
        )
        self.factor_names = check_choices(self.name, "factor", list(plain_arg(factors) or p["factors"]), FACTORS)
        self.split_seed = int(split_seed)
        test_subjects = plain_arg(test_subjects)

        subjects, found = scan(self.root)
        kept = [
            r for r in found
            if r.labels["expression"] in chosen
            and (r.labels["expression"] == "neutral" or r.labels["intensity"] in self.intensities)
        ]
        if not kept:
            raise DatasetError(
                f"data=bu3dfe: no textures of the expressions {', '.join(chosen)} at intensities {self.intensities} in {self.root}."
            )
        if isinstance(test_subjects, int):
            check_positive_int("data.test_subjects", test_subjects)
            self.heldout = random_subjects(subjects, test_subjects, self.split_seed)
            rule = f"{test_subjects} subjects drawn with seed {self.split_seed}"
        else:
            self.heldout = check_choices(self.name, "subject", [str(s) for s in test_subjects], subjects)
            rule = "the listed subjects"
        self.split_rule = f"{rule} ({', '.join(self.heldout)}) are the test split, the other ones train (data.test_subjects)"
        held = set(self.heldout)
        self.records = {"train": [], "val": [], "test": []}
        for r in kept:
            labels = {**r.labels, "domain": r.labels["expression"]}
            self.records["test" if r.labels["identity"] in held else "train"].append(ImageRecord(r.path, labels))
        self.factor_values = {
            "identity": sorted({r.labels["identity"] for r in kept}),
            "expression": list(chosen),
            "intensity": sorted({r.labels["intensity"] for r in kept}),
            "gender": ["female", "male"],
            "race": sorted({r.labels["race"] for r in kept}),
        }
        self.train_classes("identity", "race")  # per-subject classes from the train split (90 identities)
        self.domain_factor, self.domain_names = "expression", list(chosen)
        self.pair_key, self.pair_rank = "identity", "intensity"
        pre = self.make_preprocess(p["crop"] if crop is None else crop)
        self.preprocess = dataclasses.replace(pre, shave=p["shave"] if shave is None else shave)
        self.details = {"layout": "subject folders", "protocol": self.protocol, "intensities": self.intensities}
        self.finish()
