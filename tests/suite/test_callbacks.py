"""Callbacks from the config (``conf/callbacks/``) and from code (``train(cfg, callbacks=[...])``), sample grids
as a callback, and the module's last-iteration hook."""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

from lightning_modules.aggan import AGGAN
from suite.callbacks import IterationCheckpoint, SampleGrids
from suite.training import build_callbacks, train

TINY = ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8", "data.image_size=32",
        "data.batch_size=2", "data.train_size=6", "data.val_size=4", "data.test_size=4", "method.num_samples=2"]


def quiet_train(cfg, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(cfg, **kwargs)


class BatchEnds(pl.Callback):
    def __init__(self) -> None:
        self.iterations: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.iterations.append(pl_module.iteration)


def test_default_callbacks_follow_the_config(make_cfg):
    cfg = make_cfg(*TINY, "checkpoint_every=7", "method.sample_every=3")
    built = build_callbacks(cfg, progress_bar=True)
    assert [type(c) for c in built] == [IterationCheckpoint, SampleGrids, RichProgressBar]
    assert built[0].every == 7 and built[1].every == 3 and built[1].num_samples == 2
    assert not any(isinstance(c, ProgressBar) for c in build_callbacks(cfg, progress_bar=False))


def test_sample_grids_are_written_without_moving_the_training(make_cfg, tmp_path):
    with_grids = quiet_train(make_cfg(*TINY, "trainer.max_steps=4", "method.sample_every=2", run_dir=tmp_path / "a"))
    names = sorted(p.name for p in (tmp_path / "a" / "samples").glob("*.png"))
    assert names == ["iter_0000002.png", "iter_0000004.png"]
    without = quiet_train(make_cfg(*TINY, "trainer.max_steps=4", "~callbacks.samples", run_dir=tmp_path / "b"))
    assert not (tmp_path / "b" / "samples").exists()
    a, b = with_grids["module"].state_dict(), without["module"].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_callbacks_from_code_run_after_the_configured_ones(make_cfg, tmp_path):
    ends = BatchEnds()
    result = quiet_train(make_cfg(*TINY, "trainer.max_steps=2", run_dir=tmp_path), callbacks=[ends])
    assert ends.iterations == [1, 2]
    order = [type(c) for c in result["trainer"].callbacks]
    assert order.index(IterationCheckpoint) < order.index(SampleGrids) < order.index(BatchEnds)
    assert result["checkpoint"] == tmp_path / "checkpoints" / "last.ckpt" and result["checkpoint"].exists()


def test_callbacks_none_leaves_only_those_from_code(make_cfg, tmp_path):
    ends = BatchEnds()
    result = quiet_train(make_cfg(*TINY, "trainer.max_steps=3", "callbacks=none", run_dir=tmp_path), callbacks=[ends])
    assert ends.iterations == [1, 2, 3]
    assert result["checkpoint"] is None and result["stop_signal"] is None
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "samples").exists()


def test_lr_monitor_logs_under_manual_optimization(make_cfg, tmp_path):
    quiet_train(make_cfg(*TINY, "trainer.max_steps=2", "trainer.log_every_n_steps=1", "callbacks=[default,lr_monitor]",
                         "logger=csv", run_dir=tmp_path))
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"lr-Adam", "lr-Adam-1", "train/lr/G", "train/lr/D"} <= set(header)


def test_last_iteration_hook_runs_once_before_the_final_checkpoint(make_cfg, tmp_path, monkeypatch):
    calls: list[tuple[int, bool]] = []
    ckpt = tmp_path / "r" / "checkpoints" / "last.ckpt"

    def hook(self) -> None:
        calls.append((self.iteration, ckpt.exists()))

    monkeypatch.setattr(AGGAN, "on_last_iteration", hook, raising=False)
    quiet_train(make_cfg(*TINY, "trainer.max_steps=3", f"checkpoint_every={10**6}", run_dir=tmp_path / "r"))
    assert calls == [(3, False)]  # in the last training step, before the final checkpoint is written
    calls.clear()
    quiet_train(make_cfg(*TINY, "trainer.fast_dev_run=true", run_dir=tmp_path / "f"))
    assert [it for it, _ in calls] == [1]  # stopped another way: from on_train_end
