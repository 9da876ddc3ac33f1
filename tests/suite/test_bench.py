"""Smoke test of ``python -m suite.bench``: one method, one measured iteration, valid JSON with the overhead ratio."""

from __future__ import annotations

import json
import math

import torch

from suite import bench


def test_bench_writes_json_and_markdown_with_the_overhead_ratio(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETRANS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench_results"
    bench.main(["--methods", "aggan", "--iters", "1", "--warmup", "1", "--flops", "--threads", "1", "--out", str(out)])
    results = json.loads((out / "train.json").read_text())
    (row,) = results["rows"]
    assert row["method"] == "aggan" and row["image_size"] == 32 and row["batch_size"] == 8
    for key in ("lightning_s_per_iter", "lightning_images_per_s", "floor_s_per_iter", "overhead", "overhead_ex_data",
                "loader_images_per_s", "peak_rss_mib", "flop_per_iter", "achieved_tflops"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert row["overhead"] == row["lightning_s_per_iter"] / row["floor_s_per_iter"]
    # within one Lightning iteration: its interval holds its own train_iteration call plus Lightning's work
    assert row["overhead_within_iteration"] > 1 and row["lightning_outside_ms"] > 0
    assert row["lightning_outside_ms"] < 1e3 * row["lightning_s_per_iter"]
    assert "noisy" in results["note"]
    table = (out / "train.md").read_text()
    assert "| aggan | 32 | 8 |" in table and "overhead" in table


def test_peak_table_matches_pcie_before_sxm():
    assert bench.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_tflops("Some CPU") is None


def test_floor_moves_nested_batches_to_the_device():
    """disent's labels sit in batch["factors"][name]: the plain loop must move them like Lightning does."""
    batch = {"image": torch.rand(2, 3, 4, 4), "factors": {"identity": torch.zeros(2, dtype=torch.long)}, "names": ["a", "b"]}
    moved = bench._to(batch, torch.device("meta"), channels_last=True)
    assert moved["factors"]["identity"].device.type == "meta" and moved["image"].device.type == "meta"
    assert moved["image"].is_contiguous(memory_format=torch.channels_last)
    assert moved["names"] == ["a", "b"]
