"""Divergence: a NaN/inf gradient (with finite losses) stops the run with the optimizer's name and the iteration
and keeps the last good checkpoint; with nan_guard=skip the step is dropped (weights unchanged) and counted."""

from __future__ import annotations

import pytest
import torch

from lightning_modules import aggan
from suite.checkpoints import read_checkpoint
from suite.errors import DivergenceError
from suite.training import train

TINY = ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8", "data.image_size=32",
        "data.batch_size=2", "data.train_size=8", "data.test_size=4", "data.val_size=4", "method.sample_every=0",
        "method.num_samples=2", "method.ema.enabled=false"]


def poison_cycle_gradient(monkeypatch, after_calls: int) -> None:
    """G's cycle loss keeps its (finite) value, but its gradient becomes NaN after ``after_calls`` calls
    (two calls per iteration)."""
    real_cycle = aggan.cycle_loss
    calls = {"n": 0}

    def poisoned(rec, x):
        calls["n"] += 1
        if calls["n"] > after_calls and rec.requires_grad:
            rec = rec.clone()
            rec.register_hook(lambda g: g * float("nan"))
        return real_cycle(rec, x)

    monkeypatch.setattr(aggan, "cycle_loss", poisoned)


def test_nan_gradient_stops_with_name_and_iteration(make_cfg, tmp_path, monkeypatch):
    poison_cycle_gradient(monkeypatch, after_calls=4)  # iterations 1–2 clean, NaN gradient in iteration 3
    with pytest.raises(DivergenceError, match=r"gradient of G .*nan at iteration 2"):
        # memory_check=off: the probe's iterations would count towards the poisoned calls
        train(make_cfg(*TINY, "trainer.max_steps=6", "checkpoint_every=1", "memory_check=off", run_dir=tmp_path / "r"))
    good = read_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")
    assert good["suite"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())


def test_skip_mode_leaves_generator_weights_unchanged(make_cfg, tmp_path, monkeypatch):
    first = train(make_cfg(*TINY, "trainer.max_steps=3", "checkpoint_every=1", run_dir=tmp_path / "a"))
    before = read_checkpoint(first["checkpoint"])["state_dict"]
    poison_cycle_gradient(monkeypatch, after_calls=0)
    resumed = train(make_cfg(*TINY, "trainer.max_steps=5", "method.nan_guard=skip", f"ckpt_path={first['checkpoint']}",
                             run_dir=tmp_path / "b"))
    after = resumed["module"].state_dict()
    g_keys = [k for k in before if k.startswith(("G_xy.", "G_yx.")) and before[k].is_floating_point()]
    d_keys = [k for k in before if k.startswith("D") and before[k].is_floating_point() and "running" not in k]
    assert g_keys and all(torch.equal(before[k], after[k]) for k in g_keys if "running" not in k)
    assert any(not torch.equal(before[k], after[k]) for k in d_keys)  # D still trains
    assert resumed["module"].skipped_steps == 2
