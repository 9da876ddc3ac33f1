"""The bridge's presets: each composes to the published values (supplement Sec. C) and, where the supplement is
silent, the authors' code (train_arch9.py, data_noise_in.py); AFHQ to StarGAN v2's length in generator steps."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_config

# the authors' code: 100 epochs × ⌊182,000 / (60·(5 + 1))⌋ = 505 → 50,500 G steps, × n_critic 5 = 252,500 iterations
CODE_G_STEPS = 100 * (182_000 // (60 * 6))
METHOD = {
    "method.architecture": "authors", "method.random_code": "memory", "method.code_memory.size": None,
    "method.code_memory.scale": 0.9, "method.code_memory.offset": 5.0, "method.code_memory.clip": 1.0,
    "method.code_memory.direction": "ascent", "method.loss_weighting": "authors", "method.lambda_cyc_ak": 50.0,
    "method.ms_stop_gradient": True, "method.lambda_cls": 10.0, "method.lambda_rec": 100.0,
    "method.lambda_cyc": 100.0, "method.lambda_ak": 100.0, "method.lambda_sty": 50.0, "method.lambda_ms": 0.005,
    "method.lambda_gp": 10.0, "method.n_critic": 5, "method.latent_dim": 16, "method.test_diff_scale": 1.5,
    "method.optim.lr": 2e-4, "method.optim.betas": [0.5, 0.999], "method.rec_reference": "reference",
    "method.generator.ngf": 32, "method.generator.spade_hidden": 128, "method.encoder.nef": 16,
    "method.discriminator.ndf": 16, "method.mapping.start_channels": 64,
}
CELEBA = {**METHOD, "data.protocol": "bridge", "data.image_size": 128, "data.flip": False,
          "trainer.max_steps": 5 * CODE_G_STEPS}


def pinned(experiment: str) -> dict:
    """The values of CELEBA's keys (and the data's name and batch) in the composed ``experiment``."""
    cfg = compose_config(["run_dir=/tmp/unused", f"experiment={experiment}"])
    out = {}
    for key in (*CELEBA, "data.batch_size", "data.name"):
        value = OmegaConf.select(cfg, key)
        out[key] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return out


@pytest.mark.parametrize("experiment,batch", [("bridge_celeba", 48), ("bridge_celeba_code", 60)])
def test_celeba_presets_are_the_published_and_the_authors_settings(experiment, batch):
    got = pinned(experiment)
    assert CODE_G_STEPS == 50_500 and got["data.name"] == "celeba" and got["data.batch_size"] == batch
    assert {k: got[k] for k in CELEBA} == CELEBA


def test_afhq_preset_trains_stargan_v2s_100k_generator_steps():
    cfg = compose_config(["run_dir=/tmp/unused", "experiment=bridge_afhq"])
    assert cfg.trainer.max_steps // cfg.method.n_critic == 100_000 and cfg.data.batch_size == 8
    assert cfg.data.image_size == 256 and cfg.method.ema.enabled and cfg.method.ema.decay == 0.999
    assert cfg.method.random_code == "memory" and cfg.method.architecture == "authors"


def test_synth_recipe_scales_the_latent_weights_by_one_hundredth():
    m = compose_config(["run_dir=/tmp/unused", "experiment=bridge_synth"]).method
    assert (m.lambda_cyc_ak, m.lambda_sty) == (0.5, 0.5) and m.random_code == "memory"
    assert m.loss_weighting == "authors" and m.architecture == "authors" and m.ms_stop_gradient
