"""Summary statistics shared by the tables that report several runs (seeds, repeated checkpoints)."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["mean_std"]


def mean_std(values: Iterable[float]) -> tuple[float, float | None, int] | None:
    """(mean, sample standard deviation with n − 1, n) of the finite values; the std is None for a single value;
    None when no value is finite (NaN and ±inf are left out, so one diverged run does not blank a row)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return None
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return mean, None, 1
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)), len(finite)
