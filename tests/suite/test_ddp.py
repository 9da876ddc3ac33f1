"""DDP on two CPU processes (gloo) through the real ``train.py``: both ranks end with identical weights, and two
ranks match one process.

``train()`` takes no extra callbacks, so the weights each rank holds at the end of ``Trainer.fit`` are dumped by a
test-only ``sitecustomize.py`` that this test writes into a temporary folder on ``PYTHONPATH``: when
``FACETRANS_TEST_DUMP_WEIGHTS`` is set, it wraps ``pytorch_lightning.Trainer.fit`` and saves the module's
initial and final state dicts to ``<dir>/rank<global_rank>.pt``. Lightning relaunches ``train.py`` for rank 1
with the parent's environment, so both ranks load the hook; nothing in the suite's code changes.

Setting (tiny AGGAN, 3 iterations, 32 px): instance norm in G and D, because the DDP preset's
``sync_batchnorm: true`` stops on CPU ("SyncBatchNorm layers only work with GPU modules") and unsynchronised
batch norm makes the ranks' running statistics differ. Both ranks seed the same (and DDP broadcasts rank 0's
weights); the image pools return their input until full (pool 50 ≫ 3 iterations × 4 images).

What is compared, and the tolerances:
- ranks: bitwise equal state dicts (gradients are all-reduced, so every rank takes the same steps);
- DDP with ``trainer.use_distributed_sampler=false`` (both ranks read the same batch of B) against one process
  on that batch B: averaging two identical gradients is exact, so the weights agree to float round-off of the
  bucketed all-reduce: ‖θ_ddp − θ_1‖ ≤ 1e-4 · ‖θ_1 − θ_init‖ (the norm of what training moved; measured 0);
- DDP with Lightning's default sampler handling against one process on batch 2B: should agree within 5e-2 of
  the update. The residual is float reduction order (2 vs 4 images per conv reduction) amplified by Adam: conv
  biases in front of an instance norm have an analytically zero gradient, and Adam turns its round-off into
  ±lr steps of random sign. The datamodules shard their own seeded permutation per rank (Lightning's
  ``DistributedSamplerWrapper``, which would shuffle a second time, is turned off by ``train()``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

HOOK = textwrap.dedent(
    '''
    import os

    if os.environ.get("FACETRANS_TEST_DUMP_WEIGHTS"):
        import pytorch_lightning as _pl
        import torch as _torch

        _fit = _pl.Trainer.fit

        def _fit_and_dump(self, model, *args, **kwargs):
            before = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            out = _fit(self, model, *args, **kwargs)
            folder = os.environ["FACETRANS_TEST_DUMP_WEIGHTS"]
            os.makedirs(folder, exist_ok=True)
            _torch.save(
                {
                    "init": before,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                    "iteration": model.iteration,
                    "world_size": self.world_size,
                },
                os.path.join(folder, f"rank{self.global_rank}.pt"),
            )
            return out

        _pl.Trainer.fit = _fit_and_dump
    '''
)

TINY = [
    "method=aggan",
    "data=synthfaces",
    "scale=synth",
    "logger=none",
    "trainer.max_steps=3",
    "trainer.enable_progress_bar=false",
    "data.image_size=32",
    "data.train_size=64",
    "data.val_size=8",
    "method.generator.ngf=8",
    "method.generator.n_blocks=1",
    "method.generator.norm=instance",
    "method.discriminator.ndf=8",
    "method.discriminator.norm=instance",
    "method.sample_every=0",
    "method.num_samples=0",
    "checkpoint_every=1000",
]


def run_train(tmp_path: Path, name: str, overrides: list[str], timeout: int = 240) -> dict[str, dict]:
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    dump = tmp_path / name / "dump"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(hook_dir), str(REPO), env.get("PYTHONPATH", "")]),
        FACETRANS_TEST_DUMP_WEIGHTS=str(dump),
        FACETRANS_CACHE=str(tmp_path / "cache"),
        WANDB_MODE="disabled",
        OMP_NUM_THREADS="1",
        MASTER_PORT=str(29500 + os.getpid() % 1000),
        HYDRA_FULL_ERROR="1",
    )
    env.pop("LOCAL_RANK", None)
    cmd = [sys.executable, "train.py", f"hydra.run.dir={tmp_path / name}", f"run_dir={tmp_path / name}", *TINY, *overrides]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return {p.stem: torch.load(p, weights_only=False) for p in sorted(dump.glob("rank*.pt"))}


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.float().flatten() for k, v in sorted(state.items()) if v.is_floating_point()])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    ddp_args = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=2"]
    return {
        "ddp": run_train(tmp, "ddp", ddp_args),
        "ddp_same_batch": run_train(tmp, "ddp_same_batch", [*ddp_args, "+trainer.use_distributed_sampler=false"]),
        "single_b": run_train(tmp, "single_b", ["trainer=cpu", "data.batch_size=2"]),
        "single_2b": run_train(tmp, "single_2b", ["trainer=cpu", "data.batch_size=4"]),
    }


def relative_gap(run: dict, reference: dict) -> float:
    init = _flat(reference["rank0"]["init"])
    assert torch.equal(init, _flat(run["rank0"]["init"])), "both runs must start from the same weights"
    theta_ref, theta = _flat(reference["rank0"]["state"]), _flat(run["rank0"]["state"])
    moved = (theta_ref - init).norm()
    assert moved > 0
    return float((theta - theta_ref).norm() / moved)


def test_ddp_ranks_end_with_identical_weights(runs):
    ddp = runs["ddp"]
    assert set(ddp) == {"rank0", "rank1"}
    assert ddp["rank0"]["world_size"] == 2
    assert ddp["rank0"]["iteration"] == ddp["rank1"]["iteration"] == 3
    s0, s1 = ddp["rank0"]["state"], ddp["rank1"]["state"]
    assert s0.keys() == s1.keys()
    for key in s0:
        assert torch.equal(s0[key], s1[key]), f"ranks disagree on {key}"
    assert not torch.equal(_flat(s0), _flat(ddp["rank0"]["init"])), "training did not move the weights"


def test_ddp_gradient_average_matches_one_process(runs):
    """Both ranks on the same batch B (no sampler sharding) = one process on B, up to all-reduce round-off."""
    assert runs["ddp_same_batch"]["rank0"]["world_size"] == 2
    assert runs["single_b"]["rank0"]["world_size"] == 1 and runs["single_b"]["rank0"]["iteration"] == 3
    gap = relative_gap(runs["ddp_same_batch"], runs["single_b"])
    assert gap <= 1e-4, f"DDP differs from one process by {gap:.2e} of the training update"


def test_ddp_matches_one_process_on_the_same_global_batch(runs):
    """Two ranks of B (the datamodule shards its seeded permutation per rank) = one process on 2B, up to float
    reduction order amplified by Adam."""
    gap = relative_gap(runs["ddp"], runs["single_2b"])
    assert gap <= 5e-2, f"DDP differs from one process by {gap:.2e} of the training update"


def test_sync_batchnorm_on_cpu_with_batch_norm_stops_with_what_to_change(make_cfg):
    from suite.errors import ConfigError
    from suite.training import train

    cfg = make_cfg("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "method=aggan", "trainer.max_steps=1")
    with pytest.raises(ConfigError, match="sync_batchnorm=false"):
        train(cfg)
