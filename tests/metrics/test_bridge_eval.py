"""bridge_report: accuracy of both modes (the reference mode counted where source and reference differ),
diversity, figures; checked on stubs whose right answers are known, then on a tiny real module."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch import nn

from metrics.bridge_eval import MaskedMean, bridge_report
from metrics.eval_classifier import build_classifier
from suite.errors import ConfigError, DatasetError

NAMES = ["Smiling", "Eyeglasses", "Bangs"]
N, SIZE = len(NAMES), 16


def paint(images: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """Write the attribute vector into the first pixels of the top row (+1 / −1): what the stub classifier reads."""
    out = images.clone()
    out[:, 0, 0, :N] = attrs * 2 - 1
    return out


class PixelClassifier(nn.Module):
    """Reads the painted attributes back as logits."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :N] * 10


class StubBridge:
    """``translate`` with known outcomes: ``perfect`` paints the target attributes (codes differ elsewhere),
    ``identity`` returns the input."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.data_info = {"attr_names": NAMES}
        self.device = torch.device("cpu")

    def translate(self, images, target=None, *, source_attrs=None, reference=None, reference_attrs=None,
                  num_codes=1, scale=None, generator=None, **kw):
        if target is not None:
            outs = [images.clone() for _ in range(num_codes)]
            if self.behaviour == "perfect":
                outs = [paint(img, target.expand(images.shape[0], -1)) for img in outs]
                for k, img in enumerate(outs):
                    img[:, :, SIZE // 2:] = k / max(num_codes, 1)  # each code a different lower half
        else:
            y_r = reference_attrs.expand(images.shape[0], -1)
            outs = [paint(images, y_r) if self.behaviour == "perfect" else images.clone()]
        stacked = torch.stack(outs)
        return {"image": stacked[0], "images": stacked}


def loader(num_batches: int = 3, batch_size: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(num_batches):
        attrs = torch.randint(0, 2, (batch_size, N), generator=g).float()
        target = torch.randint(0, 2, (batch_size, N), generator=g).float()
        image = paint(torch.rand(batch_size, 3, SIZE, SIZE, generator=g) * 2 - 1, attrs)
        ref = paint(torch.rand(batch_size, 3, SIZE, SIZE, generator=g) * 2 - 1, target)
        batches.append({"image": image, "attrs": attrs, "ref": ref, "target_attrs": target})
    return batches


def test_a_perfect_translator_scores_one_in_both_modes(tmp_path):
    m = bridge_report(StubBridge("perfect"), loader(), PixelClassifier(), tmp_path, num_codes=3)
    for key in ("label/accuracy", "label/accuracy_changed", "reference/accuracy"):
        assert m[key] == pytest.approx(1.0)
    assert all(m[f"label/accuracy/{n}"] == pytest.approx(1.0) for n in NAMES)
    assert m["label/diversity"] > 0 and m["num_images"] == 12


def test_doing_nothing_scores_zero_where_the_reference_differs(tmp_path):
    batches = loader()
    m = bridge_report(StubBridge("identity"), batches, PixelClassifier(), tmp_path, num_codes=2)
    differ = torch.cat([(b["attrs"] != b["target_attrs"]).float() for b in batches])
    assert m["reference/accuracy"] == 0.0 and m["label/accuracy_changed"] == 0.0
    assert m["reference/accuracy/n"] == differ.sum().item()
    assert m["label/accuracy"] == pytest.approx(1 - differ.mean().item())  # only the kept attributes agree
    for j, name in enumerate(NAMES):
        assert m[f"label/accuracy/{name}"] == pytest.approx(1 - differ[:, j].mean().item())
    assert m["label/diversity"] == 0.0


def test_figures_are_written_with_their_layout(tmp_path):
    bridge_report(StubBridge("perfect"), loader(batch_size=4), PixelClassifier(), tmp_path, num_codes=3, num_grid=3)
    cell = SIZE + 2
    sizes = {name: Image.open(tmp_path / f"bridge_{name}.png").size for name in
             ("label_attributes", "label_codes", "reference_grid")}
    assert sizes["label_attributes"] == ((1 + N) * cell + 2, 3 * cell + 2)  # source + one flip per attribute
    assert sizes["label_codes"] == ((1 + 3) * cell + 2, 3 * cell + 2)  # source + 3 codes
    assert sizes["reference_grid"] == (4 * cell + 2, 4 * cell + 2)  # corner + 3 sources, header + 3 references


def test_max_images_and_wrong_inputs():
    m = bridge_report(StubBridge("perfect"), loader(num_batches=5), PixelClassifier(), "/tmp/unused-figs",
                      max_images=5, num_grid=0)
    assert m["num_images"] == 8  # whole batches of 4 until at least 5 are seen
    with pytest.raises(ConfigError, match="multilabel"):
        bridge_report(StubBridge("perfect"), loader(), SimpleNamespace(task="domain", model=PixelClassifier()), "/tmp/x")
    bad = [{k: v for k, v in b.items() if k != "ref"} for b in loader(1)]
    with pytest.raises(DatasetError, match="ref"):
        bridge_report(StubBridge("perfect"), bad, PixelClassifier(), "/tmp/x", num_grid=0)


def test_masked_mean_skips_columns_without_entries():
    mm = MaskedMean(["a", "b"])
    mm.update(torch.tensor([[1.0, 5.0], [0.0, 7.0]]), torch.tensor([[True, False], [True, False]]))
    s = mm.summary("acc")
    assert s["acc"] == 0.5 and s["acc/a"] == 0.5 and "acc/b" not in s and s["acc/n"] == 2
    assert math.isnan(MaskedMean(["a"]).summary("x")["x"])


def test_real_tiny_module_and_classifier(tmp_path):
    from tests.helpers.batches import attr_batch
    from tests.methods import build

    module = build("bridge").eval()
    torch.manual_seed(0)
    clf = build_classifier("small", 4, 32).eval()
    batches = [attr_batch(3, seed=s) for s in range(2)]
    m = bridge_report(module, batches, clf, tmp_path, num_codes=2, num_grid=2)
    for key in ("label/accuracy", "label/accuracy_changed", "reference/accuracy", "label/diversity"):
        assert math.isfinite(m[key])
    assert 0 <= m["label/accuracy"] <= 1 and 0 <= m["reference/accuracy"] <= 1 and m["label/diversity"] > 0
    assert (tmp_path / "bridge_reference_grid.png").exists()
