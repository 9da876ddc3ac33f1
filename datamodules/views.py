"""The view logic shared by the embedded (rendered) and the real (file record) datasets.

A view dataset maps a key to an item through a :class:`Plan`: which image is the source, which one is its
reference, the target labels and (where the data has it) the ground truth. Everything random in a plan comes from
:func:`mix`, a hash of (seed, tag, item, epoch), so an item is a pure function of its key in any loader worker of
any run; each decision has its own ``tag``, one stream of randomness per decision.

- :class:`EpochKeyed` — keys ``k`` decode as item ``k mod len`` of epoch ``k div len`` (train only: val/test items
  are those of epoch 0 always); the sampler (:class:`datamodules.base.SeededShuffleSampler`) puts the epoch there.
- :class:`DomainPairing` — the domain views: the target domain is uniform over a source domain's candidate targets
  (``two_domain``: the other one of two), the reference uniform over the target domain's pool of images.
- :class:`OtherPairing` — ``multi_attribute`` / ``multi_factor``: the reference is a random *other* image of the
  split (:func:`other_index`).
- :func:`domain_labels` — the batch labels of the domain views (``domain``, ``target``, ``ref_domain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

_MASK64 = (1 << 64) - 1


def mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): the deterministic randomness of item pairings."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) & _MASK64
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 31
    return h


def other_index(h: int, avoid: int, n: int) -> int:
    """An index of ``range(n)`` other than ``avoid``, uniform by the hash value ``h`` (``avoid`` itself when
    ``n < 2``)."""
    if n < 2:
        return avoid
    r = h % (n - 1)
    return r + 1 if r >= avoid else r


def spread(n: int, k: int) -> list[int]:
    """``min(k, n)`` indices evenly spread over ``range(n)`` (a deterministic, varied subset)."""
    k = min(int(k), n)
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)}) if k > 0 else []


@dataclass
class Plan:
    """What one item shows: the source and reference image indices, the ground truth (a record index or a scene
    to render; None without one), the horizontal flips of the source and the reference, and labels."""

    src: int
    ref: int
    gt: Any = None
    flip_src: bool = False
    flip_ref: bool = False
    labels: dict[str, Any] = field(default_factory=dict)


class EpochKeyed(Dataset):
    """A view dataset whose items may change per epoch: ``__len__`` items, keys decoded by :meth:`decode`.

    ``train`` splits redraw their targets and references each epoch; other splits are fixed."""

    epoch_aware = True
    train: bool = False

    def plan(self, item: int, epoch: int) -> Plan:
        """What item ``item`` of epoch ``epoch`` shows (the epoch is 0 outside train)."""
        raise NotImplementedError

    def decode(self, key: int) -> tuple[int, int]:
        """(item, epoch) of a sampler key."""
        n = len(self)
        return int(key) % n, (int(key) // n if self.train else 0)


class DomainPairing:
    """Target domains and references of the domain views.

    Args:
        pools: per domain, the image indices of that domain (lists or ranges).
        targets: per source domain, the candidate target domains in order (``two_domain``: the other one).
        seed: the dataset's seed.
        tag: the hash tag of the target choice.
        ref_tag: the reference hashes ``mix(h, ref_tag)`` of the target hash ``h``; None uses ``h`` itself.
    """

    def __init__(self, pools: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], *, seed: int, tag: int,
                 ref_tag: int | None = None):
        self.pools, self.targets = pools, targets
        self.seed, self.tag, self.ref_tag = int(seed), tag, ref_tag

    def pick(self, src_dom: int, item: int, epoch: int) -> tuple[int, int]:
        """(target domain, reference index) of item ``item`` of epoch ``epoch`` whose source is of ``src_dom``."""
        h = mix(self.seed, self.tag, item, epoch)
        choices = self.targets[src_dom]
        tgt_dom = choices[h % len(choices)]
        pool = self.pools[tgt_dom]
        return tgt_dom, pool[(h if self.ref_tag is None else mix(h, self.ref_tag)) % len(pool)]


class OtherPairing:
    """References of the ``multi_attribute`` and ``multi_factor`` views: a random other image of the split."""

    def __init__(self, *, seed: int, tag: int):
        self.seed, self.tag = int(seed), tag

    def pick(self, src: int, n: int, item: int, epoch: int) -> int:
        """An index of ``range(n)`` other than ``src`` for item ``item`` of epoch ``epoch``."""
        return other_index(mix(self.seed, self.tag, item, epoch), src, n)


def domain_labels(src_dom: int, tgt_dom: int, ref_dom: int) -> dict[str, torch.Tensor]:
    """The labels of a domain-view item: ``domain``, ``target`` and ``ref_domain`` as int64 indices."""
    return {
        "domain": torch.tensor(src_dom, dtype=torch.int64),
        "target": torch.tensor(tgt_dom, dtype=torch.int64),
        "ref_domain": torch.tensor(ref_dom, dtype=torch.int64),
    }
