"""Fig. 7 across models (issue #21 item 3): the motion fields of separately trained SPM checkpoints are added and
the input warped once; translate.py takes several checkpoints and writes the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_modules.spm_combine import combine
from nets.spm import warp
from suite.errors import ConfigError
from suite.inference import load_module
from suite.training import train
from tests.methods import SPM_NETS

RUN = [*SPM_NETS, "method.n_critic=1", "data=synthfaces", "data.image_size=32", "data.batch_size=2",
       "data.train_size=4", "data.test_size=2", "data.val_size=2", "method.view=two_domain", "trainer.max_steps=2",
       "method.sample_every=0"]


@pytest.fixture
def two_models(make_cfg, tmp_path):
    """Two separately trained attribute models: neutral → happy and neutral → surprised."""
    paths = []
    for other in ("happy", "surprised"):
        run = train(make_cfg("method=spm", *RUN, f"data.domains=[neutral,{other}]", run_dir=tmp_path / other))
        paths.append(run["checkpoint"])
    return paths


def test_fields_of_two_models_add_and_warp_once(two_models):
    modules = [load_module(p)[0] for p in two_models]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = combine(modules, x)
    singles = [m.translate(x, 1)["flow"] for m in modules]
    assert torch.allclose(out["flow"], singles[0] + singles[1], atol=1e-6)
    assert torch.allclose(out["deformed"], warp(x, out["flow"]), atol=1e-6)
    assert not torch.allclose(out["image"], out["deformed"])  # both refinements composed on top
    half = combine(modules, x, weights=[0.5, 0.5])
    assert torch.allclose(half["flow"], out["flow"] / 2, atol=1e-6)


def test_translate_cli_writes_the_combination_grid(two_models, tmp_path):
    import translate

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((32, 32, 3)) * 255).astype(np.uint8)).save(faces / f"{i}.png")
    out = tmp_path / "out"
    assert translate.main(["--ckpt", str(two_models[0]), "--ckpt", str(two_models[1]), "--input", str(faces),
                           "--out", str(out)]) == 0
    grid = Image.open(out / "motion_combination.png")
    assert grid.size == (8 * 33 + 1, 2 * 33 + 1)  # input, 2 bases, sum, refined, 3 flows × 2 images
    assert "happy+surprised" in (out / "motion_combination.txt").read_text()
    assert (out / "0.png").is_file() and (out / "1_flow.png").is_file()


def test_one_model_or_a_stargan_cannot_be_combined(two_models, make_cfg, tmp_path):
    module = load_module(two_models[0])[0]
    with pytest.raises(ConfigError, match="at least two"):
        combine([module], torch.zeros(1, 3, 32, 32))
    sg = train(make_cfg(*RUN, "method=stargan", run_dir=tmp_path / "sg"))["module"]
    with pytest.raises(ConfigError, match="motion module"):
        combine([module, sg], torch.zeros(1, 3, 32, 32))
