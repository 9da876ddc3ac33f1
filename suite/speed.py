"""Fast paths chosen by config (``speed.*`` in conf/train.yaml), applied by one callback before the strategy moves
and wraps the module (so DDP sees the final parameter layout):

- ``speed.channels_last``: module weights and image batches in channels_last memory format (NHWC convolutions on
  tensor cores). ``auto`` = on for CUDA, off on the CPU (instance norm there copies NHWC back and forth;
  lightning_pitfalls.md). Measured by ``python -m suite.bench --channels-last`` (docs/scaling.md).
- ``speed.compile``: ``true``/``nets`` = ``torch.compile`` of the generator networks only (``generator_nets()`` of
  each method: every net outside the discriminator optimizer); ``steps`` = ``torch.compile`` of each optimizer
  step's closure — every network's forward pass and every loss of the step in one graph
  (``GANModule.step_function``; gradient penalties, image pools and bridge's memory step stay eager by design,
  ``tests/contract/test_compile_clean.py``). ``auto`` = off (compilation takes minutes per method; turn it on for
  long runs). On a CPU, Inductor needs a C++ compiler: without one the run warns once and stays eager.
- ``speed.matmul_precision``: ``torch.set_float32_matmul_precision`` on CUDA (``high`` = TF32 tensor cores for fp32
  matrix products; cuDNN convolutions use TF32 by default already; ``highest`` turns TF32 off for both).
- Fused Adam (``method.optim.fused: auto`` → on for CUDA) and cudnn autotuning (``trainer.benchmark``, on in
  trainer=gpu) are set where they belong, in the optimizer and trainer configs.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from suite.errors import ConfigError

log = logging.getLogger(__name__)
_CHOICES = (True, False, "auto")
_COMPILE_CHOICES = (True, False, "auto", "nets", "steps")


def resolve_flag(name: str, value: Any, device_type: str, auto_on: tuple[str, ...]) -> bool:
    """``true``/``false`` as given; ``auto`` → on for the device types in ``auto_on``."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if value not in _CHOICES:
        raise ConfigError(f"speed.{name} must be true, false or auto, got {value!r}.")
    return device_type in auto_on if value == "auto" else bool(value)


def resolve_compile(value: Any, device_type: str) -> str | None:
    """``speed.compile`` → what to compile: None, ``nets`` (the generators; ``true``) or ``steps``."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if value not in _COMPILE_CHOICES:
        raise ConfigError(f"speed.compile must be true, false, auto, nets or steps, got {value!r}.")
    if value == "auto" or value is False:
        return None
    return "nets" if value is True else value


CPP_COMPILERS = ("g++", "c++", "clang++")


def cpp_compiler() -> str | None:
    """Path of a C++ compiler Inductor can use on the CPU ($CXX first), or None."""
    import os
    import shutil

    for name in (os.environ.get("CXX"), *CPP_COMPILERS):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def generator_nets(module: nn.Module) -> dict[str, nn.Module]:
    """The networks of ``module`` that no discriminator optimizer (group ``D``) trains, keyed by attribute name;
    a ``ModuleDict`` (one encoder per attribute) contributes each entry. EMA copies are left out."""
    groups = module.optimizer_groups() if hasattr(module, "optimizer_groups") else {}
    disc_params = {id(p) for p in groups.get("D", [])}
    nets: dict[str, nn.Module] = {}
    for name, child in module.named_children():
        if name == "ema_nets" or child is None:
            continue
        children = child.items() if isinstance(child, nn.ModuleDict) else [("", child)]
        for sub, net in children:
            params = list(net.parameters())
            if params and not any(id(p) in disc_params for p in params):
                nets[f"{name}.{sub}" if sub else name] = net
    return nets


def to_channels_last(batch: Any) -> Any:
    """4-D floating tensors of a batch (dict/list/tensor) in channels_last; everything else unchanged."""
    if torch.is_tensor(batch):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 and batch.is_floating_point() else batch
    if isinstance(batch, dict):
        return {k: to_channels_last(v) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_channels_last(v) for v in batch)
    return batch


def apply_fast_paths(module: nn.Module, *, channels_last: bool, compile_generators: bool, compile_mode: str | None = None) -> list[str]:
    """Apply the chosen fast paths to ``module`` in place; returns the names of the compiled nets."""
    compiled: list[str] = []
    if channels_last:
        module.to(memory_format=torch.channels_last)
        module.channels_last_inputs = True
    if compile_generators:
        for name, net in generator_nets(module).items():
            net.compile(mode=compile_mode) if compile_mode else net.compile()
            compiled.append(name)
    return compiled


class FastPaths(pl.Callback):
    """Applies ``speed.*`` in ``setup`` (before the strategy moves the module to its device and wraps it)."""

    def __init__(self, channels_last: Any = "auto", compile: Any = "auto", compile_mode: str | None = None,
                 matmul_precision: str | None = "high") -> None:
        if matmul_precision not in (None, "highest", "high", "medium"):
            raise ConfigError(f"speed.matmul_precision must be highest, high, medium or null, got {matmul_precision!r}.")
        self.matmul_precision = matmul_precision
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        resolve_flag("channels_last", channels_last, "cpu", ())  # validate early
        resolve_compile(compile, "cpu")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        device_type = trainer.strategy.root_device.type
        if device_type == "cuda" and self.matmul_precision:
            torch.set_float32_matmul_precision(self.matmul_precision)
            torch.backends.cudnn.allow_tf32 = self.matmul_precision != "highest"  # highest: true fp32 convs too
        channels_last = resolve_flag("channels_last", self.channels_last, device_type, ("cuda",))
        what = resolve_compile(self.compile, device_type)
        if what and device_type == "cpu" and cpp_compiler() is None:
            log.warning("speed.compile=%s needs a C++ compiler on the CPU (Inductor builds C++ kernels) and none was found "
                        "(looked for %s); training eagerly. Install g++ (e.g. apt-get install g++) to compile.",
                        self.compile, ", ".join(CPP_COMPILERS))
            what = None
        compiled = apply_fast_paths(pl_module, channels_last=channels_last, compile_generators=what == "nets",
                                    compile_mode=self.compile_mode)
        if what == "steps":
            pl_module.compile_steps = {"mode": self.compile_mode} if self.compile_mode else {}
            compiled = ["every optimizer step"]
        log.info("fast paths on %s: channels_last=%s, compiled=%s", device_type, channels_last, compiled or "none")
