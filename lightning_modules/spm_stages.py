"""SPM's resolution stages (Sec. 3.3; ``mikirui/ADSPM`` ``WarpGenerator256`` / ``WarpGenerator512``): which stages a
run has, and starting a stage from the checkpoint of the one below.

- LR stage (``method=spm``): G at ``image_size``.
- 256 stage (``method=spm_hr``): G at ``lr_size`` (128) + ``T`` lifting it to ``image_size``; G, D (→ D_l) and Dw
  come from ``lr_ckpt_path`` (a ``method=spm`` checkpoint), and train on with T (paper: "updated simultaneously")
  unless ``freeze_previous``.
- 512 stage (``method=spm_hr`` with ``mid_size``: 128 → 256 → 512): G + ``T`` (the 256 stage, from
  ``mid_ckpt_path``, a ``method=spm_hr`` checkpoint at ``mid_size``) + ``T2`` (7×7 nets) lifting the 256 output
  to ``image_size``; D_h (the 256 stage's) judges 256 px, the new ``D_h2`` 512 px. The stages below are frozen
  (``freeze_previous``: the issue's "each stage trained on the frozen previous one"; the authors' training loop is
  not released) **[inferred]**.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from torch import nn

from suite.checkpoints import read_checkpoint
from suite.errors import CheckpointError

log = logging.getLogger("lightning_modules.spm")

LR_METHOD = "spm"  # the method whose checkpoints start the 256 stage
HR_METHOD = "spm_hr"  # the method whose checkpoints start the 512 stage


def check_info(path: str, info: Mapping, size: int, size_key: str, domains) -> None:
    """The checkpoint's image size and domains match this run's; CheckpointError (one sentence) otherwise."""
    if info.get("image_size") != size:
        raise CheckpointError(
            f"{path} was trained at {info.get('image_size')} px, but method.{size_key} is {size}; set "
            f"method.{size_key}={info.get('image_size')} or use a checkpoint at {size} px."
        )
    if info.get("domain_names") != domains:
        raise CheckpointError(
            f"{path} was trained on the domains {info.get('domain_names')}, this run has {domains}; use a "
            "checkpoint of the same data and domains."
        )


def load_part(path: str, net: nn.Module, state: dict, prefix: str) -> None:
    """Copy the ``prefix.*`` entries of a checkpoint's state dict into ``net`` (one sentence on a mismatch)."""
    sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
    try:
        net.load_state_dict(sub)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"the networks in {path} do not match this run's ({prefix}: {first}); use the previous run's settings for "
            "method.motion, method.refinement, method.classification, method.generator, method.discriminator, "
            "method.motion_classifier and method.enhancer."
        ) from None


def load_stage(module, path: str | None, *, method: str, size: int, size_key: str, nets: Mapping[str, nn.Module],
               ema: tuple[str, ...], what: str) -> None:
    """Start a stage from a checkpoint of the stage below: copy ``nets`` (checkpoint prefix → this run's net) and
    the EMA copies named in ``ema`` (when both runs keep them). ``None``: keep the fresh nets, with a warning."""
    if path is None:
        log.warning("method.%s is not set: %s start from their random initialisation; the paper starts from a trained "
                    "checkpoint of the stage below (method.%s=<run>/checkpoints/last.ckpt).",
                    "mid_ckpt_path" if method == HR_METHOD else "lr_ckpt_path", what,
                    "mid_ckpt_path" if method == HR_METHOD else "lr_ckpt_path")
        return
    ckpt = read_checkpoint(path, expected_method=method)
    check_info(path, ckpt["suite"].get("data_info") or {}, size, size_key, module.data_info.get("domain_names"))
    state = ckpt["state_dict"]
    for prefix, net in nets.items():
        load_part(path, net, state, prefix)
    for name in ema:
        if name in module.ema_nets:
            prefix = f"ema_nets.{name}" if any(k.startswith(f"ema_nets.{name}.") for k in state) else name
            load_part(path, module.ema_nets[name], state, prefix)
    log.info("%s: loaded %s from %s", module.method_name, ", ".join(nets), path)
