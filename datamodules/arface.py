"""AR Face as a datamodule: the dataset of AGGAN's Table I (with BU-3DFE and CelebA) and of every Table II
ablation. AGGAN Sec. IV-A: "AR Face contains over 4,000 color images in which only 1,018 images have 4 different
facial expressions … We employ the images with the expression labels of smile and neutral".

Files (:mod:`datamodules.arface_layout`): ``M-001-01.raw`` / ``W-001-01.bmp`` … anywhere under the root; images
01–04 and 14–17 are neutral, smile, anger and scream of sessions 1 and 2, the rest (lights, glasses, scarf) is not
read.

Views: ``two_domain`` (default neutral → smile, the paper's task; ``direction: b2a`` reverses) and
``multi_domain`` (default all four expressions). Both are paired: every item carries ``gt``, the same person's
image in the target expression *from the same session* (the pair label ``sitting`` = person and session, e.g.
``M-001/s1``), flipped as the source, so evaluation's PSNR/MSE compare the translation with a real photograph of
it (AGGAN Table I). A source whose sitting lacks the target expression is left out of the items (a warning per
split; ``info["unpaired_sources"]`` counts them).

Split [inferred] (the paper gives none): by person, so no test face was seen in training. ``test_persons`` — a
fraction of the persons found (default 0.1), a count, or a list of names (``[M-001, W-012]``) — drawn as
``np.random.RandomState(split_seed).permutation`` of the sorted person names (``split_seed`` 1234); every image
of a test person is test, every other image trains. Validation is a fixed, evenly spread subset of ``val_size``
test items.

Crops [inferred] (the paper says only that images are rescaled to 256²): ``center`` (default) the largest
centred square, 576² of the 768×576 frame, where the face sits roughly centred; ``none`` the whole frame squeezed
to a square; or a side, ``[w, h]``, a box, a dict (see :func:`datamodules.images.make_preprocess`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from datamodules import arface_layout as layout
from datamodules.base import check_choices, check_positive_int
from datamodules.images import ImageRecord, plain_arg
from datamodules.records import RecordsDataModule
from suite.errors import ConfigError, DatasetError

ENV_VAR = "ARFACE_ROOT"
VIEWS = ("two_domain", "multi_domain")
TWO_DOMAIN_DEFAULT = ("neutral", "smile")  # AGGAN's AR Face task
NAMED_CROPS: dict[str, dict[str, Any]] = {
    "center": {"crop": "square"},  # [inferred] the largest centred square: 576² of 768×576
    "none": {"crop": "full"},  # the whole frame, squeezed to a square
}


def draw_test_persons(persons: Sequence[str], test: Any, seed: int) -> tuple[list[str], str]:
    """The test persons and the rule that chose them: ``test`` a fraction in (0, 1) of ``persons`` (at least one),
    a count, or a list of names; fractions and counts take the first of
    ``np.random.RandomState(seed).permutation`` over the sorted ``persons``."""
    persons = sorted(persons)
    if isinstance(test, str):
        test = [test]
    if isinstance(test, list | tuple):
        return sorted(check_choices("arface", "person", [str(p) for p in test], persons)), "the listed persons"
    if isinstance(test, float):
        if not 0 < test < 1:
            raise ConfigError(f"data.test_persons must be a fraction in (0, 1), a count or a list of persons, got {test!r}.")
        count = max(1, round(test * len(persons)))
        rule = f"a fraction {test} of the {len(persons)} persons ({count})"
    else:
        count = check_positive_int("data.test_persons", test)
        rule = f"{count} of the {len(persons)} persons"
    order = np.random.RandomState(seed).permutation(len(persons))[:count]
    return sorted(persons[i] for i in order), f"{rule} drawn with split_seed {seed}"


class ARFaceDataModule(
    RecordsDataModule, dataset="arface", views=VIEWS, env_var=ENV_VAR, layout=layout.LAYOUT, crops=NAMED_CROPS
):
    """AR Face.

    Args:
        view: two_domain | multi_domain.
        root: the folder holding the images, at any depth (default: ``ARFACE_ROOT``).
        expressions: the domains in order, of neutral, smile, anger, scream (two_domain default neutral, smile;
            multi_domain default all four).
        sessions: the sessions read (1: images 01–13, 2: images 14–26); ``gt`` always comes from the source's own.
        test_persons: a fraction of the persons, a count, or a list of names (``M-001``) forming the test split.
        split_seed: the seed of that draw (1234) [inferred].
        raw_size: (width, height) of the ``.raw`` files (the release's 768×576).
        raw_order: planar (the release, as its public readers decode it) | interleaved.
        image_size, crop (center | none | side | box …), val_size, flip, draft, on_bad_image, cache_dir,
        cache_format, batch_size, num_workers, pin_memory, seed, direction: see
        :class:`datamodules.records.RecordsDataModule`.
    """

    def __init__(
        self, expressions: Sequence[str] | None = None, sessions: Sequence[int] = (1, 2),
        test_persons: float | int | Sequence[str] = 0.1, split_seed: int = 1234,
        raw_size: Sequence[int] = layout.RAW_SIZE, raw_order: str = "planar", image_size: int = 128,
        crop: Any = "center", **common: Any
    ):
        super().__init__(image_size=image_size, **common)
        default = TWO_DOMAIN_DEFAULT if self.view == "two_domain" else layout.EXPRESSIONS
        chosen = check_choices(self.name, "expression", list(plain_arg(expressions) or default), layout.EXPRESSIONS)
        need = "exactly 2" if self.view == "two_domain" else "at least 2"
        if len(chosen) < 2 or (self.view == "two_domain" and len(chosen) != 2):
            raise ConfigError(f"data.expressions: the {self.view} view needs {need} expressions, got {chosen}.")
        self.expressions = chosen
        self.sessions = check_choices(self.name, "session", [int(s) for s in plain_arg(sessions)], (1, 2))
        self.split_seed = int(split_seed)
        self.preprocess = layout.RawPreprocess.of(
            self.make_preprocess("none" if crop is None else crop), raw_size=plain_arg(raw_size), raw_order=raw_order
        )

        kept = [f for f in layout.scan(self.root) if f.expression in chosen and f.session in self.sessions]
        if not kept:
            raise DatasetError(
                f"data=arface: {self.root} has no image of the expressions {', '.join(chosen)} in session(s) "
                f"{', '.join(map(str, self.sessions))} (images 01–04, 14–17)."
            )
        self._check_raw_sizes(kept)
        self.heldout, rule = draw_test_persons({f.identity for f in kept}, plain_arg(test_persons), self.split_seed)
        self.split_rule = f"{rule} ({', '.join(self.heldout)}) are the test split, the other ones train (data.test_persons)"
        held = set(self.heldout)
        for f in kept:
            self.records["test" if f.identity in held else "train"].append(_record(f))
        self.domain_factor, self.domain_names, self.domain_key = "expression", list(chosen), "expression"
        self.pair_key = "sitting"
        self.details = {
            "layout": "AR Face", "sessions": self.sessions, "formats": sorted({f.path.suffix.lower() for f in kept}),
        }
        self.finish()
        self.details["unpaired_sources"] = {s: self._unpaired(s) for s in ("train", "test")}

    def _check_raw_sizes(self, files: Sequence[layout.ARFaceFile]) -> None:
        """With ``on_bad_image=stop``, a ``.raw`` of the wrong byte count stops here, before training (with
        ``skip`` the reader skips it when met)."""
        width, height = self.preprocess.raw_size
        bad = [
            (f.path, size) for f in files
            if f.path.suffix.lower() == ".raw" and (size := f.path.stat().st_size) != width * height * 3
        ]
        if bad and self.on_bad_image == "stop":
            path, size = bad[0]
            more = f", and {len(bad) - 1} other .raw file(s) have a wrong size too" if len(bad) > 1 else ""
            raise DatasetError(
                f"data=arface: {path} has {layout.raw_size_text(size, (width, height))} (data.raw_size){more}; fix or "
                "remove it, or set data.on_bad_image=skip."
            )

    def _unpaired(self, split: str) -> int:
        """Sources of ``split`` left out for want of a same-sitting image in a target expression."""
        ds = self.dataset(split)
        sources = len(ds.records) if ds.source is None else len(ds.pools[ds.source])
        return sources - len(ds)


def _record(f: layout.ARFaceFile) -> ImageRecord:
    """The record of one file: identity (``M-001``), sex, person, image, session, expression and sitting."""
    labels = {"identity": f.identity, "sex": f.sex, "person": f.person, "image": f.image, "session": f.session,
              "expression": f.expression, "sitting": f"{f.identity}/s{f.session}"}
    return ImageRecord(f.path, labels)
