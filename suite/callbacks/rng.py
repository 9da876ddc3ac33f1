"""RNG-exact resume: every rank's global random states (torch CPU and CUDA, numpy, python) saved with each
checkpoint and restored before the first resumed batch, so a resumed run draws what an uninterrupted one draws."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def collect_rng_states() -> dict[str, Any]:
    """This process's global RNG states (torch CPU, every CUDA device, numpy, python) as checkpointable data."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def restore_rng_states(state: dict[str, Any]) -> None:
    """Inverse of :func:`collect_rng_states` (CUDA states only when the same devices are present)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's RNG states, indexed by global rank (each rank draws its own stream under DDP). A collective:
    every rank calls it (checkpoints are dumped on every rank)."""
    mine = collect_rng_states()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        states: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(states, mine)
        return states
    return [mine]


class RngResume(pl.Callback):
    """Saves every rank's RNG states in the checkpoint (``checkpoint["callbacks"]["RngResume"]["rng"]``) and
    restores this rank's before the first resumed batch.

    When to restore follows where the uninterrupted run drew: building an epoch's data iterator draws from the
    global generator. A checkpoint written mid-epoch is restored in ``on_train_batch_start``, after the resumed
    run's own iterator drew (the uninterrupted run drew nothing there); one written after an epoch's last batch
    in ``on_fit_start``, before the resumed run builds the next epoch's iterator (the uninterrupted run built it
    from these states). Checkpoints written before this callback existed (same format 1) keep the states under
    ``checkpoint["suite"]["rng"]``; they are read from there when the callback's own entry is absent. A rank the
    checkpoint does not know (more devices than before) keeps its fresh seeding."""

    def __init__(self) -> None:
        self._saved: list[dict[str, Any]] | None = None  # every rank's states, from the loaded checkpoint
        self._pending: dict[str, Any] | None = None  # this rank's, applied before the next training batch
        self._at_epoch_end = False  # the checkpoint was written after an epoch's last batch

    @property
    def state_key(self) -> str:
        return "RngResume"

    def state_dict(self) -> dict[str, Any]:
        return {"rng": gather_rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved = state_dict.get("rng") or []

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        # Lightning calls load_state_dict right after this hook when the callback's own entry exists.
        self._saved = (checkpoint.get("suite") or {}).get("rng") or []
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress", {})
        self._at_epoch_end = bool(progress.get("is_last_batch", False))

    def _take_saved(self, trainer: pl.Trainer) -> None:
        if self._saved is not None:
            rank = trainer.global_rank
            self._pending = self._saved[rank] if rank < len(self._saved) else None
            self._saved = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Written after an epoch's last batch: the resumed run opens a new epoch, and its data iterator (built
        # before the first batch) must draw from the saved states, as the uninterrupted run's did.
        if self._at_epoch_end:
            self._take_saved(trainer)
            self._restore_pending()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._take_saved(trainer)

    def _restore_pending(self) -> None:
        if self._pending is not None:
            restore_rng_states(self._pending)
            self._pending = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._restore_pending()  # written mid-epoch: after the resumed run's iterator drew, which the other did not
