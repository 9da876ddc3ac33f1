"""Hydra/OmegaConf helpers: the ``scaled`` resolver, config sanitising, data-config preparation.

``${scaled:PAPER,SYNTH}`` picks the published value or the CPU-scale one by the top-level ``scale`` key
(``paper`` | ``synth``), which the ``scale`` config group sets (conf/scale/, with a ``scale_note`` saying what it
means): ``paper`` by default, ``synth`` where an embedded-data recipe (``experiment=aggan_synth``, …) or
``scale=synth`` on the command line selects it. Choosing a dataset never changes it. A command-line value (e.g.
``method.generator.ngf=32``) replaces the whole expression and always wins.

Entry points that compose configs call :func:`register_resolvers` first (importing this module registers nothing).
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from suite.errors import ConfigError

SCALES = ("paper", "synth")
_SECRET = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential)", re.IGNORECASE)


def _scaled(paper: Any, synth: Any, *, _root_: DictConfig) -> Any:
    """``${scaled:PAPER,SYNTH}``: PAPER or SYNTH by the config's top-level ``scale``."""
    scale = _root_.get("scale", "paper")
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {SCALES}, got '{scale}'.")
    return synth if scale == "synth" else paper


def register_resolvers() -> None:
    """Register the suite's OmegaConf resolvers (``scaled``, ``objective_direction``); idempotent. Call it before
    composing a config."""
    if not OmegaConf.has_resolver("scaled"):
        OmegaConf.register_new_resolver("scaled", _scaled)
    if not OmegaConf.has_resolver("objective_direction"):
        from suite.sweeps import objective_direction

        OmegaConf.register_new_resolver("objective_direction", objective_direction)


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


# Keys that configs stored in older checkpoints carry under ``data`` and that are no datamodule arguments:
# ``data.scale`` (before conf/scale/ existed, each data config named its scale).
LEGACY_DATA_KEYS = ("scale",)


def data_kwargs(data_cfg: DictConfig) -> DictConfig:
    """The data config as datamodule arguments: resolved, without the keys of older checkpoints' stored configs."""
    cfg = OmegaConf.to_container(data_cfg, resolve=True)
    for key in LEGACY_DATA_KEYS:
        cfg.pop(key, None)
    return OmegaConf.create(cfg)
