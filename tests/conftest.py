"""Shared fixtures: composed configs (CPU, no logger, tmp run dirs), one thread per test, no weight downloads.
Batches and the tiny methods live in tests/helpers and tests/methods.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from suite.config import register_resolvers
from tests.helpers.batches import domain_batch  # noqa: F401  (imported from here by older test files)

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
register_resolvers()  # tests that load a conf/*.yaml directly resolve ${scaled:…} too
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


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread for every test, restored afterwards: the nets here are tiny, and on a shared 2-core
    machine a second thread waiting at every op's barrier makes each step many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_weight_downloads(monkeypatch):
    """Any attempt to fetch weights fails the test (there is no network here, and there must be no attempt)."""

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
