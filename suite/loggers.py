"""Logger factories. W&B runs offline unless credentials are configured, so a run never blocks on the network."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from suite.errors import ConfigError


def wandb_credentials_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc"))).authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return auth is not None


def wandb_mode(mode: str = "auto", option: str = "logger.wandb.mode") -> str:
    """The W&B mode to run in: ``WANDB_MODE`` from the environment if set, else ``mode``, where ``auto`` means
    online with credentials and offline without (so nothing ever waits on the network). ``option`` names the
    setting in the error message."""
    if os.environ.get("WANDB_MODE"):
        mode = os.environ["WANDB_MODE"]
    elif mode == "auto":
        mode = "online" if wandb_credentials_present() else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"{option} must be auto, online, offline or disabled, got '{mode}'.")
    return mode


def wandb_settings() -> dict[str, Any]:
    """``{"settings": …}`` for ``wandb.init`` / WandbLogger: no console capture, silent, a bounded init wait."""
    try:
        import wandb

        return {"settings": wandb.Settings(init_timeout=60, console="off", silent=True)}
    except Exception:  # pragma: no cover - older wandb without these settings
        return {}


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs: Any):
    """``mode``: auto | online | offline | disabled (see :func:`wandb_mode`)."""
    from pytorch_lightning.loggers import WandbLogger

    mode = wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(save_dir=save_dir, mode=mode, **kwargs, **wandb_settings())
