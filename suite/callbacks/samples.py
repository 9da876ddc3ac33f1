"""Sample grids during training: the method's ``translate`` on a fixed validation batch, written to
``<run>/samples/iter_<iteration>.png`` every ``every_n_iterations`` and when training ends, and sent to the
loggers that take images (W&B ``log_image``, TensorBoard ``add_image``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from lightning_modules.samples import save_sample_grid


class SampleGrids(pl.Callback):
    """Writes sample grids of the first ``num_samples`` images of the first validation batch (rank 0 only).

    Args:
        every_n_iterations: iterations (the method's own counter) between grids; 0 = only when training ends.
        num_samples: rows of a grid; 0 turns the grids off.
        cell_size: each cell is enlarged (nearest, a whole factor) to at least this many pixels; the columns are
            labelled (``lightning_modules.samples.save_sample_grid``). The same image goes to W&B and TensorBoard.

    Sampling never moves the training's random stream (it runs under ``torch.random.fork_rng``): a resumed run
    builds the sample batch (a loader iterator draws a seed) and samples at other iterations than an
    uninterrupted one."""

    def __init__(self, every_n_iterations: int = 500, num_samples: int = 8, cell_size: int = 128) -> None:
        self.every = int(every_n_iterations or 0)
        self.num_samples = int(num_samples)
        self.cell_size = int(cell_size)
        self._batch: dict | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every and pl_module.iteration % self.every == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.write(trainer, pl_module)

    def fixed_batch(self, trainer: pl.Trainer) -> dict | None:
        """The first ``num_samples`` items of the datamodule's first validation batch (built once, then kept)."""
        if self._batch is None:
            dm = getattr(trainer, "datamodule", None)
            loader = dm.val_dataloader() if dm is not None and hasattr(dm, "val_dataloader") else None
            if loader is None:
                return None
            batch = next(iter(loader))
            self._batch = {k: (v[: self.num_samples] if torch.is_tensor(v) else v) for k, v in batch.items()}
        return self._batch

    @torch.no_grad()
    def write(self, trainer: pl.Trainer, pl_module: Any) -> Path | None:
        """Translate the fixed batch and write its grid; returns the grid's path (None when nothing was written)."""
        if not trainer.is_global_zero or self.num_samples <= 0:
            return None
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            batch = self.fixed_batch(trainer)
            if batch is None:
                return None
            batch = {k: (v.to(pl_module.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            was_training = pl_module.training
            pl_module.eval()
            try:
                out = pl_module.translate(batch["image"], pl_module.sample_target(batch))
            finally:
                pl_module.train(was_training)
        path = Path(trainer.default_root_dir) / "samples" / f"iter_{pl_module.iteration:07d}.png"
        save_sample_grid(path, batch, out, self.cell_size)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[str(path)], step=pl_module.iteration,
                                 caption=[f"iteration {pl_module.iteration}"])
            elif hasattr(getattr(logger, "experiment", None), "add_image"):
                from torchvision.io import read_image

                logger.experiment.add_image("samples", read_image(str(path)), pl_module.iteration)
        return path
