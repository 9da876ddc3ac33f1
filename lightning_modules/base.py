"""What every GAN of the suite shares: manual multi-optimizer steps, the iteration counter that drives every
schedule, image pools, linear lr decay, optional generator EMA, the NaN/inf guard, sample grids, and the
checkpoint bookkeeping. A method subclasses ``GANModule`` and supplies only its networks, its losses
(``train_iteration``) and ``translate``.

Contract for subclasses:
- ``__init__``: call ``super().__init__(**common)`` first, build nets (``self.build_net(cfg, **runtime_kwargs)``),
  register pools (``self.register_pool``), then ``self.build_ema([...net attribute names])`` if wanted.
- ``optimizer_groups() -> dict[name, params]``: one Adam per entry, in order (``optim.lr_<name>`` overrides its lr).
- ``train_iteration(batch) -> dict[str, Tensor]``: one iteration of the paper's algorithm; call
  ``self.optimize(name, closure)`` for each update; return scalars to log (keys like ``loss/G/cycle``).
- ``translate(images, target, **kw) -> dict`` with at least ``image`` (and ``mask``, ``flow``, ``content`` where
  the method has them).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lightning_modules.pool import ImagePool
from lightning_modules.samples import save_sample_grid
from lightning_modules.schedules import linear_decay_factor
from suite import __version__
from suite.errors import CheckpointError, ConfigError, DatasetError, DivergenceError

CHECKPOINT_FORMAT = 1

Closure = Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]


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


def to_container(value: Any) -> Any:
    """DictConfig/ListConfig → plain dict/list (checkpoints must hold only plain python + tensors)."""
    if isinstance(value, DictConfig) or OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


class GANModule(pl.LightningModule):
    """Base LightningModule for the suite's GANs (manual optimization).

    Args (common to every method, from ``conf/method/*.yaml``):
        name: the method's name as used on the command line (``aggan``, ``cyclegan`` …); checked on resume.
        view: the datamodule view the method trains on.
        data_info: ``datamodule.info`` (domain/attribute names, image size) — stored, so a checkpoint alone
            rebuilds the module.
        optim: ``{lr, betas, weight_decay, fused}`` shared by every optimizer; per-group ``lr_<name>`` overrides.
        schedule: ``{decay_start_fraction}`` for linear lr decay to 0 at ``max_iterations``.
        max_iterations: training length in iterations (one iteration = one batch = every optimizer step of the
            paper's algorithm once); ``trainer.max_steps`` on the command line sets it.
        ema: ``{enabled, decay}`` exponential moving average of the generators, used by ``translate`` when on.
        nan_guard: ``stop`` (raise with loss name and iteration), ``skip`` (drop the step, count it) or ``off``.
        sample_every: iterations between sample grids (0 = only at the end).
        seed: seeds pools and other module-owned randomness.
    """

    supported_views: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        view: str,
        data_info: dict,
        optim: dict,
        schedule: dict,
        max_iterations: int,
        ema: dict | None = None,
        nan_guard: str = "stop",
        sample_every: int = 500,
        num_samples: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if view not in self.supported_views:
            raise ConfigError(
                f"method={name} trains on the view(s) {', '.join(self.supported_views)}, not '{view}'; set method.view to one of them."
            )
        if nan_guard not in ("stop", "skip", "off"):
            raise ConfigError(f"method.nan_guard must be stop, skip or off, got '{nan_guard}'.")
        self.method_name = name
        self.view = view
        self.data_info = to_container(data_info)
        self.optim_cfg = to_container(optim)
        self.schedule_cfg = to_container(schedule)
        self.max_iterations = int(max_iterations) if max_iterations is not None else -1
        self.ema_cfg = to_container(ema) or {"enabled": False, "decay": 0.999}
        self.nan_guard = nan_guard
        self.sample_every = sample_every
        self.num_samples = num_samples
        self.seed = seed
        self.iteration = 0
        self.skipped_steps = 0
        self.pools: dict[str, ImagePool] = {}
        self.ema_nets = nn.ModuleDict()
        self.run_config: dict | None = None  # the whole Hydra config, attached by train.py, saved in checkpoints
        self._optimizer_names: list[str] = []
        self._sample_batch: dict | None = None
        self._rng_to_restore: dict | None = None  # set by on_load_checkpoint, applied before the first resumed batch
        self.channels_last_inputs = False  # set by suite.speed when speed.channels_last is on
        self._validate_common()

    # ----------------------------------------------------------------------------------------- construction
    def _validate_common(self) -> None:
        lr = self.optim_cfg.get("lr", 0)
        if not (isinstance(lr, int | float) and lr > 0):
            raise ConfigError(f"method.optim.lr must be a positive number, got {lr!r}.")
        if self.max_iterations == 0 or self.max_iterations < -1:
            raise ConfigError(
                f"the number of training iterations (trainer.max_steps) must be positive (or -1 to train by epochs), got {self.max_iterations}."
            )

    def require_info(self, key: str, what: str) -> Any:
        """A datamodule fact the method needs (e.g. ``domain_names``), or one clear sentence when missing."""
        if key not in self.data_info:
            raise DatasetError(
                f"method={self.method_name} needs {what}; data={self.data_info.get('name', '?')} with view={self.view} does not provide '{key}'."
            )
        return self.data_info[key]

    @staticmethod
    def build_net(cfg: dict, **runtime: Any) -> nn.Module:
        """Instantiate a network from its ``_target_`` config (kept in the hyperparameters), adding runtime
        arguments that follow from the data (number of domains, image size …)."""
        return hydra.utils.instantiate(cfg, **runtime)

    def register_pool(self, name: str, size: int) -> ImagePool:
        pool = ImagePool(size, seed=self.seed + len(self.pools) + 1)
        self.pools[name] = pool
        return pool

    def build_ema(self, net_names: Iterable[str]) -> None:
        """Keep an EMA copy of each named generator (StarGAN v2 pattern; outside every optimizer)."""
        if not self.ema_cfg.get("enabled", False):
            return
        for name in net_names:
            shadow = copy.deepcopy(getattr(self, name))
            shadow.requires_grad_(False)
            self.ema_nets[name] = shadow

    def inference_net(self, name: str) -> nn.Module:
        """The network ``translate`` should use: the EMA copy when EMA is on, else the trained one."""
        return self.ema_nets[name] if name in self.ema_nets else getattr(self, name)

    # ------------------------------------------------------------------------------------------ optimizers
    def optimizer_groups(self) -> dict[str, Any]:
        raise NotImplementedError

    def configure_optimizers(self):
        groups = self.optimizer_groups()
        self._optimizer_names = list(groups)
        betas = tuple(self.optim_cfg.get("betas", (0.5, 0.999)))
        optimizers, schedulers = [], []
        decay_start = float(self.schedule_cfg.get("decay_start_fraction", 1.0))
        for name, params in groups.items():
            lr = float(self.optim_cfg.get(f"lr_{name}", self.optim_cfg["lr"]))
            params = list(params)
            kwargs: dict[str, Any] = {"lr": lr, "betas": betas, "weight_decay": self.optim_cfg.get("weight_decay", 0.0)}
            fused = self.optim_cfg.get("fused", "auto")
            if fused == "auto":
                fused = torch.cuda.is_available()
            if fused:
                kwargs["fused"] = True
            opt = torch.optim.Adam(params, **kwargs)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda _epoch, m=self: linear_decay_factor(m.iteration, m.max_iterations, decay_start)
            )
            optimizers.append(opt)
            schedulers.append(sched)
        return optimizers, schedulers

    def named_optimizer(self, name: str):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        return opts[self._optimizer_names.index(name)]

    def optimize(self, name: str, closure: Closure) -> dict[str, torch.Tensor]:
        """One update of optimizer ``name``: with the other optimizers' parameters frozen (no wasted gradients),
        compute ``loss, parts = closure()``, guard against NaN/inf, backward, step. Returns ``parts`` prefixed
        ``loss/<name>/``."""
        opt = self.named_optimizer(name)
        with self.toggled_optimizer(opt):
            loss, parts = closure()
            logged = {f"loss/{name}/{k}": v.detach() for k, v in parts.items()}
            logged[f"loss/{name}/total"] = loss.detach()
            if not self._loss_is_finite(name, loss, parts):
                return logged
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if not self._gradients_are_finite(name, opt):
                opt.zero_grad(set_to_none=True)
                return logged
            opt.step()
        return logged

    def _gradients_are_finite(self, name: str, opt) -> bool:
        """NaN/inf in any gradient of optimizer ``name`` (one fused norm per device, one host sync per step)."""
        if self.nan_guard == "off":
            return True
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return True
        total = torch.stack([n.float() for n in torch._foreach_norm(grads)]).sum()
        if bool(torch.isfinite(total)):
            return True
        if self.nan_guard == "skip":
            self.skipped_steps += 1
            return False
        raise DivergenceError(
            f"the gradient of {name} became {total.item()} at iteration {self.iteration} (its losses were finite); the run "
            f"stopped and the last good checkpoint is kept (set method.nan_guard=skip to drop such steps instead, or lower the learning rate)."
        )

    def _all_ranks_agree(self, decision: bool) -> bool:
        """``decision`` on every rank (DDP): one rank skipping a backward the others run would hang the all-reduce."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None or trainer.world_size <= 1:
            return decision
        return bool(trainer.strategy.reduce_boolean_decision(decision, all=True))

    def _loss_is_finite(self, name: str, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> bool:
        if self.nan_guard == "off" or self._all_ranks_agree(bool(torch.isfinite(loss.detach()).all())):
            return True
        bad = [k for k, v in parts.items() if not bool(torch.isfinite(v.detach()).all())] or ["total"]
        if self.nan_guard == "skip":
            self.skipped_steps += 1
            return False
        raise DivergenceError(
            f"loss {name}/{bad[0]} became {loss.detach().float().item()} at iteration {self.iteration}; the run stopped and "
            f"the last good checkpoint is kept (set method.nan_guard=skip to drop such steps instead, or lower the learning rate)."
        )

    # --------------------------------------------------------------------------------------------- training
    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_fit_start(self) -> None:
        if self.max_iterations == -1:
            self.max_iterations = int(self.trainer.num_training_batches * max(self.trainer.max_epochs or 1, 1))
        for pool in self.pools.values():
            pool.images = [img.to(self.device) for img in pool.images]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.channels_last_inputs:
            from suite.speed import to_channels_last

            return to_channels_last(batch)
        return batch

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Restored here, not in on_load_checkpoint: between the two Lightning builds the data iterators, which
        # draws from the global generator (an uninterrupted run did that draw at the epoch start, not mid-epoch).
        if self._rng_to_restore is not None:
            restore_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def training_step(self, batch: dict, batch_idx: int) -> None:
        logs = self.train_iteration(batch)
        self.iteration += 1
        for sched in self._schedulers():
            sched.step()
        self._update_ema()
        logs["iteration"] = torch.tensor(float(self.iteration))
        opt_names = self._optimizer_names
        for name in opt_names:
            logs[f"lr/{name}"] = torch.tensor(self.named_optimizer(name).param_groups[0]["lr"])
        if self.nan_guard == "skip":
            logs["skipped_steps"] = torch.tensor(float(self.skipped_steps))
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True, on_epoch=False, batch_size=batch["image"].shape[0])
        if self.sample_every and self.iteration % self.sample_every == 0:
            self.log_samples()
        if self.max_iterations > 0 and self.iteration >= self.max_iterations:
            self.trainer.should_stop = True

    def _schedulers(self) -> list:
        scheds = self.lr_schedulers()
        if scheds is None:
            return []
        return scheds if isinstance(scheds, list) else [scheds]

    @torch.no_grad()
    def _update_ema(self) -> None:
        if not len(self.ema_nets):
            return
        decay = float(self.ema_cfg.get("decay", 0.999))
        for name, shadow in self.ema_nets.items():
            live = getattr(self, name)
            s_params, l_params = list(shadow.parameters()), list(live.parameters())
            torch._foreach_lerp_(s_params, [p.detach() for p in l_params], 1 - decay)
            for sb, lb in zip(shadow.buffers(), live.buffers()):
                sb.copy_(lb)

    def on_train_end(self) -> None:
        self.log_samples()

    # ------------------------------------------------------------------------------------------ translation
    def translate(self, images: torch.Tensor, target: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validation_step(self, batch: dict, batch_idx: int) -> None:  # sample grids come from on_train_end
        return None

    # -------------------------------------------------------------------------------------------- samples
    def _fixed_sample_batch(self) -> dict | None:
        if self._sample_batch is None:
            dm = getattr(self.trainer, "datamodule", None)
            if dm is None:
                return None
            loader = dm.val_dataloader() if hasattr(dm, "val_dataloader") else None
            if loader is None:
                return None
            batch = next(iter(loader))
            self._sample_batch = {k: (v[: self.num_samples] if torch.is_tensor(v) else v) for k, v in batch.items()}
        return self._sample_batch

    def sample_target(self, batch: dict) -> Any:
        """What ``translate`` is asked for in sample grids and evaluation (domain methods: ``batch['target']``)."""
        return batch["target"]

    @torch.no_grad()
    def log_samples(self) -> Path | None:
        if self.trainer is None or not self.trainer.is_global_zero or self.num_samples <= 0:
            return None
        # Sampling must not move the training's random stream: a resumed run builds the sample batch (a loader
        # iterator draws a seed) and samples at other iterations than an uninterrupted one.
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            batch = self._fixed_sample_batch()
            if batch is None:
                return None
            batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            was_training = self.training
            self.eval()
            try:
                out = self.translate(batch["image"], self.sample_target(batch))
            finally:
                self.train(was_training)
        path = Path(self.trainer.default_root_dir) / "samples" / f"iter_{self.iteration:07d}.png"
        save_sample_grid(path, batch, out)
        for logger in self.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[str(path)], step=self.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):
                from torchvision.io import read_image

                logger.experiment.add_image("samples", read_image(str(path)), self.iteration)
        return path

    # ---------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["suite"] = {
            "format": CHECKPOINT_FORMAT,
            "suite_version": __version__,
            "method": self.method_name,
            "iteration": self.iteration,
            "skipped_steps": self.skipped_steps,
            "max_iterations": self.max_iterations,
            "pools": {name: pool.state_dict() for name, pool in self.pools.items()},
            "data_info": self.data_info,
            "config": self.run_config,
            "rng": self._gather_rng_states(),
        }

    def _gather_rng_states(self) -> list[dict]:
        """Every rank's RNG states, indexed by global rank (each rank draws its own stream under DDP)."""
        mine = collect_rng_states()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            states: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, mine)
            return states
        return [mine]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("suite")
        if state is None:
            raise CheckpointError("this checkpoint was not written by this suite (no 'suite' entry); train with train.py to get one.")
        if state["method"] != self.method_name:
            raise CheckpointError(
                f"the checkpoint was trained with method={state['method']}, not method={self.method_name}; pass method={state['method']} or another checkpoint."
            )
        self.iteration = int(state["iteration"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        for name, pool_state in state.get("pools", {}).items():
            if name in self.pools:
                self.pools[name].load_state_dict(pool_state)
        rng = state.get("rng") or []
        rank = self.trainer.global_rank if self._trainer is not None else 0
        # A rank the checkpoint did not know (more devices than before) keeps its fresh seeding.
        self._rng_to_restore = rng[rank] if rank < len(rng) else None
