"""What every GAN of the suite shares: manual multi-optimizer steps, the iteration counter that drives every
schedule, image pools, linear lr decay, optional generator EMA, the NaN/inf guard and the checkpoint
bookkeeping. A method subclasses ``GANModule`` and supplies only its networks, its losses (``train_iteration``)
and ``translate``. Sample grids and RNG-exact resume are callbacks (``suite.callbacks``).

Contract for subclasses:
- ``__init__``: call ``super().__init__(**common)`` first, build nets (``self.build_named_net(what, cfg,
  **runtime_kwargs)``, or ``self.build_net`` without the config check), register pools (``self.register_pool``),
  then ``self.build_ema([...net attribute names])`` if wanted.
- ``optimizer_groups() -> dict[name, params]``: one Adam per entry, in order (``optim.lr_<name>`` overrides its lr).
- ``train_iteration(batch) -> dict[str, Tensor]``: one iteration of the paper's algorithm; call
  ``self.optimize(name, closure)`` for each update; return scalars to log (keys like ``loss/G/cycle``).
- ``translate(images, target, **kw) -> dict`` with at least ``image`` (and ``mask``, ``flow``, ``content`` where
  the method has them).
- optional hooks: ``on_last_iteration()`` (work done once when training ends, saved in the final checkpoint),
  ``extra_evaluation(...)`` (a method's own evaluation report, called by ``suite.evaluation``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lightning_modules.guard import NonFiniteRecord
from lightning_modules.losses import gradient_penalty
from lightning_modules.pool import ImagePool
from lightning_modules.schedules import linear_decay_from, switch_iteration
from suite import __version__
from suite.errors import CheckpointError, ConfigError, DatasetError, DivergenceError

CHECKPOINT_FORMAT = 1

Closure = Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]


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
        schedule: linear lr decay to 0 at ``max_iterations``, starting at ``decay_start_fraction`` of the run or
            after ``decay_start_epoch`` epochs (one of them; both null or absent: no decay).
        max_iterations: training length in iterations (one iteration = one batch = every optimizer step of the
            paper's algorithm once); ``trainer.max_steps`` on the command line sets it.
        ema: ``{enabled, decay}`` exponential moving average of the generators, used by ``translate`` when on.
        nan_guard: ``stop`` (raise with loss name and iteration; recorded on the device, read every
            ``nan_check_every`` iterations and before each checkpoint: no host sync per step — ``guard.py``),
            ``skip`` (drop the step, count it; one host sync per update) or ``off``.
        nan_check_every: iterations between two reads of the ``stop`` guard's device record **[inferred: 100]**.
        sample_every: iterations between sample grids (0 = only at the end); read by the ``samples`` callback
            (``conf/callbacks/samples.yaml``), as is ``num_samples``.
        seed: seeds pools and other module-owned randomness.
    """

    supported_views: ClassVar[tuple[str, ...]] = ()
    nets_package: ClassVar[str] = "nets"  # named in build_named_net's error: where the method's nets live

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
        nan_check_every: int = 100,
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
        if isinstance(nan_check_every, bool) or not isinstance(nan_check_every, int) or nan_check_every < 1:
            raise ConfigError(f"method.nan_check_every must be an integer >= 1, got {nan_check_every!r}.")
        self.method_name = name
        self.view = view
        self.data_info = to_container(data_info)
        self.optim_cfg = to_container(optim)
        self.schedule_cfg = to_container(schedule)
        self.max_iterations = int(max_iterations) if max_iterations is not None else -1
        self.ema_cfg = to_container(ema) or {"enabled": False, "decay": 0.999}
        self.nan_guard = nan_guard
        self.nan_check_every = nan_check_every
        self.nonfinite = NonFiniteRecord()
        self.sample_every = sample_every
        self.num_samples = num_samples
        self.seed = seed
        self.iteration = 0
        self.iterations_per_epoch: int | None = None  # batches per epoch, known at train start (epoch-based schedules)
        self.skipped_steps = 0
        self.pools: dict[str, ImagePool] = {}
        self.ema_nets = nn.ModuleDict()
        self.run_config: dict | None = None  # the whole Hydra config, attached by train.py, saved in checkpoints
        self._optimizer_names: list[str] = []
        self._finished_at: int | None = None  # the iteration on_last_iteration ran at
        self.channels_last_inputs = False  # set by suite.speed when speed.channels_last is on
        self.compile_steps: dict | None = None  # torch.compile kwargs for step closures (suite.speed, speed.compile=steps)
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
        self.decay_start_iteration()  # a malformed schedule fails here, not at the first step

    def decay_start_iteration(self) -> float | None:
        """The iteration where the linear lr decay starts (None while an epoch-based start awaits train start)."""
        cfg = self.schedule_cfg or {}
        return switch_iteration("schedule.decay_start", cfg.get("decay_start_fraction"), cfg.get("decay_start_epoch"),
                                self.max_iterations, self.iterations_per_epoch, default_fraction=1.0)

    def lr_factor(self) -> float:
        """The lr multiplier at the current iteration (constant, then linear decay to 0 at ``max_iterations``)."""
        start = self.decay_start_iteration()
        return 1.0 if start is None else linear_decay_from(self.iteration, start, self.max_iterations)

    def uses_epochs(self) -> bool:
        """Whether a schedule is given in epochs (then train start counts the batches per epoch)."""
        return (self.schedule_cfg or {}).get("decay_start_epoch") is not None

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

    def build_named_net(self, what: str, cfg: dict, **runtime: Any) -> nn.Module:
        """:meth:`build_net` for the config ``method.<what>``: a config without ``_target_``, or a net's
        ValueError (e.g. too many layers for the image size), becomes one ConfigError sentence naming the key."""
        if not cfg or "_target_" not in cfg:
            raise ConfigError(f"method.{what} needs a _target_ (a class in {self.nets_package}).")
        try:
            return self.build_net(dict(cfg), **runtime)
        except InstantiationException as exc:
            if isinstance(exc.__cause__, ValueError):
                raise ConfigError(f"method.{what}: {exc.__cause__}.") from None
            raise

    @staticmethod
    def check_n_critic(n_critic: Any) -> int:
        """``n_critic`` (G every n_critic-th iteration, D every one) must be an integer >= 1."""
        if not (isinstance(n_critic, int) and n_critic >= 1):
            raise ConfigError(f"method.n_critic must be an integer >= 1, got {n_critic!r}.")
        return n_critic

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
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _epoch, m=self: m.lr_factor())
            optimizers.append(opt)
            schedulers.append(sched)
        return optimizers, schedulers

    def named_optimizer(self, name: str):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        return opts[self._optimizer_names.index(name)]

    def optimize(self, name: str, closure: Closure, penalty: Closure | None = None) -> dict[str, torch.Tensor]:
        """One update of optimizer ``name``: with the other optimizers' parameters frozen (no wasted gradients),
        compute ``loss, parts = closure()`` (plus ``penalty()``'s weighted loss and parts), guard against NaN/inf,
        backward, step. Returns ``parts`` prefixed ``loss/<name>/``. Under ``nan_guard=stop`` nothing here waits for
        the device (``guard.py``).

        ``closure`` is the step's forward pass and losses, and compiles whole (``speed.compile=steps``;
        ``tests/contract/test_compile_clean.py``): no host reads, no pool bookkeeping, no ``torch.autograd.grad``.
        ``penalty`` is where a gradient penalty goes (WGAN-GP differentiates D's output with respect to its input
        with ``create_graph``, which compiled graphs do not trace): it always runs eagerly, after the closure —
        isolated by design — and returns ``(weighted loss, parts)``; the closure leaves what it needs in a dict."""
        opt = self.named_optimizer(name)
        with self.toggled_optimizer(opt):
            loss, parts = self.step_function(closure)()
            if penalty is not None:
                extra, extra_parts = penalty()
                loss, parts = loss + extra, {**parts, **extra_parts}
            logged = {f"loss/{name}/{k}": v.detach() for k, v in parts.items()}
            logged[f"loss/{name}/total"] = loss.detach()
            if self.nan_guard == "skip" and not self._loss_is_finite(name, loss, parts):
                return logged
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.nan_guard == "stop":
                self._record_nonfinite(name, loss, parts, opt)
            elif self.nan_guard == "skip" and not self._gradients_are_finite(name, opt):
                opt.zero_grad(set_to_none=True)
                return logged
            opt.step()
        return logged

    def wgan_penalty(
        self,
        critic: Callable[[torch.Tensor], torch.Tensor],
        points: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        enabled: bool = True,
    ) -> Closure | None:
        """``optimize``'s ``penalty`` for WGAN-GP: ``λgp · gradient_penalty(critic, real, fake)`` logged as ``gp``,
        with ``(real, fake) = points()`` read when the penalty runs (after the step's closure, which may be what
        makes the fake). None when ``enabled`` is false or ``hparams.lambda_gp`` is 0."""
        lambda_gp = float(self.hparams.get("lambda_gp", 0.0))
        if not enabled or lambda_gp <= 0:
            return None

        def penalty() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            gp = gradient_penalty(critic, *points())
            return lambda_gp * gp, {"gp": gp}

        return penalty

    def step_function(self, closure: Closure) -> Closure:
        """``closure`` as it runs: compiled with ``torch.compile`` when ``compile_steps`` is set (by
        ``speed.compile=steps``, with ``speed.compile_mode``), else as it is. A new closure object per iteration
        reuses the compiled code of the same ``def`` (dynamo caches by code object and checks its guards)."""
        if self.compile_steps is None:
            return closure
        return torch.compile(closure, **self.compile_steps)

    def _record_nonfinite(self, name: str, loss: torch.Tensor, parts: dict[str, torch.Tensor], opt) -> None:
        """The ``stop`` guard: this update's loss parts, total and gradient norm into the device record."""
        names = (*(f"{name}/{k}" for k in parts), f"{name}/total")
        values = [*parts.values(), loss]
        norm = self._gradient_norm(opt)
        if norm is not None:
            names, values = (*names, f"{name}/gradient"), [*values, norm]
        self.nonfinite.observe(names, values, self.iteration)

    @staticmethod
    def _gradient_norm(opt) -> torch.Tensor | None:
        """Σ of the per-tensor norms of ``opt``'s gradients (one fused norm each; non-finite iff any gradient entry
        is), on the device; None when no parameter has a gradient."""
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        return torch.stack([n.float() for n in torch._foreach_norm(grads)]).sum() if grads else None

    def sync_allowed(self) -> bool:
        """Whether this iteration may read the device (a host sync): one in ``nan_check_every`` — where the guard
        is read — for checks that cannot run on the device (a batch's label range, an index in range)."""
        return self.iteration % self.nan_check_every == 0

    def check_finite(self) -> None:
        """Read the ``stop`` guard's record (one host sync; every rank together under DDP) and raise
        ``DivergenceError`` naming the first non-finite loss or gradient and its iteration."""
        if self.nan_guard != "stop":
            return
        trainer = getattr(self, "_trainer", None)
        reduce_any = None
        if trainer is not None and trainer.world_size > 1:
            reduce_any = lambda found: bool(trainer.strategy.reduce_boolean_decision(found, all=False))  # noqa: E731
        self.nonfinite.check(self.iteration, reduce_any)

    def _gradients_are_finite(self, name: str, opt) -> bool:
        """NaN/inf in any gradient of optimizer ``name`` (one fused norm per device, one host sync per step)."""
        if self.nan_guard == "off":
            return True
        total = self._gradient_norm(opt)
        if total is None or bool(torch.isfinite(total)):
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
        for pool in self.pools.values():
            pool.images = [img.to(self.device) for img in pool.images]

    def on_train_start(self) -> None:
        """Epoch-based training: count the batches per epoch, now that the fit loop has its data (it loads it
        after ``on_fit_start`` and after restoring a checkpoint's loop state, which loading it earlier would
        disturb)."""
        if self.max_iterations == -1 or self.uses_epochs():
            self.iterations_per_epoch = self._batches_per_epoch()
        if self.max_iterations == -1:
            self.max_iterations = self.iterations_per_epoch * max(self.trainer.max_epochs or 1, 1)

    def _batches_per_epoch(self) -> int:
        """Training batches per epoch (after ``trainer.limit_train_batches``)."""
        batches = self.trainer.num_training_batches
        if not (isinstance(batches, int) and batches > 0):
            raise ConfigError(
                f"epoch-based training needs a finite number of batches per epoch, got {batches}; set trainer.max_steps "
                "and give the schedules as fractions (schedule.decay_start_fraction, method.curriculum_fraction)."
            )
        return batches

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.channels_last_inputs:
            from suite.speed import to_channels_last

            return to_channels_last(batch)
        return batch

    def training_step(self, batch: dict, batch_idx: int) -> None:
        logs = self.train_iteration(batch)
        self.iteration += 1
        last = self.max_iterations > 0 and self.iteration >= self.max_iterations
        if self.iteration % self.nan_check_every == 0 or last:
            self.check_finite()
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
        if last:
            self.trainer.should_stop = True
            self._finish_training()

    def on_last_iteration(self) -> None:
        """Hook: work a method does once when its training is over (disent: the expected embeddings). Called at
        the end of the ``training_step`` that reaches ``max_iterations`` (before any callback sees the batch end,
        so the final checkpoint holds its work), or from ``on_train_end`` when the run stopped another way
        (epochs, ``fast_dev_run``, a signal). Nothing by default."""

    def _finish_training(self) -> None:
        if self._finished_at != self.iteration:
            self._finished_at = self.iteration
            self.on_last_iteration()

    def on_train_end(self) -> None:
        self.check_finite()
        self._finish_training()

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

    # ------------------------------------------------------------------------------------------ translation
    def translate(self, images: torch.Tensor, target: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def validation_step(self, batch: dict, batch_idx: int) -> None:  # sample grids come from a callback
        return None

    def sample_target(self, batch: dict) -> Any:
        """What ``translate`` is asked for in sample grids and evaluation (domain methods: ``batch['target']``)."""
        return batch["target"]

    def extra_evaluation(self, loader: Iterable[dict], out_dir: Path, *, max_images: int | None = None,
                         classifier: Any = None) -> dict[str, float]:
        """Hook: the method's own evaluation report beyond the shared metrics, as flat ``name → number`` (files it
        draws go into ``out_dir``). ``loader``: a fresh loader of the evaluated split; ``classifier``: the run's
        evaluation classifier (None when the view has none). The report code lives in ``metrics/``. None here."""
        return {}

    # ---------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.check_finite()  # a run that went NaN since the last read never overwrites its last good checkpoint
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
        }

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
