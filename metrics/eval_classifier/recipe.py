"""The evaluation classifier's recipe, declared once: every setting that defines a fitted classifier (and so its
cache key), with its default. The fit (:mod:`.fit`) and the cache (:mod:`.cache`) both read it from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DEFAULT_EPOCHS = 10
# Linear LR warm-up: at 3e-3 from the first step the small CNN never left chance on squares vs circles.
DEFAULT_WARMUP_STEPS = 100
DEFAULT_SHIFT = 0.0  # random translation (fraction of the side); off: within a short budget it cost accuracy


@dataclass(frozen=True)
class Recipe:
    """How an evaluation classifier is fitted. All fields enter the cache key (as :meth:`settings`).

    epochs / steps: passes over the training loader, and an optional cap on optimizer steps (neither given:
    ``DEFAULT_EPOCHS`` passes, resolved here so that a changed default can never reuse an old cache). lr,
    weight_decay: Adam's; warmup_steps: linear warm-up before the cosine decay. shift, hflip: augmentation
    (random whole-pixel translation by up to ``shift`` of the side; random horizontal flips). seed: the fit's
    RNG seed. use_ref: also train on each batch's labelled ``ref`` images (None: decided by the caller, from
    the datamodule's view). The networks' own widths belong to the architectures (:mod:`.model`): changing
    them means bumping ``CACHE_FORMAT``.
    """

    epochs: int | None = None
    steps: int | None = None
    lr: float = 3e-3
    weight_decay: float = 1e-4
    shift: float = DEFAULT_SHIFT
    hflip: bool = False
    seed: int = 0
    use_ref: bool | None = None
    warmup_steps: int = DEFAULT_WARMUP_STEPS

    def __post_init__(self) -> None:
        if self.epochs is None and self.steps is None:
            object.__setattr__(self, "epochs", DEFAULT_EPOCHS)

    @classmethod
    def of(cls, recipe: Recipe | None = None, **settings: Any) -> Recipe:
        """``recipe``'s fields (default: none given) with ``settings`` on top; an unknown name is a TypeError."""
        return cls(**{**(dataclasses.asdict(recipe) if recipe else {}), **settings})

    def settings(self) -> dict[str, Any]:
        """The recipe as the plain dict that is hashed into the cache key and written to the sidecar."""
        return dataclasses.asdict(self)
