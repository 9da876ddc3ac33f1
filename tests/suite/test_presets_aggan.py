"""AGGAN's and CycleGAN's paper presets: each composes to the published values (Tang et al. Sec. IV-A; CycleGAN's
reference options), and each trains a few iterations on a stand-in layout with tiny nets, its epoch-based
schedules converted to iterations as hand-computed here."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from datamodules.images import Preprocess
from suite.training import train
from tests.conftest import CONF_DIR, compose_config
from tests.datamodules.fixtures import write_bu3dfe, write_celeba, write_cyclegan

# Sec. IV-A: batch 1, 256 px, flips, λ_cycle 10, λ_gan 0.5, λ_pixel 1, λ_tv 1e-6, pool 50, Adam 1e-4 β(0.5, 0.999),
# r = 0.01 for the first 10 epochs then 0.5; Sec. III-D: five residual blocks, BatchNorm on D's first C64.
AGGAN = {
    "data.batch_size": 1, "data.image_size": 256, "data.flip": True,
    "method.name": "aggan", "method.lambda_cycle": 10.0, "method.lambda_gan": 0.5, "method.lambda_pixel": 1.0,
    "method.lambda_tv": 1e-6, "method.pool_size": 50, "method.gan_mode": "lsgan",
    "method.optim.lr": 1e-4, "method.optim.betas": [0.5, 0.999],
    "method.curriculum": True, "method.curriculum_r_early": 0.01, "method.curriculum_r_late": 0.5,
    "method.curriculum_epochs": 10, "method.curriculum_fraction": None,
    "method.attention_generator": True, "method.attention_discriminator": True,
    "method.pixel_loss": True, "method.tv_loss": True,
    "method.generator.n_blocks": 5, "method.generator.norm": "batch", "method.generator.ngf": 64,
    "method.generator.content_activation": "none",
    "method.discriminator.norm_first": True, "method.discriminator.padding": 0, "method.discriminator.slope": 0.01,
    "method.discriminator.n_layers": 4, "method.discriminator.ndf": 64,
    "method.schedule.decay_start_fraction": None, "trainer.max_steps": -1, "method.max_iterations": -1,
}


def epochs(total: int, decay_after: int) -> dict:
    return {"trainer.max_epochs": total, "method.schedule.decay_start_epoch": decay_after}


# CycleGAN's reference: resnet_9blocks, PatchGAN, non-affine IN, LSGAN, λ_cyc 10, identity 0.5, pool 50, β1 0.5, batch 1
CYCLEGAN = {
    "data.batch_size": 1, "data.image_size": 256, "method.name": "cyclegan", "method.generator.n_blocks": 9,
    "method.generator.norm": "instance_noaffine", "method.discriminator.norm": "instance_noaffine",
    "method.discriminator.patchgan": True, "method.discriminator.n_layers": 3, "method.discriminator.norm_first": False,
    "method.discriminator.padding": 1, "method.discriminator.slope": 0.2, "method.gan_mode": "lsgan",
    "method.lambda_cycle": 10.0, "method.lambda_identity": 0.5, "method.lambda_gan": 1.0, "method.pool_size": 50,
    "method.optim.betas": [0.5, 0.999], "method.attention_generator": False, "method.curriculum": False,
    "method.schedule.decay_start_fraction": None, "trainer.max_steps": -1,
}

PRESETS = {
    "aggan_celeba": {**AGGAN, **epochs(80, 40), "data.name": "celeba", "data.protocol": "aggan",
                     "data.per_domain": 1000},
    "aggan_bu3dfe": {**AGGAN, **epochs(200, 100), "data.name": "bu3dfe", "data.protocol": "aggan",
                     "data.intensities": [1, 2, 3, 4]},
    "aggan_arface": {**AGGAN, **epochs(200, 100), "data.name": "arface"},
    # RaFD: all 4,824 images (3 angles × 3 gazes × 8 expressions × 67), the authors' multi-domain trainer
    "aggan_rafd": {**{k: v for k, v in AGGAN.items() if not k.startswith(("method.generator", "method.discriminator"))},
                   **epochs(200, 100), "data.name": "rafd", "data.angles": ["045", "090", "135"], "data.domains": None,
                   "method.view": "multi_domain", "method.multi_domain_form": "authors",
                   "method.multi_domain.gan_mode": "wgan", "method.multi_domain.n_critic": 5, "method.lambda_gp": 10.0,
                   "method.lambda_cls": 1.0, "method.multi_domain.generator.n_blocks": 6,
                   "method.multi_domain.generator.norm": "instance", "method.multi_domain.discriminator.n_layers": 6,
                   "method.multi_domain.discriminator.slope": 0.01},
    "cyclegan_horse2zebra": {**CYCLEGAN, **epochs(200, 100), "data.name": "folder", "data.domains": ["trainA", "trainB"],
                             "data.crop": {"size": "full", "load_size": 286}, "method.optim.lr": 2e-4},
    "cyclegan_celeba": {**CYCLEGAN, **epochs(80, 40), "data.name": "celeba", "data.protocol": "aggan",
                        "method.optim.lr": 1e-4},
    "cyclegan_bu3dfe": {**CYCLEGAN, **epochs(200, 100), "data.name": "bu3dfe", "data.intensities": [1, 2, 3, 4],
                        "method.optim.lr": 1e-4},
    "cyclegan_arface": {**CYCLEGAN, **epochs(200, 100), "data.name": "arface", "method.optim.lr": 1e-4},
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_composes_to_the_published_values(preset):
    cfg = compose_config(["run_dir=/tmp/preset-test", f"experiment={preset}"])
    assert cfg.scale == "paper"
    for key, value in PRESETS[preset].items():
        got = OmegaConf.select(cfg, key)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        assert got == (pytest.approx(value) if isinstance(value, float) else value), key


def test_cfg_job_prints_the_published_values():
    out = subprocess.run([sys.executable, "train.py", "experiment=aggan_bu3dfe", "--cfg", "job", "--resolve"], capture_output=True,
                         text=True, cwd=Path(CONF_DIR).parent, timeout=120, check=True).stdout
    cfg = OmegaConf.create(out)
    assert (cfg.trainer.max_epochs, cfg.data.batch_size, cfg.data.image_size) == (200, 1, 256)
    assert (cfg.method.optim.lr, cfg.method.schedule.decay_start_epoch, cfg.method.curriculum_epochs) == (1e-4, 100, 10)


# ------------------------------------------------------------------------------------ a few iterations each
TINY = ["data.image_size=32", "data.num_workers=0", "method.sample_every=0", "method.num_samples=2",
        "method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8",
        "+trainer.limit_train_batches=2", "trainer.max_epochs=2", "data.val_size=2"]
TINY_MD = ["method.multi_domain.generator.ngf=8", "method.multi_domain.generator.n_blocks=1",
           "method.multi_domain.discriminator.ndf=8", "method.multi_domain.discriminator.n_layers=4"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    from tests.datamodules.test_rafd import write_rafd

    base = tmp_path_factory.mktemp("presets")
    celeba = base / "CelebA"
    write_celeba(celeba, n=24)
    return {"celeba": celeba, "bu3dfe": write_bu3dfe(base / "BU_3DFE"), "rafd": write_rafd(base / "RaFD"),
            "folder": write_cyclegan(base / "horse2zebra")}


DATA_OVERRIDES = {
    "celeba": ["data.per_domain=3"],
    "bu3dfe": ["data.test_subjects=3"],
    "rafd": [*TINY_MD, "data.batch_size=2"],
    "folder": ["data.crop={size: full, load_size: 40}"],
}
RUNS = ["aggan_celeba", "aggan_bu3dfe", "aggan_rafd", "cyclegan_horse2zebra", "cyclegan_celeba", "cyclegan_bu3dfe"]


def run_preset(make_cfg, preset: str, root: Path, *extra: str) -> dict:
    data = PRESETS[preset]["data.name"]
    cfg = make_cfg(f"experiment={preset}", f"data.root={root}", *TINY, *DATA_OVERRIDES[data], *extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(cfg)


@pytest.mark.parametrize("preset", RUNS)
def test_preset_trains_two_epochs_of_two_batches(make_cfg, roots, preset):
    """2 epochs × 2 batches = 4 iterations; the decay starts after 1 epoch = iteration 2 and reaches 0 at 4."""
    data = PRESETS[preset]["data.name"]
    result = run_preset(make_cfg, preset, roots[data], "method.schedule.decay_start_epoch=1")
    module = result["module"]
    assert (module.iterations_per_epoch, module.max_iterations, module.iteration) == (2, 4, 4)
    assert module.decay_start_iteration() == 2.0
    assert module.lr_factor() == 0.0
    assert all(module.named_optimizer(n).param_groups[0]["lr"] == 0.0 for n in ("G", "D"))


def test_curriculum_in_epochs_switches_after_that_many_epochs(make_cfg, roots):
    """r = 0.01 for the first epoch (2 iterations), 0.5 from iteration 2 on."""
    result = run_preset(make_cfg, "aggan_bu3dfe", roots["bu3dfe"], "method.curriculum_epochs=1")
    module = result["module"]
    assert module.curriculum_switch() == 2.0
    module.iteration = 1
    assert module.curriculum_r() == 0.01
    module.iteration = 2
    assert module.curriculum_r() == 0.5


def test_cyclegan_jitter_crops_train_images_at_random_and_test_images_centred(make_cfg, roots):
    cfg = make_cfg("experiment=cyclegan_horse2zebra", f"data.root={roots['folder']}", *TINY,
                   "data.crop={size: full, load_size: 40}")
    from suite.training import build_datamodule

    dm = build_datamodule(cfg, "two_domain")
    dm.setup("fit")
    pre = dm.preprocess
    assert (pre.load_size, pre.image_size, pre.decoded_size) == (40, 32, 40)
    train_set, test_set = dm.dataset("train"), dm.dataset("test")
    first = [train_set[0]["image"] for _ in range(4)]
    assert first[0].shape == (3, 32, 32) and any(not (a == first[0]).all() for a in first[1:])
    assert (test_set[0]["image"] == test_set[0]["image"]).all() and test_set[0]["image"].shape == (3, 32, 32)
    path = next(p for p in sorted(roots["folder"].rglob("*")) if p.suffix in (".jpg", ".png"))
    assert (pre(path) == Preprocess(32, crop="full")(path)).all()  # test time: resized straight to 32 px
    corner, far = pre(path, offset=(0.0, 0.0)), pre(path, offset=(1.0, 1.0))
    assert corner.shape == (32, 32, 3) and (corner == pre.decode(path)[:32, :32]).all()
    assert (far == pre.decode(path)[8:, 8:]).all()  # 40 − 32 = 8 px of margin


@pytest.mark.parametrize("preset", ["aggan_arface", "cyclegan_arface"])
def test_arface_presets_train_on_the_synthetic_faces(make_cfg, preset):
    """The AR Face fixture belongs to its data module's tests; here the preset's method and schedule run on the
    embedded faces."""
    cfg = make_cfg(f"experiment={preset}", "data=synthfaces", "~data.flip", *TINY, "data.train_size=8", "data.test_size=4",
                   "method.schedule.decay_start_epoch=1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = train(cfg)["module"]
    assert (module.max_iterations, module.iteration, module.lr_factor()) == (4, 4, 0.0)
