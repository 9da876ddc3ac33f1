"""What every datamodule shares: the task views, the batch format, error sentences, the base DataModule.

Views (a method declares the one it trains on; a dataset lists those it can offer):

- ``two_domain``: a source and a target domain (AGGAN, SAT, CycleGAN). Batch: ``image`` from the source
  domain, ``domain`` (its index, 0 or 1), ``target`` (the other index), ``ref`` an unpaired image of the
  target domain and ``ref_domain``.
- ``multi_domain``: one categorical factor with several domains (SPM, StarGAN, AGGAN multi-domain). Batch as
  above with the source domain uniform over domains and ``target`` uniform over the other ones.
- ``multi_attribute``: binary attribute vectors (the label/reference bridge). Batch: ``image``, ``attrs``
  (B×n float 0/1, names in ``info["attr_names"]``), ``ref`` a random other image and ``target_attrs`` its
  attributes.
- ``multi_factor``: several categorical factors per image (disentanglement). Batch: ``image``, ``factors``
  (dict name → B int64), ``ref`` and ``ref_factors``; test identities are held out of training.

Every batch is a dict; images are float32 B×3×H×W in [-1, 1], labels int64 (indices) or float32 (attribute
vectors). Embedded data adds ``gt`` (the true translation, same range as ``image``) and ``change_mask``
(B×1×H×W float32 in {0, 1}: where ``gt`` differs from ``image``).

``datamodule.info`` describes the labels (names, counts, image size) as plain Python, so it can be stored in a
checkpoint and a method can be rebuilt from it without the data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from suite.errors import ConfigError, DatasetError

UNSEEN_CLASS = -1  # multi_factor index of a value no training image has (a held-out subject): it names no class

VIEWS: dict[str, str] = {
    "two_domain": "a source and a target domain",
    "multi_domain": "one categorical factor with several domains",
    "multi_attribute": "binary attribute labels per image",
    "multi_factor": "several categorical factors per image",
}
SPLITS: tuple[str, ...] = ("train", "val", "test")


# ---------------------------------------------------------------------------------------------- error sentences
def check_view(dataset: str, view: str, offered: Sequence[str]) -> str:
    """``view`` when ``dataset`` offers it; otherwise a DatasetError naming what it offers and what was asked."""
    if view not in VIEWS:
        raise DatasetError(f"unknown view {view!r}; the views are {', '.join(VIEWS)}.")
    if view not in offered:
        raise DatasetError(
            f"data={dataset} offers the views {', '.join(offered)}; the method needs {view} ({VIEWS[view]})."
        )
    return view


def check_choice(dataset: str, kind: str, value: Any, valid: Sequence[Any]) -> Any:
    """``value`` when it is one of ``valid``; otherwise a DatasetError naming the valid choices."""
    if value not in valid:
        raise DatasetError(
            f"data={dataset} has no {kind} {value!r}; valid choices are {', '.join(map(str, valid))}."
        )
    return value


def check_choices(dataset: str, kind: str, values: Sequence[Any], valid: Sequence[Any]) -> list:
    """Every entry checked by :func:`check_choice`, duplicates refused; returned as a list."""
    values = list(values)
    for v in values:
        check_choice(dataset, kind, v, valid)
    if len(set(values)) != len(values):
        raise ConfigError(f"data={dataset}: the {kind} list {values} repeats a name.")
    return values


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``; otherwise a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------------------------- batch helpers
def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×H×W float32 in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return t.to(torch.float32).div_(127.5).sub_(1.0).contiguous()


def tensor_to_images(images: torch.Tensor) -> np.ndarray:
    """N×3×H×W in [-1, 1] → N×H×W×3 uint8 (for sheets and files)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def plain(value: Any) -> Any:
    """``value`` as plain Python (str/int/float/bool/None, lists, dicts with str keys) for checkpoints."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence | np.ndarray | set | frozenset):
        return [plain(v) for v in value]
    raise TypeError(
        f"datamodule info holds a {type(value).__name__}, which a checkpoint cannot store as plain data"
    )


# ---------------------------------------------------------------------------------------------- sampling
class SeededShuffleSampler(Sampler[int]):
    """A fresh permutation of ``range(n)`` every epoch, a pure function of (seed, epoch).

    Lightning calls :meth:`set_epoch` before each epoch (and otherwise each pass counts one epoch on), so a
    resumed run sees the same order. With ``encode_epoch`` it yields ``index + n · epoch``: datasets whose
    items may change per epoch (a fresh target domain, a fresh unpaired reference) decode it, and stay pure
    functions of their key in any worker.

    Under DDP each of ``num_replicas`` ranks takes every ``num_replicas``-th index of the same permutation
    (the datamodule shards; Lightning's own sampler wrapping is off), so the ranks' batches of B at one step are
    together the batch of R·B a single process reads at that step.

    A run resumed mid-epoch must not see the epoch's first batches again: :meth:`resume_at` makes the next
    pass over ``epoch`` skip the indices the interrupted run already trained on (see :class:`ResumableDataLoader`).
    """

    def __init__(self, n: int, seed: int = 0, encode_epoch: bool = False, num_replicas: int = 1, rank: int = 0):
        self.n = int(n)
        self.seed = int(seed)
        self.encode_epoch = encode_epoch
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.epoch_in_use = 0  # the epoch of the latest pass (what a checkpoint records)
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, consumed: int) -> None:
        """Make the next pass over ``epoch`` start after its first ``consumed`` indices (once)."""
        self._resume = (int(epoch), max(int(consumed), 0))

    def __len__(self) -> int:
        return self.n // self.num_replicas

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        self.epoch += 1
        self.epoch_in_use = epoch
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        order = torch.randperm(self.n, generator=g).tolist()
        if self.num_replicas > 1:  # every rank the same count; step k of R ranks reads one process's batch k of R·B
            order = order[: len(self) * self.num_replicas][self.rank :: self.num_replicas]
        if self._resume is not None:
            resume_epoch, consumed = self._resume
            self._resume = None
            if resume_epoch == epoch:
                order = order[consumed:]
        offset = self.n * epoch if self.encode_epoch else 0
        return iter([i + offset for i in order])


class ResumableDataLoader(DataLoader):
    """The train loader, checkpointed through Lightning's stateful-loader protocol (``state_dict`` /
    ``load_state_dict``, restored before the first batch is drawn): it records the epoch and how many batches
    of it the training loop has consumed, and on resume its :class:`SeededShuffleSampler` skips exactly those.

    ``progress`` (set by the datamodule) returns the batches of the current epoch the loop has trained on —
    counting what this loader yielded would be off by the batches Lightning and the workers prefetch."""

    progress: Any = None

    def state_dict(self) -> dict[str, int]:
        sampler = self.sampler
        done = int(self.progress()) if callable(self.progress) else -1
        return {"epoch": int(getattr(sampler, "epoch_in_use", 0)), "batches_done": done, "batch_size": int(self.batch_size or 1)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self.sampler
        if state.get("batches_done", -1) < 0 or not hasattr(sampler, "resume_at"):
            return  # no position recorded (or a sampler without resume_at): start the epoch over
        sampler.resume_at(state["epoch"], state["batches_done"] * state["batch_size"])


# ---------------------------------------------------------------------------------------------- datamodule
def default_num_workers() -> int:
    """Loader processes when ``data.num_workers`` is null: one CPU (of those this process may run on) is left to
    the training process, at most 4 (more rarely helps at these image sizes) — ``min(4, cpus - 1)``, 0 on one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(0, min(4, cpus - 1))


