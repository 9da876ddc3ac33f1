"""FID/KID through torchmetrics with the evaluation classifier's or the FID Inception's features (metrics/fid.py)."""

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


def fid_of(extractor, real, fake, name="classifier", **kw):
    metric = FidKid(extractor, name, **kw)
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


def _random_fid_inception(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """State dict of the exact network fid.feature=inception builds (torchmetrics' NoTrainInceptionV3), randomly
    initialised: the real weights cannot be downloaded here. The constructor insists on loading a file, so its
    ``load_state_dict`` is a no-op while it runs; convolutions get He init so the 2048-d features stay O(1)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchmetrics.image.fid import NoTrainInceptionV3

    placeholder = tmp_path / "placeholder.pth"
    torch.save({}, placeholder)
    torch.manual_seed(0)
    with monkeypatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, *a, **k: None)
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                 feature_extractor_weights_path=str(placeholder))
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.state_dict()


def test_inception_fid_from_the_torch_cache(tmp_path, monkeypatch):
    """fid.feature=inception end to end: weights found under $TORCH_HOME/hub/checkpoints, loaded, features → FID."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # no torch.hub.set_dir() override: the env decides
    weights = _random_fid_inception(tmp_path, monkeypatch)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(weights, folder / INCEPTION_WEIGHTS)

    extractor = inception_extractor()
    loaded = extractor.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())  # the file's weights, not a fresh init
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1  # 8 images a set: a 299 px forward is slow on a CPU
    bright = torch.rand(8, 3, 32, 32, generator=g) * 0.2 + 0.6
    spread = float(extractor(noise).double().var(0).sum())  # the set's total feature variance: the FID scale
    assert spread > 0
    same = fid_of(extractor, noise, noise, "inception", kid=False).compute()["fid_inception"]
    different = fid_of(extractor, noise, bright, "inception", kid=False).compute()["fid_inception"]
    assert abs(same) < 1e-4 * spread, (same, spread)
    assert different > spread, (different, spread)


def test_unreadable_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / INCEPTION_WEIGHTS).write_bytes(b"<html>a captive portal</html>")
    with pytest.raises(WeightsMissingError, match="not torch-fidelity's FID Inception state dict") as err:
        inception_extractor()
    assert str(tmp_path / "hub" / "checkpoints" / INCEPTION_WEIGHTS) in str(err.value)
