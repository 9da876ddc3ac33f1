"""SPM's HR stages as the authors built them (issue #21 item 1): the masked residual, the 128 → 256 → 512 cascade on
the frozen stages below, λlow per resolution, the presets, and exact resume of the cascade."""

from __future__ import annotations

import pytest
import torch

from nets.spm import HighResolutionSPM, SPMOutput, resize
from suite.errors import CheckpointError, ConfigError
from tests.conftest import compose_config
from tests.helpers.batches import INFO5, domain_batch
from tests.helpers.params import changed, params_of
from tests.methods import METHODS, build
from tests.suite.test_resume import assert_resume_matches, recorder  # noqa: F401  (recorder is a fixture)
from tests.trainer_stub import attach_trainer_stub as attach_trainer

INFO32 = {**INFO5, "image_size": 32}
CASCADE = ("method=spm_hr", "method.lr_size=8", "method.mid_size=16", "method.freeze_previous=true",
           "method.discriminator.n_layers=3")


def make(*overrides: str, info=INFO32):
    return build("spm", "method.n_critic=1", *overrides, info=info)


# ------------------------------------------------------------------------------------------ masked residual
def _zero_last_conv(net):
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    if last.bias is not None:
        torch.nn.init.zeros_(last.bias)


@pytest.mark.parametrize("masked", [True, False])
def test_hr_residual_is_the_upsampled_masked_lr_residual(masked):
    T = HighResolutionSPM(ngf=4, mask_residual=masked)
    for net in (T.T_w, T.T_r, T.T_m):  # tanh(0) = 0: every correction vanishes, leaving U(·)
        _zero_last_conv(net)
    g = torch.Generator().manual_seed(0)
    low = SPMOutput(torch.zeros(1, 3, 8, 8), None, torch.zeros(1, 2, 8, 8), torch.rand(1, 1, 8, 8, generator=g),
                    torch.rand(1, 3, 8, 8, generator=g) * 2 - 1)
    out = T(torch.zeros(1, 3, 16, 16), low)
    expected = resize(low.residual * low.mask if masked else low.residual, 16)
    assert torch.allclose(out.residual, expected, atol=1e-6)
    assert torch.allclose(out.image, (expected * resize(low.mask, 16)).clamp(-1, 1), atol=1e-6)


def test_512_stage_nets_are_7x7():
    T2 = HighResolutionSPM(ngf=4, kernel=7)
    convs = [m for m in T2.T_w.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)


# ------------------------------------------------------------------------------------------ the cascade
def test_cascade_builds_the_512_stage_on_the_256_stage():
    m = make(*CASCADE).eval()
    assert (m.lr_size, m.mid_size, m.image_size) == (8, 16, 32)
    assert (m.D.n_layers, m.D_h.n_layers, m.D_h2.n_layers) == (3, 4, 5)
    assert [c.kernel_size for c in m.T2.T_w.modules() if isinstance(c, torch.nn.Conv2d)][0] == (7, 7)
    out = m.translate(torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([1, 2]))
    assert out["image"].shape[-1] == 32 and out["low_image"].shape[-1] == 16 and out["flow"].shape[-1] == 32
    assert m.translate(torch.rand(1, 3, 32, 32) * 2 - 1, [[1, 2]])["image"].shape[-1] == 32


def test_cascade_trains_only_the_512_stage():
    m = make(*CASCADE)
    frozen = {name: params_of(getattr(m, name)) for name in ("G", "Dw", "T", "D")}
    live = {name: params_of(getattr(m, name)) for name in ("T2", "D_h2", "D_h")}
    attach_trainer(m)
    m.train()
    logs = m.train_iteration(domain_batch(2, size=32, num_domains=5))
    assert {k.split("/")[2] for k in logs if k.startswith("loss/G/")} - {"total"} == {"adv", "adv_low", "cls", "cls_low",
                                                                                       "rec", "mask"}
    for name, before in frozen.items():
        assert not changed(before, getattr(m, name)), name
    for name, before in live.items():
        assert changed(before, getattr(m, name)), name


def test_cascade_needs_the_frozen_stages_and_valid_sizes():
    with pytest.raises(ConfigError, match="freeze_previous"):
        make("method=spm_hr", "method.lr_size=8", "method.mid_size=16", "method.discriminator.n_layers=3")
    with pytest.raises(ConfigError, match="power of two"):
        make("method=spm_hr", "method.lr_size=8", "method.mid_size=12", "method.freeze_previous=true")


def test_single_hr_stage_can_freeze_the_lr_generator():
    m = make("method=spm_hr", "method.lr_size=16", "method.freeze_previous=true", "method.discriminator.n_layers=3")
    g, d = params_of(m.G), params_of(m.D)
    attach_trainer(m)
    m.train()
    logs = m.train_iteration(domain_batch(2, size=32, num_domains=5))
    assert "loss/G/cw" not in logs and not changed(g, m.G) and changed(d, m.D)  # D_l still judges the LR scale


def _checkpoint(tmp_path, module, method, image_size):
    path = tmp_path / f"{method}{image_size}.ckpt"
    info = {**INFO5, "image_size": image_size}
    torch.save({"suite": {"format": 1, "method": method, "data_info": info}, "state_dict": module.state_dict()}, path)
    return path


def test_512_stage_loads_the_256_stage(tmp_path):
    mid = make("method=spm_hr", "method.lr_size=8", "method.discriminator.n_layers=3", info={**INFO5, "image_size": 16})
    path = _checkpoint(tmp_path, mid, "spm_hr", 16)
    top = make(*CASCADE)
    top.load_previous_stage(str(path))
    for name in ("G", "D", "Dw", "T", "D_h"):
        assert not changed(params_of(getattr(mid, name)), getattr(top, name)), name
    with pytest.raises(CheckpointError, match="mid_size"):
        top.load_previous_stage(str(_checkpoint(tmp_path, make("method=spm_hr", "method.lr_size=16",
                                                                "method.discriminator.n_layers=3"), "spm_hr", 32)))
    with pytest.raises(CheckpointError, match="method=spm"):
        top.load_previous_stage(str(_checkpoint(tmp_path, make(info={**INFO5, "image_size": 16}), "spm", 16)))


def test_hr_presets_pin_the_authors_values():
    c256 = compose_config(["run_dir=/tmp/unused", "experiment=spm_celeba_hq_hr"])
    assert (c256.data.image_size, c256.data.batch_size, c256.method.lr_size, c256.method.lambda_low) == (256, 8, 128, 0.4)
    assert c256.method.mid_size is None and c256.trainer.max_steps == 200000 and c256.method.enhancer.mask_residual
    c512 = compose_config(["run_dir=/tmp/unused", "experiment=spm_celeba_hq_hr_512"])
    m = c512.method
    assert (c512.data.image_size, c512.data.batch_size, m.lr_size, m.mid_size, m.lambda_low) == (512, 4, 128, 256, 0.5)
    assert m.freeze_previous and m.enhancer_top_kernel == 7 and c512.trainer.max_steps == 200000


def test_cascade_resumes_exactly(make_cfg, tmp_path, recorder):  # noqa: F811
    overrides = [*METHODS["spm"].run, "method=spm_hr", "method.lr_size=8", "method.mid_size=16",
                 "method.freeze_previous=true"]
    assert_resume_matches(make_cfg, tmp_path, recorder, overrides, k=2, n=4)
