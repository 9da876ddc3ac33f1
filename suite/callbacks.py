"""Callbacks: an iteration-based, atomic checkpoint writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl


class IterationCheckpoint(pl.Callback):
    """Writes ``<dirpath>/last.ckpt`` every ``every_n_iterations`` of the method's own counter and when training
    ends. Writing goes to a temporary file that is renamed over the old one, so an interrupted save never leaves
    a corrupt ``last.ckpt``. A run stopped by the NaN guard keeps the last good checkpoint (nothing is written)."""

    def __init__(self, dirpath: str | os.PathLike, every_n_iterations: int = 500) -> None:
        self.dirpath = Path(dirpath)
        self.every = every_n_iterations
        self._last_saved = -1

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: pl.Trainer) -> None:
        module = trainer.lightning_module
        if module.iteration == self._last_saved:
            return
        tmp = self.dirpath / f".last.ckpt.tmp{os.getpid()}"
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizers, schedulers, loops
        if trainer.is_global_zero:
            os.replace(tmp, self.last_path)
        trainer.strategy.barrier("IterationCheckpoint.save")
        self._last_saved = module.iteration

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every > 0 and pl_module.iteration % self.every == 0:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.fast_dev_run:
            self.save(trainer)
