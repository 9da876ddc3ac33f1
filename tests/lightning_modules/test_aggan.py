"""AGGAN/CycleGAN module: ablation switches, the Eq. 9 curriculum (as a fraction and in epochs), the multi-domain
forms (the authors' WGAN-GP/n_critic trainer and the hybrid), translate routing, EMA.
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


def test_authors_tv_form_logs_three_times_batch_sum():
    batch = domain_batch()
    torch.manual_seed(0)
    paper = run_one_iteration(make(), batch)["loss/G/tv"]
    torch.manual_seed(0)
    authors = run_one_iteration(make("method.tv_form=authors"), batch)["loss/G/tv"]
    assert authors.item() == pytest.approx(3 * batch["image"].shape[0] * paper.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="tv_form"):
        make("method.tv_form=sum")


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
    m = make("method.curriculum_epochs=null", "method.curriculum_fraction=0.05")
    gan, tv, rec = torch.tensor(2.0), torch.tensor(0.5), torch.tensor(4.0)
    m.iteration = 0  # r = 0.01
    assert m.weigh(gan, tv, rec).item() == pytest.approx(2.5 * 0.99 + 4.0 * 0.01)
    m.iteration = 9  # past 5% of 10 iterations → r = 0.5
    assert m.weigh(gan, tv, rec).item() == pytest.approx(2.5 * 0.5 + 4.0 * 0.5)
    m.use_curriculum = False
    assert m.weigh(gan, tv, rec).item() == pytest.approx(6.5)


def test_curriculum_in_epochs_counts_batches_per_epoch():
    """The paper's "first 10 epochs" at 7 batches per epoch: r = 0.01 up to iteration 69, 0.5 from 70."""
    m = make()
    assert m.hparams.curriculum_epochs == 10 and m.uses_epochs()
    assert m.curriculum_switch() is None and m.curriculum_r() == 0.01  # before train start: the early phase
    m.iterations_per_epoch = 7
    m.iteration = 69
    assert m.curriculum_switch() == 70 and m.curriculum_r() == 0.01
    m.iteration = 70
    assert m.curriculum_r() == 0.5


@pytest.mark.parametrize("overrides,match", [
    (("method.curriculum_fraction=0.05",), "both"),
    (("method.curriculum_epochs=null",), "both are null"),
    (("method.schedule.decay_start_epoch=100",), "both"),
    (("method.curriculum_epochs=-1",), ">= 0"),
])
def test_curriculum_and_decay_need_exactly_one_form(overrides, match):
    with pytest.raises(ConfigError, match=match):
        make(*overrides)


def test_lr_decay_start_in_epochs():
    """decay after 100 of 200 epochs at 3 batches per epoch: factor 1 to iteration 300, then linear to 0 at 600."""
    m = make("method.schedule.decay_start_fraction=null", "method.schedule.decay_start_epoch=100",
             "method.max_iterations=600")
    assert m.lr_factor() == 1.0  # batches per epoch unknown yet: no decay
    m.iterations_per_epoch = 3
    for iteration, factor in ((0, 1.0), (300, 1.0), (450, 0.5), (600, 0.0)):
        m.iteration = iteration
        assert m.lr_factor() == pytest.approx(factor)


MD = ("method.view=multi_domain", "method.multi_domain.generator.ngf=8", "method.multi_domain.generator.n_blocks=1",
      "method.multi_domain.discriminator.ndf=8")


def test_multi_domain_default_is_the_authors_stargan_trainer():
    """WGAN-GP with a D step every iteration and a G step every n_critic-th ((i+1) % n_critic == 0), StarGAN's D
    and the instance-norm attention G; no attention-guided D, pixel, TV or curriculum terms."""
    m = make(*MD, "method.multi_domain.n_critic=3", info=INFO5)
    assert m.hparams.multi_domain_form == "authors" and m.n_critic == 3
    assert type(m.D).__name__ == "StarGANDiscriminator" and type(m.G).__name__ == "AttentionStarGANGenerator"
    assert not hasattr(m, "D_a") and not m.pools and not m.use_curriculum
    norms = [mod for mod in m.G.modules() if isinstance(mod, torch.nn.InstanceNorm2d)]
    assert norms and not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.G.modules())
    batch = domain_batch(4, num_domains=5)
    attach_trainer(m)
    m.train()
    c_tgt = torch.nn.functional.one_hot(batch["target"], 5).float()
    with torch.no_grad():  # the WGAN critic loss by hand, before the D step changes D
        fake = m.G(batch["image"], c_tgt).image
        expected = m.D(fake).src.mean() - m.D(batch["image"]).src.mean()
    logs = m.train_iteration(batch)
    assert logs["loss/D/gan"].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    assert {"loss/D/gp", "loss/D/cls"} <= set(logs) and not any(k.startswith("loss/G/") for k in logs)
    for iteration, g_step in ((1, False), (2, True), (5, True), (6, False)):
        m.iteration = iteration
        logs = m.train_iteration(batch)
        assert ("loss/G/total" in logs) == g_step, iteration
    out = m.translate(torch.zeros(3, 3, 32, 32), torch.tensor([0, 2, 4]))
    assert out["image"].shape == (3, 3, 32, 32) and out["mask"].shape == (3, 1, 32, 32)


def test_authors_multi_domain_generator_step_has_stargan_terms():
    m = make(*MD, "method.multi_domain.n_critic=1", info=INFO5)
    logs = run_one_iteration(m, domain_batch(4, num_domains=5))
    assert {k.split("/")[2] for k in logs if k.startswith("loss/G/")} == {"gan", "cls", "cycle", "total"}
    assert {k.split("/")[2] for k in logs if k.startswith("loss/D/")} == {"gan", "cls", "gp", "total"}


@pytest.mark.parametrize("form", ["authors", "hybrid"])
def test_permutation_targets_are_the_batch_labels_shuffled(form, monkeypatch):
    """M8: method.target_sampling=permutation draws the authors' targets (their StarGAN trainer's randperm of the
    batch's labels) in both multi-domain forms; the default keeps the datamodule's other-domain targets."""
    from lightning_modules import aggan

    m = make(*MD, f"method.multi_domain_form={form}", "method.target_sampling=permutation", info=INFO5)
    attach_trainer(m)
    batch = domain_batch(4, num_domains=5)
    targets = m.training_targets(batch)
    assert sorted(targets.tolist()) == sorted(batch["domain"].tolist())
    used = []
    monkeypatch.setattr(aggan, "permuted", lambda labels: used.append(labels) or labels.flip(0))
    m.train_iteration(batch)
    assert len(used) == 1 and torch.equal(used[0], batch["domain"])
    default = make(*MD, f"method.multi_domain_form={form}", info=INFO5)
    assert default.training_targets(batch) is batch["target"]
    with pytest.raises(ConfigError, match="target_sampling"):
        make(*MD, "method.target_sampling=shuffle", info=INFO5)


def test_unknown_multi_domain_form_is_rejected():
    with pytest.raises(ConfigError, match="multi_domain_form"):
        make("method.view=multi_domain", "method.multi_domain_form=stargan", info=INFO5)


def test_hybrid_multi_domain_form_uses_classification_loss():
    m = make("method.view=multi_domain", "method.multi_domain_form=hybrid", info=INFO5)
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
