"""SAT's presets pinned to the paper's settings (Sec. 3, Sec. 3.2) and its Tables 2–3 as protocols: the maps
accuracy on a hand-made pair, and sat_maps / sat_mnist_usps trained a few iterations on stand-in layouts, then
scored by protocol=sat_table2 / sat_table3 with the published figures beside ours."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import evaluate
from datamodules.fake_layouts import write_maps, write_mnist, write_usps
from suite.protocols import get_protocol
from suite.protocols.sat import DIGIT_CLASSIFIER, map_pixel_accuracy
from suite.training import train
from tests.conftest import compose_config
from tests.methods import SAT_NETS
from tests.suite.test_protocols import protocol_cfg, row_of

# Sec. 3: Adam 2e-4, pool 50, 256 px, Eq. 4 weights 1/32, 1/16, 1/8; Sec. 2: nine dilated residual blocks;
# Sec. 3's 10k iterations (5k constant + 5k linear decay) read per phase.
SAT = {"method.name": "sat", "method.optim.lr": 2e-4, "method.pool_size": 50, "data.image_size": 256,
       "method.perceptual_weights": [0.03125, 0.0625, 0.125], "method.generator.n_blocks": 9,
       "method.generator.dilation": 2, "method.gan_mode": "vanilla", "method.pretrained": True,
       "method.schedule.per_phase": True, "method.schedule.decay_start_fraction": 0.5,
       "method.induction.min_increments": 1, "data.batch_size": 1}
ONE_PHASE = {**SAT, "method.use_attention": False, "trainer.max_steps": 10000}  # G0 only: 10k iterations
PRESETS = {
    "sat_horse2zebra": {**SAT, "method.use_attention": True, "method.phases.g0": 10000,
                        "method.phases.attention": 10000, "trainer.max_steps": 30000, "data.name": "folder"},
    "sat_celeba_smile": {**ONE_PHASE, "data.name": "celeba", "data.attribute": "Smiling"},  # Fig. 6 row 2: no attention
    "sat_maps": {**ONE_PHASE, "data.name": "maps", "data.protocol": "sat"},
    "sat_mnist_usps": {**ONE_PHASE, "data.name": "digits", "data.domains": ["mnist", "usps"]},
    "sat_mnist_mnistm": {**ONE_PHASE, "data.name": "digits", "data.domains": ["mnist", "mnistm"]},
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_composes_to_the_published_values(preset):
    cfg = compose_config(["run_dir=/tmp/preset-test", f"experiment={preset}"])
    plain = {key: OmegaConf.select(cfg, key) for key in PRESETS[preset]}
    got = {key: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for key, v in plain.items()}
    assert (cfg.scale, got) == ("paper", PRESETS[preset])  # YAML's 2.0e-4 and 0.03125 … parse to these floats


def test_map_accuracy_on_a_hand_made_pair():
    """Levels 0..255 (x = level/127.5 − 1). Per-pixel |ΔR|+|ΔG|+|ΔB|: 0, 12 (right), 13, 30 (wrong)."""
    delta = torch.tensor([[[0, 4], [5, 10]], [[0, 4], [4, 10]], [[0, 4], [4, 10]]], dtype=torch.float32)
    pred = (100 + delta)[None] / 127.5 - 1
    target = torch.full_like(pred, 100 / 127.5 - 1)
    assert map_pixel_accuracy(pred, target).tolist() == [0.5]
    assert map_pixel_accuracy(pred, target, threshold=13).tolist() == [0.75]


# ------------------------------------------------------------------------- fixtures: train, then the tables
TINY = ["data.image_size=32", "data.batch_size=2", "data.num_workers=0", "data.val_size=2",
        "method.sample_every=0", "method.num_samples=2", "trainer.max_steps=4"]


def run(make_cfg, preset: str, root: Path, run_dir: Path, *extra: str, nets=SAT_NETS) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(make_cfg(f"experiment={preset}", f"data.root={root}", *TINY, *nets, *extra, run_dir=run_dir))


@pytest.fixture(scope="module")
def maps_root(tmp_path_factory):
    return write_maps(tmp_path_factory.mktemp("maps"), train=4, val=3, size=32)


def test_sat_maps_trains_and_table2_is_written(make_cfg, maps_root, tmp_path):
    result = run(make_cfg, "sat_maps", maps_root, tmp_path / "sat")
    module = result["module"]
    assert module.A is None and module.iteration == 4
    assert module.named_optimizer("G0").param_groups[0]["lr"] == 0.0  # the one phase decayed to 0 at its end
    cyclegan = run(make_cfg, "sat_maps", maps_root, tmp_path / "cyclegan", "method=cyclegan", "~method.use_attention",
                   nets=("method.generator.ngf=4", "method.generator.n_blocks=1", "method.discriminator.ndf=4"))
    assert cyclegan["module"].hparams.name == "cyclegan"
    table = evaluate.run_protocol(protocol_cfg("sat_table2", tmp_path / "t",
                                               [result["checkpoint"], cyclegan["checkpoint"]])).read_text()
    assert row_of(table, "Ours")[0] == "46.72" and row_of(table, "CycleGAN")[0] == "45.91"
    for row in ("Ours", "CycleGAN"):
        assert 0.0 <= float(row_of(table, row)[1]) <= 100.0
    assert row_of(table, "Pix2Pix") == ["43.18", "—"] and "3 maps test images" in table


def test_sat_mnist_usps_trains_and_table3_is_written(make_cfg, tmp_path):
    root = tmp_path / "digits"
    write_mnist(root)
    write_usps(root)
    result = run(make_cfg, "sat_mnist_usps", root, tmp_path / "sat")
    assert result["module"].A is None and result["module"].iteration == 4
    table = evaluate.run_protocol(protocol_cfg("sat_table3", tmp_path / "t", [result["checkpoint"]])).read_text()
    ours = row_of(table, "Ours")
    assert ours[0] == "96.80" and 0.0 <= float(ours[1]) <= 100.0 and ours[2:] == ["98.33", "—"]
    assert row_of(table, "Target-only")[:2][0] == "96.50" and float(row_of(table, "Target-only")[1]) >= 0.0
    assert "Source-only (ours only)" in table and f"epochs {DIGIT_CLASSIFIER['epochs']}" in table
    assert "20 translated MNIST training digits, 10 USPS test digits" in table


def test_table3_refuses_other_data(make_cfg, maps_root, tmp_path):
    result = run(make_cfg, "sat_maps", maps_root, tmp_path / "sat")
    table = evaluate.run_protocol(protocol_cfg("sat_table3", tmp_path / "t", [result["checkpoint"]])).read_text()
    assert "Table 3 needs data=digits" in table and row_of(table, "Ours")[1] == "—"
    assert get_protocol("sat_table2").needs_checkpoints
