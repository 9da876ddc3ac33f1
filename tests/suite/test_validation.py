"""In-training validation (``suite.callbacks.Validation``): val/* metrics at the configured interval in every
logger, without moving the training; the best-k checkpoints it drives (``IterationCheckpoint``)."""

from __future__ import annotations

import csv
import warnings

import pytest
import torch

from suite.callbacks import IterationCheckpoint, Validation, metric_mode
from suite.training import train
from tests.suite.test_callbacks import NO_CLASSIFIER, TINY


def quiet_train(cfg, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(cfg, **kwargs)


def csv_rows(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def val_rows(run_dir) -> dict[int, dict[str, float]]:
    """iteration → the val/* numbers logged for it."""
    rows = {}
    for row in csv_rows(run_dir):
        if row.get("val/iteration"):
            rows[int(float(row["val/iteration"]))] = {k: float(v) for k, v in row.items() if k.startswith("val/") and v}
    return rows


@pytest.mark.parametrize(("name", "mode"), [("val/fid_classifier", "min"), ("val/kid_classifier", "min"),
                                            ("val/background_l1", "min"), ("val/mse_gt", "min"),
                                            ("val/psnr_gt", "max"), ("val/accuracy_target", "max"),
                                            ("val/mask_iou", "max"), ("ssim_gt", "max")])
def test_metric_mode_follows_the_metric(name, mode):
    assert metric_mode(name) == mode


def test_val_metrics_reach_the_csv_log_at_the_interval_without_moving_the_training(make_cfg, tmp_path):
    common = [*TINY, "trainer.max_steps=4", "logger=csv", "trainer.log_every_n_steps=1", "memory_check=off"]
    validated = quiet_train(make_cfg(*common, "val_every=2", NO_CLASSIFIER, run_dir=tmp_path / "a"))
    rows = val_rows(tmp_path / "a")
    assert sorted(rows) == [2, 4]
    for numbers in rows.values():  # AGGAN on the embedded faces: ground truth and an attention mask
        assert {"val/psnr_gt", "val/ssim_gt", "val/mask_iou", "val/background_l1", "val/seconds"} <= numbers.keys()
        assert 0.0 <= numbers["val/mask_iou"] <= 1.0 and numbers["val/psnr_gt"] > 0
    assert (tmp_path / "a" / "samples" / "iter_0000002.png").exists()  # the grids at the same points
    plain = quiet_train(make_cfg(*common, "val_every=2", "~callbacks.validation", run_dir=tmp_path / "b"))
    assert not val_rows(tmp_path / "b")
    a, b = validated["module"].state_dict(), plain["module"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_slice_is_the_first_images_of_the_validation_split(make_cfg, tmp_path):
    result = quiet_train(make_cfg(*TINY, "trainer.max_steps=2", "val_every=2", NO_CLASSIFIER, "memory_check=off",
                                  "callbacks.validation.num_images=3", run_dir=tmp_path))
    validation = next(c for c in result["trainer"].callbacks if isinstance(c, Validation))
    held = torch.cat([b["image"] for b in validation.held_out_slice(result["trainer"])])
    first = torch.stack([result["datamodule"].dataset("val")[i]["image"] for i in range(3)])
    assert torch.equal(held, first)


def test_classifier_metrics_use_the_evaluation_classifier(make_cfg, tmp_path):
    quiet_train(make_cfg(*TINY, "trainer.max_steps=2", "val_every=2", "logger=csv", "memory_check=off",
                         "callbacks.validation.classifier.epochs=1", run_dir=tmp_path))
    numbers = val_rows(tmp_path)[2]
    assert 0.0 <= numbers["val/accuracy_target"] <= 1.0
    assert numbers["val/fid_classifier"] >= 0.0 and numbers["val/classifier_seconds"] > 0
    assert list((tmp_path / "cache").glob("evalclf-*.pt"))  # fitted once, cached where evaluate.py looks


def test_best_k_checkpoints_are_the_k_best_by_the_metric(make_cfg, tmp_path):
    result = quiet_train(make_cfg(*TINY, "trainer.max_steps=6", "val_every=1", "logger=csv", NO_CLASSIFIER,
                                  "memory_check=off", "callbacks.checkpoint.monitor=val/background_l1",
                                  "callbacks.checkpoint.save_top_k=2", run_dir=tmp_path))
    rows = val_rows(tmp_path)
    best_two = sorted(rows, key=lambda it: (rows[it]["val/background_l1"], it))[:2]  # lower is better
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("best-*.ckpt"))
    assert kept == sorted(f"best-background_l1-{it:07d}.ckpt" for it in best_two)
    checkpoint = next(c for c in result["trainer"].callbacks if isinstance(c, IterationCheckpoint))
    assert [p.name for p in checkpoint.best_paths()][0] == f"best-background_l1-{best_two[0]:07d}.ckpt"
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))
    from suite.evaluation import evaluate_checkpoint

    metrics = evaluate_checkpoint(checkpoint.best_paths()[0], tmp_path / "eval", max_images=4, batch_size=4,
                                  classifier={"epochs": 1}, fid={"feature": "none"})
    assert metrics["iteration"] == best_two[0]  # evaluate.py takes a best checkpoint as it takes last.ckpt


