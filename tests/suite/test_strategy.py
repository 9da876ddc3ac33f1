"""Several processes without ``trainer=ddp``: the design card's ``python train.py method=aggan data=rafd
trainer.devices=2`` must train as typed. ``suite.strategy`` turns ``strategy: auto`` into DDP with
``find_unused_parameters`` (GAN updates leave parameters unused) and switches sync-BN on for GPUs only.

The decision is tested as a pure function; one module-scoped run per method (AGGAN, and StarGAN for WGAN-GP with a
gradient penalty and n_critic) goes through the real ``train.py`` on two CPU processes (gloo), as a new user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite.strategy import multiprocess_settings
from suite.training import train

REPO = Path(__file__).resolve().parents[2]
DDP = "ddp_find_unused_parameters_true"
DEFAULT = {"accelerator": "auto", "devices": 1, "num_nodes": 1, "strategy": "auto"}  # conf/trainer/default.yaml


def decide(cuda_devices: int = 0, interactive: bool = False, **trainer) -> dict:
    return multiprocess_settings({**DEFAULT, **trainer}, cuda_devices=cuda_devices, interactive=interactive)


@pytest.mark.parametrize("trainer,cuda", [
    ({}, 0), ({}, 4),                                    # one device: Lightning's single-device strategy stays
    ({"devices": "auto"}, 0), ({"devices": -1}, 1),      # auto / -1: one CPU process, or every (here one) GPU
    ({"devices": [3]}, 4), ({"devices": "1"}, 4),
    ({"accelerator": "mps", "devices": 2}, 0),           # not ours to decide: Lightning reports what it refuses
    ({"devices": "two"}, 0),
])
def test_one_process_keeps_the_trainer_as_it_is(trainer, cuda):
    assert decide(cuda, **trainer) == {}


def test_two_cpu_processes_get_ddp_with_unused_parameters_and_no_sync_batchnorm():
    assert decide(0, devices=2) == {"strategy": DDP, "sync_batchnorm": False}
    assert decide(4, accelerator="cpu", devices="2") == {"strategy": DDP, "sync_batchnorm": False}


@pytest.mark.parametrize("trainer", [{"devices": 2}, {"devices": "auto"}, {"devices": -1}, {"devices": [0, 1]},
                                     {"devices": "0,1"}, {"accelerator": "gpu", "devices": 1, "num_nodes": 2}])
def test_several_gpus_get_ddp_with_unused_parameters_and_sync_batchnorm(trainer):
    assert decide(2, **trainer) == {"strategy": DDP, "sync_batchnorm": True}


def test_nodes_count_as_processes():
    assert decide(0, accelerator="cpu", devices=1, num_nodes=3)["strategy"] == DDP


def test_a_notebook_forks_its_ranks():
    assert decide(2, interactive=True, devices=2)["strategy"] == "ddp_fork_find_unused_parameters_true"


@pytest.mark.parametrize("plain", ["ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"])
def test_a_plain_ddp_name_gets_its_find_unused_form(plain):
    assert decide(2, devices=2, strategy=plain)["strategy"] == f"{plain}_find_unused_parameters_true"


@pytest.mark.parametrize("strategy", [DDP, "ddp_find_unused_parameters_false", "fsdp", "deepspeed_stage_2"])
def test_any_other_strategy_is_kept(strategy):
    assert "strategy" not in decide(2, devices=2, strategy=strategy)


def test_a_sync_batchnorm_value_the_user_set_is_kept():
    assert decide(0, devices=2, sync_batchnorm=True) == {"strategy": DDP}  # train() then stops it on CPU
    assert decide(2, devices=2, sync_batchnorm=False) == {"strategy": DDP}
    assert decide(2, devices=2, sync_batchnorm=None)["sync_batchnorm"] is True
    assert decide(2, devices=2, strategy="fsdp") == {}  # sync-BN belongs to DDP here


def test_the_ddp_preset_is_unchanged(make_cfg):
    """`trainer=ddp` already names its strategy and sync-BN; the suite adds nothing."""
    from omegaconf import OmegaConf

    trainer = OmegaConf.to_container(make_cfg("trainer=ddp").trainer, resolve=True)
    assert multiprocess_settings(trainer, cuda_devices=2) == {}


def test_cpu_devices_2_with_sync_batchnorm_asked_still_stops_with_what_to_change(make_cfg):
    from suite.errors import ConfigError

    cfg = make_cfg("trainer.accelerator=cpu", "trainer.devices=2", "+trainer.sync_batchnorm=true", "trainer.max_steps=1")
    with pytest.raises(ConfigError, match="sync_batchnorm=false"):
        train(cfg)


# ------------------------------------------------------------------------------ two CPU processes, as typed
TINY = {
    "aggan": ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8"],  # batch norm
    "stargan": ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8",
                "method.discriminator.n_layers=3"],  # WGAN-GP, n_critic 2 (synth): iteration 1 updates D alone
}


@pytest.fixture(scope="module", params=sorted(TINY))
def two_process_run(request, tmp_path_factory):
    method = request.param
    run_dir = tmp_path_factory.mktemp(f"devices2_{method}")
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1", FACETRANS_CACHE=str(run_dir / "cache"),
               MASTER_PORT=str(29600 + os.getpid() % 1000 + len(method)))
    env.pop("LOCAL_RANK", None)
    cmd = [sys.executable, "train.py", f"method={method}", "data=synthfaces", "trainer.devices=2", "trainer.max_steps=2",
           "scale=synth", *TINY[method], "logger=none", "trainer.enable_progress_bar=false", "data.train_size=16",
           "data.batch_size=2", "method.sample_every=0", "method.num_samples=0", f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    return method, run_dir, proc


def test_devices_2_trains_as_typed_on_two_cpu_processes(two_process_run):
    method, run_dir, proc = two_process_run
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{method}: train.py failed ({proc.returncode}):\n{output[-5000:]}"
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert f"trainer.strategy={DDP}" in output and "trainer.sync_batchnorm=False" in output
    assert proc.stdout.count("trained 2 iterations") == 2, proc.stdout  # both ranks reached the last iteration
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
