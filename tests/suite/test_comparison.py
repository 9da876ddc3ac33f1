"""One comparison table from several evaluated checkpoints (evaluate.py ckpt_paths / multirun rows)."""

from __future__ import annotations

import evaluate
from suite.training import train
from tests.conftest import compose_config
from tests.suite.test_training import TINY


def test_table_has_a_row_per_checkpoint(make_cfg, tmp_path):
    a = train(make_cfg(*TINY, "trainer.max_steps=2", run_dir=tmp_path / "a"))["checkpoint"]
    b = train(make_cfg(*TINY, "trainer.max_steps=2", "method.attention_discriminator=false",
                       run_dir=tmp_path / "b"))["checkpoint"]
    cfg = compose_config([f"ckpt_paths=[{a},{b}]", f"out_dir={tmp_path / 'eval'}", f"table_dir={tmp_path / 'tables'}",
                          "classifier.epochs=1", "num_grid=4"], config_name="evaluate")
    results = evaluate.run(cfg)
    assert set(results) == {"aggan", "aggan −AD"}
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
