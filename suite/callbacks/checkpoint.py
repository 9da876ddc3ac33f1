"""Iteration-based, atomic checkpoint writing (``last.ckpt`` and the best k by a validation metric) that also ends
a run cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from suite.callbacks.validation import Validation, metric_mode
from suite.errors import ConfigError

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# ``monitor: auto``: the first of these the validation reports. The true counterfactual where ground truth exists
# (the embedded data), else realism on the classifier's features, else the target accuracy.
AUTO_MONITOR = ("val/psnr_gt", "val/fid_classifier", "val/accuracy_target")


class IterationCheckpoint(pl.Callback):
    """Writes ``<dirpath>/last.ckpt`` every ``every_n_iterations`` of the method's own counter and when training
    ends. Writing goes to a temporary file that is renamed over the old one, so an interrupted save never leaves
    a corrupt ``last.ckpt`` (a temporary file left by a killed save is removed by the next save). A run stopped by
    the NaN guard keeps the last good checkpoint (nothing is written).

    SIGTERM (cluster preemption, ``kill``) or SIGINT (Ctrl-C) during training finishes the current iteration,
    writes ``last.ckpt`` and stops the run normally (``train.py`` exits 0); a second signal is handled as usual.

    Best checkpoints: with ``save_top_k`` > 0 and a :class:`~suite.callbacks.Validation` callback, each validation
    whose ``monitor`` value is among the k best so far is written (atomically, the same full state as
    ``last.ckpt``, so a run resumes from it exactly) to ``best-<metric>-<iteration>.ckpt``; the one it pushes out
    of the k best is deleted. ``monitor: auto`` takes the first of :data:`AUTO_MONITOR` the first validation
    reports; ``mode: auto`` follows the metric (:func:`~suite.callbacks.validation.metric_mode`). The k best
    travel in the checkpoint, so a resumed run keeps ranking against them."""

    def __init__(self, dirpath: str | os.PathLike, every_n_iterations: int = 500, monitor: str | None = "auto",
                 mode: str = "auto", save_top_k: int = 2) -> None:
        if mode not in ("auto", "min", "max"):
            raise ConfigError(f"callbacks.checkpoint.mode must be auto, min or max, got {mode!r}.")
        self.dirpath = Path(dirpath)
        self.every = every_n_iterations
        self.monitor = monitor
        self.mode = mode
        self.save_top_k = int(save_top_k or 0)
        self.best: list[tuple[float, int, str]] = []  # (value, iteration, file name), best first
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
        self.write(trainer, self.last_path)
        self._last_saved = module.iteration

    def write(self, trainer: pl.Trainer, path: Path) -> None:
        """The full state (optimizers, schedulers, loops, callbacks) to ``path``, through a temporary file renamed
        over it: an interrupted write leaves the previous file as it was."""
        tmp = self.dirpath / f".{path.name}.tmp{os.getpid()}"
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            for stale in self.dirpath.glob(".*.ckpt.tmp*"):  # left by a save that was killed
                stale.unlink(missing_ok=True)
        try:
            trainer.save_checkpoint(tmp, weights_only=False)
        except BaseException:
            if trainer.is_global_zero:
                tmp.unlink(missing_ok=True)
            raise
        if trainer.is_global_zero:
            os.replace(tmp, path)
        trainer.strategy.barrier("IterationCheckpoint.write")

    # ------------------------------------------------------------------------------------ best checkpoints
    def best_paths(self) -> list[Path]:
        """The best checkpoints kept, best first."""
        return [self.dirpath / name for _value, _iteration, name in self.best]

    def consider_best(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Write ``best-<metric>-<iteration>.ckpt`` when the validation just done ranks among the k best."""
        validation = next((c for c in trainer.callbacks if isinstance(c, Validation)), None)
        if self.save_top_k <= 0 or validation is None or validation.latest_iteration != pl_module.iteration:
            return
        if self.monitor in (None, "auto"):
            self.monitor = next((m for m in AUTO_MONITOR if m in validation.latest), None)
            if self.monitor is None:
                return
            log.info("best checkpoints by %s", self.monitor)
        value = validation.latest.get(self.monitor)
        if value is None or value != value or any(it == pl_module.iteration for _v, it, _n in self.best):
            return  # not reported (or NaN), or this iteration is already kept
        mode = metric_mode(self.monitor) if self.mode == "auto" else self.mode
        sign = 1.0 if mode == "min" else -1.0
        if len(self.best) >= self.save_top_k and sign * value >= sign * self.best[-1][0]:
            return
        name = f"best-{self.monitor.removeprefix('val/').replace('/', '_')}-{pl_module.iteration:07d}.ckpt"
        ranked = sorted([*self.best, (float(value), pl_module.iteration, name)], key=lambda e: (sign * e[0], e[1]))
        dropped, self.best = ranked[self.save_top_k:], ranked[: self.save_top_k]
        self.write(trainer, self.dirpath / name)  # the state it holds already lists itself among the best
        if trainer.is_global_zero:
            for _value, _iteration, old in dropped:
                (self.dirpath / old).unlink(missing_ok=True)

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best": [list(entry) for entry in self.best]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") not in (None, "auto") and self.monitor in (None, "auto"):
            self.monitor = state_dict["monitor"]
        if state_dict.get("monitor") == self.monitor:
            self.best = [(float(v), int(i), str(n)) for v, i, n in state_dict.get("best", [])]

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
        self.consider_best(trainer, pl_module)
        if self.every > 0 and pl_module.iteration % self.every == 0:
            self.save(trainer)
        if self.stop_signal is not None:  # (under DDP every rank must receive the signal, as schedulers send it)
            self.save(trainer)
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handlers()
        if not trainer.fast_dev_run:
            self.consider_best(trainer, pl_module)
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()
