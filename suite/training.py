"""``train(cfg)``: compose → instantiate datamodule, method, trainer, loggers, callbacks → fit. Plain code under
the thin ``@hydra.main`` in train.py, so tests call it directly with a composed config; callbacks come from
``cfg.callbacks`` (``conf/callbacks/``) and from the caller (``train(cfg, callbacks=[...])``)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from suite.callbacks import IterationCheckpoint, RngResume, Validation
from suite.checkpoints import check_resume_compatible, read_checkpoint
from suite.config import data_kwargs, to_plain
from suite.errors import ConfigError, SuiteError
from suite.memory import check_memory
from suite.speed import FastPaths
from suite.strategy import settings_for_this_machine
from suite.sweeps import check_objective, objective_value, runs_validation

log = logging.getLogger(__name__)
EVALUATE_CHECKPOINTS = ("last", "best")  # what `evaluate_after` scores (conf/train.yaml evaluate_checkpoint)
# Lightning's own deprecation noise, not actionable for users of the suite.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# The module's on_after_batch_transfer (channels_last batches) is meant to apply with any datamodule.
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`.*")


def instantiate(cfg: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets the suite's own one-sentence errors through unwrapped (Hydra wraps
    every exception raised by a target in an InstantiationException with a long preamble)."""
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, SuiteError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def build_datamodule(cfg: DictConfig, view: str) -> pl.LightningDataModule:
    """The datamodule of ``cfg.data`` offering ``view`` (raises DatasetError when it cannot)."""
    return instantiate(data_kwargs(cfg.data), view=view)


def build_method(cfg: DictConfig, data_info: dict) -> pl.LightningModule:
    """The method of ``cfg.method`` for data described by ``data_info``; nets are built inside from their configs."""
    method_cfg = OmegaConf.to_container(cfg.method, resolve=True)
    return instantiate(method_cfg, data_info=data_info, _recursive_=False, _convert_="all")


def build_loggers(cfg: DictConfig) -> list:
    if not cfg.get("logger"):
        return []
    return [instantiate(lcfg) for lcfg in cfg.logger.values() if lcfg and "_target_" in lcfg]


def build_callbacks(cfg: DictConfig, progress_bar: bool = True) -> list[pl.Callback]:
    """The callbacks of ``cfg.callbacks`` in config order (an entry that is null or has no ``_target_`` is
    skipped); a progress bar only when ``progress_bar`` (``trainer.enable_progress_bar``) is on — Lightning
    refuses a progress-bar callback with the flag off."""
    built = [instantiate(entry) for entry in (cfg.get("callbacks") or {}).values() if entry and "_target_" in entry]
    return [c for c in built if progress_bar or not isinstance(c, ProgressBar)]


def validate(cfg: DictConfig) -> None:
    batch = cfg.data.get("batch_size", 1)
    if not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"data.batch_size must be a positive integer, got {batch!r}.")
    steps = cfg.trainer.get("max_steps", -1)
    if steps is not None and (steps == 0 or steps < -1):
        raise ConfigError(f"trainer.max_steps (training iterations) must be positive, or -1 to train by trainer.max_epochs; got {steps}.")
    if steps in (None, -1) and not cfg.trainer.get("max_epochs") and not cfg.trainer.get("fast_dev_run"):
        raise ConfigError("set trainer.max_steps (iterations) or trainer.max_epochs; both are unset.")


