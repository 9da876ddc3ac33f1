"""Schedules driven by the module's own iteration counter (never ``trainer.global_step``, which counts every
optimizer step — see ../shared/specs/lightning_pitfalls.md §3)."""

from __future__ import annotations


def linear_decay_factor(iteration: int, total: int, decay_start_fraction: float) -> float:
    """Learning-rate multiplier: 1 until ``decay_start_fraction·total``, then linearly down to 0 at ``total``
    (CycleGAN/AGGAN: constant for the first half, linear decay over the second; SAT likewise)."""
    if total <= 0:
        return 1.0
    start = decay_start_fraction * total
    if iteration < start or total <= start:
        return 1.0
    return max(0.0, 1.0 - (iteration - start) / (total - start))


def step_schedule(iteration: int, total: int, switch_fraction: float, early: float, late: float) -> float:
    """A value that is ``early`` for the first ``switch_fraction·total`` iterations and ``late`` afterwards
    (AGGAN's curriculum r, Eq. 9: 0.01 for the first 10 of 200 epochs, then 0.5)."""
    return early if iteration < switch_fraction * max(total, 0) else late
