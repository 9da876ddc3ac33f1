"""AGGAN/CycleGAN module: ablation switches, the Eq. 9 curriculum, the multi-domain form, translate routing, EMA.
The generic contract (update isolation, translate keys, round trip, determinism, resume) is tests/contract."""

from __future__ import annotations

import copy

import pytest
import torch

from suite.errors import ConfigError
from tests.helpers.batches import INFO2, INFO5, domain_batch
from tests.methods import build
from tests.trainer_stub import attach_trainer_stub as attach_trainer


def make(*overrides: str, info=INFO2):
    return build("aggan", *overrides, info=info)


def run_one_iteration(module, batch):
    attach_trainer(module)
    module.train()
    return module.train_iteration(batch)


def test_full_aggan_has_attention_discriminators_and_all_losses():
    m = make()
    logs = run_one_iteration(m, domain_batch())
    assert hasattr(m, "D_ya") and hasattr(m, "D_xa")
    for key in ("gan", "agan", "cycle", "pixel", "tv"):
        assert f"loss/G/{key}" in logs
    assert "loss/D/agan" in logs


@pytest.mark.parametrize(
    "flag,gone",
    [
        ("method.attention_discriminator=false", ["agan"]),
        ("method.pixel_loss=false", ["pixel"]),
        ("method.tv_loss=false", ["tv"]),
    ],
)
def test_each_ablation_removes_its_component(flag, gone):
    m = make(flag)
    logs = run_one_iteration(m, domain_batch())
    for key in gone:
        assert f"loss/G/{key}" not in logs
    if "attention_discriminator" in flag:
        assert not hasattr(m, "D_ya") and "loss/D/agan" not in logs


def test_no_attention_generator_is_plain_cyclegan_generator():
    m = make("method.attention_generator=false", "method.attention_discriminator=false")
    out = m.translate(torch.zeros(2, 3, 32, 32), torch.tensor([1, 0]))
    assert "mask" not in out and m.G_xy.body[-1].out_channels == 3


def test_ad_without_ag_is_rejected():
    with pytest.raises(ConfigError, match="attention_generator"):
        make("method.attention_generator=false")


def test_cyclegan_is_aggan_configured_off():
    m = make("method=cyclegan")
    assert type(m).__name__ == "AGGAN" and m.method_name == "cyclegan"
    assert not m.hparams.attention_generator and not m.hparams.curriculum
    logs = run_one_iteration(m, domain_batch())
    # CycleGAN's identity loss (λ_id = 0.5 in its released configs) is on; no pixel/TV/attention terms.
    assert set(k.split("/")[2] for k in logs if k.startswith("loss/G/")) == {"gan", "cycle", "identity", "total"}
    m_off = make("method=cyclegan", "method.lambda_identity=0")
    logs_off = run_one_iteration(m_off, domain_batch())
    assert set(k.split("/")[2] for k in logs_off if k.startswith("loss/G/")) == {"gan", "cycle", "total"}


def test_curriculum_weights_follow_eq9():
    m = make()
    gan, tv, rec = torch.tensor(2.0), torch.tensor(0.5), torch.tensor(4.0)
    m.iteration = 0  # r = 0.01
    assert m.weigh(gan, tv, rec).item() == pytest.approx(2.5 * 0.99 + 4.0 * 0.01)
    m.iteration = 9  # past 5% of 10 iterations → r = 0.5
    assert m.weigh(gan, tv, rec).item() == pytest.approx(2.5 * 0.5 + 4.0 * 0.5)
    m.hparams.curriculum = False
    assert m.weigh(gan, tv, rec).item() == pytest.approx(6.5)


def test_multi_domain_form_uses_classification_loss():
    m = make("method.view=multi_domain", info=INFO5)
    logs = run_one_iteration(m, domain_batch(4, num_domains=5))
    assert "loss/G/cls" in logs and "loss/D/cls" in logs
    assert m.G.num_domains == 5 and m.D.cls_head.out_channels == 5
    out = m.translate(torch.zeros(3, 3, 32, 32), torch.tensor([0, 2, 4]))
    assert out["image"].shape == (3, 3, 32, 32) and out["mask"].shape == (3, 1, 32, 32)


def test_translate_routes_each_target_to_its_generator():
    m = make().eval()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    out = m.translate(x, torch.tensor([1, 0, 1, 0]))
    assert torch.allclose(out["image"][0], m.G_xy(x[:1]).image[0], atol=1e-5)
    assert torch.allclose(out["image"][1], m.G_yx(x[1:2]).image[0], atol=1e-5)


def test_wrong_view_is_rejected():
    with pytest.raises(ConfigError, match="two_domain"):
        make("method.view=multi_factor")


def test_ema_copy_follows_generator_and_is_used_for_inference():
    m = make("method.ema.enabled=true", "method.ema.decay=0.5")
    assert "G_xy" in m.ema_nets and not any(p.requires_grad for p in m.ema_nets.parameters())
    before = copy.deepcopy(m.ema_nets["G_xy"].state_dict())
    with torch.no_grad():
        for p in m.G_xy.parameters():
            p.add_(1.0)
    m._update_ema()
    after = m.ema_nets["G_xy"].state_dict()
    key = next(k for k in after if k.endswith("weight"))
    assert torch.allclose(after[key], before[key] + 0.5)
    assert m.inference_net("G_xy") is m.ema_nets["G_xy"]
