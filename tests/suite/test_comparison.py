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


def test_runs_of_one_label_are_grouped_as_mean_and_std(tmp_path):
    for seed, (psnr, iou) in enumerate([(30.0, 0.5), (32.0, 0.7), (31.0, math.nan)]):
        add_row(tmp_path / "t", tmp_path / f"full-s{seed}" / "checkpoints" / "last.ckpt", "aggan",
                {"psnr_gt": psnr, "mask_iou": iou, "num_images": 16.0, "kid_classifier/std": 0.1})
    add_row(tmp_path / "t", tmp_path / "ad" / "checkpoints" / "last.ckpt", "aggan −AD", {"psnr_gt": 29.5})
    lines = (tmp_path / "t" / "comparison_by_label.md").read_text().strip().splitlines()
    assert lines[0] == "| run | n | mask_iou | psnr_gt |"
    # psnr 30, 32, 31: mean 31, sample std 1; mask_iou over its finite values 0.5, 0.7: mean 0.6, std 0.1414
    assert lines[2] == "| aggan | 3 | 0.6000 ± 0.1414 | 31.0000 ± 1.0000 |"
    assert lines[3] == "| aggan −AD | 1 | — | 29.5000 |"
    assert len((tmp_path / "t" / "comparison.md").read_text().strip().splitlines()) == 6  # a row per checkpoint


def test_seed_table_script_trains_each_row_per_seed_and_groups_them(tmp_path, monkeypatch):
    import subprocess
    import sys

    tiny = " ".join([*TINY, "trainer.max_steps=1", "method.sample_every=0", "val_every=0"])
    env = {**__import__("os").environ, "PY": sys.executable, "SEEDS": "0 1", "COMMON": tiny, "OMP_NUM_THREADS": "1",
           "EVAL": "classifier.epochs=1 fid.feature=none num_grid=2 max_images=8", "FACETRANS_CACHE": str(tmp_path / "cache")}
    script = Path(__file__).resolve().parents[2] / "scripts" / "seed_table.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "t"), "aggan_synth", "aggan_table2", "full=",
                           "noAD=method.attention_discriminator=false"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + (tmp_path / "t" / "evaluate.log").read_text()
    lines = (tmp_path / "t" / "tables" / "comparison_by_label.md").read_text().strip().splitlines()
    assert [line.split(" | ")[:2] for line in lines[2:]] == [["| aggan", "2"], ["| aggan −AD", "2"]]
    assert "±" in lines[2] and (tmp_path / "t" / "full-s1" / "checkpoints" / "last.ckpt").is_file()
    protocol_table = (tmp_path / "t" / "aggan_table2.md").read_text()
    assert "| Full − AD | 14.6352 |" in protocol_table and "(n=2)" in protocol_table  # seeds as mean ± std
