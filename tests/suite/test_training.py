"""Short real runs: every method × embedded dataset, resume, checkpoint contents, evaluation."""

from __future__ import annotations

import json

import pytest
import torch

from suite.checkpoints import read_checkpoint
from suite.errors import CheckpointError
from suite.evaluation import evaluate_checkpoint
from suite.training import train

TINY = ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8",
        "data.image_size=32", "data.batch_size=4", "data.train_size=64", "data.test_size=16", "data.val_size=8"]
# every method × embedded dataset (shapes has two domains only, so the multi-domain form runs on synthfaces)
RUNS = [
    ("aggan", "synthfaces", []),
    ("aggan", "shapes", []),
    ("cyclegan", "synthfaces", []),
    ("cyclegan", "shapes", []),
    ("aggan", "synthfaces", ["method.view=multi_domain"]),
]


@pytest.mark.parametrize("method,data,extra", RUNS, ids=["-".join([m, d, *e]) for m, d, e in RUNS])
def test_fast_dev_run(make_cfg, method, data, extra):
    result = train(make_cfg(f"method={method}", f"data={data}", "trainer.fast_dev_run=true", *TINY, *extra))
    assert result["iteration"] == 1


def test_checkpoint_is_complete_and_resume_continues(make_cfg, tmp_path):
    first = train(make_cfg(*TINY, "trainer.max_steps=3", "checkpoint_every=2", run_dir=tmp_path / "a"))
    ckpt = read_checkpoint(first["checkpoint"], expected_method="aggan")
    assert ckpt["suite"]["iteration"] == 3
    assert len(ckpt["optimizer_states"]) == 2 and len(ckpt["lr_schedulers"]) == 2
    assert set(ckpt["suite"]["pools"]) == {"fake_y", "fake_x"}
    assert ckpt["suite"]["pools"]["fake_y"]["images"].shape[0] == 3 * 4  # 3 iterations × batch 4
    assert ckpt["suite"]["config"]["method"]["name"] == "aggan"
    resumed = train(make_cfg(*TINY, "trainer.max_steps=5", f"ckpt_path={first['checkpoint']}", run_dir=tmp_path / "b"))
    assert resumed["iteration"] == 5
    assert read_checkpoint(resumed["checkpoint"])["suite"]["iteration"] == 5


def test_resume_with_another_method_is_refused(make_cfg, tmp_path):
    first = train(make_cfg(*TINY, "trainer.max_steps=1", run_dir=tmp_path / "a"))
    with pytest.raises(CheckpointError, match="method=aggan"):
        train(make_cfg("method=cyclegan", *TINY, f"ckpt_path={first['checkpoint']}", run_dir=tmp_path / "b"))


def test_nan_loss_stops_with_name_and_keeps_last_good_checkpoint(make_cfg, tmp_path, monkeypatch):
    from lightning_modules import aggan
    from suite.errors import DivergenceError

    real_cycle = aggan.cycle_loss
    calls = {"n": 0}

    def poisoned(rec, x):
        calls["n"] += 1
        value = real_cycle(rec, x)
        return value * float("nan") if calls["n"] > 4 else value  # 2 calls per iteration → NaN at iteration 3

    monkeypatch.setattr(aggan, "cycle_loss", poisoned)
    with pytest.raises(DivergenceError, match=r"G/cycle.*iteration 2"):  # (no memory probe: it would call it too)
        train(make_cfg(*TINY, "trainer.max_steps=6", "checkpoint_every=1", "memory_check=off", run_dir=tmp_path / "r"))
    good = read_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")
    assert good["suite"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())


def test_evaluate_writes_metrics_and_grid(make_cfg, tmp_path):
    run = train(make_cfg(*TINY, "trainer.max_steps=2", run_dir=tmp_path / "r"))
    metrics = evaluate_checkpoint(run["checkpoint"], tmp_path / "eval", classifier={"epochs": 1})
    for key in ("accuracy_target", "accuracy_real", "psnr_gt", "psnr_input", "mask_iou", "ssim_gt"):
        assert key in metrics
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(written) == set(metrics)
    assert (tmp_path / "eval" / "grid.png").stat().st_size > 0
    assert "accuracy_target" in (tmp_path / "eval" / "metrics.md").read_text()


def test_evaluate_shows_spm_motion_basis_combination(make_cfg, tmp_path):
    from tests.methods import RUN_OVERRIDES as METHODS

    run = train(make_cfg(*METHODS["spm"], "trainer.max_steps=2", run_dir=tmp_path / "r"))
    evaluate_checkpoint(run["checkpoint"], tmp_path / "eval", classifier={"epochs": 1}, max_images=8)
    assert (tmp_path / "eval" / "motion_combination.png").stat().st_size > 0
    assert "happy+surprised" in (tmp_path / "eval" / "motion_combination.txt").read_text()