def check_sync_batchnorm(cfg: DictConfig, module: torch.nn.Module) -> None:
    """SyncBatchNorm runs on GPUs only: a CPU run with ``trainer.sync_batchnorm`` and batch-norm layers stops here
    with what to change, not deep inside Lightning."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())
    if cfg.trainer.get("sync_batchnorm") and on_cpu and has_bn:
        raise ConfigError(
            f"trainer.sync_batchnorm=true needs GPUs (PyTorch's SyncBatchNorm does not run on the CPU) and method="
            f"{cfg.method.name} has batch-norm layers; for CPU DDP set trainer.sync_batchnorm=false (their statistics "
            "then stay per rank) or method.generator.norm=instance / method.discriminator.norm=instance."
        )


def training_device(trainer_cfg: dict) -> torch.device:
    """The device rank 0 trains on: a GPU when the accelerator asks for one (or ``auto`` finds one), else the CPU."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def train(cfg: DictConfig, callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    """Train one run with the callbacks of ``cfg.callbacks`` plus ``callbacks`` (after them, in order), and always
    the fast paths of ``cfg.speed`` and :class:`~suite.callbacks.RngResume` (exact resume). Returns ``{"run_dir",
    "checkpoint" (``last.ckpt`` of the checkpoint callback; None without one), "iteration", "stop_signal",
    "objective" (the ``val/*`` metric named by ``cfg.objective`` at the last validation; None when unset: see
    suite/sweeps.py), "module", "datamodule", "trainer"}``. Before training, :func:`suite.memory.check_memory` (``memory_check``)
    estimates the peak memory from a one-image probe iteration and stops (or warns) when it cannot fit."""
    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    datamodule = build_datamodule(cfg, cfg.method.view)
    module = build_method(cfg, datamodule.info)
    module.run_config = to_plain(cfg)
    check_sync_batchnorm(cfg, module)
    if cfg.get("ckpt_path"):
        ckpt = read_checkpoint(cfg.ckpt_path, expected_method=cfg.method.name)
        check_resume_compatible(ckpt, datamodule.info, cfg.ckpt_path)
        del ckpt
    speed = cfg.get("speed") or {}
    fast_paths = FastPaths(speed.get("channels_last", "auto"), speed.get("compile", False), speed.get("compile_mode"),
                           speed.get("matmul_precision", "high"))
    loggers = build_loggers(cfg)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.update(settings_for_this_machine(trainer_cfg))  # devices × nodes > 1: DDP fit for GAN updates
    # The method counts its own iterations and stops the trainer; Lightning's max_steps counts optimizer steps.
    trainer_cfg.update(max_steps=-1, max_epochs=trainer_cfg.get("max_epochs") or -1)
    # The datamodules shard their seeded train sampler per rank themselves; Lightning's DistributedSamplerWrapper
    # would shuffle it a second time (so R ranks of B would not read one process's batch of R·B).
    datamodule.shard_train = bool(trainer_cfg.pop("use_distributed_sampler", True))
    trainer_cfg["use_distributed_sampler"] = False
    if trainer_cfg["max_epochs"] == -1 and module.max_iterations == -1 and not trainer_cfg.get("fast_dev_run"):
        raise ConfigError("set trainer.max_steps (iterations) or trainer.max_epochs.")
    if hasattr(datamodule, "dataset"):  # fit the machine, or say so in one sentence (suite/memory.py)
        check_memory(cfg.get("memory_check", "stop"), module, datamodule, training_device(trainer_cfg),
                     trainer_cfg.get("precision", "32-true"), data_name=cfg.data.get("name", "?"))
    all_callbacks = [fast_paths, RngResume(), *build_callbacks(cfg, trainer_cfg.get("enable_progress_bar", True)),
                     *callbacks]
    checkpoint = next((c for c in all_callbacks if isinstance(c, IterationCheckpoint)), None)
    validation = next((c for c in all_callbacks if isinstance(c, Validation)), None)
    if cfg.get("objective") is not None:
        check_objective(cfg.objective, validation, cfg.get("val_every"))
    check_evaluate_checkpoint(cfg.get("evaluate_checkpoint", "last"), checkpoint, validation, cfg.get("val_every"),
                              bool(cfg.get("evaluate_after")))
    trainer: pl.Trainer = instantiate(
        trainer_cfg,
        default_root_dir=str(run_dir),
        logger=loggers or False,
        callbacks=all_callbacks,
        enable_checkpointing=False,
    )
    for logger in loggers:
        logger.log_hyperparams(module.run_config)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    finally:
        _finish_wandb(loggers)
    objective = None  # a run stopped by a signal, or a fast_dev_run, has no objective (the sweeper: a failed trial)
    stopped = checkpoint is not None and checkpoint.stop_signal is not None
    if cfg.get("objective") is not None and not stopped and not trainer.fast_dev_run:
        objective = objective_value(cfg.objective, validation, module.iteration)
    return {
        "run_dir": run_dir,
        "checkpoint": checkpoint.last_path if checkpoint is not None else None,
        "best_checkpoint": next(iter(checkpoint.best_paths()), None) if checkpoint is not None else None,
        "iteration": module.iteration,
        "stop_signal": checkpoint.stop_signal if checkpoint is not None else None,
        "objective": objective,
        "module": module,
        "datamodule": datamodule,
        "trainer": trainer,
    }


def check_evaluate_checkpoint(which: Any, checkpoint: Any, validation: Any, val_every: Any, evaluate_after: bool) -> None:
    """Before training: ``evaluate_checkpoint`` is ``last`` or ``best``, and with ``evaluate_after`` a ``best`` has a
    validation to rank by (without ``evaluate_after`` nothing is scored, so a recipe's ``best`` does not bind)."""
    if which not in EVALUATE_CHECKPOINTS:
        raise ConfigError(f"evaluate_checkpoint must be one of {', '.join(EVALUATE_CHECKPOINTS)}, got {which!r}.")
    if evaluate_after and which == "best" and (not runs_validation(validation) or checkpoint is None
                                               or not checkpoint.save_top_k):
        raise ConfigError(
            "evaluate_checkpoint=best scores the best checkpoint by the in-training validation: keep callbacks.validation "
            f"and callbacks.checkpoint (save_top_k ≥ 1) and set val_every > 0 (got {val_every}), or use evaluate_checkpoint=last."
        )


def evaluated_checkpoint(result: dict, which: str) -> Any:
    """The checkpoint ``evaluate_after`` scores: ``last.ckpt``, or the best ranked by the validation (``best``); a run
    that ended before its first ranked validation has none, so it falls back to ``last.ckpt`` and says so."""
    if which == "best" and result.get("best_checkpoint") is not None:
        return result["best_checkpoint"]
    if which == "best":
        log.warning("evaluate_checkpoint=best: no validation ranked a checkpoint before training ended; scoring last.ckpt")
    return result["checkpoint"]


def redact_hydra_files(hydra_dir: str | Path) -> None:
    """Rewrite ``<run>/.hydra/{config,hydra,overrides}.yaml`` (written by Hydra itself before the run starts)
    with credential-looking keys redacted: a key passed on the command line (``+logger.wandb.api_key=…``) or in
    ``hydra.job.env_set.WANDB_API_KEY`` would otherwise sit there in clear text."""
    from suite.config import _SECRET, strip_secrets

    def redact(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: redact(v) for k, v in strip_secrets({k: v for k, v in value.items()}).items()}
        if isinstance(value, list):
            return [redact(v) for v in value]
        if isinstance(value, str) and "=" in value and _SECRET.search(value.split("=", 1)[0]):
            return value.split("=", 1)[0] + "=<redacted>"  # an override string key=value
        return value

    for path in Path(hydra_dir).glob("*.yaml"):
        text = path.read_text()
        if not _SECRET.search(text):
            continue
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(redact(data))))


def _finish_wandb(loggers: list) -> None:
    """Close the W&B run so the next job of a multirun gets its own (lightning_pitfalls.md §9)."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()
