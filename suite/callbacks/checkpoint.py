"""Iteration-based, atomic checkpoint writing that also ends a run cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import pytorch_lightning as pl

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class IterationCheckpoint(pl.Callback):
    """Writes ``<dirpath>/last.ckpt`` every ``every_n_iterations`` of the method's own counter and when training
    ends. Writing goes to a temporary file that is renamed over the old one, so an interrupted save never leaves
    a corrupt ``last.ckpt`` (a temporary file left by a killed save is removed by the next save). A run stopped by
    the NaN guard keeps the last good checkpoint (nothing is written).

    SIGTERM (cluster preemption, ``kill``) or SIGINT (Ctrl-C) during training finishes the current iteration,
    writes ``last.ckpt`` and stops the run normally (``train.py`` exits 0); a second signal is handled as usual."""

    def __init__(self, dirpath: str | os.PathLike, every_n_iterations: int = 500) -> None:
        self.dirpath = Path(dirpath)
        self.every = every_n_iterations
        self._last_saved = -1
        self.stop_signal: int | None = None
        self._previous_handlers: dict[int, object] = {}
        self._owner_pid = os.getpid()

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
            for stale in self.dirpath.glob(".last.ckpt.tmp*"):  # left by a save that was killed
                stale.unlink(missing_ok=True)
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizers, schedulers, loops
        except BaseException:
            if trainer.is_global_zero:
                tmp.unlink(missing_ok=True)  # last.ckpt stays the previous good one
            raise
        if trainer.is_global_zero:
            os.replace(tmp, self.last_path)
        trainer.strategy.barrier("IterationCheckpoint.save")
        self._last_saved = module.iteration

    # ------------------------------------------------------------------------------------------ signals
    def _request_stop(self, signum: int, frame) -> None:
        if os.getpid() != self._owner_pid:
            # A forked DataLoader worker inherited this handler: it must end as the signal asks (the loader
            # terminates its workers with SIGTERM), not swallow it and print about a checkpoint it cannot write.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        log.warning("received %s: saving last.ckpt after this iteration and stopping", signal.Signals(signum).name)
        self.stop_signal = signum
        self._restore_handlers()  # a second signal acts as usual (e.g. a second Ctrl-C interrupts at once)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():
            self._owner_pid = os.getpid()
            for signum in STOP_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._request_stop)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every > 0 and pl_module.iteration % self.every == 0:
            self.save(trainer)
        if self.stop_signal is not None:  # (under DDP every rank must receive the signal, as schedulers send it)
            self.save(trainer)
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handlers()
        if not trainer.fast_dev_run:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()
