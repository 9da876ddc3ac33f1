"""SPM's Table 1 protocol (issue #21 item 2): VGGFace2 ResNet-50 features read from a local weights file in the
port's pickle format (random weights here), a one-sentence error naming the missing file, and the table written
from four checkpoints (Full, No M, No R, StarGAN) with the published figures beside ours."""

from __future__ import annotations

import pickle

import pytest
import torch

from suite.errors import WeightsMissingError
from suite.protocols import run_protocol
from suite.protocols.base import EvalSettings
from suite.protocols.vggface2 import ENV_VAR, FaceFeatures, VGGFace2ResNet50, read_weights
from suite.training import train
from tests.methods import SPM_NETS


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Randomly initialised VGGFace2 ResNet-50 weights saved as the port's .pkl (name → numpy array), once."""
    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in VGGFace2ResNet50().state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("vggface2") / "resnet50_ft_weight.pkl"
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=2)
    return path


@pytest.fixture
def weights(weights_file, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(weights_file))
    return weights_file


def test_frechet_distance_matches_the_d_by_d_formula():
    from scipy import linalg

    from suite.protocols.spm import frechet_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 8, generator=g, dtype=torch.float64), torch.randn(30, 8, generator=g, dtype=torch.float64) * 2 + 1
    ca, cb = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    expected = float(((a.mean(0) - b.mean(0)) ** 2).sum()) + ca.trace() + cb.trace() - 2 * linalg.sqrtm(ca @ cb).real.trace()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent.pkl"))
    with pytest.raises(WeightsMissingError, match="absent.pkl"):
        FaceFeatures()


def test_weights_load_from_pkl_and_pth_alike(weights, tmp_path):
    pth = tmp_path / "w.pth"
    torch.save(read_weights(weights), pth)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a, b = FaceFeatures(weights)(x), FaceFeatures(pth)(x)
    assert a.shape == (2, 2048) and torch.allclose(a, b)
    assert not torch.allclose(a[0], a[1])  # the features depend on the image


def test_a_pickle_with_other_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": print}, f)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        read_weights(path)


def test_a_file_without_the_network_is_rejected(tmp_path):
    path = tmp_path / "partial.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(WeightsMissingError, match="not a VGGFace2"):
        FaceFeatures(path)


RUN = [*SPM_NETS, "method.n_critic=1", "data=synthfaces", "data.image_size=32", "data.batch_size=2",
       "data.train_size=4", "data.test_size=3", "data.val_size=2", "method.view=two_domain", "trainer.max_steps=1",
       "method.sample_every=0"]


def test_table1_from_four_checkpoints(make_cfg, tmp_path, weights, monkeypatch):
    monkeypatch.setattr("suite.protocols.vggface2.INPUT_SIZE", 64)  # the same network on smaller inputs: fast
    rows = {"full": [], "no_m": ["method.motion=false"], "no_r": ["method.refinement=false"], "stargan": ["method=stargan"]}
    paths = []
    for name, extra in rows.items():
        method = [] if "method=stargan" in extra else ["method=spm"]
        paths.append(train(make_cfg(*method, *RUN, *extra, run_dir=tmp_path / name))["checkpoint"])
    out = run_protocol("spm_table1", paths, tmp_path / "tables", EvalSettings(device="cpu", batch_size=4))
    text = out.read_text()
    for row in ("Ours (Full)", "Ours (No M)", "Ours (No R)", "StarGAN"):
        assert row in text
    assert "2.907" in text and "97.85" in text  # the published figures beside ours
    assert "synthfaces FID" in text and "3 translations against 3 real images" in text
