"""The smallest trainer a module's ``train_iteration`` needs outside ``Trainer.fit``: optimizers from
``configure_optimizers`` and the strategy's precision plugin for ``manual_backward``, with no loop, logger or
callbacks. A test helper: unit tests that step a method once."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning import Trainer


def attach_trainer_stub(module: Any, accelerator: str | None = None) -> Trainer:
    """Attach a loop-less trainer to ``module`` (on CUDA when available unless ``accelerator`` says otherwise)
    and put the module in training mode."""
    accelerator = accelerator or ("gpu" if torch.cuda.is_available() else "cpu")
    trainer = Trainer(accelerator=accelerator, devices=1, max_steps=-1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.strategy._lightning_optimizers = []
    module.trainer = trainer
    optimizers, _schedulers = module.configure_optimizers()
    trainer.strategy.optimizers = optimizers
    trainer.strategy.lr_scheduler_configs = []
    module.train()
    return trainer