class BaseImageDataModule(pl.LightningDataModule):
    """Loaders, splits and ``info`` for one dataset offering one view.

    Subclasses set ``name`` and ``views`` and implement :meth:`build_info` (plain data, no I/O or rendering)
    and :meth:`build_dataset` (one split). Train batches are shuffled by a :class:`SeededShuffleSampler` and
    drop the last partial batch; val/test batches keep dataset order.

    Args:
        view: the task view the method needs (one of :data:`VIEWS`).
        batch_size: images per batch (≥ 1).
        num_workers: loader processes (0 loads in the main process; None: :func:`default_num_workers`).
        pin_memory: pin host memory for GPU copies; None pins exactly when CUDA is available.
        seed: seeds the train shuffling.
        drop_last: drop the last partial train batch (kept when the split is smaller than one batch).
    """

    name: ClassVar[str] = "base"
    views: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        view: str,
        *,
        batch_size: int = 16,
        num_workers: int | None = 0,
        pin_memory: bool | None = None,
        seed: int = 0,
        drop_last: bool = True,
    ):
        super().__init__()
        self.view = check_view(self.name, view, self.views)
        self.batch_size = check_positive_int("data.batch_size", batch_size)
        workers = default_num_workers() if num_workers is None else num_workers
        self.num_workers = check_positive_int("data.num_workers", workers, minimum=0)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.seed = int(seed)
        self.shard_train = True  # DDP: each rank reads its own share of every train batch (see _train_shard)
        self.drop_last = bool(drop_last)
        self._datasets: dict[str, Dataset] = {}
        self._info: dict[str, Any] | None = None

    # -- subclass hooks
    def build_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def build_dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    # -- public
    @property
    def info(self) -> dict[str, Any]:
        """Plain-data description of the labels: name, view, image_size, channels, domain/attribute/factor
        names … (see the subclass)."""
        if self._info is None:
            self._info = plain(self.build_info())
        return self._info

    def dataset(self, split: str) -> Dataset:
        """The dataset of ``split`` (built on first use)."""
        check_choice(self.name, "split", split, SPLITS)
        if split not in self._datasets:
            self._datasets[split] = self.build_dataset(split)
        return self._datasets[split]

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in splits.get(stage, SPLITS) if stage else SPLITS:
            self.dataset(split)

    def train_dataloader(self) -> DataLoader:
        return self.make_dataloader(self.dataset("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self.make_dataloader(self.dataset("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self.make_dataloader(self.dataset("test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def make_dataloader(self, dataset: Dataset, train: bool) -> DataLoader:
        n = len(dataset)
        if n == 0:
            raise DatasetError(f"data={self.name}: the {'train' if train else 'evaluation'} split is empty.")
        sampler = None
        if train:
            replicas, rank = self._train_shard()
            sampler = SeededShuffleSampler(n, self.seed, encode_epoch=getattr(dataset, "epoch_aware", False),
                                           num_replicas=replicas, rank=rank)
        loader = (ResumableDataLoader if train else DataLoader)(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            drop_last=train and self.drop_last and n >= self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )
        if train:
            loader.progress = self._train_batches_done
        return loader

    def _train_shard(self) -> tuple[int, int]:
        """(ranks, this rank) for the train sampler: the trainer's world under DDP when ``shard_train`` is on
        (train.py sets it from ``trainer.use_distributed_sampler``), else one shard."""
        trainer = getattr(self, "trainer", None)
        if not self.shard_train or trainer is None or trainer.world_size <= 1:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def _train_batches_done(self) -> int:
        """Batches of the current epoch the fit loop has trained on (its ``processed`` count: at
        ``on_train_batch_end`` it already includes the batch just trained, unlike ``completed``)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return -1
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def num_batches(self, split: str) -> int:
        """Batches per epoch of ``split`` with the current settings."""
        n = len(self.dataset(split))
        if split == "train" and self.drop_last and n >= self.batch_size:
            return n // self.batch_size
        return math.ceil(n / self.batch_size)
