"""FID/KID through torchmetrics with the evaluation classifier's features (metrics/fid.py)."""

from __future__ import annotations

import pytest
import torch

from datamodules.synthetic import SynthFacesDataModule
from metrics.eval_classifier import get_or_train_eval_classifier
from metrics.fid import INCEPTION_WEIGHTS, ClassifierFeatures, FidKid, inception_extractor
from suite.errors import WeightsMissingError


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Neutral (image) and happy (ref) test faces at 32 px and an evaluation classifier trained to ~95 %."""
    dm = SynthFacesDataModule(view="two_domain", image_size=32, train_size=512, val_size=8, test_size=192,
                              batch_size=64)
    dm.setup("fit")
    dm.setup("test")
    clf = get_or_train_eval_classifier(dm.info, dm.train_dataloader, tmp_path_factory.mktemp("cache"), epochs=4)
    neutral, happy = [], []
    for batch in dm.test_dataloader():
        neutral.append(batch["image"])
        happy.append(batch["ref"])
    return ClassifierFeatures(clf.model), torch.cat(neutral), torch.cat(happy)


def fid_of(extractor, real, fake, **kw):
    metric = FidKid(extractor, "classifier", **kw)
    for chunk in real.split(32):  # streamed, batch by batch
        metric.update_real(chunk)
    for chunk in fake.split(32):
        metric.update_fake(chunk)
    return metric


def test_identical_sets_give_zero(faces):
    extractor, neutral, happy = faces
    result = fid_of(extractor, neutral, neutral).compute()
    assert abs(result["fid_classifier"]) < 1e-3 * max(1.0, float(extractor(neutral).var(0).sum()))
    # KID is unbiased (≈ 0 up to its subset sampling noise), far below the KID between two domains
    assert abs(result["kid_classifier"]) < 0.1 * fid_of(extractor, neutral, happy).compute()["kid_classifier"]


def test_classifier_fid_separates_domains(faces):
    extractor, neutral, happy = faces
    same = fid_of(extractor, neutral[::2], neutral[1::2], kid=False).compute()["fid_classifier"]
    different = fid_of(extractor, neutral[::2], happy[1::2], kid=False).compute()["fid_classifier"]
    assert different > 3 * same, (same, different)


def test_real_statistics_are_cached(faces, tmp_path):
    extractor, neutral, happy = faces
    first = fid_of(extractor, neutral, happy, cache_path=tmp_path / "real.pt")
    first.save_real()
    again = FidKid(extractor, "classifier", cache_path=tmp_path / "real.pt")
    assert not again.needs_real and again.num_real == neutral.shape[0]
    for chunk in happy.split(32):
        again.update_fake(chunk)
    assert again.compute()["fid_classifier"] == pytest.approx(first.compute()["fid_classifier"], rel=1e-6)


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsMissingError, match=INCEPTION_WEIGHTS.replace(".", r"\.")) as err:
        inception_extractor()
    assert str(tmp_path / "hub" / "checkpoints") in str(err.value)
