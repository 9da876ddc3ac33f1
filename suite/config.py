"""Hydra/OmegaConf helpers: the ``scaled`` resolver, config sanitising, data-config preparation.

``${scaled:PAPER,SYNTH}`` picks the published value or the CPU-scale one by the top-level ``scale`` key
(``paper`` | ``synth``). ``scale`` defaults to the dataset's ``data.scale`` — ``synth`` for the embedded data,
``paper`` for the real datasets — so ``python train.py method=cyclegan data=shapes`` trains in minutes on a
CPU while ``data=celeba`` gets the paper's settings; ``scale=paper`` forces the published ones anywhere.
A command-line value (e.g. ``method.generator.ngf=32``) replaces the whole expression and always wins.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from suite.errors import ConfigError

SCALES = ("paper", "synth")
_SECRET = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential)", re.IGNORECASE)


def _scaled(paper: Any, synth: Any, *, _root_: DictConfig) -> Any:
    scale = _root_.get("scale", "paper")
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {SCALES}, got '{scale}'.")
    return synth if scale == "synth" else paper


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("scaled"):
        OmegaConf.register_new_resolver("scaled", _scaled)


register_resolvers()


def strip_secrets(value: Any) -> Any:
    """Drop every key that looks like a credential (api_key, token, secret, password) from a container."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if _SECRET.search(str(k)) else strip_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def to_plain(cfg: DictConfig) -> dict:
    """The resolved config as plain python, secrets removed — what goes into checkpoints and loggers."""
    return strip_secrets(OmegaConf.to_container(cfg, resolve=True))


DATA_META_KEYS = ("scale",)


def data_kwargs(data_cfg: DictConfig) -> DictConfig:
    """The data config without the suite's meta keys (they are not datamodule arguments)."""
    cfg = OmegaConf.to_container(data_cfg, resolve=True)
    for key in DATA_META_KEYS:
        cfg.pop(key, None)
    return OmegaConf.create(cfg)
