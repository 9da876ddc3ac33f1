"""metrics.disentanglement: posterior entropy, the Hopkins statistic, t-SNE, the scatter PNG and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from metrics.disentanglement import (
    TSNE_FILE,
    disentanglement_report,
    hopkins_statistic,
    posterior_entropy,
    save_scatter_png,
    tsne,
)
from suite.errors import ConfigError


@pytest.mark.parametrize("k", [2, 4, 147])
def test_entropy_of_a_uniform_posterior_is_log_k(k):
    assert torch.allclose(posterior_entropy(torch.zeros(3, k)), torch.full((3,), math.log(k)), atol=1e-5)


def test_entropy_of_a_confident_posterior_is_near_zero_and_never_above_log_k():
    confident = torch.tensor([[30.0, 0.0, 0.0, 0.0]])
    assert posterior_entropy(confident).item() < 1e-6
    assert (posterior_entropy(torch.randn(50, 4) * 3) <= math.log(4) + 1e-6).all()


def test_hopkins_is_about_half_for_uniform_random_points():
    g = torch.Generator().manual_seed(0)
    assert abs(hopkins_statistic(torch.rand(500, 2, generator=g)) - 0.5) < 0.08
    assert abs(hopkins_statistic(torch.rand(400, 3, generator=g), seed=1) - 0.5) < 0.08


def test_hopkins_is_near_one_for_tight_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [5.0, 1.0], [2.0, 6.0], [7.0, 7.0]])
    points = (centres[:, None] + 0.01 * torch.randn(4, 100, 2, generator=g)).reshape(-1, 2)
    assert hopkins_statistic(points) > 0.95


def test_hopkins_is_nan_without_enough_distinct_points():
    assert math.isnan(hopkins_statistic(torch.rand(2, 3)))
    assert math.isnan(hopkins_statistic(torch.ones(10, 3)))


def test_tsne_keeps_separated_clusters_apart():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 20, generator=g) + 6 * k for k in range(3)])
    labels = np.repeat(np.arange(3), 30)
    y = tsne(x, perplexity=10, iterations=300)
    assert y.shape == (90, 2) and np.isfinite(y).all()
    d = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    neighbours = d.argsort(axis=1)[:, :5]
    assert (labels[neighbours] == labels[:, None]).mean() > 0.95


def test_scatter_png_has_one_panel_per_entry(tmp_path):
    coords = np.random.default_rng(0).normal(size=(40, 2))
    panels = [
        {"title": f"p{i}", "coords": coords, "labels": np.arange(40) % 3, "names": ["a", "b", "c"]}
        for i in range(4)
    ]
    path = save_scatter_png(tmp_path / "s.png", panels, columns=2, panel_size=100, legend_width=50)
    with Image.open(path) as img:
        assert img.size == (2 * 150, 2 * (100 + 16)) and img.mode == "RGB"


def _module_and_loader():
    from tests.helpers.batches import factor_batch
    from tests.methods import build

    return build("disent", "method.attributes=[expression,gaze]").eval(), [factor_batch(16, seed=s) for s in range(3)]


def test_report_gives_entropies_accuracies_hopkins_and_writes_the_tsne_png(tmp_path):
    module, loader = _module_and_loader()
    metrics = disentanglement_report(
        module, loader, tmp_path, max_images=40, tsne_points=30, tsne_iterations=50, hopkins_min_points=3
    )
    assert metrics["disent/num_images"] == 40
    for clf in ("expression", "gaze"):
        for code in ("expression", "gaze", "rest"):
            assert 0 <= metrics[f"disent/entropy_ratio/{clf}/{code}"] <= 1 + 1e-6
            assert 0 <= metrics[f"disent/accuracy/{clf}/{code}"] <= 1
            assert metrics[f"disent/entropy/{clf}/{code}"] == pytest.approx(
                metrics[f"disent/entropy_ratio/{clf}/{code}"] * math.log(module.num_classes[clf])
            )
        assert 0 < metrics[f"disent/hopkins/{clf}"] < 1
    assert {"disent/entropy_ratio/own", "disent/entropy_ratio/other"} <= set(metrics)
    with Image.open(tmp_path / TSNE_FILE) as img:  # a row per code (3), a panel per attribute colouring (2)
        assert img.size == (2 * (300 + 110), 3 * (300 + 16))


def test_report_refuses_other_methods():
    with pytest.raises(ConfigError, match="method=disent"):
        disentanglement_report(torch.nn.Linear(2, 2), [])
