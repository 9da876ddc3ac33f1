"""Bad input and config for resuming and training: a test per case, non-zero exit and one sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suite.errors import CheckpointError, ConfigError
from suite.training import train

ROOT = Path(__file__).resolve().parents[2]
TINY = ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8", "data.image_size=32",
        "data.batch_size=2", "data.train_size=8", "data.test_size=4", "data.val_size=4", "method.sample_every=0",
        "method.num_samples=2", "scale=synth"]
ENV = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", "logger=none", "trainer=cpu", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=240)


def assert_one_sentence(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in err[0]


@pytest.fixture(scope="module")
def checkpoint_32px(tmp_path_factory):
    from tests.conftest import compose_config

    run_dir = tmp_path_factory.mktemp("ckpt32")
    cfg = compose_config([f"run_dir={run_dir}", "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", *TINY,
                          "trainer.max_steps=1"])
    return train(cfg)["checkpoint"]


def test_resume_at_another_image_size_is_one_sentence(tmp_path, checkpoint_32px):
    res = cli(*TINY, "data.image_size=64", "trainer.max_steps=2", f"ckpt_path={checkpoint_32px}",
              f"hydra.run.dir={tmp_path}")
    assert_one_sentence(res, "image_size=32", "image_size=64")


def test_resume_at_another_image_size_raises_checkpoint_error(make_cfg, checkpoint_32px):
    with pytest.raises(CheckpointError, match="data.image_size=32"):
        train(make_cfg(*TINY, "data.image_size=64", "trainer.max_steps=2", f"ckpt_path={checkpoint_32px}"))


def test_checkpoint_of_another_suite_format_is_one_sentence(tmp_path, checkpoint_32px):
    ckpt = torch.load(checkpoint_32px, weights_only=True)
    ckpt["suite"]["format"] = 99
    future = tmp_path / "future.ckpt"
    torch.save(ckpt, future)
    res = cli(*TINY, "trainer.max_steps=2", f"ckpt_path={future}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_sentence(res, "format 99")


@pytest.mark.parametrize("override,needle", [
    ("method.optim.lr=0", "lr"),
    ("method.optim.lr=-1", "lr"),
    ("data.batch_size=-2", "batch_size"),
    ("data.batch_size=0", "batch_size"),
    ("trainer.max_steps=-5", "max_steps"),
    ("trainer.max_steps=0", "max_steps"),
])
def test_nonpositive_numbers_are_rejected(make_cfg, override, needle):
    with pytest.raises(ConfigError, match=needle):
        train(make_cfg(*TINY, override))
