"""Schedules driven by the module's own iteration counter (never ``trainer.global_step``, which counts every
optimizer step — see ../shared/specs/lightning_pitfalls.md §3).

A switch point is given either as a fraction of the run (``*_fraction``) or in epochs (``*_epoch(s)``, as the
papers state them: AGGAN's lr decays after 100 of 200 epochs and its r switches after 10). An epoch becomes
iterations once the number of batches per epoch is known (``GANModule.iterations_per_epoch``, set at train start).
"""

from __future__ import annotations

from typing import Any

from suite.errors import ConfigError


def linear_decay_from(iteration: int, start: float, total: int) -> float:
    """Learning-rate multiplier: 1 until iteration ``start``, then linearly down to 0 at ``total``."""
    if total <= 0 or iteration < start or total <= start:
        return 1.0
    return max(0.0, 1.0 - (iteration - start) / (total - start))


def linear_decay_factor(iteration: int, total: int, decay_start_fraction: float) -> float:
    """:func:`linear_decay_from` with the start as a fraction of ``total`` (CycleGAN/AGGAN: constant for the
    first half, linear decay over the second; SAT likewise)."""
    return linear_decay_from(iteration, decay_start_fraction * total, total)


def step_schedule(iteration: int, total: int, switch_fraction: float, early: float, late: float) -> float:
    """A value that is ``early`` for the first ``switch_fraction·total`` iterations and ``late`` afterwards
    (AGGAN's curriculum r, Eq. 9: 0.01 for the first 10 of 200 epochs, then 0.5)."""
    return early if iteration < switch_fraction * max(total, 0) else late


def switch_iteration(what: str, fraction: Any, epochs: Any, total: int, iterations_per_epoch: int | None,
                     default_fraction: float | None = None) -> float | None:
    """The iteration at which a schedule switches, from exactly one of ``<what>_fraction`` (of ``total``) and
    ``<what>_epoch(s)`` (× ``iterations_per_epoch``); ``default_fraction`` when both are null. None while an
    epoch form waits for the number of batches per epoch (before train start)."""
    if fraction is not None and epochs is not None:
        raise ConfigError(f"{what} is set both as a fraction ({fraction}) and in epochs ({epochs}); set the other to null.")
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int | float) or epochs < 0:
            raise ConfigError(f"{what} in epochs must be a number >= 0, got {epochs!r}.")
        return None if iterations_per_epoch is None else float(epochs) * iterations_per_epoch
    fraction = default_fraction if fraction is None else fraction
    if fraction is None:
        raise ConfigError(f"{what} needs a fraction of the run or a number of epochs; both are null.")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise ConfigError(f"{what} as a fraction of the run must be in [0, 1], got {fraction!r}.")
    return float(fraction) * max(total, 0)
