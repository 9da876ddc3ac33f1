"""In-training validation: the method's headline metrics on a fixed held-out slice every ``every_n_iterations``
iterations, logged as ``val/<metric>`` to every logger (CSV, TensorBoard, W&B) and kept for the best-k
checkpoints (:class:`~suite.callbacks.IterationCheckpoint`).

The metrics are evaluate.py's (``suite.evaluation``), computed with the same code (``metrics/``) on the first
``num_images`` images of the validation split (the same images every time):

- ``val/accuracy_target`` — the evaluation classifier (``metrics.eval_classifier``, the same cache key as
  evaluate.py, so either one trains it once and both read it) on the translations; ``val/fid_classifier`` — FID on
  that classifier's features, translations against the slice's real images (a slice of a few hundred images
  biases FID upward: compare it along one run, not with evaluate.py's test-split number).
- ``val/psnr_gt``, ``val/ssim_gt`` (ground truth exists: the embedded data), ``val/mask_iou`` (methods with an
  attention mask) and ``val/background_l1`` (true change region known).
- ``val/seconds`` — the time this validation took; the fraction of the training time spent validating is checked
  against ``max_fraction`` and a warning names the knobs when it is exceeded.

Validation never moves the training: it runs with the module in eval mode and every RNG state (torch, CUDA,
numpy, python) restored afterwards. Rank 0 computes, the other ranks receive the numbers (the best-k decision
must be the same on every rank, since every rank takes part in writing a checkpoint).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_utilities.core.apply_func import apply_to_collection

from metrics.streaming import MetricBook
from suite.callbacks.rng import collect_rng_states, restore_rng_states

log = logging.getLogger(__name__)

# A metric is better when lower if its name starts with one of these (distances and errors); higher otherwise
# (accuracies, PSNR, SSIM, IoU).
LOWER_IS_BETTER = ("fid", "kid", "mse", "background_l1", "seconds")


def metric_mode(name: str) -> str:
    """``min`` or ``max``: which way ``name`` (``val/psnr_gt``, ``fid_classifier`` …) improves."""
    base = name.split("/")[-1]
    return "min" if base.startswith(LOWER_IS_BETTER) else "max"


class Validation(pl.Callback):
    """Validation every ``every_n_iterations`` of the method's counter, and once more when training ends (if the
    run got past the first validation point; a short debug run is not validated).

    Args:
        every_n_iterations: iterations between validations (0 = off).
        num_images: size of the fixed held-out slice (the first images of the validation split).
        classifier: ``{enabled, arch, epochs, cache_dir}`` — the evaluation classifier (evaluate.yaml's
            ``classifier``); when enabled and not cached it is trained at the first validation (its time is
            logged once as ``val/classifier_seconds`` and not charged to validation).
        fid: compute ``val/fid_classifier`` (needs the classifier).
        max_fraction: the share of training time validation may take before a warning (0.05 = 5 %).
    """

    def __init__(self, every_n_iterations: int = 200, num_images: int = 256, classifier: dict | None = None,
                 fid: bool = True, max_fraction: float = 0.05) -> None:
        self.every = int(every_n_iterations or 0)
        self.num_images = int(num_images)
        self.classifier_cfg = {"enabled": True, "arch": "small", "epochs": 5, "cache_dir": None, **(classifier or {})}
        self.use_fid = bool(fid)
        self.max_fraction = float(max_fraction)
        self.latest: dict[str, float] = {}
        self.latest_iteration = -1
        self.seconds = 0.0  # validation time so far (classifier fitting excluded)
        self._slice: list[dict] | None = None
        self._classifier: Any = None
        self._labels: Any = None
        self._fid: Any = None
        self._started: float | None = None
        self._warned = False

    # ------------------------------------------------------------------------------------------ schedule
    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every and pl_module.iteration % self.every == 0:
            self.run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.every and pl_module.iteration >= self.every and not trainer.fast_dev_run:
            self.run(trainer, pl_module)

    # ------------------------------------------------------------------------------------------ running
    def run(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        """Validate now (once per iteration); log and return the ``val/*`` numbers."""
        if self.latest_iteration == pl_module.iteration:
            return self.latest
        metrics: dict[str, float] | None = None
        if trainer.is_global_zero:
            states = collect_rng_states()
            was_training = pl_module.training
            pl_module.eval()
            try:
                metrics = self._measure(trainer, pl_module)
            finally:
                pl_module.train(was_training)
                restore_rng_states(states)
        if trainer.world_size > 1:
            metrics = trainer.strategy.broadcast(metrics, src=0)
        self.latest, self.latest_iteration = dict(metrics or {}), pl_module.iteration
        if trainer.is_global_zero and self.latest:
            for logger in trainer.loggers:
                logger.log_metrics({**self.latest, "val/iteration": float(pl_module.iteration)}, step=pl_module.iteration)
            self._check_budget()
        return self.latest

    @torch.no_grad()
    def _measure(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        from suite.evaluation import (
            image_metrics,  # evaluate.py's own (suite.evaluation imports suite.training)
        )

        batches = self.held_out_slice(trainer)
        if not batches:
            return {}
        extra: dict[str, float] = {}
        if self._classifier is None and self.classifier_cfg.get("enabled"):
            fit_start = time.perf_counter()
            with torch.enable_grad():  # fitting it (first use, not cached) needs gradients
                self._prepare_classifier(trainer, pl_module)
            extra["val/classifier_seconds"] = time.perf_counter() - fit_start
        start = time.perf_counter()
        book = MetricBook()
        for cpu_batch in batches:
            batch = apply_to_collection(cpu_batch, torch.Tensor, lambda t: t.to(pl_module.device))
            out = pl_module.translate(batch["image"], pl_module.sample_target(batch))
            fake = out["image"].float().clamp(-1, 1)
            per_image = image_metrics(batch, out, fake)
            if self._classifier is not None:
                per_image["accuracy_target"] = self._classifier.accuracy(fake, self._labels.target(batch)).float()
            book.update(per_image)
            if self._fid is not None:
                self._fid.update_real(batch["ref"] if torch.is_tensor(batch.get("ref")) else batch["image"])
                self._fid.update_fake(fake)
        means = book.means()
        found = {f"val/{k}": v for k, v in means.items() if "/" not in k}
        if self._fid is not None:
            found.update({f"val/{k}": v for k, v in self._fid.compute().items() if k.startswith("fid")})
            self._fid.needs_real = False  # the slice's real statistics are kept (reset_real_features=False)
            self._fid.fid.reset()
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        return {**found, "val/seconds": elapsed, **extra}

    def held_out_slice(self, trainer: pl.Trainer) -> list[dict]:
        """The first ``num_images`` images of the validation split, read once and kept on the CPU."""
        if self._slice is None:
            dm = getattr(trainer, "datamodule", None)
            self._slice = []
            if dm is None or not hasattr(dm, "val_dataloader") or self.num_images <= 0:
                return self._slice
            seen = 0
            for batch in dm.val_dataloader():
                take = min(self.num_images - seen, batch["image"].shape[0])
                self._slice.append(apply_to_collection(batch, torch.Tensor, lambda t, n=take: t[:n].clone()))
                seen += take
                if seen >= self.num_images:
                    break
        return self._slice

    def _prepare_classifier(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """evaluate.py's evaluation classifier for this data (loaded from its cache, or trained and cached) and,
        with ``fid``, an FID of its features whose real side is this slice."""
        from metrics.fid import ClassifierFeatures, FidKid
        from suite.evaluation import TargetLabels, target_classifier

        dm = trainer.datamodule
        labels = TargetLabels.for_run(dm.info, pl_module)
        if labels is None:
            self.classifier_cfg["enabled"] = False  # this view has no target label to score (evaluate.py: same)
            return
        cfg = self.classifier_cfg
        self._classifier = target_classifier(labels, dm, cfg, pl_module.device)
        self._labels = labels
        if self.use_fid:
            self._fid = FidKid(ClassifierFeatures(self._classifier.model), "classifier", kid=False,
                               device=pl_module.device)

    def _check_budget(self) -> None:
        if self._started is None:
            return
        total = time.perf_counter() - self._started
        training = max(total - self.seconds, 1e-9)
        log.info("validation so far: %.1f s, %.1f %% of the %.1f s of training", self.seconds,
                 100 * self.seconds / training, training)
        if not self._warned and self.seconds / training > self.max_fraction:
            self._warned = True
            log.warning(
                "validation has taken %.1f %% of the training time so far (%.1f s of %.1f s; budget %.0f %%): raise "
                "val_every or lower callbacks.validation.num_images.", 100 * self.seconds / training, self.seconds,
                training, 100 * self.max_fraction)

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"latest": self.latest, "latest_iteration": self.latest_iteration}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.latest = dict(state_dict.get("latest") or {})
        self.latest_iteration = int(state_dict.get("latest_iteration", -1))
