"""Logger factories. W&B runs offline unless credentials are configured, so a run never blocks on the network."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any


def wandb_credentials_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc"))).authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return auth is not None


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs: Any):
    """``mode``: auto | online | offline | disabled. ``auto`` = online with credentials, otherwise offline
    (``WANDB_MODE`` in the environment, if set, wins)."""
    from pytorch_lightning.loggers import WandbLogger

    if os.environ.get("WANDB_MODE"):
        mode = os.environ["WANDB_MODE"]
    elif mode == "auto":
        mode = "online" if wandb_credentials_present() else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got '{mode}'")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    settings = None
    try:
        import wandb

        settings = wandb.Settings(init_timeout=60, console="off", silent=True)
    except Exception:  # pragma: no cover - older wandb without these settings
        settings = None
    extra = {"settings": settings} if settings is not None else {}
    return WandbLogger(save_dir=save_dir, mode=mode, **kwargs, **extra)
