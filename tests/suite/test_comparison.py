"""One comparison table from several evaluated checkpoints (evaluate.py ckpt_paths / multirun rows)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import evaluate
from suite.comparison import add_row, log_comparison
from suite.training import train
from tests.conftest import compose_config
from tests.suite.test_training import TINY


def logged_tables(wandb_dir: Path) -> list[dict]:
    """The ``eval/comparison`` tables W&B wrote into its offline runs under ``wandb_dir``, oldest run first."""
    files = sorted(wandb_dir.glob("wandb/offline-run-*/files/media/table/eval/comparison_*.table.json"))
    return [json.loads(f.read_text()) for f in files]


def offline_wandb(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")  # conftest disables W&B; offline writes the run to disk
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    (tmp_path / "wb").mkdir()
    return tmp_path / "wb"


def test_table_has_a_row_per_checkpoint(make_cfg, tmp_path, monkeypatch):
    a = train(make_cfg(*TINY, "trainer.max_steps=2", run_dir=tmp_path / "a"))["checkpoint"]
    b = train(make_cfg(*TINY, "trainer.max_steps=2", "method.attention_discriminator=false",
                       run_dir=tmp_path / "b"))["checkpoint"]
    cfg = compose_config([f"ckpt_paths=[{a},{b}]", f"out_dir={tmp_path / 'eval'}", f"table_dir={tmp_path / 'tables'}",
                          "classifier.epochs=1", "num_grid=4"], config_name="evaluate")
    wandb_dir = offline_wandb(monkeypatch, tmp_path)
    results = evaluate.run(cfg)
    assert set(results) == {"aggan", "aggan −AD"}
    [logged] = logged_tables(wandb_dir)  # one W&B run, the table logged once with both rows
    assert [row[0] for row in logged["data"]] == ["aggan", "aggan −AD"]
    assert {"run", "fid_classifier", "accuracy_target", "psnr_gt"} <= set(logged["columns"])
    lines = (tmp_path / "tables" / "comparison.md").read_text().strip().splitlines()
    assert len(lines) == 4  # header, rule, two rows
    for column in ("fid_classifier", "kid_classifier", "accuracy_target", "psnr_gt"):
        assert column in lines[0]
    assert lines[2].startswith("| aggan |") and lines[3].startswith("| aggan −AD |")
    # a second evaluation of the same checkpoint (as a multirun job would) replaces its row, adds none
    single = compose_config([f"ckpt_path={a}", f"out_dir={tmp_path / 'e1'}", f"table_dir={tmp_path / 'tables'}",
                             "classifier.epochs=1", "fid.feature=none", "label=mine"], config_name="evaluate")
    evaluate.run(single)
    text = (tmp_path / "tables" / "comparison.md").read_text()
    assert len(text.strip().splitlines()) == 4 and "| mine |" in text


def test_comparison_table_is_logged_to_wandb(tmp_path, monkeypatch):
    wandb_dir = offline_wandb(monkeypatch, tmp_path)
    add_row(tmp_path / "t", tmp_path / "a" / "checkpoints" / "last.ckpt", "aggan",
            {"fid_classifier": 1.5, "psnr_gt": 20.0, "kid_classifier/std": 0.1, "num_images": 16.0,
             "mask_iou": math.nan})
    add_row(tmp_path / "t", tmp_path / "b" / "checkpoints" / "last.ckpt", "aggan −AD",
            {"fid_classifier": 2.5, "psnr_gt": 19.0, "num_images": 16.0})
    assert log_comparison(tmp_path / "t", {"mode": "auto", "project": "facetrans", "entity": None})
    [table] = logged_tables(wandb_dir)
    # the markdown table's columns (means only, no bookkeeping), NaN and missing cells as empty (None)
    assert table["columns"] == ["run", "fid_classifier", "mask_iou", "psnr_gt"]
    assert table["data"] == [["aggan", 1.5, None, 20.0], ["aggan −AD", 2.5, None, 19.0]]


def test_wandb_is_never_needed_for_the_table(tmp_path, monkeypatch, caplog):
    add_row(tmp_path / "t", tmp_path / "a" / "checkpoints" / "last.ckpt", "aggan", {"psnr_gt": 20.0})
    table = (tmp_path / "t" / "comparison.md").read_text()
    wandb_dir = offline_wandb(monkeypatch, tmp_path)
    assert not log_comparison(tmp_path / "t", None)  # wandb=null: no run of its own
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert not log_comparison(tmp_path / "t", {"mode": "offline"})  # the environment wins, as for training
    assert not list(wandb_dir.iterdir())

    import wandb

    def broken(*args, **kwargs):
        raise RuntimeError("wandb-core did not start")

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb, "init", broken)
    with caplog.at_level(logging.WARNING, logger="suite.comparison"):
        assert not log_comparison(tmp_path / "t", {"mode": "offline"})
    assert "wandb-core did not start" in caplog.text and "comparison.md" in caplog.text
    assert (tmp_path / "t" / "comparison.md").read_text() == table
