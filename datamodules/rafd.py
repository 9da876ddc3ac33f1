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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamodules import rafd_layout as layout
from datamodules.base import check_choices
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "RAFD_ROOT"
DEFAULT_TEST_MODELS = (1, 2, 3, 4, 5, 7, 8, 64)
FACTORS = ("identity", "expression", "gaze", "angle", "gender", "ethnicity")
DEFAULT_FACTORS = ("identity", "expression", "gaze")
TWO_DOMAIN_DEFAULT = ("neutral", "happy")
# named crops (Preprocess arguments)
VIEWS = ("two_domain", "multi_domain", "multi_factor")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "center": {"crop": "square"},  # the largest centred square
    "disent": {"crop": 640, "shift": (0, -128)},  # disentanglement protocol: centre crop 640 shifted up 128 px
    "none": {"crop": "full"},  # the whole frame, squeezed to a square
}
FLIP_SWAP = {"gaze": {"left": "right", "right": "left"}}


def _angle(value: Any) -> str:
    try:
        return f"{int(value):03d}"
    except (TypeError, ValueError):
        return str(value)


class RaFDDataModule(
    RecordsDataModule, dataset="rafd", views=VIEWS, env_var=ENV_VAR, layout=layout.LAYOUT, crops=NAMED_CROPS
):
    """RaFD in the official flat layout or StarGAN's pre-split one.

    Args:
        view: two_domain | multi_domain | multi_factor.
        root: the folder holding the images (default: the ``RAFD_ROOT`` environment variable).
        angles: camera angles to keep (``["090"]`` frontal; ``null`` all five).
        domains: expressions to use (two_domain default neutral, happy; otherwise default all 8); unknown
            names are refused with the list of valid ones.
        factors: multi_factor labels (default identity, expression, gaze; also angle, gender, ethnicity).
        test_models: model numbers forming the test split (official layout only).
        image_size: output side (square).
        crop: center | disent | none, a side, [w, h], [left, top, right, bottom] or {size, shift, box, anchor, shave}.
        direction, val_size, flip (gaze labels follow), draft (about 3× faster on RaFD's 681×1024 photographs),
        on_bad_image, cache_dir, cache_format, batch_size, num_workers, pin_memory, seed: see
        :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(
        self, angles: Sequence[str] | None = ("090",), domains: Sequence[str] | None = None,
        factors: Sequence[str] | None = None, test_models: Sequence[int] | None = DEFAULT_TEST_MODELS,
        image_size: int = 128, crop: Any = "center", **common: Any
    ):
        super().__init__(image_size=image_size, **common)
        self.preprocess = self.make_preprocess("none" if crop is None else crop)
        angles = plain_arg(angles)
        if angles is not None:
            angles = [angles] if isinstance(angles, str | int) else angles
            angles = check_choices(self.name, "angle", [_angle(a) for a in angles], layout.ANGLES)
        self.angles = angles
        self.test_models = sorted(int(m) for m in (plain_arg(test_models) or []))

        # expressions: the domains of the domain views, the expression values of multi_factor
        if domains is None:
            chosen = list(TWO_DOMAIN_DEFAULT if self.view == "two_domain" else layout.EXPRESSIONS)
        else:
            chosen = check_choices(self.name, "expression", list(plain_arg(domains)), layout.EXPRESSIONS)
        need = {"two_domain": "exactly 2", "multi_domain": "at least 2", "multi_factor": "at least 1"}[self.view]
        if len(chosen) < int(need[-1]) or (self.view == "two_domain" and len(chosen) != 2):
            raise ConfigError(f"data.domains: the {self.view} view needs {need} expressions, got {chosen}.")
        self.expressions = chosen
        self.factor_names = check_choices(self.name, "factor", list(plain_arg(factors) or DEFAULT_FACTORS), FACTORS)

        # the files: a missing root or layout fails here (RaFD's own sentences), before any training
        found = layout.scan(self.root, ENV_VAR)
        form = "stargan" if found[0].split is not None else "official"
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
        for r in kept:
            in_test = r.split == "test" if form == "stargan" else r.model in self.test_models
            self.records["test" if in_test else "train"].append(_record(r))
        self._check_splits(form)
        self.factor_values = {
            "identity": sorted({r.model for r in kept}),
            "expression": list(self.expressions),
            "gaze": list(layout.GAZES),
            "angle": list(self.angles or layout.ANGLES),
            "gender": ["female", "male"],
            "ethnicity": sorted({r.ethnicity for r in kept}),
        }
        self.train_classes("identity", "ethnicity")  # per-subject classes from the train split (59 identities)
        self.domain_factor, self.domain_names, self.domain_key = "expression", list(self.expressions), "expression"
        self.flip_swap = FLIP_SWAP
        self.heldout = sorted({r.labels["identity"] for r in self.records["test"]} - {-1})
        if self.view != "multi_factor" and all(r.model >= 0 for r in kept):
            # paired ground truth for evaluation (AGGAN Table I's protocol): the same model, camera and gaze with the
            # target expression; training batches stay unpaired, so training reads no extra image
            self.pair_key, self.pair_splits = "shot", ("val", "test")
        self.details = {"layout": form, "angles": self.angles}
        self.fingerprint_extra = {"test_models": self.test_models}
        self.finish()

    def resolve_root(self, root: str | os.PathLike | None) -> Path | None:
        """``root`` or ``RAFD_ROOT`` as a path, unchecked: :func:`datamodules.rafd_layout.scan` names what is wrong."""
        root = root or os.environ.get(ENV_VAR) or None
        return Path(root).expanduser() if root else None

    def _check_splits(self, form: str) -> None:
        """RaFD's own sentences for an empty split (they name the angles, expressions and test models)."""
        where = f"RaFD at {self.root} (angles {self.angles or 'any'}, expressions {', '.join(self.expressions)})"
        if not self.records["test"]:
            if form == "stargan":
                raise DatasetError(f"data=rafd: the test split is empty: {where} has no test/<expression>/ images.")
            raise DatasetError(
                f"data=rafd: the test split is empty: none of the test_models {self.test_models} has images in {where}."
            )
        if not self.records["train"]:
            if form == "stargan":
                raise DatasetError(f"data=rafd: the train split is empty: {where} has no train/<expression>/ images.")
            raise DatasetError(
                f"data=rafd: the train split is empty: every model with images in {where} is one of the test_models "
                f"{self.test_models}."
            )


def _record(r: layout.RaFDRecord) -> ImageRecord:
    """The record of one RaFD file: its labels are the file name's fields (the model number as identity)."""
    labels = {"identity": r.model, "expression": r.expression, "gaze": r.gaze, "angle": r.angle}
    shot = f"{r.model}/{r.angle}/{r.gaze}"  # one sitting of one model: what stays fixed across the 8 expressions
    return ImageRecord(r.path, {**labels, "gender": r.gender, "ethnicity": r.ethnicity, "shot": shot})
