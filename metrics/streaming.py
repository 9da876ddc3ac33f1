"""Streaming aggregation of per-image metrics over a test set, batch by batch, without keeping any images.

``MeanAccumulator`` keeps count, mean and sum of squared deviations of the finite values (Chan et al.'s
parallel update, in float64, so chunking does not change the result) and counts +inf, −inf and NaN apart.
This is how an infinite PSNR (an image reproduced exactly) is reported: the mean is over the finite values and
``n_inf`` says how many were infinite; the mean is ±inf only when every value was, and NaN when none came.

``MetricBook`` holds one accumulator per metric name and turns them into the flat ``dict[str, float]`` that
``evaluate.py`` writes to ``metrics.json``:

- ``<name>``: mean over finite values;
- ``<name>/std``: sample standard deviation (ddof = 1; 0 for a single value);
- ``<name>/n``: number of finite values;
- ``<name>/n_inf``, ``<name>/n_neginf``, ``<name>/n_nan``: present only when non-zero.

A B×n tensor (e.g. per-attribute accuracy) feeds ``<name>`` with all its elements and ``<name>/<column>``
with each column.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["MeanAccumulator", "MetricBook"]

_SUFFIXES = ("std", "n", "n_inf", "n_neginf", "n_nan")


class MeanAccumulator:
    """Running count / mean / std of the finite values seen so far, plus counts of ±inf and NaN."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.n_inf = 0
        self.n_neginf = 0
        self.n_nan = 0
        self._mean = 0.0
        self._m2 = 0.0  # sum of squared deviations from the mean

    def update(self, values: Tensor | float | Sequence[float]) -> None:
        """Add a batch of values (any shape; flattened)."""
        v = torch.as_tensor(values).detach().to(device="cpu", dtype=torch.float64).flatten()
        self.n_inf += int((v == math.inf).sum())
        self.n_neginf += int((v == -math.inf).sum())
        self.n_nan += int(torch.isnan(v).sum())
        finite = v[torch.isfinite(v)]
        k = finite.numel()
        if k == 0:
            return
        batch_mean = float(finite.mean())
        batch_m2 = float((finite - batch_mean).pow(2).sum())
        self._combine(k, batch_mean, batch_m2)

    def _combine(self, k: int, mean: float, m2: float) -> None:
        total = self.n + k
        delta = mean - self._mean
        self._mean += delta * k / total
        self._m2 += m2 + delta * delta * self.n * k / total
        self.n = total

    def merge(self, other: MeanAccumulator) -> None:
        """Fold another accumulator in (e.g. one per process)."""
        self.n_inf += other.n_inf
        self.n_neginf += other.n_neginf
        self.n_nan += other.n_nan
        if other.n:
            self._combine(other.n, other._mean, other._m2)

    @property
    def count(self) -> int:
        """All values seen, finite or not."""
        return self.n + self.n_inf + self.n_neginf + self.n_nan

    @property
    def mean(self) -> float:
        if self.n:
            return self._mean
        if self.n_inf and not self.n_neginf:
            return math.inf
        if self.n_neginf and not self.n_inf:
            return -math.inf
        return math.nan

    @property
    def std(self) -> float:
        if self.n == 0:
            return math.nan
        if self.n == 1:
            return 0.0
        return math.sqrt(max(self._m2, 0.0) / (self.n - 1))

    def summary(self, name: str, std: bool = True) -> dict[str, float]:
        out: dict[str, float] = {name: self.mean}
        if std:
            out[f"{name}/std"] = self.std
        out[f"{name}/n"] = float(self.n)
        for suffix, value in (("n_inf", self.n_inf), ("n_neginf", self.n_neginf), ("n_nan", self.n_nan)):
            if value:
                out[f"{name}/{suffix}"] = float(value)
        return out

    def __repr__(self) -> str:
        return f"MeanAccumulator(mean={self.mean:.6g}, std={self.std:.6g}, n={self.n}, n_inf={self.n_inf})"


class MetricBook:
    """Named per-image metrics collected batch by batch; ``summary()`` gives a flat ``dict[str, float]``."""

    def __init__(self) -> None:
        self._acc: dict[str, MeanAccumulator] = {}

    def _get(self, name: str) -> MeanAccumulator:
        if name not in self._acc:
            self._acc[name] = MeanAccumulator()
        return self._acc[name]

    def add(
        self, name: str, values: Tensor | float | Sequence[float], columns: Sequence[str] | None = None
    ) -> None:
        """Record one batch of a metric.

        values: a scalar or a B tensor (one value per image), or B×n (n values per image, e.g. per attribute),
        in which case ``columns`` names the n columns (default ``"0"``, ``"1"``, …).
        """
        v = torch.as_tensor(values).detach()
        if v.dim() <= 1:
            if columns is not None:
                raise ValueError(f"columns given for metric {name!r}, but its values are not B×n")
            self._get(name).update(v)
            return
        if v.dim() != 2:
            raise ValueError(f"metric {name!r} must be a scalar, B or B×n tensor, got shape {tuple(v.shape)}")
        names = [str(i) for i in range(v.shape[1])] if columns is None else [str(c) for c in columns]
        if len(names) != v.shape[1]:
            raise ValueError(
                f"metric {name!r} has {v.shape[1]} columns but {len(names)} column names were given"
            )
        clash = set(names) & set(_SUFFIXES)
        if clash:
            raise ValueError(f"column names {sorted(clash)} of metric {name!r} clash with summary suffixes")
        self._get(name).update(v)
        for j, col in enumerate(names):
            self._get(f"{name}/{col}").update(v[:, j])

    def update(
        self, metrics: Mapping[str, Tensor | float], columns: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Record one batch of several metrics at once: ``{name: per-image tensor}``."""
        for name, values in metrics.items():
            self.add(name, values, None if columns is None else columns.get(name))

    def summary(self, std: bool = True) -> dict[str, float]:
        """Flat ``{key: number}``; see the module docstring for the key scheme."""
        out: dict[str, float] = {}
        for name, acc in self._acc.items():
            out.update(acc.summary(name, std=std))
        return out

    def means(self) -> dict[str, float]:
        """``{name: mean}`` only."""
        return {name: acc.mean for name, acc in self._acc.items()}

    def reset(self) -> None:
        self._acc.clear()

    def __getitem__(self, name: str) -> MeanAccumulator:
        return self._acc[name]

    def __contains__(self, name: object) -> bool:
        return name in self._acc

    def __iter__(self) -> Iterator[str]:
        return iter(self._acc)

    def __len__(self) -> int:
        return len(self._acc)
