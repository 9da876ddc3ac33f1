"""scripts/gpu_bench.sh's report: settings merged into one table, MFU from FLOP per iteration and the device peak,
and a run cut short still names what it measured, what it lost and what it skipped."""

from __future__ import annotations

import json

import pytest

from suite.bench_merge import main, merge


def test_merge_tags_rows_computes_mfu_and_names_missing_and_skipped_settings(tmp_path):
    run = {"device": "GPU X", "torch": "2", "peak_tflops": 100.0, "warmup": 2, "iters": 5,
           "rows": [{"method": "stargan", "image_size": 128, "batch_size": 16, "lightning_s_per_iter": 0.02,
                     "lightning_images_per_s": 800.0, "flop_per_iter": 4e11},
                    {"method": "spm", "error": "RuntimeError: boom"}]}
    (tmp_path / "bf16.json").write_text(json.dumps(run))
    merged = merge(tmp_path, ["bf16", "compile", "graphs"], skipped=["graphs"])
    assert [(r["setting"], r["method"]) for r in merged["rows"]] == [("bf16", "stargan"), ("bf16", "spm")]
    first = merged["rows"][0]
    assert first["achieved_tflops"] == pytest.approx(20.0) and first["mfu"] == pytest.approx(0.2)  # 4e11 / 0.02 s
    assert "mfu" not in merged["rows"][1]
    assert merged["settings"]["bf16"] == "2 method(s): stargan, spm"
    assert merged["settings"]["compile"].startswith("no result")
    assert merged["settings"]["graphs"].startswith("skipped")
    main([str(tmp_path), "--settings", "bf16", "compile", "graphs", "--skipped", "graphs", "--out", str(tmp_path / "gb")])
    table = (tmp_path / "gb.md").read_text()
    assert "| bf16 | stargan | 128 | 16 | 800 | 0.02 | 20.00 | 20.0% | – |" in table  # the bench's own formats
    assert json.loads((tmp_path / "gb.json").read_text())["rows"][0]["mfu"] == pytest.approx(0.2)
