"""CMU Multi-PIE as a datamodule: identity/expression/illumination factors, or expressions as domains.

Layout: Multi-PIE's ``data/session0{1-4}/multiview/{subject}/{recording}/{camera}/*.png`` tree (see
:mod:`datamodules.multipie_layout`); the root comes from ``data.root`` or ``MULTIPIE_ROOT``. The expression of
an image follows from its (session, recording).

Protocol ``disent`` (the disentanglement paper, Sec. IV-A, and its released ``scripts/prepare_multi.py``):
the frontal camera ``05_1``; expressions neutral, scream, squint, surprise; all illuminations; the test split is
the first 10 subjects (identity classes: the training subjects only, ``train_classes``) (the script's ``test_ids = ['000' … '009']`` index its natsorted subject folders, i.e.
the 10 lowest subject numbers); factors identity, expression, illumination. Preprocessing: ImageMagick's
``-gravity North -crop 220x220+0+0 -resize 128x128`` — a 220×220 crop centred horizontally at the top edge of
the 640×480 frame, box (210, 0, 430, 220), resized to 128 (``crop: disent``). No flips by default
(``flip: false``): mirroring moves the flash, so the illumination label would be wrong.

Views: ``multi_factor`` (the protocol's), ``multi_domain`` (the protocol's expressions), ``two_domain``
(default neutral → smile). Validation is a fixed, evenly spread subset of ``val_size`` test items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datamodules import multipie_layout as layout
from datamodules.base import check_choice, check_choices, check_positive_int
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "MULTIPIE_ROOT"
FACTORS = ("identity", "expression", "illumination", "session", "camera")
VIEWS = ("multi_factor", "multi_domain", "two_domain")
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "disent": {"crop": 220, "anchor": "top"},  # prepare_multi.py: -gravity North -crop 220x220+0+0
    "center": {"crop": "square"},  # the largest centred square (480×480 of the 640×480 frame)
    "none": {"crop": "full"},
}
PROTOCOLS: dict[str, dict[str, Any]] = {
    "disent": {
        "cameras": [layout.FRONTAL],
        "expressions": ["neutral", "scream", "squint", "surprise"],
        "illuminations": None,  # all
        "test_subjects": 10,
        "crop": "disent",
        "factors": ["identity", "expression", "illumination"],
    },
}
TWO_DOMAIN_DEFAULT = ("neutral", "smile")


def first_subjects(subjects: Sequence[Any], test_subjects: int | Sequence[Any]) -> list:
    """The held-out subjects: the ``test_subjects`` lowest of ``subjects`` (an int), or the listed ones."""
    if isinstance(test_subjects, int):
        return sorted(subjects)[:test_subjects]
    return sorted(test_subjects)


class MultiPIEDataModule(
    RecordsDataModule, dataset="multipie", views=VIEWS, env_var=ENV_VAR, layout=layout.LAYOUT, crops=NAMED_CROPS
):
    """Multi-PIE.

    Args:
        view: multi_factor | multi_domain | two_domain.
        root: the folder holding ``data/`` (default: ``MULTIPIE_ROOT``).
        protocol: disent (the settings below left null take its values).
        cameras: cameras to keep (disent: [05_1]).
        expressions: the expressions kept (the domains of the domain views, the values of the expression factor);
            disent: neutral, scream, squint, surprise; two_domain default: neutral, smile.
        illuminations: flash numbers to keep (null: all).
        factors: multi_factor's factors (disent: identity, expression, illumination; also session, camera).
        test_subjects: the number of lowest-numbered subjects held out as the test split, or their numbers.
        image_size, crop (null | disent | center | none | side | box …), val_size, flip, draft, on_bad_image,
        cache_dir, cache_format, batch_size, num_workers, pin_memory, seed, view, root,
        direction: see :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(
        self, protocol: str = "disent", cameras: Sequence[str] | None = None,
        expressions: Sequence[str] | None = None, illuminations: Sequence[int] | None = None,
        factors: Sequence[str] | None = None, test_subjects: int | Sequence[int] | None = None,
        image_size: int = 128, crop: Any = None, flip: bool = False, **common: Any
    ):
        super().__init__(image_size=image_size, flip=flip, **common)
        self.protocol = check_choice(self.name, "protocol", protocol, tuple(PROTOCOLS))
        p = PROTOCOLS[self.protocol]
        self.cameras = check_choices(self.name, "camera", [str(c) for c in plain_arg(cameras) or p["cameras"]], layout.CAMERAS)
        if expressions is None:
            expressions = TWO_DOMAIN_DEFAULT if self.view == "two_domain" else p["expressions"]
        self.expressions = check_choices(self.name, "expression", list(plain_arg(expressions)), layout.EXPRESSIONS)
        if self.view == "two_domain" and len(self.expressions) != 2:
            raise ConfigError(f"data.expressions: the two_domain view needs exactly 2 expressions, got {self.expressions}.")
        if self.view == "multi_domain" and len(self.expressions) < 2:
            raise ConfigError(f"data.expressions: the multi_domain view needs at least 2 expressions, got {self.expressions}.")
        illuminations = plain_arg(illuminations) if illuminations is not None else p["illuminations"]
        self.illuminations = sorted(int(i) for i in illuminations) if illuminations is not None else None
        self.factor_names = check_choices(self.name, "factor", list(plain_arg(factors) or p["factors"]), FACTORS)
        test_subjects = plain_arg(test_subjects) if test_subjects is not None else p["test_subjects"]
        if isinstance(test_subjects, int):
            check_positive_int("data.test_subjects", test_subjects)
        else:
            test_subjects = [int(s) for s in test_subjects]

        found = layout.scan(self.root, tuple(self.cameras))
        kept = [
            r for r in found
            if r.expression in self.expressions and (self.illuminations is None or r.illumination in self.illuminations)
        ]
        if not kept:
            raise DatasetError(
                f"data=multipie: no images of the expressions {', '.join(self.expressions)} (cameras {', '.join(self.cameras)}, "
                f"illuminations {self.illuminations or 'all'}) under {self.root}."
            )
        subjects = sorted({r.subject for r in kept})
        self.heldout = first_subjects(subjects, test_subjects)
        held = set(self.heldout)
        self.split_rule = (
            f"subjects {self.heldout} are the test split, the other ones of {len(subjects)} train (data.test_subjects)"
        )
        self.records = {"train": [], "val": [], "test": []}
        for r in kept:
            self.records["test" if r.subject in held else "train"].append(_record(r))
        self.factor_values = {
            "identity": subjects,
            "expression": list(self.expressions),
            "illumination": sorted({r.illumination for r in kept}),
            "session": sorted({r.session for r in kept}),
            "camera": list(self.cameras),
        }
        self.train_classes("identity")  # C_id's classes: the training subjects (147 in Sec. IV-B2), not the held-out 10
        self.domain_factor, self.domain_names = "expression", list(self.expressions)
        self.preprocess = self.make_preprocess(p["crop"] if crop is None else crop)
        self.details = {"layout": "multiview", "protocol": self.protocol, "cameras": self.cameras}
        self.finish()


def _record(r: layout.MultiPIERecord) -> ImageRecord:
    return ImageRecord(
        r.path,
        {
            "domain": r.expression,
            "identity": r.subject,
            "expression": r.expression,
            "illumination": r.illumination,
            "session": r.session,
            "camera": r.camera,
        },
    )
