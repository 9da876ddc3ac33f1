"""A progress bar that counts what the suite counts: the method's iterations of the run's total (Lightning's own
bar counts batches of an epoch and, for step-bounded runs, reads ``Epoch 0/-2``)."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichProgressBar


def critic_cycle(iteration: int, n_critic: int | None) -> str | None:
    """Where the iteration just done sits in the ``n_critic`` cycle (D every iteration, G on the first of every
    n_critic): ``"1/5"`` for an iteration that also updated G, ``"2/5"`` … ``"5/5"`` for critic-only ones; None
    without a cycle (n_critic absent or 1)."""
    if not n_critic or n_critic <= 1 or iteration < 1:
        return None
    return f"{(iteration - 1) % n_critic + 1}/{n_critic}"


class IterationProgressBar(RichProgressBar):
    """:class:`RichProgressBar` whose training bar is ``iteration i/N`` of the method's counter (N: the run's
    ``max_iterations``, set from ``trainer.max_steps`` or from the epochs), with ``critic k/n`` among the metrics
    for methods with an ``n_critic`` cycle."""

    @property
    def total_train_batches(self) -> int | float:
        module = self._module()
        if module is not None and getattr(module, "max_iterations", -1) > 0:
            return module.max_iterations
        return super().total_train_batches

    def _module(self) -> Any:
        trainer = getattr(self, "_trainer", None)
        return trainer.lightning_module if trainer is not None else None

    def _get_train_description(self, current_epoch: int) -> str:
        module = self._module()
        if module is not None and getattr(module, "max_iterations", -1) > 0:
            return "iteration"
        return super()._get_train_description(current_epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if getattr(pl_module, "max_iterations", -1) > 0:  # completed = the method's counter, not the epoch's batch
            self._update(self.train_progress_bar_id, pl_module.iteration)
            self.refresh()

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        cycle = critic_cycle(getattr(pl_module, "iteration", 0), getattr(pl_module.hparams, "n_critic", None))
        if cycle is not None:
            items["critic"] = cycle
        return items
