"""Parameter counts of a method's networks, built from ``conf/method/<name>.yaml`` without data or checkpoint.

The method is composed through Hydra exactly as ``train.py`` composes it (``scale=paper`` by default, so every
``${scaled:PAPER,SYNTH}`` takes the published value), then built by :func:`suite.training.build_method` for a
``data_info`` of ``num_domains`` domains at ``image_size`` px. Counting is ``numel`` over the module's parameters
(buffers such as BatchNorm statistics excluded), per top-level network and in total.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig
from torch import nn

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``; inside a running Hydra app (evaluate.py) its own search path
    (``conf/``), otherwise a temporary one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from suite.config import register_resolvers

    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="train", overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def build_for_counting(method: str, view: str, num_domains: int, image_size: int,
                       overrides: Sequence[str] = (), scale: str = "paper") -> nn.Module:
    """The LightningModule of ``method`` (its nets initialised, nothing trained) for ``num_domains`` domains."""
    from suite.training import build_method

    cfg = compose_train([f"scale={scale}", f"method={method}", f"method.view={view}", *overrides])
    info = {"name": "counting", "view": view, "image_size": image_size, "channels": 3,
            "num_domains": num_domains, "domain_names": [f"domain{i}" for i in range(num_domains)]}
    return build_method(cfg, info)


def parameter_counts(module: nn.Module) -> dict[str, int]:
    """``{network name: parameters}`` for each top-level child that has parameters, plus ``total`` (every
    parameter of the module once)."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    counts = {name: n for name, n in counts.items() if n}
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts


def millions(n: int) -> str:
    """``52.6M``: parameters in millions with one decimal, as AGGAN's Table III prints them."""
    return f"{n / 1e6:.1f}M"
