"""One clear sentence for each thing a user can get wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suite.checkpoints import read_checkpoint
from suite.config import strip_secrets
from suite.errors import CheckpointError
from suite.training import train

ROOT = Path(__file__).resolve().parents[2]


def run_cli(script: str, *args: str, cwd=ROOT, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


def test_missing_rafd_root_is_one_sentence(tmp_path):
    missing = tmp_path / "no_rafd_here"
    res = run_cli("train.py", "method=aggan", "data=rafd", "trainer.devices=2", f"data.root={missing}",
                  f"hydra.run.dir={tmp_path / 'run'}", "logger=none")
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(missing) in err[0] and "Rafd090_" in err[0]
    assert "Traceback" not in res.stderr


def test_unknown_method_name_fails(tmp_path):
    res = run_cli("train.py", "method=nosuch", f"hydra.run.dir={tmp_path}")
    assert res.returncode != 0 and "nosuch" in res.stderr


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / "absent.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        read_checkpoint(bad)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a checkpoint of this suite"):
        read_checkpoint(foreign)


def test_secrets_never_reach_saved_config():
    cfg = {"logger": {"wandb": {"api_key": "abc", "project": "p"}}, "token": "t", "x": [{"password": "p"}]}
    clean = strip_secrets(cfg)
    assert "abc" not in str(clean) and "'t'" not in str(clean) and clean["logger"]["wandb"]["project"] == "p"


def test_data_without_the_needed_view_is_one_sentence():
    from suite.errors import DatasetError
    from suite.training import build_datamodule
    from tests.conftest import compose_config

    cfg = compose_config(["run_dir=/tmp/unused", "data=shapes"])
    with pytest.raises(DatasetError, match="data=shapes offers the views two_domain, multi_domain; the method needs multi_factor"):
        build_datamodule(cfg, "multi_factor")


def test_unknown_domain_name_lists_valid_ones(make_cfg):
    from suite.errors import DatasetError

    with pytest.raises(DatasetError, match="happy"):
        train(make_cfg("data.domains=[neutral,grumpy]", "trainer.fast_dev_run=true"))
