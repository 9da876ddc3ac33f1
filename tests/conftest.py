"""Shared fixtures: composed configs (CPU, no logger, tmp run dirs) and tiny batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from suite.config import register_resolvers

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(1)  # tests use tiny nets: threads cost more than they give, and runs stay reproducible


def compose_config(overrides: list[str], config_name: str = "train") -> DictConfig:
    register_resolvers()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


@pytest.fixture
def make_cfg(tmp_path, monkeypatch):
    """Compose the train config for a test: CPU, no logger, run dir and caches under tmp_path."""
    monkeypatch.setenv("FACETRANS_CACHE", str(tmp_path / "cache"))

    def _make(*overrides: str, run_dir: Path | None = None) -> DictConfig:
        base = [
            f"run_dir={run_dir or tmp_path / 'run'}",
            "logger=none",
            "trainer=cpu",
            "trainer.enable_progress_bar=false",
            "scale=synth",  # the CPU-scale values (tiny tests; train.yaml's default is paper)
        ]
        return compose_config(base + list(overrides))

    return _make


def domain_batch(batch_size: int = 2, size: int = 32, num_domains: int = 2, seed: int = 0) -> dict:
    """A batch in the datamodules' format (two_domain when num_domains == 2)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1
    ref = torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1
    domain = torch.zeros(batch_size, dtype=torch.long)
    target = torch.ones(batch_size, dtype=torch.long)
    if num_domains > 2:
        domain = torch.randint(num_domains, (batch_size,), generator=g)
        target = (domain + 1) % num_domains
    return {"image": image, "ref": ref, "domain": domain, "target": target, "ref_domain": target.clone()}
