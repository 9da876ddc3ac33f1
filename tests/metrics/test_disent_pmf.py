"""Fig. 6's class-conditional PMFs (metrics.disent_pmf) on a stub with known posteriors, the figure, its logging."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from datamodules.base import UNSEEN_CLASS
from metrics.disent_pmf import class_conditional_pmfs, log_figure, pmf_summary, save_pmf_figure


class Stub(torch.nn.Module):
    """Attribute ``a`` (2 classes); the code of an image is the image itself; each test sets ``code_logits``."""

    attributes, code_names, num_classes = ["a"], ["a", "rest"], {"a": 2}
    device = torch.device("cpu")

    def labels_of(self, batch, unseen=False):
        return {"a": batch["factors"]["a"]}

    def encode(self, x, inference=False, names=None):
        return {n: x for n in (names or self.code_names)}


def test_pmfs_are_the_mean_posterior_of_each_true_class_and_skip_unseen_labels():
    stub = Stub()
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, -5.0]])
    batch = {"image": logits.view(4, 2, 1, 1), "factors": {"a": torch.tensor([0, 1, 0, UNSEEN_CLASS])}}
    calls = []

    def code_logits(attribute, z, stub=stub):
        calls.append(attribute)
        return z.flatten(1) if len(calls) % 2 == 1 else torch.zeros(z.shape[0], 2)  # code a, then code rest

    stub.code_logits = code_logits
    pmfs, counts = class_conditional_pmfs(stub, [batch])
    p = torch.softmax(logits, 1).double()
    assert torch.equal(counts["a"], torch.tensor([2.0, 1.0], dtype=torch.float64))  # the unseen image counts nowhere
    assert torch.allclose(pmfs[("a", "a")][0], (p[0] + p[2]) / 2) and torch.allclose(pmfs[("a", "a")][1], p[1])
    assert torch.allclose(pmfs[("a", "rest")], torch.full((2, 2), 0.5, dtype=torch.float64))  # flat on z_0
    summary = pmf_summary(pmfs, counts)
    assert summary["disent/pmf_true/a/a"] == pytest.approx(float((p[0, 0] + p[2, 0]) / 2 + p[1, 1]) / 2)
    assert summary["disent/pmf_true/a/rest"] == pytest.approx(0.5)
    counts["a"][:] = 0
    assert math.isnan(pmf_summary(pmfs, counts)["disent/pmf_true/a/a"])


def test_the_figure_has_a_panel_per_classifier_and_code_and_goes_to_image_loggers(tmp_path):
    pmfs = {(c, n): torch.eye(3, dtype=torch.float64) for c in ("expression", "identity") for n in ("expression", "identity", "rest")}
    counts = {"expression": torch.ones(3), "identity": torch.tensor([1.0, 0.0, 2.0])}
    path = save_pmf_figure(tmp_path / "fig6.png", pmfs, counts, {"expression": ["neutral", "happy", "sad"]}, "title")
    img = Image.open(path)
    assert img.size[0] == 3 * 240 and img.size[1] > 2 * 220
    logged = []
    logger = SimpleNamespace(log_image=lambda **kw: logged.append(kw))
    assert log_figure(path, [logger], step=7)
    assert logged == [{"key": "disent/fig6_pmf", "images": [str(path)], "step": 7}]
    assert not log_figure(path, [SimpleNamespace()])  # no image logger, no active W&B run