def test_best_checkpoint_auto_monitor_and_off(make_cfg, tmp_path):
    quiet_train(make_cfg(*TINY, "trainer.max_steps=2", "val_every=2", NO_CLASSIFIER, "memory_check=off",
                         run_dir=tmp_path / "auto"))
    assert [p.name for p in (tmp_path / "auto" / "checkpoints").glob("best-*")] == ["best-psnr_gt-0000002.ckpt"]
    quiet_train(make_cfg(*TINY, "trainer.max_steps=2", "val_every=2", NO_CLASSIFIER, "memory_check=off",
                         "callbacks.checkpoint.save_top_k=0", run_dir=tmp_path / "off"))
    assert not list((tmp_path / "off" / "checkpoints").glob("best-*"))


def test_evaluate_checkpoint_best_scores_the_best_by_validation_and_last_otherwise(make_cfg, tmp_path):
    from suite.errors import ConfigError
    from suite.training import evaluated_checkpoint

    result = quiet_train(make_cfg(*TINY, "trainer.max_steps=4", "val_every=1", "logger=csv", NO_CLASSIFIER,
                                  "memory_check=off", "callbacks.checkpoint.monitor=val/background_l1",
                                  "callbacks.checkpoint.save_top_k=1", "evaluate_checkpoint=best", run_dir=tmp_path))
    rows = val_rows(tmp_path)
    best = min(rows, key=lambda it: (rows[it]["val/background_l1"], it))
    assert evaluated_checkpoint(result, "best").name == f"best-background_l1-{best:07d}.ckpt"
    assert evaluated_checkpoint(result, "last").name == "last.ckpt"
    assert evaluated_checkpoint({**result, "best_checkpoint": None}, "best").name == "last.ckpt"  # nothing ranked yet
    with pytest.raises(ConfigError, match="evaluate_checkpoint must be one of last, best"):
        quiet_train(make_cfg(*TINY, "trainer.max_steps=1", "evaluate_checkpoint=final", "memory_check=off",
                             run_dir=tmp_path / "bad"))
    with pytest.raises(ConfigError, match="val_every > 0"):  # before training, not after it
        quiet_train(make_cfg(*TINY, "trainer.max_steps=1", "val_every=0", "evaluate_checkpoint=best",
                             "evaluate_after=true", "memory_check=off", run_dir=tmp_path / "noval"))
    assert not (tmp_path / "noval" / "checkpoints" / "last.ckpt").exists()
    # without evaluate_after nothing is scored: a recipe's `best` does not stop a run without validation
    quiet_train(make_cfg(*TINY, "trainer.max_steps=1", "val_every=0", "evaluate_checkpoint=best", "memory_check=off",
                         run_dir=tmp_path / "notscored"))
    assert (tmp_path / "notscored" / "checkpoints" / "last.ckpt").exists()
