"""The trainer's multi-process settings for the suite's GANs: ``trainer.strategy`` and ``trainer.sync_batchnorm``.

Every method updates its networks in turns (manual optimization, one backward per optimizer), so a D-only or
G-only backward leaves the other networks' parameters without gradients; plain DDP then stops the first step
with "parameters that were not used in producing the loss" (../shared/specs/lightning_pitfalls.md §7). Hence,
whenever ``devices × num_nodes > 1`` (``python train.py method=aggan data=rafd trainer.devices=2``):

- ``strategy: auto`` becomes DDP with ``find_unused_parameters=True`` in the launcher Lightning would have picked
  (``ddp``: the script relaunched per rank; ``ddp_fork`` in a notebook), and a plain DDP name (``ddp``,
  ``ddp_spawn``, ``ddp_fork``, ``ddp_notebook``) its ``_find_unused_parameters_true`` form. Any other choice
  (``…_find_unused_parameters_false``, fsdp, deepspeed, a strategy object) is kept as given.
- ``sync_batchnorm`` left unset (absent or null) becomes true for DDP on GPUs, false on CPUs, where PyTorch has no
  SyncBatchNorm (batch-norm statistics then stay per rank). A value the user set is kept, and ``train()`` stops a
  CPU run that asks for it with what to change (``suite.training.check_sync_batchnorm``).

:func:`multiprocess_settings` decides from the trainer config and two device facts alone (unit-testable without
processes); :func:`settings_for_this_machine` supplies the facts of the running machine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

FIND_UNUSED = "_find_unused_parameters_true"
PLAIN_DDP = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def _on_gpu(accelerator: Any, cuda_devices: int) -> bool | None:
    """True for CUDA, False for the CPU, None for anything else (TPU, MPS, an object: left to Lightning)."""
    name = str(accelerator if accelerator is not None else "auto").lower()
    if name == "auto":
        return cuda_devices > 0
    return {"gpu": True, "cuda": True, "cpu": False}.get(name)


def _processes_per_node(devices: Any, on_gpu: bool, cuda_devices: int) -> int | None:
    """How many processes Lightning starts on each node for ``trainer.devices``; None where it would refuse."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices if devices is not None else "auto").strip().lower()
    if text in ("auto", "-1"):
        return cuda_devices if on_gpu else 1  # Lightning: every GPU, or one CPU process ("-1" is refused there)
    if "," in text:
        return len([part for part in text.split(",") if part.strip()])  # GPU indices "0,1"
    return int(text) if text.isdigit() else None


def multiprocess_settings(trainer: Mapping[str, Any], *, cuda_devices: int, interactive: bool = False) -> dict:
    """The ``strategy`` / ``sync_batchnorm`` entries to change in ``trainer`` (empty: keep it as it is).

    ``cuda_devices``: GPUs visible to this process; ``interactive``: running in a notebook or REPL, where
    Lightning forks the ranks instead of relaunching the script.
    """
    on_gpu = _on_gpu(trainer.get("accelerator"), cuda_devices)
    per_node = None if on_gpu is None else _processes_per_node(trainer.get("devices"), on_gpu, cuda_devices)
    num_nodes = trainer.get("num_nodes") or 1
    if per_node is None or not isinstance(num_nodes, int) or per_node * num_nodes <= 1:
        return {}
    changes: dict[str, Any] = {}
    strategy = trainer.get("strategy", "auto")
    if strategy in (None, "auto"):
        changes["strategy"] = ("ddp_fork" if interactive else "ddp") + FIND_UNUSED
    elif strategy in PLAIN_DDP:
        changes["strategy"] = strategy + FIND_UNUSED
    final = changes.get("strategy", strategy)
    if isinstance(final, str) and final.startswith("ddp") and trainer.get("sync_batchnorm") is None:
        changes["sync_batchnorm"] = on_gpu
    return changes


def settings_for_this_machine(trainer: Mapping[str, Any]) -> dict:
    """:func:`multiprocess_settings` with this machine's facts; logs what it changes."""
    import torch
    from lightning_fabric.utilities.imports import _IS_INTERACTIVE

    changes = multiprocess_settings(trainer, cuda_devices=torch.cuda.device_count(), interactive=_IS_INTERACTIVE)
    if changes:
        log.info("several processes (trainer.devices=%s, trainer.num_nodes=%s): %s — each GAN update leaves the other "
                 "networks' parameters unused", trainer.get("devices"), trainer.get("num_nodes", 1),
                 ", ".join(f"trainer.{key}={value}" for key, value in changes.items()))
    return changes
