"""Callbacks from the config (``conf/callbacks/``) and from code (``train(cfg, callbacks=[...])``), sample grids
as a callback, and the module's last-iteration hook."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar

from lightning_modules.aggan import AGGAN
from lightning_modules.samples import cell_scale, grid_columns, save_sample_grid
from suite.callbacks import IterationCheckpoint, IterationProgressBar, SampleGrids, Validation, critic_cycle
from suite.training import build_callbacks, train

TINY = ["method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8", "data.image_size=32",
        "data.batch_size=2", "data.train_size=6", "data.val_size=4", "data.test_size=4", "method.num_samples=2"]
NO_CLASSIFIER = "callbacks.validation.classifier.enabled=false"  # validation without fitting the classifier


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
    assert [type(c) for c in built] == [Validation, IterationCheckpoint, SampleGrids, IterationProgressBar]
    assert built[1].every == 7 and built[2].every == 3 and built[2].num_samples == 2
    assert built[0].every == 3  # validation and grids at the same points: val_every (default method.sample_every)
    assert not any(isinstance(c, ProgressBar) for c in build_callbacks(cfg, progress_bar=False))


def test_sample_grids_are_written_without_moving_the_training(make_cfg, tmp_path):
    with_grids = quiet_train(make_cfg(*TINY, "trainer.max_steps=4", "method.sample_every=2", NO_CLASSIFIER,
                                      run_dir=tmp_path / "a"))
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


def test_sample_grid_cells_are_enlarged_and_labelled(tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    batch = {"image": torch.rand(2, 3, 32, 32) * 2 - 1, "gt": torch.rand(2, 3, 32, 32) * 2 - 1}
    out = {"image": torch.rand(2, 3, 32, 32) * 2 - 1, "mask": torch.rand(2, 1, 32, 32)}
    assert list(grid_columns(batch, out)) == ["input", "output", "mask", "ground truth"]
    assert cell_scale(32, 128) == 4 and cell_scale(256, 128) == 1 and cell_scale(100, 128) == 2
    grid = Image.open(save_sample_grid(tmp_path / "g.png", batch, out, cell_size=128)).convert("RGB")
    cell, pad = 128, 2
    header = grid.height - 2 * (cell + pad) - pad
    assert grid.width == 4 * (cell + pad) + pad and header > 10
    pixels = torch.tensor(list(grid.getdata()), dtype=torch.uint8).view(grid.height, grid.width, 3)
    assert (pixels[:header] < 128).any()  # the column titles are drawn in the header
    top_left = pixels[header + pad: header + pad + 4, pad: pad + 4]  # one 32 px pixel became a 4×4 square
    assert (top_left == top_left[0, 0]).all()
    expected = ((batch["image"][0, :, 0, 0] + 1) / 2 * 255).round().to(torch.uint8)
    assert torch.allclose(top_left[0, 0].int(), expected.int(), atol=1)


@pytest.mark.parametrize(("iteration", "n_critic", "shown"), [(1, 5, "1/5"), (2, 5, "2/5"), (5, 5, "5/5"),
                                                              (6, 5, "1/5"), (3, 1, None), (3, None, None)])
def test_critic_cycle(iteration, n_critic, shown):
    assert critic_cycle(iteration, n_critic) == shown


def test_progress_bar_counts_iterations_of_the_total(make_cfg, tmp_path):
    result = quiet_train(make_cfg(*TINY, "trainer.max_steps=4", "trainer.enable_progress_bar=true",
                                  "memory_check=off", run_dir=tmp_path))
    bar = next(c for c in result["trainer"].callbacks if isinstance(c, IterationProgressBar))
    task = bar.progress.tasks[bar.train_progress_bar_id]
    assert (task.completed, task.total, task.description) == (4, 4, "iteration")


def test_max_time_composes_and_stops_with_a_checkpoint(make_cfg, tmp_path):
    result = quiet_train(make_cfg(*TINY, "trainer.max_time=00:00:00:01", "trainer.max_steps=100000", "val_every=0",
                                  "memory_check=off", run_dir=tmp_path))
    assert 0 < result["iteration"] < 100000 and result["checkpoint"].exists()
    from suite.checkpoints import read_checkpoint

    assert read_checkpoint(result["checkpoint"])["suite"]["iteration"] == result["iteration"]
